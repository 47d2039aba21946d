"""Workflows served by the replica processes of ``test_replicas.py``
(``SIGNOFF_WORKFLOWS=tests.scale.replica_workflows:workflows``).

Every step records each execution as a row of ``replica_effects`` in the database the run
lives in (``SIGNOFF_DATABASE_URL``, or the URL given to ``use_effects_db``), so a test can
count side effects across processes: a step that ran twice shows up twice.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, create_engine, text

from engine import Clock, OnReject, Step, StepInput, StepOutput, Workflow
from engine.db.base import BaseDb
from engine.db.postgres import normalize_postgres_url

GATE = "replica_gate"  # prepare -> ship (needs confirmation; reject cancels) -> finish
DEADLINE = "replica_deadline"  # prepare -> wait (1 h deadline; timeout skips) -> after
DEADLINE_TIMEOUT = timedelta(hours=1)
EFFECTS_TABLE = "replica_effects"

_engines: dict[str, Engine] = {}
_lock = threading.Lock()
_effects_url: str | None = None


def use_effects_db(url: str) -> None:
    """Record side effects in this database (the test process; replicas use their own)."""
    global _effects_url
    _effects_url = url


def _engine() -> Engine:
    url = _effects_url or os.environ["SIGNOFF_DATABASE_URL"]
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = create_engine(normalize_postgres_url(url), pool_size=4)
        return engine


def dispose_engines() -> None:
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def create_effects_table(url: str) -> None:
    engine = create_engine(normalize_postgres_url(url))
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    f"CREATE TABLE IF NOT EXISTS {EFFECTS_TABLE} ("
                    "id BIGSERIAL PRIMARY KEY, run_id VARCHAR(64) NOT NULL, "
                    "step VARCHAR(200) NOT NULL, pid INTEGER NOT NULL)"
                )
            )
    finally:
        engine.dispose()


def _effect(name: str) -> Callable[[StepInput], StepOutput]:
    def run(step_input: StepInput) -> StepOutput:
        with _engine().begin() as conn:
            conn.execute(
                text(f"INSERT INTO {EFFECTS_TABLE} (run_id, step, pid) VALUES (:r, :s, :p)"),
                {"r": step_input.run_id, "s": name, "p": os.getpid()},
            )
        return StepOutput(content=f"{name} done for {step_input.input!r}")

    run.__name__ = name
    return run


def make_workflows(
    *, db: BaseDb | None = None, clock: Clock | None = None, lease: timedelta | None = None
) -> list[Workflow]:
    extra: dict[str, Any] = {"db": db, "clock": clock}
    if lease is not None:
        extra["lease"] = lease
    return [
        Workflow(
            name=GATE,
            steps=[
                Step(name="prepare", executor=_effect("prepare")),
                Step(
                    name="ship",
                    executor=_effect("ship"),
                    requires_confirmation=True,
                    confirmation_message="Ship it?",
                    on_reject=OnReject.cancel,
                ),
                Step(name="finish", executor=_effect("finish")),
            ],
            **extra,
        ),
        Workflow(
            name=DEADLINE,
            steps=[
                Step(name="prepare", executor=_effect("prepare")),
                Step(
                    name="wait",
                    executor=_effect("wait"),
                    requires_confirmation=True,
                    confirmation_message="Go ahead?",
                    pause_timeout=DEADLINE_TIMEOUT,
                    on_reject=OnReject.skip,
                ),
                Step(name="after", executor=_effect("after")),
            ],
            **extra,
        ),
    ]


workflows = make_workflows()
