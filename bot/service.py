"""``Signoff``: the bot's core, the resources its parts share and its lifecycle.

It holds the served routes, the database and the bot's tables, the Slack client, the
clock, the metrics and the background executor; it creates the schemas, starts runs in
the background, recovers interrupted runs and applies retention. The bot's jobs are in
their own modules, wired together by ``bot/server.py``'s ``Runtime``:

- ``bot/publisher.py``: engine events to outbox rows; ``bot/outbox.py`` delivers them,
- ``bot/decider.py``: decisions from Slack to the engine; ``bot/deadlines.py``: expiry
  and reminders; ``bot/starts.py``: recorded starts,
- ``bot/permissions.py``: who may decide or start; ``bot/queries.py``: what surfaces show;
  ``bot/teller.py``: telling one person.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from slack_sdk import WebClient

from bot import policies
from bot.forms import FORMS_KEPT, OpenForms
from bot.inbox import ApplySlots, InboxWriter
from bot.metrics import Metrics
from bot.pressure import FrontDoorPressure
from bot.routing import ChannelDirectory, SlackRoute
from bot.store import BotStore
from engine import Clock, Workflow
from engine.clock import SYSTEM_CLOCK
from engine.db.base import BaseDb
from engine.errors import DuplicateRunError

log = logging.getLogger("signoff.bot")
# Longer than Slack's 5-minute signature window, so every acceptable repeat is still caught.
SEEN_REQUESTS_KEPT = timedelta(hours=1)


class Signoff:
    """The bot's core: shared resources, schemas, runs started and recovered, retention."""

    def __init__(
        self,
        *,
        routes: list[SlackRoute],
        db: BaseDb,
        client: WebClient,
        channels: ChannelDirectory,
        clock: Clock | None = None,
        workers: int = 8,
        outbox_retention: timedelta = timedelta(days=7),
    ) -> None:
        self.routes = {r.name: r for r in routes}
        self.db = db
        self.client = client
        self.channels = channels
        self.clock: Clock = clock or SYSTEM_CLOCK
        self.outbox_retention = outbox_retention
        self.store = BotStore(db)
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="signoff-run")
        self.outbox_wakeup = threading.Event()
        # A decision's own message update: delivered by the outbox's fast lane, not behind
        # the bulk of notes, root updates and App Home refreshes.
        self.urgent_wakeup = threading.Event()
        self.inbox_wakeup = threading.Event()
        self.metrics = Metrics()
        # Told by the front door how it is doing; background work steps aside under load.
        self.pressure = FrontDoorPressure()
        self.forms = OpenForms(db, self.clock)
        # The inbox worker's free threads: what is recorded while one is free goes to it
        # in memory, recorded already leased (no claim between the ack and the apply).
        self.apply_slots = ApplySlots(self.inbox_wakeup)
        self.inbox_writer = InboxWriter(self)
        for route in routes:
            policies.apply_route_policy(route)  # the engine enforces the route's policy
            wf = route.workflow
            wf.use_default_db(db)  # workflows given without a db get the bot's
            if clock is not None:
                wf.clock = clock

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        """Create or upgrade the schemas."""
        self.db.ensure_schema()
        self.store.ensure_schema()

    def stop(self) -> None:
        """Wait for the background work in flight."""
        self.inbox_writer.stop()
        self.executor.shutdown(wait=True, cancel_futures=False)

    # -- starting runs -------------------------------------------------------------------------
    def start_run(
        self,
        workflow_name: str,
        input: Any,
        *,
        user_id: str | None,
        run_id: str | None = None,
        then: Callable[[], None] | None = None,
    ) -> str:
        """Start a run in the background; returns its run id at once. ``then`` is called
        once the run paused, ended or failed (the inbox marks its start done then)."""
        route = self.routes[workflow_name]
        run_id = run_id or new_run_id()
        self.executor.submit(self._run_in_background, route.workflow, input, user_id, run_id, then)
        return run_id

    def _run_in_background(
        self,
        wf: Workflow,
        input: Any,
        user_id: str | None,
        run_id: str,
        then: Callable[[], None] | None = None,
    ) -> None:
        try:
            wf.run(input, user_id=user_id, run_id=run_id)
        except DuplicateRunError:
            log.info("run %s of %s was started already", run_id, wf.name)
        except Exception:
            log.exception("run %s of %s failed outside its steps", run_id, wf.name)
        if then is not None:
            try:
                then()
            except Exception:
                log.warning("after run %s", run_id, exc_info=True)

    # -- recovery and retention ------------------------------------------------------------
    def recover_interrupted_runs(self) -> None:
        """Runs left running by a process that died (another replica, or this one before a
        restart): each workflow's ``on_interrupted`` policy applies, exactly once. In the
        background: under "resume" recovering a run runs its steps."""
        for route in self.routes.values():
            self.executor.submit(self._recover, route)

    def forget_old_requests(self) -> None:
        """Drop de-duplication keys older than any request that could still be accepted:
        a signature older than 5 minutes is refused before it reaches the bot."""
        self.store.forget_seen_before(self.clock.now() - SEEN_REQUESTS_KEPT)

    def forget_old_forms(self) -> int:
        """Drop open forms past ``FORMS_KEPT`` (Slack did not say they closed); returns how
        many went."""
        return self.forms.forget_before(self.clock.now() - FORMS_KEPT)

    def forget_old_outbox(self) -> int:
        """Delete delivered outbox rows older than the retention
        (``SIGNOFF_OUTBOX_RETENTION_DAYS``); returns how many went."""
        cutoff = self.clock.now() - self.outbox_retention
        self.store.forget_failed_before(cutoff)  # given-up interactions: kept as long
        return self.store.forget_sent_before(cutoff)

    def _recover(self, route: SlackRoute) -> None:
        try:
            route.workflow.recover_interrupted_runs(now=self.clock.now())
        except Exception:
            log.exception("recovering interrupted runs of %s failed", route.name)


def new_run_id() -> str:
    """A fresh run id (32 hex digits), for a run not started by a keyed interaction."""
    import uuid

    return uuid.uuid4().hex


__all__ = ["Signoff", "new_run_id"]
