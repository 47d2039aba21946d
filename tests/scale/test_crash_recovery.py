"""Crash safety of the served bot (issue 5), with real processes: ``kill -9`` a replica while
the step after an approval runs; a second replica finds the run once its lease has expired
and applies the workflow's ``on_interrupted`` policy, and posts a pause whose Slack post
failed because Slack was down when the first replica died.

The replicas serve ``tests.scale.crash_workflows:workflows`` (a lease of 2 s) against a
Slack fake served in this process. Here, and only here, a test waits for a real lease to
expire across processes: it polls the database with a deadline, it never sleeps a fixed time.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bot import blocks
from bot.sandbox import DEFAULT_CHANNEL_ID, Message, SlackActor, SlackFakeServer
from bot.store import slack_outbox
from engine import RunStatus, WorkflowRunOutput, db_from_url
from engine.db.base import BaseDb
from engine.db.schema import runs
from tests.scale.crash_workflows import (
    DIR_ENV,
    REPLICA_LEASE,
    REPO_ROOT,
    blocking_workflow,
    effects_of,
    gate_path,
)

SECRET = "crash-test-signing-secret"
ALICE = "U0ALICE"
WAIT_S = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Replica:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def events_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


@dataclass
class Cluster:
    """Bot replica processes on one database and one Slack fake."""

    fake: SlackFakeServer
    db_url: str
    dir: Path
    db: BaseDb
    replicas: list[Replica] = field(default_factory=list)

    def start_replica(self) -> Replica:
        name = f"replica{len(self.replicas) + 1}"
        port = free_port()
        env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(REPO_ROOT),
            "SLACK_BOT_TOKEN": self.fake.state.bot_token,
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": self.fake.api_url,
            "SIGNOFF_DATABASE_URL": self.db_url,
            "SIGNOFF_WORKFLOWS": "tests.scale.crash_workflows:workflows",
            "SIGNOFF_HOST": "127.0.0.1",
            "SIGNOFF_PORT": str(port),
            "SIGNOFF_POLL_SECONDS": "0.2",
            "SIGNOFF_CHANNEL": DEFAULT_CHANNEL_ID,
            "SIGNOFF_LOG_LEVEL": "WARNING",
            DIR_ENV: str(self.dir),
        }
        log = self.dir / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "bot", "serve"],
                cwd=self.dir,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        replica = Replica(name, proc, port, log)
        self.replicas.append(replica)
        deadline = time.monotonic() + WAIT_S
        while True:
            assert proc.poll() is None, f"{name} exited:\n{replica.output()}"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    return replica
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"{name} never became healthy:\n{replica.output()}"
            time.sleep(0.05)

    def kill(self, replica: Replica) -> None:
        os.kill(replica.proc.pid, signal.SIGKILL)
        assert replica.proc.wait(10) == -signal.SIGKILL

    def actor(self, replica: Replica) -> SlackActor:
        return SlackActor(
            bot_url=replica.events_url,
            signing_secret=SECRET,
            fake=self.fake,
            user_id=ALICE,
            channel_id=DEFAULT_CHANNEL_ID,
        )

    def wait_db(self, predicate: Callable[[], Any], what: str, *, timeout: float = WAIT_S) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            alive = [r.name for r in self.replicas if r.proc.poll() is None]
            assert time.monotonic() < deadline, (
                f"timed out waiting for {what}; replicas alive: {alive}\n"
                + "\n".join(f"--- {r.name}\n{r.output()}" for r in self.replicas)
            )
            time.sleep(0.02)

    def run_in(self, run_id: str, *statuses: RunStatus) -> WorkflowRunOutput | None:
        run = self.db.get_run(run_id)
        return run if run is not None and run.status in statuses else None

    def lease(self, run_id: str) -> tuple[str | None, datetime | None]:
        with self.db.engine.connect() as conn:
            row = conn.execute(
                select(runs.c.lease_owner, runs.c.lease_expires_at).where(runs.c.run_id == run_id)
            ).one()
        return row.lease_owner, row.lease_expires_at

    def lease_owner(self, run_id: str) -> str | None:
        return self.lease(run_id)[0]

    def pause_messages(self, step_name: str = "deploy") -> list[Message]:
        return [
            m
            for m in self.fake.state.messages(DEFAULT_CHANNEL_ID, include_ephemeral=False)
            if any(b.get("type") == "actions" for b in m.blocks) and step_name in m.text
        ]

    def wait_pause_message(self) -> Message:
        def find(_state: Any) -> Message | None:
            found = self.pause_messages()
            return found[0] if found else None

        message: Message = self.fake.state.wait_for(find, timeout=WAIT_S, what="pause message")
        return message

    def wait_thread_note(self, message: Message, words: str) -> list[Message]:
        assert message.thread_ts is not None

        def notes(state: Any) -> list[Message] | None:
            found = [
                m
                for m in state.thread(message.channel, message.thread_ts)
                if m.ts != message.thread_ts and words in m.text  # replies, not the root
            ]
            return found or None

        found: list[Message] = self.fake.state.wait_for(
            notes, timeout=WAIT_S, what=f"{words!r} note in the run's thread"
        )
        return found

    def wait_root_text(self, message: Message, text: str) -> None:
        root_ts = str(message.thread_ts)
        self.fake.state.wait_for(
            lambda s: (s.message(message.channel, root_ts) or message).text == text or None,
            timeout=WAIT_S,
            what=f"the run's root message to say {text!r}",
        )


@pytest.fixture
def make_cluster(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[[str], Cluster]]:
    made: list[Cluster] = []
    fakes: list[SlackFakeServer] = []

    def make(backend: str) -> Cluster:
        if backend == "postgres":
            url = str(request.getfixturevalue("pg_database_factory")())
        else:
            url = f"sqlite:///{tmp_path / 'signoff.db'}"
        fake = SlackFakeServer().start()
        fakes.append(fake)
        cluster = Cluster(fake=fake, db_url=url, dir=tmp_path, db=db_from_url(url))
        made.append(cluster)
        return cluster

    try:
        yield make
    finally:
        for cluster in made:
            for replica in cluster.replicas:
                if replica.proc.poll() is None:
                    replica.proc.kill()
                replica.proc.wait(10)
            cluster.db.dispose()
        for fake in fakes:
            fake.stop()


def start_run_by_command(cluster: Cluster, replica: Replica, workflow: str) -> str:
    with cluster.actor(replica) as actor:
        response = actor.slash("/signoff", f"run {workflow} nightly")
    assert response.status_code == 200, response.text
    text = str(response.json()["text"])
    assert "Started" in text, text
    return text.split("run `")[1].split("`")[0]


def approve_and_wait_running(cluster: Cluster, workflow: str) -> tuple[str, Message, Replica]:
    """Replica 1: start a run with ``/signoff run``, approve its pause in Slack, and wait
    until the step after the approval runs there (it blocks until its gate file appears)."""
    first = cluster.start_replica()
    run_id = start_run_by_command(cluster, first, workflow)
    message = cluster.wait_pause_message()
    with cluster.actor(first) as actor:
        assert actor.click(message, action_id=blocks.ACTION_APPROVE).status_code == 200
    effects = effects_of(cluster.dir)
    cluster.wait_db(
        lambda: cluster.run_in(run_id, RunStatus.running) and "deploy:start" in effects.lines(),
        "the approved step to run in replica 1",
    )
    owner = cluster.lease_owner(run_id)
    assert owner is not None and f":{first.proc.pid}:" in owner
    return run_id, message, first


def test_a_replica_killed_after_an_approval_fails_the_run_clearly(
    make_cluster: Callable[[str], Cluster],
) -> None:
    cluster = make_cluster("postgres")
    run_id, message, first = approve_and_wait_running(cluster, "crash_fail")
    cluster.kill(first)
    dead_pid = first.proc.pid
    assert cluster.run_in(run_id, RunStatus.running) is not None  # nothing moved it on

    cluster.start_replica()
    run = cluster.wait_db(lambda: cluster.run_in(run_id, RunStatus.error), "the run failed")
    error = str(run.error)
    assert error.startswith("interrupted: the process running this run")
    assert f":{dead_pid}:" in error and "after step 'deploy' was decided" in error
    assert "on_interrupted='fail'" in error
    assert [(d.outcome.value, d.decided_by) for d in cluster.db.get_decisions(run_id)] == [
        ("confirmed", ALICE)
    ]
    (note,) = cluster.wait_thread_note(message, "Failed")
    assert "interrupted" in note.text and "deploy" in note.text
    cluster.wait_root_text(message, "crash_fail: Failed")
    assert effects_of(cluster.dir).lines() == ["prepare", "deploy:start"]
    assert cluster.lease_owner(run_id) is None


def test_a_replica_killed_after_an_approval_is_resumed_by_another(
    make_cluster: Callable[[str], Cluster],
) -> None:
    cluster = make_cluster("postgres")
    run_id, message, first = approve_and_wait_running(cluster, "crash_resume")
    # A second replica, polling every 0.2 s, while the first still runs the step: the first
    # lease the run got expires (in real time), but the live replica renews it, so the run
    # is never taken from it.
    second = cluster.start_replica()
    owner, first_expiry = cluster.lease(run_id)
    assert first_expiry is not None
    cluster.wait_db(
        lambda: datetime.now(UTC) > first_expiry + timedelta(milliseconds=600),
        "the first lease to lapse in real time",
        timeout=REPLICA_LEASE.total_seconds() + 5,
    )
    still_owner, renewed_until = cluster.lease(run_id)
    assert still_owner == owner and renewed_until is not None and renewed_until > first_expiry
    assert cluster.run_in(run_id, RunStatus.running) is not None
    assert effects_of(cluster.dir).lines() == ["prepare", "deploy:start"]

    cluster.kill(first)
    gate_path(cluster.dir, run_id).touch()  # the step may finish when it runs again
    run = cluster.wait_db(
        lambda: cluster.run_in(run_id, RunStatus.completed), "the run resumed and completed"
    )
    assert run.content == "notified after deployed after prepared"
    assert effects_of(cluster.dir).lines() == [
        "prepare",
        "deploy:start",  # replica 1, killed here
        "deploy:start",  # replica 2: the decided step runs again (at least once)
        "deploy:done",
        "notify",
    ]
    assert [(d.outcome.value, d.decided_by) for d in cluster.db.get_decisions(run_id)] == [
        ("confirmed", ALICE)
    ]
    (note,) = cluster.wait_thread_note(message, "Completed")
    assert "notified after deployed" in note.text
    assert cluster.lease_owner(run_id) is None
    assert second.proc.poll() is None
    # The thread: the root, the (resolved) pause message and the one note; nothing twice.
    thread = cluster.fake.state.thread(message.channel, str(message.thread_ts))
    assert [m.ts for m in thread if "Deploy to production?" in str(m.blocks)] == [message.ts]
    resolved = cluster.fake.state.message(message.channel, message.ts)
    assert resolved is not None and resolved.text.endswith(": confirmed")
    cluster.wait_root_text(message, "crash_resume: Completed")
    assert len(thread) == 3, [m.text for m in thread]


def test_a_pause_slack_refused_while_the_replica_died_is_posted_by_the_next(
    make_cluster: Callable[[str], Cluster],
) -> None:
    cluster = make_cluster("sqlite")
    cluster.fake.set_down(True)
    first = cluster.start_replica()
    # A run started by a script on the same database: replica 1 finds its pause and fails
    # to post it (Slack answers 503).
    wf = blocking_workflow(
        "crash_resume",
        on_interrupted="resume",
        lease=REPLICA_LEASE,
        directory=cluster.dir,
        db=cluster.db,
    )
    run = wf.run("from a script", user_id=ALICE)
    assert run.is_paused
    gate_path(cluster.dir, run.run_id).touch()

    def failed_attempt() -> bool:
        with cluster.db.engine.connect() as conn:
            rows = conn.execute(
                select(slack_outbox.c.state, slack_outbox.c.last_error).where(
                    slack_outbox.c.run_id == run.run_id
                )
            ).all()
        kinds = {r.state for r in rows}
        return any(r.last_error for r in rows) and kinds == {"pending"}

    cluster.wait_db(failed_attempt, "replica 1 to fail posting to Slack")
    cluster.kill(first)
    assert cluster.fake.state.messages(DEFAULT_CHANNEL_ID) == []

    cluster.fake.set_down(False)
    second = cluster.start_replica()
    message = cluster.wait_pause_message()
    assert "Deploy to production?" in str(message.blocks)
    roots = [
        m
        for m in cluster.fake.state.messages(DEFAULT_CHANNEL_ID, include_ephemeral=False)
        if m.thread_ts is None or m.ts == m.thread_ts
    ]
    assert [m.ts for m in roots] == [message.thread_ts]  # one root, one pause: no duplicates
    assert len(cluster.pause_messages()) == 1

    with cluster.actor(second) as actor:
        assert actor.click(message, action_id=blocks.ACTION_APPROVE).status_code == 200
    cluster.wait_db(lambda: cluster.run_in(run.run_id, RunStatus.completed), "the run completed")
    cluster.wait_thread_note(message, "Completed")
    assert effects_of(cluster.dir).lines() == ["prepare", "deploy:start", "deploy:done", "notify"]
