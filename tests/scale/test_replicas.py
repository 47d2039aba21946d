"""Two real ``signoff serve`` replicas on one PostgreSQL database behave as one bot.

The Slack Web API fake runs in this process; two replica processes (``python -m bot serve``)
talk to it over HTTP and share one throwaway PostgreSQL database. Runs are started by a
script (``workflow.run`` here, against the same database), so the replicas only learn of
them through their polls, both at once. Proven with counts from the fake and the database:

(a) every pause (and every run's root message) is posted exactly once;
(b) every click is decided once: the same Approve click sent to both replicas, a conflicting
    Reject from someone else sent to both, and a second click: one decision per run, each
    confirmed step executed once, every losing click answered "Already decided";
(c) every deadline expires once: runs whose deadline passed (made with a ``ManualClock`` in
    the past, so nothing waits for time) are found by both replicas' polls and schedulers
    racing: one ``timed_out`` decision each, each pause message shows it;
(d) every notification is sent once: one Completed/Cancelled note per run thread.

Replicas also start at the same moment: on runs already past their deadline (their start-up
reconciles race) and on an empty database (their table creation races); they must neither
crash nor lose their scheduler thread.
"""

from __future__ import annotations

import collections
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from bot import blocks
from bot.sandbox import (
    DEFAULT_CHANNEL_ID,
    Message,
    SlackFakeServer,
    block_actions_payload,
    interactive_body,
    send_signed,
)
from engine import TIMEOUT_ACTOR, ManualClock, RunStatus, Workflow
from engine.db.postgres import PostgresDb
from tests.scale import replica_workflows as rw

REPO_ROOT = Path(__file__).resolve().parents[2]
SECRET = "replica-signing-secret"
ALICE, BOB, CAROL = "U0ALICE", "U0BOB", "U0CAROL"
CLICK_RUNS = 20
DEADLINE_RUNS = 16
POLL_SECONDS = "0.3"
MAX_RESTARTS = 5
WAIT = 30.0
TERMINAL_NOTE_PREFIXES = (":white_check_mark: Completed", ":no_entry_sign:", ":x: Failed")


class Replica:
    """One ``python -m bot serve`` process. Like a Deployment's pod it is restarted when it
    exits (``restart_crashed``); every exit is kept in ``crashes``. Its log accumulates."""

    def __init__(self, name: str, env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.port = _free_port()
        self.env = {**env, "SIGNOFF_PORT": str(self.port)}
        self.log_path = log_path
        self.crashes: list[int] = []
        self.proc = self._spawn()

    def _spawn(self) -> subprocess.Popen[bytes]:
        with self.log_path.open("ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "bot", "serve"],
                cwd=REPO_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def restart_crashed(self) -> bool:
        code = self.proc.poll()
        if code is None:
            return False
        self.crashes.append(code)
        if len(self.crashes) > MAX_RESTARTS:
            raise RuntimeError(f"{self.name} keeps exiting ({self.crashes}):\n{self.log()}")
        self.proc = self._spawn()
        return True

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def events_url(self) -> str:
        return f"{self.url}/slack/events"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@dataclass
class Cluster:
    fake: SlackFakeServer
    db: PostgresDb
    url: str
    replicas: list[Replica]
    script: dict[str, Workflow]  # the script's workflows, on the real clock
    past: dict[str, Workflow]  # the same on a clock two hours back: deadlines already passed

    @property
    def state(self) -> Any:
        return self.fake.state

    def sql(self, query: str, **params: Any) -> list[Any]:
        with self.db.engine.connect() as conn:
            return list(conn.execute(text(query), params).all())

    def logs(self) -> str:
        return "\n".join(f"--- {r.name} ---\n{r.log()}" for r in self.replicas)

    def supervise(self) -> None:
        """Restart replicas that exited (what Kubernetes does), and wait until all serve."""
        deadline = time.monotonic() + 60
        while True:
            for replica in self.replicas:
                replica.restart_crashed()
            if all(r.healthy() for r in self.replicas):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"replicas not healthy within 60 s:\n{self.logs()}")
            time.sleep(0.05)

    def crashes(self) -> dict[str, int]:
        return {r.name: len(r.crashes) for r in self.replicas}

    def schedulers_died(self) -> int:
        return self.logs().count("Exception in thread APScheduler")


# -- replica processes ---------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _replica_env(fake: SlackFakeServer, db_url: str) -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "SLACK_BOT_TOKEN": fake.state.bot_token,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": fake.api_url,
        "SIGNOFF_DATABASE_URL": db_url,
        "SIGNOFF_WORKFLOWS": "tests.scale.replica_workflows:workflows",
        "SIGNOFF_HOST": "127.0.0.1",
        "SIGNOFF_POLL_SECONDS": POLL_SECONDS,
        "SIGNOFF_CHANNEL": DEFAULT_CHANNEL_ID,
        "SIGNOFF_LOG_LEVEL": "INFO",
    }
    env.pop("SLACK_APP_TOKEN", None)
    return env


def _prepare_database(db_url: str) -> None:
    """What a deployment does before (or while) its replicas start: ``signoff migrate``."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "SIGNOFF_DATABASE_URL": db_url}
    subprocess.run(
        [sys.executable, "-m", "bot", "migrate"],
        cwd=REPO_ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    rw.create_effects_table(db_url)


@contextlib.contextmanager
def _cluster(
    db_url: str, log_dir: Path, before_start: Callable[[Cluster], None] | None = None
) -> Iterator[Cluster]:
    """The fake here, two replicas on ``db_url`` started at the same moment.
    ``before_start`` runs once the database is ready and before the replicas start."""
    _prepare_database(db_url)
    rw.use_effects_db(db_url)
    fake = SlackFakeServer().start()
    for user in (ALICE, BOB):
        fake.state.join_channel(DEFAULT_CHANNEL_ID, user)
    db = PostgresDb(db_url, pool_size=4)
    # The lease of a run this process is running must not look expired to the replicas'
    # wall clock (they would take it over as interrupted): give the past clock a long one.
    past_clock = ManualClock(datetime.now(UTC) - 2 * rw.DEADLINE_TIMEOUT)
    cluster = Cluster(
        fake=fake,
        db=db,
        url=db_url,
        replicas=[],
        script={wf.name: wf for wf in rw.make_workflows(db=db)},
        past={
            wf.name: wf
            for wf in rw.make_workflows(db=db, clock=past_clock, lease=timedelta(days=1))
        },
    )
    try:
        if before_start is not None:
            before_start(cluster)
        env = _replica_env(fake, db_url)
        for name in ("replica-a", "replica-b"):  # at the same moment
            cluster.replicas.append(Replica(name, env, log_dir / f"{name}.log"))
        cluster.supervise()
        yield cluster
    finally:
        for replica in cluster.replicas:
            replica.stop()
        fake.stop()
        db.dispose()
        rw.dispose_engines()


@pytest.fixture(scope="module")
def cluster(pg_database_factory: Callable[[], str], tmp_path_factory: Any) -> Iterator[Cluster]:
    with _cluster(pg_database_factory(), tmp_path_factory.mktemp("replicas")) as running:
        yield running


# -- reading the fake and the database ---------------------------------------------------------
def _posts(state: Any) -> list[dict[str, Any]]:
    return [c.params for c in state.calls("chat.postMessage") if c.ok]


def _root_ts(cluster: Cluster, run_ids: list[str]) -> dict[str, str]:
    rows = cluster.sql(
        "SELECT run_id, root_ts FROM slack_runs WHERE run_id = ANY(:ids)", ids=run_ids
    )
    return {r.run_id: r.root_ts for r in rows if r.root_ts}


def _pause_rows(cluster: Cluster, run_ids: list[str]) -> dict[str, Any]:
    rows = cluster.sql(
        "SELECT run_id, requirement_id, message_ts FROM slack_pauses WHERE run_id = ANY(:ids)",
        ids=run_ids,
    )
    return {r.run_id: r for r in rows}


def _wait_for(
    what: str,
    check: Callable[[], Any],
    cluster: Cluster,
    timeout: float = WAIT,
    detail: Callable[[], Any] | None = None,
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            extra = f"\n{detail()}" if detail is not None else ""
            raise AssertionError(f"{what}: not within {timeout}s{extra}\n{cluster.logs()[-6000:]}")
        time.sleep(0.1)


def _all_posted(cluster: Cluster, run_ids: list[str]) -> Callable[[], bool]:
    def check() -> bool:
        pauses = _pause_rows(cluster, run_ids)
        return len(pauses) == len(run_ids) and all(p.message_ts for p in pauses.values())

    return check


def _terminal(cluster: Cluster, run_ids: list[str]) -> Callable[[], dict[str, str]]:
    def check() -> dict[str, str]:
        rows = cluster.sql(
            "SELECT run_id, status FROM wf_runs WHERE run_id = ANY(:ids)", ids=run_ids
        )
        done = {r.run_id: r.status for r in rows if r.status in ("completed", "cancelled")}
        return done if len(done) == len(run_ids) else {}

    return check


def _outbox_drained(cluster: Cluster, run_ids: list[str]) -> Callable[[], bool]:
    def check() -> bool:
        rows = cluster.sql(
            "SELECT count(*) AS n FROM slack_outbox WHERE run_id = ANY(:ids) AND state <> 'sent'",
            ids=run_ids,
        )
        return rows[0].n == 0

    return check


def _unsent(cluster: Cluster, run_ids: list[str]) -> list[Any]:
    return cluster.sql(
        "SELECT run_id, dedupe_key, state, attempts, next_attempt_at, lease_until, last_error "
        "FROM slack_outbox WHERE run_id = ANY(:ids) AND state <> 'sent' ORDER BY id",
        ids=run_ids,
    )


def _decisions(cluster: Cluster, run_ids: list[str]) -> dict[str, list[Any]]:
    rows = cluster.sql(
        "SELECT run_id, outcome, decided_by FROM wf_decisions WHERE run_id = ANY(:ids)",
        ids=run_ids,
    )
    found: dict[str, list[Any]] = collections.defaultdict(list)
    for row in rows:
        found[row.run_id].append(row)
    return found


def _effects(cluster: Cluster, run_ids: list[str]) -> collections.Counter[tuple[str, str]]:
    rows = cluster.sql(
        f"SELECT run_id, step FROM {rw.EFFECTS_TABLE} WHERE run_id = ANY(:ids)", ids=run_ids
    )
    return collections.Counter((r.run_id, r.step) for r in rows)


def _assert_posted_once(cluster: Cluster, run_ids: list[str]) -> dict[str, str]:
    """(a): one root message per run, one pause message per pause; returns run -> root ts."""
    roots = _root_ts(cluster, run_ids)
    assert set(roots) == set(run_ids)
    posts = _posts(cluster.state)
    pause_posts = collections.Counter(
        p["thread_ts"] for p in posts if p.get("thread_ts") and p.get("blocks")
    )
    messages = {m.ts: m for m in cluster.state.messages(DEFAULT_CHANNEL_ID)}
    for run_id, ts in roots.items():
        # The root message names its run: count every top-level post that does.
        root_posts = [p for p in posts if not p.get("thread_ts") and run_id in str(p.get("blocks"))]
        assert len(root_posts) == 1, f"run {run_id}: {len(root_posts)} root messages"
        assert ts in messages and messages[ts].thread_ts is None, run_id
        assert pause_posts[ts] == 1, f"run {run_id}: {pause_posts[ts]} pause messages"
    for pause in _pause_rows(cluster, run_ids).values():
        assert pause.message_ts in messages
    return roots


def _assert_one_terminal_note(
    cluster: Cluster, roots: dict[str, str], statuses: dict[str, str]
) -> None:
    """(d): exactly one Completed/Cancelled note in each run's thread, matching the run."""
    by_thread: dict[str, list[Message]] = collections.defaultdict(list)
    for m in cluster.state.messages(DEFAULT_CHANNEL_ID, include_ephemeral=False):
        if m.thread_ts and m.thread_ts != m.ts and not m.blocks:
            by_thread[m.thread_ts].append(m)
    for run_id, ts in roots.items():
        notes = [m.text for m in by_thread[ts] if m.text.startswith(TERMINAL_NOTE_PREFIXES)]
        assert len(notes) == 1, f"run {run_id}: terminal notes {notes}"
        expected = "Completed" if statuses[run_id] == "completed" else ":no_entry_sign:"
        assert expected in notes[0], (run_id, statuses[run_id], notes[0])


def _pause_message(cluster: Cluster, pause: Any) -> Message:
    message = cluster.state.message(DEFAULT_CHANNEL_ID, pause.message_ts)
    assert message is not None
    return message


def _send_all(requests: list[tuple[str, str]]) -> list[httpx.Response]:
    """Send (url, form body) pairs all at once, each signed when sent."""
    with httpx.Client(timeout=20.0, limits=httpx.Limits(max_connections=100)) as client:

        def send(item: tuple[str, str]) -> httpx.Response:
            return send_signed(item[0], item[1], signing_secret=SECRET, client=client)

        with ThreadPoolExecutor(max_workers=32) as pool:
            return list(pool.map(send, requests))


# -- the tests -----------------------------------------------------------------------------------
def test_script_runs_posted_once_and_every_click_decided_once(cluster: Cluster) -> None:
    a, b = cluster.replicas
    run_ids = [
        cluster.script[rw.GATE].run(f"item {i}", user_id=CAROL).run_id for i in range(CLICK_RUNS)
    ]
    # (a) both replicas' polls see every paused run; each is posted once.
    _wait_for("every pause posted", _all_posted(cluster, run_ids), cluster)
    roots = _assert_posted_once(cluster, run_ids)
    pauses = _pause_rows(cluster, run_ids)

    # (b) per run: Alice's Approve delivered to both replicas (one interaction, twice), Bob's
    # conflicting Reject to both, and Alice clicking Approve again: all at once.
    requests: list[tuple[str, str]] = []
    for i, run_id in enumerate(run_ids):
        message = _pause_message(cluster, pauses[run_id])
        approve, reject, again = (
            interactive_body(
                block_actions_payload(cluster.state, user_id=user, source=message, action_id=act)
            )
            for user, act in (
                (ALICE, blocks.ACTION_APPROVE),
                (BOB, blocks.ACTION_REJECT),
                (ALICE, blocks.ACTION_APPROVE),
            )
        )
        first, second = (a, b) if i % 2 else (b, a)
        requests += [
            (first.events_url, approve),
            (second.events_url, approve),
            (second.events_url, reject),
            (first.events_url, reject),
            (second.events_url, again),
        ]
    responses = _send_all(requests)
    assert [r.status_code for r in responses] == [200] * len(requests)

    statuses = _wait_for("every run finished", _terminal(cluster, run_ids), cluster)
    _wait_for(
        "outbox drained",
        _outbox_drained(cluster, run_ids),
        cluster,
        detail=lambda: _unsent(cluster, run_ids),
    )
    decisions = _decisions(cluster, run_ids)
    effects = _effects(cluster, run_ids)
    for run_id in run_ids:
        assert len(decisions[run_id]) == 1, (run_id, decisions[run_id])
        decision = decisions[run_id][0]
        approved = decision.outcome == "confirmed"
        assert (decision.outcome, decision.decided_by) in (("confirmed", ALICE), ("rejected", BOB))
        assert statuses[run_id] == ("completed" if approved else "cancelled")
        assert effects[(run_id, "prepare")] == 1
        assert effects[(run_id, "ship")] == int(approved)
        assert effects[(run_id, "finish")] == int(approved)
        shown = _pause_message(cluster, pauses[run_id])
        assert shown.edited and not any(b.get("type") == "actions" for b in shown.blocks)
        assert ("Approved" if approved else "Rejected") in str(shown.blocks)

    # Every losing click was told "Already decided", ephemerally, once, and nothing else was
    # said: of three interactions per run two lose; the repeated delivery of Alice's first
    # click was dropped by whichever replica saw it second.
    bob_won = sum(1 for d in decisions.values() if d[0].outcome == "rejected")
    alice_won = CLICK_RUNS - bob_won  # with one of her two clicks; the other one loses
    expected = collections.Counter({ALICE: 2 * bob_won + alice_won, BOB: alice_won})

    def told() -> list[Message]:
        found = [m for m in cluster.state.messages(DEFAULT_CHANNEL_ID) if m.ephemeral_for]
        return found if len(found) >= CLICK_RUNS * 2 else []

    _wait_for("every losing click told", told, cluster)
    time.sleep(0.5)  # a late extra note would show up now
    ephemerals = [m for m in cluster.state.messages(DEFAULT_CHANNEL_ID) if m.ephemeral_for]
    assert collections.Counter(m.ephemeral_for for m in ephemerals) == expected, [
        (m.ephemeral_for, m.text) for m in ephemerals
    ]
    for m in ephemerals:  # a loser is told who won
        assert m.text.startswith("Already decided:"), m.text
        assert ("approved by <@U0ALICE>" in m.text) != ("rejected by <@U0BOB>" in m.text), m.text

    # (d) one Completed/Cancelled note per thread; one resolve update per pause message.
    _assert_one_terminal_note(cluster, roots, statuses)
    _assert_resolved_once(cluster, pauses.values())


def test_a_delivery_seen_by_one_replica_is_dropped_by_the_other(cluster: Cluster) -> None:
    a, b = cluster.replicas
    run_id = cluster.script[rw.GATE].run("retried", user_id=CAROL).run_id
    _wait_for("pause posted", _all_posted(cluster, [run_id]), cluster)
    message = _pause_message(cluster, _pause_rows(cluster, [run_id])[run_id])
    before = len([m for m in cluster.state.messages(DEFAULT_CHANNEL_ID) if m.ephemeral_for])
    body = interactive_body(
        block_actions_payload(
            cluster.state, user_id=ALICE, source=message, action_id=blocks.ACTION_APPROVE
        )
    )
    assert send_signed(a.events_url, body, signing_secret=SECRET).status_code == 200
    _wait_for("run finished", _terminal(cluster, [run_id]), cluster)
    # Slack retrying the same delivery, which the load balancer sends to the other replica.
    response = send_signed(b.events_url, body, signing_secret=SECRET, retry_num=1)
    assert response.status_code == 200
    time.sleep(1.0)
    after = [m for m in cluster.state.messages(DEFAULT_CHANNEL_ID) if m.ephemeral_for]
    assert len(after) == before, [m.text for m in after[before:]]


def _assert_resolved_once(cluster: Cluster, pauses: Any) -> None:
    updates = collections.Counter(
        c.params.get("ts") for c in cluster.state.calls("chat.update") if c.ok
    )
    for pause in pauses:
        assert updates[pause.message_ts] == 1, (pause.run_id, updates[pause.message_ts])


def _assert_expired_once(cluster: Cluster, run_ids: list[str], timeout: float = WAIT) -> None:
    """(c) and (d) for runs of the deadline workflow."""
    statuses = _wait_for("every deadline applied", _terminal(cluster, run_ids), cluster, timeout)
    _wait_for("every pause posted", _all_posted(cluster, run_ids), cluster, timeout)
    _wait_for(
        "outbox drained",
        _outbox_drained(cluster, run_ids),
        cluster,
        timeout,
        detail=lambda: _unsent(cluster, run_ids),
    )
    roots = _assert_posted_once(cluster, run_ids)
    decisions = _decisions(cluster, run_ids)
    effects = _effects(cluster, run_ids)
    pauses = _pause_rows(cluster, run_ids)
    for run_id in run_ids:
        assert statuses[run_id] == RunStatus.completed.value  # a timeout skips "wait"
        assert [(d.outcome, d.decided_by) for d in decisions[run_id]] == [
            ("timed_out", TIMEOUT_ACTOR)
        ], run_id
        assert effects[(run_id, "prepare")] == 1
        assert effects[(run_id, "wait")] == 0
        assert effects[(run_id, "after")] == 1
        shown = _pause_message(cluster, pauses[run_id])
        assert "Timed out" in str(shown.blocks), shown.blocks
        assert not any(b.get("type") == "actions" for b in shown.blocks)
    _assert_resolved_once(cluster, pauses.values())
    # (d) one timeout note and one Completed note per thread.
    _assert_one_terminal_note(cluster, roots, statuses)
    threads = set(roots.values())
    timeout_notes = collections.Counter(
        m.thread_ts
        for m in cluster.state.messages(DEFAULT_CHANNEL_ID, include_ephemeral=False)
        if m.thread_ts in threads and not m.blocks and "timed out" in m.text
    )
    assert timeout_notes == collections.Counter(threads)


def test_every_deadline_expired_once_by_racing_replicas(cluster: Cluster) -> None:
    # Paused with the deadline passed while both replicas run: both polls find each run, both
    # post it (once), both may schedule its deadline job and both schedulers may fire it.
    run_ids = [
        cluster.past[rw.DEADLINE].run(f"late {i}", user_id=CAROL).run_id
        for i in range(DEADLINE_RUNS)
    ]
    _assert_expired_once(cluster, run_ids)
    lost = cluster.logs().count("nothing to do")
    print(
        f"\nexpiries that found the run already expired by the other replica: {lost}; "
        f"scheduler threads died: {cluster.schedulers_died()}"
    )


def test_replicas_starting_together_survive_racing_on_deadlines(
    pg_database_factory: Callable[[], str], tmp_path: Path
) -> None:
    early: list[str] = []

    def pause_early(cluster: Cluster) -> None:
        # Deadline passed before the replicas start: both start-up reconciles race on them.
        early.extend(
            cluster.past[rw.DEADLINE].run(f"early {i}", user_id=CAROL).run_id
            for i in range(DEADLINE_RUNS)
        )

    with _cluster(pg_database_factory(), tmp_path, before_start=pause_early) as cluster:
        _wait_for("every deadline applied", _terminal(cluster, early), cluster)
        decisions = _decisions(cluster, early)
        assert all(len(decisions[run_id]) == 1 for run_id in early)
        time.sleep(1.0)  # a scheduler thread dying late would show now
        assert cluster.crashes() == {"replica-a": 0, "replica-b": 0}, cluster.logs()[-4000:]
        assert cluster.schedulers_died() == 0, cluster.logs()[-4000:]
        _assert_expired_once(cluster, early)


def test_replicas_start_together_on_an_empty_database(
    pg_database_factory: Callable[[], str], tmp_path: Path
) -> None:
    # No ``signoff migrate`` first: both create the bot's and the scheduler's tables at once.
    db_url = pg_database_factory()
    fake = SlackFakeServer().start()
    env = _replica_env(fake, db_url)
    replicas = [Replica(name, env, tmp_path / f"{name}.log") for name in ("fresh-a", "fresh-b")]
    try:
        deadline = time.monotonic() + 60
        while not all(r.healthy() for r in replicas):
            exited = [r for r in replicas if r.proc.poll() is not None]
            assert not exited, "\n".join(f"--- {r.name} ---\n{r.log()[-3000:]}" for r in exited)
            assert time.monotonic() < deadline, "replicas not healthy within 60 s"
            time.sleep(0.05)
    finally:
        for replica in replicas:
            replica.stop()
        fake.stop()
