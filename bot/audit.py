"""Every approval, rejection, escalation and delegation of a run, with who and when: the
engine's audit trail (decisions, votes among them) next to the bot's own records
(``slack_escalations``, ``slack_delegations``). Read by ``/signoff audit <run_id>`` and
``signoff runs <run_id>``; reads the database only (no workflow code)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import inspect, select

from bot.store import slack_delegations, slack_escalations
from engine import Decision, Outcome
from engine.db.base import BaseDb

_KIND = {
    Outcome.confirmed: "approved",
    Outcome.rejected: "rejected",
    Outcome.submitted: "answered",
    Outcome.timed_out: "timed out",
}


@dataclass(frozen=True)
class AuditEntry:
    """One line of a run's audit: ``kind`` is approved, rejected, answered, timed out,
    escalated or delegated; ``who`` the person (or ``engine:timeout``); ``to`` whom it was
    escalated or delegated to; ``detail`` plain text (a vote's progress, a comment)."""

    at: datetime
    step_name: str
    kind: str
    who: str | None
    detail: str = ""
    to: tuple[str, ...] = ()
    vote: bool = False


def decision_entry(decision: Decision) -> AuditEntry:
    """A decision of the engine's audit trail as an audit line."""
    parts: list[str] = []
    if decision.is_vote:
        values = decision.values or {}
        approved = decision.outcome is Outcome.confirmed
        needed = int(values.get("approvals_needed" if approved else "rejections_needed") or 0)
        what = "approval" if approved else "rejection"
        parts.append(f"one vote; {needed} more {what}{'s' if needed != 1 else ''} needed")
    if decision.comment:
        parts.append(decision.comment)
    return AuditEntry(
        at=_utc(decision.decided_at),
        step_name=decision.step_name,
        kind=_KIND[decision.outcome],
        who=decision.decided_by,
        detail="; ".join(parts),
        vote=decision.is_vote,
    )


def read_audit(db: BaseDb, run_id: str) -> list[AuditEntry]:
    """Every audit line of a run, oldest first. A database without the bot's tables (an
    engine-only one) gives the engine's decisions alone."""
    found = [decision_entry(d) for d in db.get_decisions(run_id)]
    tables = set(inspect(db.engine).get_table_names())
    with db.engine.connect() as conn:
        if slack_escalations.name in tables:
            query = select(slack_escalations).where(slack_escalations.c.run_id == run_id)
            found.extend(_escalation_entry(r._mapping) for r in conn.execute(query))
        if slack_delegations.name in tables:
            query = select(slack_delegations).where(slack_delegations.c.run_id == run_id)
            found.extend(_delegation_entry(r._mapping) for r in conn.execute(query))
    # At the same instant an escalation or delegation comes first: it let the decision be.
    return sorted(found, key=lambda e: (e.at, e.kind not in ("escalated", "delegated")))


def _escalation_entry(row: Any) -> AuditEntry:
    return AuditEntry(
        at=_utc(row["escalated_at"]),
        step_name=str(row["step_name"]),
        kind="escalated",
        who=None,
        to=tuple(json.loads(row["escalated_to"])),
    )


def _delegation_entry(row: Any) -> AuditEntry:
    return AuditEntry(
        at=_utc(row["delegated_at"]),
        step_name=str(row["step_name"]),
        kind="delegated",
        who=str(row["delegator_id"]),
        to=(str(row["delegate_id"]),),
        detail=str(row["reason"] or ""),
    )


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def plain_lines(entries: Sequence[AuditEntry]) -> list[list[str]]:
    """Rows for a terminal table: when (UTC), step, what, by, to, detail."""
    return [
        [
            e.at.strftime("%Y-%m-%d %H:%M:%S"),
            e.step_name,
            e.kind + (" (vote)" if e.vote else ""),
            e.who or "-",
            ", ".join(e.to) or "-",
            e.detail or "-",
        ]
        for e in entries
    ]
