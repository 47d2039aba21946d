"""``/metrics`` in Prometheus format: pending approvals, decisions by outcome, timeouts, ack
latency, Slack API errors, and the outbox backlog. One registry per running bot."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from slack_sdk.errors import SlackApiError

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _StateCollector(Collector):
    """Values read from the database at scrape time, so every replica reports the truth."""

    def __init__(
        self,
        pending: Callable[[], int],
        outbox: Callable[[], dict[str, int]],
        inbox: Callable[[], dict[str, int]] | None = None,
    ) -> None:
        self._pending = pending
        self._outbox = outbox
        self._inbox = inbox

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "signoff_pending_approvals",
            "Paused steps waiting for a decision",
            value=self._pending(),
        )
        backlog = GaugeMetricFamily(
            "signoff_outbox_items", "Slack outbox items by state", labels=["state"]
        )
        for state, count in sorted(self._outbox().items()):
            backlog.add_metric([state], count)
        yield backlog
        if self._inbox is not None:
            inbox = GaugeMetricFamily(
                "signoff_inbox_items", "Recorded interactions by state", labels=["state"]
            )
            for state, count in sorted(self._inbox().items()):
                inbox.add_metric([state], count)
            yield inbox


class Metrics:
    """The bot's Prometheus metrics, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.decisions = Counter(
            "signoff_decisions", "Decisions taken, by outcome", ["outcome"], registry=self.registry
        )
        self.timeouts = Counter(
            "signoff_timeouts",
            "Pauses whose deadline passed",
            ["on_reject"],
            registry=self.registry,
        )
        self.ack_seconds = Histogram(
            "signoff_ack_seconds",
            "Time to answer a Slack request",
            ["kind"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 3.0),
            registry=self.registry,
        )
        self.slack_errors = Counter(
            "signoff_slack_api_errors",
            "Slack Web API errors",
            ["method", "error"],
            registry=self.registry,
        )

        self.inbox_record_failures = Counter(
            "signoff_inbox_record_failures",
            "Interactions that could not be recorded before their ack (the person was told)",
            registry=self.registry,
        )
        self.inbox_retries = Counter(
            "signoff_inbox_retries",
            "Recorded interactions retried after a transient failure",
            ["kind"],
            registry=self.registry,
        )
        self.inbox_given_up = Counter(
            "signoff_inbox_given_up",
            "Recorded interactions given up on (the person was told)",
            ["kind"],
            registry=self.registry,
        )

    def watch_state(
        self,
        pending: Callable[[], int],
        outbox: Callable[[], dict[str, int]],
        inbox: Callable[[], dict[str, int]] | None = None,
    ) -> None:
        """Report pending approvals and the outbox (and inbox) backlog, read at scrapes."""
        self.registry.register(_StateCollector(pending, outbox, inbox))

    def record_slack_error(self, method: str, exc: SlackApiError) -> None:
        """Count a Slack API error in ``signoff_slack_api_errors``."""
        error = exc.response.get("error") if exc.response is not None else None
        self.slack_errors.labels(method=method, error=str(error or "unknown")).inc()

    def render(self) -> bytes:
        """Every metric in Prometheus' text format, for ``/metrics``."""
        return generate_latest(self.registry)
