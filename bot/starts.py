"""``/signoff run`` as the inbox worker applies it: checked, then started under the run id
its ack announced."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot import blocks
from bot.decisions import DecisionResult
from bot.inbox import START_LEASE
from bot.kinds import InboxState
from bot.permissions import GroupCheckError, Permissions
from bot.store import InboxItem

if TYPE_CHECKING:
    from bot.service import Signoff


class Starts:
    """Applies recorded starts of runs."""

    def __init__(self, signoff: Signoff, permissions: Permissions) -> None:
        self.signoff = signoff
        self.permissions = permissions

    def apply(self, item: InboxItem) -> DecisionResult | None:
        """A recorded ``/signoff run``: starts the run under the id its ack announced; done
        once the run paused or ended (a crash before that starts it again, under that id)."""
        signoff = self.signoff
        data = item.data
        name, run_id = data.get("workflow"), data.get("run_id")
        route = signoff.routes.get(name) if isinstance(name, str) else None
        if route is None or not isinstance(run_id, str) or not isinstance(item.user_id, str):
            return DecisionResult(False, "That workflow is not served any more.")
        try:
            allowed = self.permissions.can_start(item.user_id, route)
        except GroupCheckError as exc:
            return DecisionResult(
                False,
                f":warning: Signoff could not check whether you may start `{name}` (Slack said "
                f"`{blocks.escape(str(exc))}`); nothing was started. Please try again.",
            )
        if not allowed:
            return DecisionResult(False, f"You may not start `{name}`; nothing was started.")
        if signoff.db.get_run(run_id) is not None:
            return DecisionResult(True, "")  # started before a crash: once is enough
        signoff.store.extend_inbox_lease(item.key, until=signoff.clock.now() + START_LEASE)

        def started() -> None:
            signoff.store.finish_inbox(item.key, state=InboxState.done, now=signoff.clock.now())

        signoff.start_run(
            str(name), data.get("input"), user_id=item.user_id, run_id=run_id, then=started
        )
        return None


__all__ = ["Starts"]
