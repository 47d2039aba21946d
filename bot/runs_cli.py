"""``signoff runs [RUN_ID] [--limit N]``: paused and recent runs, or one run in full, as
plain-text tables for a terminal. Times are shown in UTC, with how long ago or how long left.

Reads the database only: it imports no workflow code, so it works wherever the database
does (a laptop with the SQLite file, a pod next to PostgreSQL).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy.engine import make_url

from bot.audit import AuditEntry, plain_lines, read_audit
from bot.config import Settings, open_database
from engine import Decision, Outcome, PausedRun, RunStatus, StepRequirement, WorkflowRunOutput
from engine.db import mask_url

CELL_MAX = 48
TEXT_MAX = 4000
_OUTCOME_WORDS = {
    Outcome.confirmed: "confirmed",
    Outcome.rejected: "rejected",
    Outcome.submitted: "answered",
    Outcome.timed_out: "timed out",
}


def show_runs(
    settings: Settings,
    *,
    run_id: str | None,
    limit: int,
    out: TextIO | None = None,
    now: datetime | None = None,
) -> int:
    """Print paused and recent runs (or ``run_id`` in full); returns the exit code."""
    if limit < 1:
        raise ValueError("--limit must be at least 1")
    out = out or sys.stdout
    missing = missing_sqlite_file(settings.database_url)
    if missing is not None:
        print(
            f"signoff: no database at {missing} (nothing has run here yet; "
            "set SIGNOFF_DATABASE_URL to the bot's database)",
            file=sys.stderr,
        )
        return 1
    db = open_database(settings)
    try:
        now = now or datetime.now(UTC)
        if run_id is not None:
            run = db.get_run(run_id.strip())
            if run is None:
                where = mask_url(settings.database_url)
                print(f"signoff: no run {run_id!r} in {where}", file=sys.stderr)
                return 1
            audit = read_audit(db, run.run_id)
            out.write(render_run(run, db.get_decisions(run.run_id), now=now, audit=audit))
            return 0
        paused, recent = db.list_paused_runs(), db.list_runs(limit=limit)
        out.write(render_overview(paused, recent, now=now, limit=limit))
        out.write(render_given_up(given_up(db), now=now))
        return 0
    finally:
        db.dispose()


def missing_sqlite_file(url: str) -> Path | None:
    """The SQLite file ``url`` names if it does not exist (listing must not create one)."""
    if url.startswith(("postgres:", "postgresql")):
        return None
    database = make_url(url).database if url.startswith("sqlite") else url
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    path = Path(database)
    return None if path.exists() else path


# -- the overview -------------------------------------------------------------------------------
def render_overview(
    paused: Sequence[PausedRun],
    recent: Sequence[WorkflowRunOutput],
    *,
    now: datetime,
    limit: int | None = None,
) -> str:
    """``signoff runs``: paused runs (soonest deadline first, with time left), then recent ones."""
    lines = [f"Paused runs: {len(paused)}  (times in UTC; soonest deadline first)"]
    if paused:
        rows = [
            [
                clip(p.workflow_name or "-"),
                clip(p.step_name),
                p.run_id,
                when(p.paused_at),
                when(p.expires_at),
                time_left(p.expires_at, now),
            ]
            for p in paused
        ]
        headers = ["WORKFLOW", "STEP", "RUN ID", "WAITING SINCE", "DEADLINE", "TIME LEFT"]
        lines += indent(table(headers, rows))
    else:
        lines.append("  none waiting")
    cap = f"; at most {limit}, see --limit" if limit is not None else ""
    lines += ["", f"Recent runs: {len(recent)}  (newest first{cap})"]
    if recent:
        rows = [
            [
                r.status.value,
                clip(r.workflow_name or "-"),
                r.run_id,
                when(r.created_at),
                clip(r.user_id or "-"),
            ]
            for r in recent
        ]
        lines += indent(table(["STATUS", "WORKFLOW", "RUN ID", "STARTED", "BY"], rows))
    else:
        lines.append("  no runs yet")
    lines += ["", "Show one run in full: signoff runs RUN_ID"]
    return "\n".join(lines) + "\n"


def given_up(db: Any) -> list[Any]:
    """Interactions the bot gave up on (read only: nothing if its tables do not exist)."""
    from sqlalchemy import inspect

    from bot.store import BotStore, slack_inbox

    with db.engine.connect() as conn:
        if not inspect(conn).has_table(slack_inbox.name):
            return []
    return BotStore(db).failed_inbox()


def render_given_up(failures: Sequence[Any], *, now: datetime) -> str:
    """Clicks, forms and commands acknowledged to Slack that could not be carried out
    (after every retry); their people were told. Nothing when there are none."""
    if not failures:
        return ""
    rows = [
        [
            f.kind,
            clip(f.user_id or "-"),
            str(f.attempts),
            ago(f.finished_at, now),
            clip(f.error or "-"),
        ]
        for f in failures
    ]
    lines = ["", f"Given up: {len(failures)}  (interactions not carried out; newest first)"]
    lines += indent(table(["KIND", "BY", "TRIES", "WHEN", "LAST ERROR"], rows))
    return "\n".join(lines) + "\n"


# -- one run ------------------------------------------------------------------------------------
def render_run(
    run: WorkflowRunOutput,
    decisions: Sequence[Decision],
    *,
    now: datetime,
    audit: Sequence[AuditEntry] = (),
) -> str:
    """``signoff runs RUN_ID``: the run's status, input, steps, decisions, the audit of its
    approvals, rejections, escalations and delegations, and its result."""
    lines = [f"Run {run.run_id}"]
    fields = [
        ("Workflow", run.workflow_name or "-"),
        ("Status", status_line(run, now)),
        ("Started", f"{when(run.created_at)} ({ago(run.created_at, now)}) by {run.user_id or '-'}"),
        ("Updated", f"{when(run.updated_at)} ({ago(run.updated_at, now)})"),
        ("Session", run.session_id),
    ]
    if run.input is not None:
        fields.append(("Input", clip(one_line(run.input), TEXT_MAX)))
    width = max(len(name) for name, _ in fields) + 1
    lines += [f"  {(name + ':').ljust(width)} {value}" for name, value in fields]

    lines += ["", "Steps"]
    step_rows = steps_table(run, decisions)
    lines += indent(table(["#", "STEP", "OUTCOME", "DETAIL"], step_rows)) if step_rows else []
    if not step_rows:
        lines.append("  no step has run yet")

    lines += ["", f"Decisions (audit trail): {len(decisions)}"]
    if decisions:
        rows = [
            [
                when(d.decided_at),
                clip(d.step_name),
                _OUTCOME_WORDS[d.outcome],
                clip(d.decided_by or "-"),
                clip(decision_note(d), 80),
            ]
            for d in decisions
        ]
        lines += indent(table(["WHEN", "STEP", "OUTCOME", "BY", "COMMENT / VALUES"], rows))
    else:
        lines.append("  none yet")

    lines += ["", f"Approvals, rejections, escalations, delegations: {len(audit)}"]
    if audit:
        rows = [[clip(c, 80) for c in row] for row in plain_lines(audit)]
        lines += indent(table(["WHEN", "STEP", "WHAT", "BY", "TO", "DETAIL"], rows))
    else:
        lines.append("  none yet")

    if run.content is not None:
        lines += ["", "Content:", *indent(block(run.content))]
    if run.error:
        lines += ["", "Error:", *indent(block(run.error))]
    return "\n".join(lines) + "\n"


def status_line(run: WorkflowRunOutput, now: datetime) -> str:
    if run.status is RunStatus.paused and run.step_requirements:
        req = run.step_requirements[0]
        text = f"paused at step '{req.step_name}', waiting since {when(req.paused_at)}"
        if run.expires_at is not None:
            text += f"; deadline {when(run.expires_at)} ({time_left(run.expires_at, now)})"
        else:
            text += "; no deadline"
        return text
    if run.status is RunStatus.error and run.error:
        return f"error: {clip(one_line(run.error), 80)}"
    return run.status.value


def steps_table(run: WorkflowRunOutput, decisions: Sequence[Decision]) -> list[list[str]]:
    """The steps that ran, then the one the run waits at; each with its decision if any."""
    last_decision = {d.step_name: d for d in decisions}
    rows: list[list[str]] = []
    seen: set[str] = set()
    for result in run.step_results:
        name = result.step_name or "?"
        seen.add(name)
        if result.skipped:
            outcome = "skipped"
        elif not result.success:
            outcome = "failed"
        elif result.stop:
            outcome = "completed, stopped the run"
        else:
            outcome = "completed"
        outcome += decided(last_decision.get(name))
        detail = result.error if not result.success and result.error else result.content
        rows.append([str(len(rows) + 1), clip(name), outcome, detail_cell(detail)])
    for req in run.step_requirements if run.status is RunStatus.paused else []:
        seen.add(req.step_name)
        rows.append(
            [str(len(rows) + 1), clip(req.step_name), waiting_for(req), detail_cell(ask(req))]
        )
    # A pause resolved without a result (rejected with cancel, timed out with cancel).
    for name, decision in last_decision.items():
        if name not in seen:
            rows.append([str(len(rows) + 1), clip(name), decided(decision).lstrip(", "), ""])
    return rows


def decided(decision: Decision | None) -> str:
    if decision is None:
        return ""
    if decision.outcome is Outcome.timed_out:
        return ", timed out"
    return f", {_OUTCOME_WORDS[decision.outcome]} by {decision.decided_by or 'someone'}"


def waiting_for(req: StepRequirement) -> str:
    wants = []
    if req.needs_confirmation:
        wants.append("confirmation")
    if req.needs_user_input:
        wants.append("input")
    return "waiting for " + (" and ".join(wants) or "the run to continue")


def ask(req: StepRequirement) -> str:
    parts = [m for m in (req.confirmation_message, req.user_input_message) if m]
    if req.user_input_schema:
        parts.append("fields: " + ", ".join(f.name for f in req.user_input_schema))
    return "; ".join(parts)


def decision_note(decision: Decision) -> str:
    parts = []
    if decision.comment:
        parts.append(decision.comment)
    if decision.values:
        parts.append(one_line(decision.values))
    return " | ".join(parts) or "-"


# -- formatting ---------------------------------------------------------------------------------
def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned columns two spaces apart."""
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [list(headers), *rows]
    ]


def indent(lines: Sequence[str], prefix: str = "  ") -> list[str]:
    return [prefix + line if line else line for line in lines]


def clip(text: str, limit: int = CELL_MAX) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def one_line(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, ensure_ascii=False, separators=(", ", ": "))


def detail_cell(value: Any) -> str:
    return "" if value is None else clip(one_line(value), 60)


def block(value: Any) -> list[str]:
    text = value if isinstance(value, str) else json.dumps(value, default=str, indent=2)
    if len(text) > TEXT_MAX:
        text = text[:TEXT_MAX] + f"\n… ({len(text) - TEXT_MAX} more characters)"
    return text.splitlines() or [""]


def utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def when(value: datetime | None) -> str:
    return utc(value).strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def span(delta: timedelta) -> str:
    seconds = int(abs(delta).total_seconds())
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {seconds:02d}s"
    return f"{seconds}s"


def ago(value: datetime | None, now: datetime) -> str:
    if value is None:
        return "-"
    delta = now - utc(value)
    return f"{span(delta)} ago" if delta >= timedelta(0) else f"in {span(delta)}"


def time_left(deadline: datetime | None, now: datetime) -> str:
    if deadline is None:
        return "-"
    delta = utc(deadline) - now
    return f"{span(delta)} left" if delta > timedelta(0) else f"overdue by {span(delta)}"


__all__ = ["missing_sqlite_file", "render_overview", "render_run", "show_runs"]
