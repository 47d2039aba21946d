"""Forms (modals) open on a pause, so they can be told when it is decided elsewhere.

When a pause is decided (by someone else, in another form or by a button) or times out
while a person still has its form open, the form is replaced (``views.update``) by a
notice saying so, instead of failing on submit. The open forms are in the database
(``slack_open_forms``): the replica that decides or expires a pause is often not the one
through which the form was opened. The notice is an outbox item (``form_closed``), queued
in the same transaction that takes the forms off the table, so each form is told once,
with the outbox's retries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import TYPE_CHECKING

from slack_sdk.errors import SlackApiError
from sqlalchemy import Connection, delete
from sqlalchemy.exc import SQLAlchemyError

from bot import blocks
from bot.kinds import OutboxKind
from bot.outbox_queue import Item
from bot.store import OutboxItem, slack_open_forms
from engine import Clock, Decision, Outcome
from engine.db.base import BaseDb

if TYPE_CHECKING:
    from bot.service import Signoff

log = logging.getLogger("signoff.forms")
# A form older than this is forgotten (not updated): it bounds the table when Slack never
# says a form closed. Longer than most deadlines, so a form opened on a pause and left open
# until it times out is still told; one left open longer still fails on submit, saying why.
FORMS_KEPT = timedelta(days=1)


@dataclass(frozen=True)
class OpenForm:
    """A modal someone opened on a pause (kept to replace it if the pause is decided)."""

    requirement_id: str
    user_id: str
    view_id: str


class OpenForms:
    """The modals open on pauses, by view id, shared by every replica (``slack_open_forms``)."""

    def __init__(self, db: BaseDb, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def opened(self, requirement_id: str, user_id: str, view_id: str) -> None:
        """Remember that ``user_id`` opened ``view_id`` on ``requirement_id``."""
        row = {
            "view_id": view_id,
            "requirement_id": requirement_id,
            "user_id": user_id,
            "opened_at": self.clock.now(),
        }
        try:
            with self.db.write() as conn:
                # A repeat of the same view (a retried delivery) replaces the row.
                conn.execute(delete(slack_open_forms).where(slack_open_forms.c.view_id == view_id))
                conn.execute(slack_open_forms.insert(), row)
        except SQLAlchemyError:
            # Best effort: without the row the form is not updated, its submit still says why.
            log.warning("could not record open form %s", view_id, exc_info=True)

    def closed(self, view_id: str) -> None:
        """Submitted or closed by the person: nothing to update any more."""
        try:
            with self.db.write() as conn:
                conn.execute(delete(slack_open_forms).where(slack_open_forms.c.view_id == view_id))
        except SQLAlchemyError:
            # Left behind, the row costs one views.update Slack refuses, then ages out.
            log.warning("could not forget open form %s", view_id, exc_info=True)

    def take(self, requirement_id: str) -> list[OpenForm]:
        """The forms still open on this pause, forgotten as they are returned: each to one
        caller only, across replicas."""
        with self.db.write() as conn:
            return self.take_on(conn, requirement_id)

    def take_on(self, conn: Connection, requirement_id: str) -> list[OpenForm]:
        """``take`` inside the caller's transaction (the outbox batch that tells them)."""
        # One DELETE ... RETURNING: of two replicas taking at once, one gets the rows.
        rows = conn.execute(
            delete(slack_open_forms)
            .where(slack_open_forms.c.requirement_id == requirement_id)
            .returning(
                slack_open_forms.c.view_id,
                slack_open_forms.c.user_id,
                slack_open_forms.c.opened_at,
            )
        ).all()
        cutoff = self.clock.now() - FORMS_KEPT
        return [
            OpenForm(requirement_id, r.user_id, r.view_id)
            for r in sorted(rows, key=lambda r: (r.opened_at, r.view_id))
            if r.opened_at >= cutoff
        ]

    def forget_before(self, when: datetime) -> int:
        """Drop forms opened before ``when`` (retention); returns how many went."""
        with self.db.write() as conn:
            return conn.execute(
                delete(slack_open_forms).where(slack_open_forms.c.opened_at < when)
            ).rowcount


def notice_text(decision: Decision) -> str:
    """What a form open on a pause says once the pause is decided or timed out."""
    if decision.outcome is Outcome.timed_out:
        return f":hourglass_flowing_sand: Too late: {blocks.describe_decision(decision)}."
    return f"Already decided: {blocks.describe_decision(decision)}."


def closing_notices(
    forms: OpenForms, requirement_id: str, *, step_name: str, decision: Decision
) -> Callable[[Connection], list[Item]]:
    """What the outbox batch of a decided pause runs in its transaction: the pause's open
    forms taken, one ``form_closed`` item each (grouped by view, so a form waits on no
    run message and none waits on it)."""
    title, text = step_name.replace("_", " "), notice_text(decision)

    def produce(conn: Connection) -> list[Item]:
        return [
            (
                f"form:{form.view_id}",
                f"form:{form.view_id}",
                OutboxKind.form_closed,
                {"view_id": form.view_id, "title": title, "text": text},
            )
            for form in forms.take_on(conn, requirement_id)
        ]

    return produce


def form_closed_handler(signoff: Signoff) -> Callable[[OutboxItem], None]:
    """The outbox's delivery of ``form_closed``: the form replaced by its notice."""

    def deliver(item: OutboxItem) -> None:
        view_id = item.data["view_id"]
        view = blocks.closed_modal(item.data["title"], item.data["text"])
        try:
            signoff.client.views_update(view_id=view_id, view=view)
        except SlackApiError as exc:
            status = getattr(exc.response, "status_code", HTTPStatus.OK)
            if status == HTTPStatus.TOO_MANY_REQUESTS or status >= HTTPStatus.INTERNAL_SERVER_ERROR:
                raise  # Slack busy or down: the outbox retries
            # Closed or submitted by the person meanwhile: nothing to do.
            signoff.metrics.record_slack_error("views.update", exc)
            log.info("views.update of %s: %s", view_id, exc.response.get("error"))

    return deliver


__all__ = [
    "FORMS_KEPT",
    "OpenForm",
    "OpenForms",
    "closing_notices",
    "form_closed_handler",
    "notice_text",
]
