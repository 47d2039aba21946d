"""Crash safety (issue 5): leases on running runs and ``recover_interrupted_runs``.

A continued run is leased by the process running it and renewed while its steps run; a run
left ``running`` whose lease expired is taken over exactly once and failed or resumed by the
workflow's ``on_interrupted`` policy. Time comes from a ManualClock or an explicit ``now=``:
no test sleeps for a lease to expire. On a SQLite file and on PostgreSQL (``db_url``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, inspect, select, text

from engine import (
    ManualClock,
    RunStatus,
    Step,
    StepInput,
    StepOutput,
    UserInputField,
    Workflow,
    WorkflowCompletedEvent,
    WorkflowConfigError,
    WorkflowErrorEvent,
    WorkflowRunEvent,
    WorkflowRunOutput,
    db_from_url,
)
from engine.db.base import BaseDb
from engine.db.migrations import upgrade
from engine.db.schema import SCHEMA_REVISION, runs, sessions
from engine.db.sqlite import SqliteDb
from engine.workflow._leases import process_owner_id
from tests.engine.engine_flows import Recorder
from tests.engine.engine_flows import child_command as flows_command
from tests.engine.engine_flows import child_env as flows_env
from tests.scale.crash_workflows import (
    blocking_workflow,
    child_env,
    continue_command,
    effects_of,
    gate_path,
)

LEASE = timedelta(seconds=60)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


class ProcessDied(BaseException):
    """Raised by a step to stand for its process dying there: not an Exception, so the
    engine does not turn it into an ``error`` run; the run stays ``running``, leased."""


@dataclass(frozen=True)
class LeaseRow:
    status: str
    owner: str | None
    expires_at: datetime | None


def lease_row(db: BaseDb, run_id: str) -> LeaseRow:
    with db.engine.connect() as conn:
        row = conn.execute(
            select(runs.c.status, runs.c.lease_owner, runs.c.lease_expires_at).where(
                runs.c.run_id == run_id
            )
        ).one()
    return LeaseRow(row.status, row.lease_owner, row.lease_expires_at)


def decisions_of(wf: Workflow, run_id: str) -> list[tuple[Any, ...]]:
    return [
        (d.requirement_id, d.outcome.value, d.decided_by, d.decided_at, d.comment, d.values)
        for d in wf.get_decisions(run_id)
    ]


@dataclass
class Gate:
    """Holds the first execution of a step until released (a long step, without sleeps)."""

    entered: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    used: bool = False

    def hold(self) -> None:
        if self.used:
            return
        self.used = True
        self.entered.set()
        if not self.release.wait(30):
            raise TimeoutError("gate never released")


@dataclass
class Flow:
    wf: Workflow
    clock: ManualClock
    calls: Recorder
    events: list[WorkflowRunEvent]


def make_flow(
    db_url: str,
    *,
    policy: str = "fail",
    name: str | None = None,
    clock: ManualClock | None = None,
    lease: timedelta = LEASE,
    gate: Gate | None = None,
    die_once: bool = False,
    calls: Recorder | None = None,
    with_input: bool = False,
) -> Flow:
    """prepare -> deploy (needs confirmation) -> notify, every execution recorded.
    ``die_once``: the first execution of deploy "kills the process" (ProcessDied);
    ``gate``: the first execution of deploy waits for the gate."""
    clock = clock or ManualClock(T0)
    calls = calls or Recorder()
    died: list[bool] = []

    def prepare(si: StepInput) -> StepOutput:
        calls.record("prepare")
        return StepOutput(content="prepared")

    def deploy(si: StepInput) -> StepOutput:
        calls.record("deploy")
        if gate is not None:
            gate.hold()
        if die_once and not died:
            died.append(True)
            raise ProcessDied
        values = si.additional_data.get("user_input")
        suffix = f" v{values['version']}" if values else ""
        return StepOutput(content=f"deployed{suffix} after {si.previous_step_content}")

    def notify(si: StepInput) -> StepOutput:
        calls.record("notify")
        return StepOutput(content=f"notified after {si.previous_step_content}")

    wf = Workflow(
        name=name or f"leased_{uuid.uuid4().hex[:10]}",
        db=db_from_url(db_url),
        clock=clock,
        lease=lease,
        on_interrupted=policy,
        steps=[
            Step(name="prepare", executor=prepare),
            Step(
                name="deploy",
                executor=deploy,
                requires_confirmation=True,
                requires_user_input=with_input,
                user_input_schema=[UserInputField(name="version", field_type="int")]
                if with_input
                else None,
            ),
            Step(name="notify", executor=notify),
        ],
    )
    events: list[WorkflowRunEvent] = []
    wf.subscribe(events.append)
    return Flow(wf, clock, calls, events)


@pytest.fixture
def flows() -> Iterator[Callable[..., Flow]]:
    made: list[Flow] = []

    def make(*args: Any, **kwargs: Any) -> Flow:
        flow = make_flow(*args, **kwargs)
        made.append(flow)
        return flow

    yield make
    for flow in made:
        flow.wf.db.dispose()


def paused_and_confirmed(wf: Workflow, by: str = "alice") -> WorkflowRunOutput:
    run = wf.run("go")
    assert run.is_paused and run.paused_step_name == "deploy"
    run.step_requirements[0].confirm(by=by)
    return run


def interrupt(flow: Flow) -> WorkflowRunOutput:
    """Start, confirm and continue a run whose process "dies" inside the confirmed step."""
    run = paused_and_confirmed(flow.wf)
    with pytest.raises(ProcessDied):
        flow.wf.continue_run(run)
    row = lease_row(flow.wf.db, run.run_id)
    assert row == LeaseRow("running", process_owner_id(), flow.clock.now() + LEASE)
    return run


@contextmanager
def continuing_in_thread(wf: Workflow, run: WorkflowRunOutput, gate: Gate) -> Iterator[dict]:
    """continue_run in a thread, held inside the confirmed step while the block runs."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = wf.continue_run(run)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    try:
        assert gate.entered.wait(10), "the step never started"
        yield box
    finally:
        gate.release.set()
        thread.join(30)
        assert not thread.is_alive()


# -- the lease's life ------------------------------------------------------------------------
def test_a_claim_sets_the_lease_and_completion_clears_it(
    db_url: str, flows: Callable[..., Flow]
) -> None:
    gate = Gate()
    flow = flows(db_url, gate=gate)
    db = flow.wf.db
    run = paused_and_confirmed(flow.wf)
    assert lease_row(db, run.run_id) == LeaseRow("paused", None, None)
    with continuing_in_thread(flow.wf, run, gate) as box:
        row = lease_row(db, run.run_id)
        assert row == LeaseRow("running", process_owner_id(), T0 + LEASE)
        host, pid, nonce = str(row.owner).rsplit(":", 2)
        assert host and int(pid) == os.getpid() and len(nonce) == 8
    assert "error" not in box, box
    assert box["result"].status is RunStatus.completed
    assert lease_row(db, run.run_id) == LeaseRow("completed", None, None)


def test_a_pause_and_a_failure_release_the_lease(db_url: str) -> None:
    """Inside each step the run is leased; the next pause and a final error clear it."""
    clock = ManualClock(T0)
    seen: dict[str, LeaseRow] = {}
    db = db_from_url(db_url)

    def look(name: str) -> Callable[[StepInput], str]:
        def run(si: StepInput) -> str:
            seen[name] = lease_row(db, str(si.run_id))
            if name == "c":
                raise RuntimeError("disk full")
            return name

        return run

    wf = Workflow(
        name=f"two_pauses_{uuid.uuid4().hex[:8]}",
        db=db,
        clock=clock,
        steps=[
            Step(name="a", executor=look("a"), requires_confirmation=True),
            Step(name="b", executor=look("b"), requires_confirmation=True),
            Step(name="c", executor=look("c")),
        ],
    )
    try:
        run = wf.run("go")
        run.step_requirements[0].confirm(by="alice")
        run = wf.continue_run(run)
        assert seen["a"] == LeaseRow("running", process_owner_id(), T0 + LEASE)
        assert run.is_paused and lease_row(db, run.run_id) == LeaseRow("paused", None, None)
        clock.advance(timedelta(minutes=5))
        run.step_requirements[0].confirm(by="bob")
        run = wf.continue_run(run)
        later = T0 + timedelta(minutes=5) + LEASE
        assert seen["b"] == seen["c"] == LeaseRow("running", process_owner_id(), later)
        assert run.status is RunStatus.error
        assert lease_row(db, run.run_id) == LeaseRow("error", None, None)
        assert wf.recover_interrupted_runs(now=T0 + timedelta(days=1)) == []
    finally:
        db.dispose()


def test_renewal_extends_the_lease_and_a_live_run_is_never_taken(
    db_url: str, flows: Callable[..., Flow]
) -> None:
    gate = Gate()
    flow = flows(db_url, gate=gate)
    wf, db, clock = flow.wf, flow.wf.db, flow.clock
    run = paused_and_confirmed(wf)
    owner = process_owner_id()
    with continuing_in_thread(wf, run, gate) as box:
        assert wf.recover_interrupted_runs(now=T0 + LEASE - timedelta(seconds=1)) == []
        # The owner renews (as its LeaseKeeper does every lease/3): the lease moves on.
        clock.advance(timedelta(seconds=50))
        assert db.renew_leases(owner, [run.run_id], until=clock.now() + LEASE) == 1
        assert lease_row(db, run.run_id) == LeaseRow("running", owner, T0 + timedelta(seconds=110))
        # Nobody else can renew it, and the old expiry no longer counts.
        assert db.renew_leases("elsewhere:1:deadbeef", [run.run_id], until=T0) == 0
        assert wf.recover_interrupted_runs(now=T0 + LEASE + timedelta(seconds=1)) == []
        # A recoverer that listed the run as expired loses to an owner renewing meanwhile.
        later = T0 + timedelta(seconds=200)
        (item,) = db.list_interrupted_runs(workflow_name=wf.name, before=later)
        assert item.lease_owner == owner
        assert db.renew_leases(owner, [run.run_id], until=later + LEASE) == 1
        assert not db.take_over_run(item.run, owner="other:1:x", now=later, until=later + LEASE)
        assert lease_row(db, run.run_id) == LeaseRow("running", owner, later + LEASE)
        assert wf.recover_interrupted_runs(now=later) == []
        assert flow.calls.count("deploy") == 1
    assert box["result"].status is RunStatus.completed
    assert db.renew_leases(owner, [run.run_id], until=later + 2 * LEASE) == 0  # not running
    assert lease_row(db, run.run_id) == LeaseRow("completed", None, None)
    assert flow.calls.calls == ["prepare", "deploy", "notify"]


def test_the_lease_keeper_renews_while_a_step_runs(db_url: str, flows: Callable[..., Flow]) -> None:
    """The keeper thread (every lease/3) keeps a long step's run alive however far the
    workflow clock moves."""
    lease = timedelta(milliseconds=300)
    gate = Gate()
    flow = flows(db_url, gate=gate, lease=lease)
    wf, db = flow.wf, flow.wf.db
    run = paused_and_confirmed(wf)
    with continuing_in_thread(wf, run, gate):
        assert lease_row(db, run.run_id).expires_at == T0 + lease
        now = flow.clock.advance(timedelta(hours=1))
        deadline = time.monotonic() + 10
        while lease_row(db, run.run_id).expires_at != now + lease:
            assert time.monotonic() < deadline, "the lease was never renewed"
            time.sleep(0.02)
        assert wf.recover_interrupted_runs(now=now) == []
        assert lease_row(db, run.run_id).status == "running"
    assert lease_row(db, run.run_id) == LeaseRow("completed", None, None)


def test_an_abandoned_stream_stops_renewing_its_lease(
    db_url: str, flows: Callable[..., Flow]
) -> None:
    """A caller that stops iterating a continue_run stream leaves the run running; its lease
    must then lapse (and the policy apply), not be renewed by this process forever."""
    flow = flows(db_url, policy="resume")
    run = paused_and_confirmed(flow.wf)
    events = flow.wf.continue_run(run, stream=True, stream_events=True)
    next(events)  # claimed: running and leased
    assert flow.wf._leases.held() == [run.run_id]
    assert isinstance(events, Generator)
    events.close()  # the caller stops listening: nothing drives the run any more
    assert flow.wf._leases.held() == []
    assert lease_row(flow.wf.db, run.run_id).status == "running"
    (recovered,) = flow.wf.recover_interrupted_runs(now=T0 + LEASE + timedelta(seconds=1))
    assert recovered.status is RunStatus.completed
    assert flow.calls.calls == ["prepare", "deploy", "notify"]


# -- the policies ----------------------------------------------------------------------------
def test_fail_policy_ends_the_run_as_error_with_a_clear_message(
    db_url: str, flows: Callable[..., Flow]
) -> None:
    flow = flows(db_url, policy="fail", die_once=True)
    wf = flow.wf
    run = interrupt(flow)
    decided = decisions_of(wf, run.run_id)
    assert [d[1:3] for d in decided] == [("confirmed", "alice")]
    expired_at = T0 + LEASE

    assert wf.recover_interrupted_runs() == []  # the workflow clock: lease still live
    assert wf.recover_interrupted_runs(now=expired_at) == []  # expiry is exclusive
    (recovered,) = wf.recover_interrupted_runs(now=expired_at + timedelta(seconds=1))

    stored = wf.get_run(run.run_id)
    assert stored is not None
    for r in (recovered, stored):
        assert r.status is RunStatus.error
        assert r.error == r.content
        message = str(r.error)
        assert message.startswith("interrupted: the process running this run")
        assert process_owner_id() in message
        assert "after step 'deploy' was decided" in message
        assert f"lease expired at {expired_at.isoformat()}" in message
        assert "on_interrupted='fail'" in message
    assert lease_row(wf.db, run.run_id) == LeaseRow("error", None, None)
    assert decisions_of(wf, run.run_id) == decided  # the audit trail is untouched
    assert flow.calls.calls == ["prepare", "deploy"]  # nothing ran again

    errors = [e for e in flow.events if isinstance(e, WorkflowErrorEvent)]
    assert len(errors) == 1
    assert errors[0].run_id == run.run_id and errors[0].error == stored.error
    assert errors[0].step_name == "deploy"

    assert wf.recover_interrupted_runs(now=expired_at + timedelta(days=1)) == []
    assert wf.list_paused_runs() == []


def test_resume_policy_runs_the_decided_step_and_the_rest(
    db_url: str, flows: Callable[..., Flow]
) -> None:
    flow = flows(db_url, policy="resume", die_once=True, with_input=True)
    wf = flow.wf
    run = wf.run("go")
    run.step_requirements[0].set_user_input(version="7", by="alice")
    run.step_requirements[0].confirm(by="alice")
    with pytest.raises(ProcessDied):
        wf.continue_run(run)
    decided = decisions_of(wf, run.run_id)
    assert [(d[1], d[2], d[5]) for d in decided] == [("confirmed", "alice", {"version": 7})]
    flow.events.clear()

    (recovered,) = wf.recover_interrupted_runs(now=T0 + LEASE + timedelta(seconds=1))
    assert recovered.status is RunStatus.completed
    # The decided step ran again with the stored decision's input: at least once.
    assert recovered.content == "notified after deployed v7 after prepared"
    assert flow.calls.calls == ["prepare", "deploy", "deploy", "notify"]
    stored = wf.get_run(run.run_id)
    assert stored is not None and stored.status is RunStatus.completed
    assert [s.step_name for s in stored.step_results] == ["prepare", "deploy", "notify"]
    assert lease_row(wf.db, run.run_id) == LeaseRow("completed", None, None)
    assert decisions_of(wf, run.run_id) == decided
    assert [type(e) for e in flow.events if isinstance(e, WorkflowCompletedEvent)] == [
        WorkflowCompletedEvent
    ]
    assert wf.recover_interrupted_runs(now=T0 + timedelta(days=1)) == []


@pytest.mark.parametrize("objects", [1, 2], ids=["one_object", "two_loaded_objects"])
def test_concurrent_recoverers_take_each_run_exactly_once(
    db_url: str, flows: Callable[..., Flow], objects: int
) -> None:
    calls = Recorder()
    first = flows(db_url, policy="resume", calls=calls)
    run_ids = []
    for _ in range(3):
        # A fresh flow per run so that each run's deploy "dies" once; all share one name.
        dying = flows(db_url, policy="resume", die_once=True, name=first.wf.name, calls=calls)
        run_ids.append(interrupt(dying).run_id)
    recoverers = [first] + [
        flows(db_url, policy="resume", name=first.wf.name, calls=calls) for _ in range(objects - 1)
    ]
    now = T0 + LEASE + timedelta(seconds=1)
    barrier = threading.Barrier(8)
    taken: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def recover(flow: Flow) -> None:
        try:
            barrier.wait(10)
            got = flow.wf.recover_interrupted_runs(now=now)
            with lock:
                taken.extend(r.run_id for r in got)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=recover, args=(recoverers[i % objects],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert Counter(taken) == Counter(run_ids)  # every run once, none twice
    assert calls.count("deploy") == 3 + 3 and calls.count("notify") == 3
    completed = [
        e.run_id for f in recoverers for e in f.events if isinstance(e, WorkflowCompletedEvent)
    ]
    assert Counter(completed) == Counter(run_ids)
    for run_id in run_ids:
        assert lease_row(first.wf.db, run_id) == LeaseRow("completed", None, None)


# -- a real crash: a process killed with SIGKILL inside the confirmed step -----------------------
@pytest.mark.parametrize("policy", ["fail", "resume"])
def test_a_process_killed_in_a_confirmed_step_is_recovered(
    db_url: str, tmp_path: Path, policy: str
) -> None:
    name = f"crash_{policy}_{uuid.uuid4().hex[:8]}"
    db = db_from_url(db_url)
    wf = blocking_workflow(name, on_interrupted=policy, directory=tmp_path, db=db)
    effects = effects_of(tmp_path)
    proc: subprocess.Popen[str] | None = None
    try:
        run = wf.run("go")
        assert run.is_paused
        proc = subprocess.Popen(
            continue_command(db_url, name, policy, tmp_path, run.run_id),
            env=child_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 30
        while not (
            lease_row(db, run.run_id).status == "running" and "deploy:start" in effects.lines()
        ):
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "the child never reached the blocking step"
            time.sleep(0.01)
        row = lease_row(db, run.run_id)
        assert row.owner is not None and f":{proc.pid}:" in row.owner
        assert row.expires_at is not None
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL

        assert wf.recover_interrupted_runs(now=row.expires_at - timedelta(seconds=1)) == []
        if policy == "resume":
            gate_path(tmp_path, run.run_id).touch()
        (recovered,) = wf.recover_interrupted_runs(now=row.expires_at + timedelta(seconds=1))
        stored = wf.get_run(run.run_id)
        assert stored is not None
        assert [(d.outcome.value, d.decided_by) for d in wf.get_decisions(run.run_id)] == [
            ("confirmed", "alice")
        ]
        if policy == "fail":
            assert recovered.status is stored.status is RunStatus.error
            assert row.owner in str(stored.error) and "'deploy'" in str(stored.error)
            assert row.expires_at.isoformat() in str(stored.error)
            assert effects.lines() == ["prepare", "deploy:start"]
        else:
            assert recovered.status is stored.status is RunStatus.completed
            assert stored.content == "notified after deployed after prepared"
            assert effects.lines() == [
                "prepare",
                "deploy:start",
                "deploy:start",
                "deploy:done",
                "notify",
            ]
        assert lease_row(db, run.run_id).owner is None
        assert wf.recover_interrupted_runs(now=row.expires_at + timedelta(hours=1)) == []
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)
        db.dispose()


# -- the schema: a 0001 database is upgraded on first use -----------------------------------
@pytest.fixture(params=["sqlite", "postgres"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'old.db'}"
    return str(request.getfixturevalue("pg_database_factory")())


def _insert_at_0001(db: BaseDb, run: WorkflowRunOutput) -> None:
    """Store a run as code of revision 0001 did (no lease columns, no pause id)."""
    values = db._run_values(run, version=1)
    for later in ("lease_owner", "lease_expires_at", "paused_requirement_id"):
        del values[later]
    with db.engine.begin() as conn:
        conn.execute(
            insert(sessions).values(
                session_id=run.session_id,
                workflow_name=run.workflow_name,
                user_id=run.user_id,
                created_at=run.created_at,
            )
        )
        conn.execute(
            insert(runs).values(
                run_id=run.run_id,
                session_id=run.session_id,
                workflow_name=run.workflow_name,
                user_id=run.user_id,
                created_at=run.created_at,
                **values,
            )
        )


def test_a_0001_database_is_upgraded_on_first_use_and_keeps_its_runs(
    fresh_url: str, tmp_path: Path
) -> None:
    old = db_from_url(fresh_url)
    upgrade(old.engine, "0001_initial")
    with old.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == (
            "0001_initial"
        )
        columns = {c["name"] for c in inspect(conn).get_columns("wf_runs")}
        assert "lease_owner" not in columns
    # Runs written by the old code: one paused, one completed.
    made = make_flow("sqlite://", name="upgraded")
    paused = made.wf.run("first")
    done = made.wf.run("second")
    done.step_requirements[0].confirm(by="bob")
    done = made.wf.continue_run(done)
    assert paused.is_paused and done.status is RunStatus.completed
    for r in (paused, done):
        _insert_at_0001(old, r)
    old.dispose()

    flow = make_flow(fresh_url, name="upgraded", policy="resume")
    db = flow.wf.db
    try:
        loaded = flow.wf.get_run(paused.run_id)  # first use: upgrades
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == (
                SCHEMA_REVISION
            )
            columns = {c["name"] for c in inspect(conn).get_columns("wf_runs")}
            indexes = {i["name"] for i in inspect(conn).get_indexes("wf_runs")}
        assert {"lease_owner", "lease_expires_at"} <= columns
        assert "ix_wf_runs_status_lease_expires_at" in indexes
        assert loaded is not None and loaded.is_paused and loaded.input == "first"
        old_done = flow.wf.get_run(done.run_id)
        assert old_done is not None and old_done.content == done.content
        assert lease_row(db, done.run_id) == LeaseRow("completed", None, None)
        # The old paused run goes through the new lease path.
        assert [p.run_id for p in flow.wf.list_paused_runs()] == [paused.run_id]
        assert flow.wf.list_paused_requirement_ids() == [
            (paused.run_id, paused.step_requirements[0].requirement_id)
        ]
        loaded.step_requirements[0].confirm(by="carol")
        assert flow.wf.continue_run(loaded).status is RunStatus.completed
        assert flow.wf.recover_interrupted_runs(now=T0 + timedelta(days=1)) == []
    finally:
        db.dispose()
        made.wf.db.dispose()


def test_processes_starting_together_on_a_0001_database_all_upgrade_it(
    pg_database_factory: Callable[[], str], tmp_path: Path
) -> None:
    """Replicas restarted on the new version at once (PostgreSQL). The race is made certain:
    this test holds alembic_version until every process has read 0001 and waits for a lock."""
    import psycopg

    url = pg_database_factory()
    old = db_from_url(url)
    upgrade(old.engine, "0001_initial")
    old.dispose()
    holder = psycopg.connect(url)
    holder.execute("LOCK TABLE alembic_version IN EXCLUSIVE MODE")  # reads pass, writes wait
    watcher = psycopg.connect(url, autocommit=True)  # sees activity as it is, not a snapshot
    go = tmp_path / "go"
    count = 3
    procs = [
        subprocess.Popen(
            flows_command(
                "start", url, str(tmp_path / "effects.log"), str(tmp_path / f"r{i}"), str(go)
            ),
            env=flows_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(count)
    ]
    try:
        deadline = time.monotonic() + 30
        while not all((tmp_path / f"r{i}").exists() for i in range(count)):
            assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
            time.sleep(0.005)
        go.touch()
        # One upgrader waits to stamp alembic_version, the others to alter wf_runs after it.
        dbname = url.rsplit("/", 1)[1]
        while True:
            (waiting,) = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                "AND wait_event_type = 'Lock'",
                (dbname,),
            ).fetchone() or (0,)
            if waiting >= count or any(p.poll() is not None for p in procs):
                break
            assert time.monotonic() < deadline, f"only {waiting} processes wait for a lock"
            time.sleep(0.01)
        holder.rollback()
        errors = []
        for p in procs:
            _out, err = p.communicate(timeout=60)
            if p.returncode != 0:
                errors.extend([line for line in err.splitlines() if "Error" in line][-1:])
        assert errors == []
    finally:
        holder.close()
        watcher.close()
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
    db = db_from_url(url)
    try:
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == (
                SCHEMA_REVISION
            )
        assert len(db.list_paused_runs()) == count
    finally:
        db.dispose()


# -- configuration ---------------------------------------------------------------------------
def test_bad_lease_settings_are_refused_clearly() -> None:
    steps = [Step(name="s", executor=lambda si: 1)]
    with pytest.raises(WorkflowConfigError) as info:
        Workflow(name="w", steps=steps, on_interrupted="bogus")
    message = str(info.value)
    assert "on_interrupted" in message and "'bogus'" in message
    assert "'fail'" in message and "'resume'" in message
    with pytest.raises(ValueError, match="lease must be positive"):
        Workflow(name="w", steps=steps, lease=0)
    with pytest.raises(TypeError, match="lease must be a timedelta"):
        Workflow(name="w", steps=steps, lease="60")  # type: ignore[arg-type]
    wf = Workflow(name="w", steps=steps, db=SqliteDb())
    with pytest.raises(ValueError, match="timezone-aware"):
        wf.recover_interrupted_runs(now=datetime(2026, 1, 1))
    assert Workflow(name="w", steps=steps).on_interrupted == "fail"  # the documented default
