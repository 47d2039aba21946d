"""``claim_hook``: a front-end's writes commit in the transaction that claims a pause (its
outbox and inbox rows), or neither does; the engine knows nothing of what they are."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Column, Connection, MetaData, String, Table, select

from engine import RunNotPausedError, RunStatus
from engine.db.base import claim_hook
from tests.engine.engine_flows import Recorder, approval_workflow

side = MetaData()
marks = Table("claim_marks", side, Column("run_id", String(64), primary_key=True))


def test_the_hook_commits_with_the_claim_and_rolls_it_back(db_url: str) -> None:
    rec = Recorder()
    wf = approval_workflow(db_url, rec, name="hooked")
    assert wf.db is not None
    with wf.db.engine.begin() as conn:
        side.create_all(conn)
    run = wf.run("x")
    run.step_requirements[0].confirm(by="alice")

    def failing(conn: Connection) -> None:
        conn.execute(marks.insert(), {"run_id": run.run_id})
        raise RuntimeError("the front-end's write failed")

    with claim_hook(failing), pytest.raises(RuntimeError):
        wf.continue_run(run)
    # Rolled back together: still paused, no decision, no mark.
    assert wf.get_run(run.run_id).status is RunStatus.paused
    assert wf.get_decisions(run.run_id) == []
    with wf.db.engine.connect() as conn:
        assert conn.execute(select(marks)).all() == []

    fresh = wf.get_run(run.run_id)
    assert fresh is not None
    fresh.step_requirements[0].confirm(by="alice")
    def mark(conn: Any) -> None:
        conn.execute(marks.insert(), {"run_id": run.run_id})

    with claim_hook(mark):
        done = wf.continue_run(fresh)
    assert done.status is RunStatus.completed
    with wf.db.engine.connect() as conn:
        assert conn.execute(select(marks.c.run_id)).scalars().all() == [run.run_id]

    # A losing claim runs no hook.
    called: list[Connection] = []
    stale = wf.get_run(run.run_id)
    assert stale is not None
    with claim_hook(called.append), pytest.raises(RunNotPausedError):
        wf.continue_run(run_id=run.run_id, step_requirements=fresh.step_requirements)
    assert called == []
