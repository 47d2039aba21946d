"""A database that goes away for a moment while a decided run's next steps are saved (a
restart, its connections cut) does not fail the run: the live process waits and saves again,
and a save whose answer was lost after it committed is recognised, not written twice."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from engine import RunStatus, Step, StepInput, StepOutput, Workflow
from engine.db.postgres import PostgresDb
from tests.conftest import PG_ADMIN_DSN

OUTAGE_S = 0.5  # the fault's own length, not a wait for a condition


@pytest.fixture
def database(pg_database_factory: Callable[[], str]) -> Iterator[tuple[str, str]]:
    url = pg_database_factory()
    yield url, url.rsplit("/", 1)[1]


def _cut_connections(dbname: str) -> None:
    """This database only: refuse new connections, end its sessions, allow them again soon."""
    admin = psycopg.connect(PG_ADMIN_DSN, autocommit=True)
    admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS false')
    admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = %s AND pid <> pg_backend_pid()",
        (dbname,),
    )

    def allow() -> None:
        admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')
        admin.close()

    threading.Timer(OUTAGE_S, allow).start()


def test_a_database_outage_after_a_decision_is_waited_out_not_a_failed_run(
    database: tuple[str, str],
) -> None:
    url, dbname = database
    ran: list[str] = []

    def gate(step_input: StepInput) -> StepOutput:
        return StepOutput(content="gate")

    def after(step_input: StepInput) -> Any:
        ran.append("after")
        _cut_connections(dbname)  # the database goes away as this step's result is saved
        return StepOutput(content="after")

    db = PostgresDb(url, pool_size=2)
    try:
        wf = Workflow(
            name="outage",
            db=db,
            lease=timedelta(seconds=60),
            steps=[
                Step(name="gate", executor=gate, requires_confirmation=True),
                Step(name="after", executor=after),
            ],
        )
        run = wf.run("x", user_id="U1")
        assert run.status is RunStatus.paused
        run.step_requirements[0].confirm(by="U2")
        done = wf.continue_run(run)
        assert done.status is RunStatus.completed
        stored = db.get_run(run.run_id)
        assert stored is not None and stored.status is RunStatus.completed
        assert ran == ["after"]  # the step ran once: only its save was tried again
        assert len(db.get_decisions(run.run_id)) == 1
    finally:
        db.dispose()
