"""Telling one person something, best effort: ephemerally where they clicked, in a slash
command's ``response_url``, or (a click in a view) through the observers given."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from bot.metrics import Metrics
from bot.store import InboxItem

log = logging.getLogger("signoff.teller")


class Teller:
    """Ephemeral answers to people; ``untold`` get what cannot be said ephemerally."""

    def __init__(
        self,
        client: WebClient,
        metrics: Metrics,
        *,
        untold: Sequence[Callable[[str, str], None]] = (),
    ) -> None:
        self.client = client
        self.metrics = metrics
        self._untold = tuple(untold)

    def tell(
        self, *, channel: str | None, user_id: str, text: str, thread_ts: str | None = None
    ) -> None:
        """An ephemeral message to one person (in ``thread_ts``'s thread if given); best effort.
        Without a channel (a click in a view), the ``untold`` observers are told instead."""
        if not channel:
            for callback in self._untold:
                callback(user_id, text)
            return
        try:
            self.client.chat_postEphemeral(
                channel=channel, user=user_id, text=text, thread_ts=thread_ts
            )
        except SlackApiError as exc:
            self.metrics.record_slack_error("chat.postEphemeral", exc)
            log.warning("could not tell %s: %s", user_id, exc.response.get("error"))

    def reply_to(self, item: InboxItem, text: str) -> None:
        """Tell the person behind a recorded interaction how it went (best effort): in the
        ack's place for a slash command (its ``response_url``), else ephemerally next to
        what they clicked."""
        reply = item.data.get("reply") or {}
        user_id = item.user_id
        response_url = reply.get("response_url")
        if isinstance(response_url, str) and response_url:
            try:
                WebhookClient(response_url, timeout=10).send(
                    text=text, response_type="ephemeral", replace_original=False
                )
                return
            except Exception:
                log.warning("response_url reply to %s failed", user_id, exc_info=True)
        if isinstance(user_id, str):
            self.tell(
                channel=reply.get("channel"),
                user_id=user_id,
                text=text,
                thread_ts=reply.get("thread_ts"),
            )


__all__ = ["Teller"]
