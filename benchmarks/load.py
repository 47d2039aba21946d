"""Load benchmark: many concurrent workflows through the served bot(s) and the Slack fake.

    .venv/bin/python -m benchmarks.load                  # 1000 runs per set-up
    .venv/bin/python -m benchmarks.load --quick          # 100 runs per set-up, a smoke run
    .venv/bin/python -m benchmarks.load --skip-postgres  # only one replica on SQLite
    .venv/bin/python -m benchmarks.load --clicks         # click rates through the inbox
    .venv/bin/python -m benchmarks.load --clicks --quick # the same, a tenth as long
    .venv/bin/python -m benchmarks.load --faults         # clicks while faults are applied
    .venv/bin/python -m benchmarks.load --faults --quick # the same, shorter (about 3 minutes)

``--clicks``: one replica (in this process, ``bot.server.Runtime``) on a SQLite file, the
Slack fake, and an open-loop sender in a child process, all on this machine: 100 Approve
clicks/s for 60 s, then (a fresh set-up) 300 clicks/s for 20 s, each click on its own
paused run made beforehand. Printed beside their targets: ack p50/p99/max, how long after
the last click the inbox's backlog was applied, and from the database and the fake: runs
with no decision (lost), with more than one (doubled), and pause messages posted twice.

``--faults`` (``benchmarks/_faults.py``): served bots as ``--clicks --served`` (two replicas
on PostgreSQL, then one on SQLite) get signed Approve clicks at a steady rate (30/s;
``--quick`` 15/s with shorter windows) through a small round-robin balancer that re-sends a
click whose connection failed to another replica, while faults are applied one after
another with clean time between: Slack down (every Web API call 503) 30 s, Slack slow
(answers after the bot's client timeout) and failing after acting, ``kill -9`` of a replica
and its restart (PostgreSQL), the database restarted for this database only (backends
terminated, connections refused a few seconds) or, on SQLite, write-locked by another
process. Printed per fault window and overall: ack p50/p99/max, 503s (not recorded, told),
no answers, re-sent clicks; from the database and the fake: acked yet lost, doubled,
messages posted twice, runs not completed; and a summary beside the targets (lost 0,
duplicates 0, every ack < 3 s).

Two set-ups, each a fresh database and a fresh Slack fake (served over real HTTP on
127.0.0.1 in this process), the bots being real ``python -m bot serve`` processes:

  1. one replica on SQLite (a file in a temp dir);
  2. two replicas on PostgreSQL (a throwaway database on the local server, dropped
     afterwards), migrated first (``signoff migrate``, as the Kubernetes Job does).

Traffic, from asyncio + httpx in this process, ``--concurrency`` runs in flight at a time:
every run is started with a signed ``/signoff run load_gate`` to one replica, its pause
message awaited in the fake, then Approve is clicked (signed ``block_actions`` built from
the stored message) on the *other* replica. One run in ten gets a conflicting Reject from
another user at the same moment (a double click), one in fifty has its Approve delivered
twice, once to each replica (a Slack retry). Meanwhile a script pauses ``--runs``/20 runs
of ``load_deadline`` whose deadline has already passed (an engine ``ManualClock`` an hour
back), which the bots must find and expire. Nothing waits for wall-clock deadlines.

Measured, per set-up: end-to-end throughput (runs started until their Completed/Cancelled
note is in the fake), ack latency of clicks and commands, click-to-update (click sent until
the fake records the pause message's update showing the outcome), deadline to "timed out"
shown, errors, and from the database and the fake: lost or duplicated decisions, pause
messages and notes. Figures are printed, never asserted. Bounded: every wait has a time
limit, the load phase a cap (``--max-seconds``); what did not happen in time is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from benchmarks._stats import (
    Summary,
    peak_rss_mb,
    print_header,
    print_kv,
    print_latency_table,
    print_summary,
)
from engine import OnReject, Step, StepInput, StepOutput, Workflow

REPO_ROOT = Path(__file__).resolve().parent.parent
SECRET = "load-signing-secret"
CHANNEL = "C0SIGNOFF"
REQUESTER, APPROVER, OTHER = "U0CAROL", "U0ALICE", "U0BOB"
WORKFLOW = "load_gate"
DEADLINE_WORKFLOW = "load_deadline"
DEADLINE = timedelta(hours=1)
POLL_SECONDS = "1.0"
WAIT_S = 60.0  # for one run's next message
SETTLE_S = 60.0  # after the load phase: outbox, updates, notes
DOUBLE_CLICK_EVERY = 10
RETRY_EVERY = 50
TERMINAL_NOTES = (":white_check_mark: Completed", ":no_entry_sign:", ":x: Failed")
_RUN_ID = re.compile(r"`([0-9a-f]{32})`")


# -- the workflows the bots serve (SIGNOFF_WORKFLOWS=benchmarks.load:workflows) --------------
def _step(name: str) -> Callable[[StepInput], StepOutput]:
    def run(step_input: StepInput) -> StepOutput:
        return StepOutput(content=f"{name} done for {step_input.input!r}")

    run.__name__ = name
    return run


def build_workflows(
    db: Any = None, clock: Any = None, lease: timedelta | None = None
) -> list[Workflow]:
    extra: dict[str, Any] = {"db": db, "clock": clock}
    if lease is not None:
        extra["lease"] = lease
    return [
        Workflow(
            name=WORKFLOW,
            description="load: prepare, a confirmation (reject cancels), finish",
            steps=[
                Step(name="prepare", executor=_step("prepare")),
                Step(
                    name="gate",
                    executor=_step("gate"),
                    requires_confirmation=True,
                    confirmation_message="Ship it?",
                    on_reject=OnReject.cancel,
                ),
                Step(name="finish", executor=_step("finish")),
            ],
            **extra,
        ),
        Workflow(
            name=DEADLINE_WORKFLOW,
            description="load: a confirmation with a deadline (a timeout skips it)",
            steps=[
                Step(name="prepare", executor=_step("prepare")),
                Step(
                    name="wait",
                    executor=_step("wait"),
                    requires_confirmation=True,
                    confirmation_message="Go ahead?",
                    pause_timeout=DEADLINE,
                    on_reject=OnReject.skip,
                ),
                Step(name="after", executor=_step("after")),
            ],
            **extra,
        ),
    ]


workflows = build_workflows()


# -- replica processes -------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Replica:
    def __init__(self, name: str, env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.port = _free_port()
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot", "serve"],
                cwd=REPO_ROOT,
                env={**env, "SIGNOFF_PORT": str(self.port)},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    @property
    def events_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    def wait_healthy(self, timeout: float = 60.0) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log()[-3000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not healthy within {timeout}s:\n{self.log()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


# -- watching the fake ---------------------------------------------------------------------------
class Watch:
    """A change listener on the fake: per run, when its messages appeared and changed.

    It runs on the fake's request threads under the state lock, so it only records; waiters
    on the benchmark's event loop are woken with ``call_soon_threadsafe``."""

    def __init__(self, state: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.state = state
        self.loop = loop
        self.lock = threading.Lock()
        self.run_of_root: dict[str, str] = {}
        self.run_of_pause: dict[str, str] = {}
        self.roots: collections.Counter[str] = collections.Counter()
        self.pause_posts: collections.Counter[str] = collections.Counter()
        self.outcome_updates: collections.Counter[str] = collections.Counter()
        self.terminal_notes: collections.Counter[str] = collections.Counter()
        self.ephemerals: collections.Counter[str] = collections.Counter()
        self.pause_message: dict[str, Any] = {}
        self.decided_at: dict[str, float] = {}  # the outcome first shown in the pause message
        self.done_at: dict[str, float] = {}  # the Completed/Cancelled note
        self.waiters: dict[tuple[str, str], asyncio.Future[None]] = {}

    def __call__(self, event: Any) -> None:
        if event.kind not in ("message.posted", "message.updated") or event.channel != CHANNEL:
            return
        at = time.perf_counter()
        message = self.state.message(event.channel, event.ts)
        if message is None:
            return
        if message.ephemeral_for:
            with self.lock:
                self.ephemerals[message.ephemeral_for] += 1
            return
        woke: list[tuple[str, str]] = []
        with self.lock:
            if event.kind == "message.posted":
                woke = self._posted(message, at)
            elif message.ts in self.run_of_pause and _shows_outcome(message):
                run_id = self.run_of_pause[message.ts]
                self.outcome_updates[run_id] += 1
                if run_id not in self.decided_at:
                    self.decided_at[run_id] = at
                    woke = [(run_id, "decided")]
        for key in woke:
            self.loop.call_soon_threadsafe(self._wake, key)

    def _posted(self, message: Any, at: float) -> list[tuple[str, str]]:
        if message.thread_ts in (None, message.ts):
            run_id = _run_id_in(message.blocks)
            if run_id:
                self.run_of_root[message.ts] = run_id
                self.roots[run_id] += 1
            return []
        if message.blocks:  # a pause message: buttons, or the outcome if decided before
            run_id = _run_id_in(message.blocks)
            if not run_id:
                return []
            self.run_of_pause[message.ts] = run_id
            self.pause_posts[run_id] += 1
            self.pause_message.setdefault(run_id, message)
            woke = [(run_id, "pause")]
            if _shows_outcome(message) and run_id not in self.decided_at:
                self.decided_at[run_id] = at
                woke.append((run_id, "decided"))
            return woke
        run_id = self.run_of_root.get(message.thread_ts or "")
        if run_id and message.text.startswith(TERMINAL_NOTES):
            self.terminal_notes[run_id] += 1
            if run_id not in self.done_at:
                self.done_at[run_id] = at
                return [(run_id, "done")]
        return []

    def _wake(self, key: tuple[str, str]) -> None:
        future = self.waiters.pop(key, None)
        if future is not None and not future.done():
            future.set_result(None)

    def _happened(self, run_id: str, what: str) -> bool:
        with self.lock:
            if what == "pause":
                return run_id in self.pause_message
            if what == "decided":
                return run_id in self.decided_at
            return run_id in self.done_at

    async def wait(self, run_id: str, what: str, timeout: float = WAIT_S) -> bool:
        future = self.loop.create_future()
        self.waiters[(run_id, what)] = future
        if self._happened(run_id, what):
            self.waiters.pop((run_id, what), None)
            return True
        try:
            await asyncio.wait_for(future, timeout)
            return True
        except TimeoutError:
            self.waiters.pop((run_id, what), None)
            return False


def _run_id_in(blocks: list[dict[str, Any]]) -> str | None:
    found = _RUN_ID.search(str(blocks))
    return found.group(1) if found else None


def _shows_outcome(message: Any) -> bool:
    if any(b.get("type") == "actions" for b in message.blocks):
        return False
    text = str(message.blocks)
    return any(word in text for word in ("Approved", "Rejected", "Timed out"))


# -- the load ------------------------------------------------------------------------------------
@dataclass
class RunRecord:
    index: int
    run_id: str | None = None
    started: float = 0.0
    command_ack: float | None = None
    clicked: float | None = None
    click_acks: list[float] = field(default_factory=list)
    failure: str | None = None


@dataclass
class Load:
    records: list[RunRecord]
    deadline_runs: dict[str, float]  # run id -> when the script paused it
    http_errors: collections.Counter[str]
    phase_s: float
    capped: bool


async def _post(
    client: Any, url: str, body: str, errors: collections.Counter[str], retry: bool = False
) -> tuple[Any, float]:
    import httpx

    from bot.sandbox.payloads import signed_headers

    headers = signed_headers(body, SECRET, retry_num=1 if retry else None)
    sent = time.perf_counter()
    try:
        response = await client.post(url, content=body.encode(), headers=headers)
    except httpx.HTTPError as exc:
        errors[type(exc).__name__] += 1
        return None, time.perf_counter() - sent
    elapsed = time.perf_counter() - sent
    if response.status_code != 200:
        errors[f"HTTP {response.status_code}"] += 1
    return response, elapsed


async def _drive_run(
    record: RunRecord,
    *,
    urls: list[str],
    state: Any,
    watch: Watch,
    client: Any,
    errors: collections.Counter[str],
) -> None:
    from bot import blocks
    from bot.sandbox import block_actions_payload, interactive_body, slash_command_form

    i = record.index
    home, other = urls[i % len(urls)], urls[(i + 1) % len(urls)]
    form = slash_command_form(
        state,
        command="/signoff",
        text=f"run {WORKFLOW} item-{i}",
        user_id=REQUESTER,
        channel_id=CHANNEL,
    )
    record.started = time.perf_counter()
    response, record.command_ack = await _post(client, home, urlencode(form), errors)
    found = _RUN_ID.search(response.text) if response is not None else None
    if found is None:
        record.failure = "run not started"
        return
    record.run_id = run_id = found.group(1)
    if not await watch.wait(run_id, "pause"):
        record.failure = "pause message never posted"
        return
    with watch.lock:
        message = watch.pause_message[run_id]
    clicks = [(other, APPROVER, blocks.ACTION_APPROVE, False)]
    if i % DOUBLE_CLICK_EVERY == DOUBLE_CLICK_EVERY // 2:
        clicks.append((home, OTHER, blocks.ACTION_REJECT, False))  # a conflicting click
    bodies = [
        interactive_body(block_actions_payload(state, user_id=u, source=message, action_id=a))
        for _url, u, a, _retry in clicks
    ]
    sends = [(url, body, retry) for (url, _u, _a, retry), body in zip(clicks, bodies, strict=True)]
    if i % RETRY_EVERY == RETRY_EVERY // 3:
        sends.append((home, bodies[0], True))  # Slack retrying the Approve, to the other replica
    record.clicked = time.perf_counter()
    answers = await asyncio.gather(*(_post(client, u, b, errors, r) for u, b, r in sends))
    record.click_acks = [elapsed for _response, elapsed in answers]
    if not await watch.wait(run_id, "decided"):
        record.failure = "pause message never showed the decision"
        return
    if not await watch.wait(run_id, "done"):
        record.failure = "no Completed/Cancelled note"


def _pause_deadline_runs(wf: Workflow, n: int, spread_s: float, out: dict[str, float]) -> None:
    """The script: ``n`` runs paused with their deadline already passed, spread over time."""
    for k in range(n):
        t = time.perf_counter()
        out[wf.run(f"late {k}", user_id=REQUESTER).run_id] = t
        time.sleep(spread_s / max(n, 1))


async def _load(
    *,
    urls: list[str],
    state: Any,
    watch: Watch,
    runs: int,
    concurrency: int,
    past_workflow: Workflow,
    timeouts: int,
    max_seconds: float,
) -> Load:
    import httpx

    records = [RunRecord(i) for i in range(runs)]
    errors: collections.Counter[str] = collections.Counter()
    deadline_runs: dict[str, float] = {}
    script = threading.Thread(
        target=_pause_deadline_runs,
        args=(past_workflow, timeouts, min(10.0, runs / 50), deadline_runs),
        daemon=True,
    )
    limits = httpx.Limits(max_connections=concurrency * 4, max_keepalive_connections=concurrency)
    semaphore = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30.0) as client:

        async def one(record: RunRecord) -> None:
            async with semaphore:
                await _drive_run(
                    record, urls=urls, state=state, watch=watch, client=client, errors=errors
                )

        started = time.perf_counter()
        script.start()
        tasks = [asyncio.create_task(one(r)) for r in records]
        _done, pending = await asyncio.wait(tasks, timeout=max_seconds)
        for task in pending:
            task.cancel()
        phase_s = time.perf_counter() - started
        for record in records:
            if record.failure is None and (record.run_id is None or record.clicked is None):
                record.failure = record.failure or "cut off by --max-seconds"
    script.join(timeout=30)
    return Load(records, dict(deadline_runs), errors, phase_s, bool(pending))


# -- verification from the database and the fake ---------------------------------------------
@dataclass
class Verdict:
    lost_decisions: int = 0
    duplicated_decisions: int = 0
    unfinished_runs: int = 0
    pause_posts_off: int = 0  # pause messages posted other than once
    root_posts_off: int = 0
    notes_off: int = 0  # Completed/Cancelled notes other than once per run
    outcome_updates_off: int = 0  # pause messages updated with the outcome other than once
    outbox_not_sent: dict[str, int] = field(default_factory=dict)
    decisions_by_outcome: collections.Counter[str] = field(default_factory=collections.Counter)
    timed_out: int = 0


def _settle(db: Any, watch: Watch, run_ids: list[str], timeout: float) -> None:
    """Wait (bounded) until every run ended and the bots' outboxes are empty."""
    from sqlalchemy import func, select

    from bot.store import slack_outbox
    from engine.db.schema import runs as runs_t

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.engine.connect() as conn:
            open_runs = 0
            for chunk in _chunks(run_ids):
                open_runs += conn.execute(
                    select(func.count())
                    .select_from(runs_t)
                    .where(runs_t.c.run_id.in_(chunk), runs_t.c.status.in_(["running", "paused"]))
                ).scalar_one()
            unsent = conn.execute(
                select(func.count()).select_from(slack_outbox).where(slack_outbox.c.state != "sent")
            ).scalar_one()
        with watch.lock:
            notes = sum(1 for r in run_ids if r in watch.done_at)
        if open_runs == 0 and unsent == 0 and notes == len(run_ids):
            return
        time.sleep(0.25)


def _chunks(items: list[str], size: int = 500) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)] or [[]]


def _verify(db: Any, watch: Watch, clicked: list[str], deadline_runs: list[str]) -> Verdict:
    from sqlalchemy import select

    from bot.store import slack_outbox
    from engine.db.schema import decisions
    from engine.db.schema import runs as runs_t

    verdict = Verdict()
    all_runs = clicked + deadline_runs
    found: dict[str, list[str]] = collections.defaultdict(list)
    status: dict[str, str] = {}
    with db.engine.connect() as conn:
        for chunk in _chunks(all_runs):
            for row in conn.execute(
                select(decisions.c.run_id, decisions.c.outcome).where(decisions.c.run_id.in_(chunk))
            ):
                found[row.run_id].append(row.outcome)
            for row in conn.execute(
                select(runs_t.c.run_id, runs_t.c.status).where(runs_t.c.run_id.in_(chunk))
            ):
                status[row.run_id] = row.status
        for row in conn.execute(select(slack_outbox.c.state)):
            if row.state != "sent":
                verdict.outbox_not_sent[row.state] = verdict.outbox_not_sent.get(row.state, 0) + 1
    with watch.lock:
        for run_id in all_runs:
            outcomes = found.get(run_id, [])
            verdict.decisions_by_outcome.update(outcomes)
            expected = ["timed_out"] if run_id in deadline_runs else None
            shown = run_id in watch.decided_at
            if not outcomes or not shown or (expected and outcomes != expected):
                verdict.lost_decisions += 1
            if len(outcomes) > 1 or watch.outcome_updates[run_id] > 1:
                verdict.duplicated_decisions += 1
            verdict.unfinished_runs += status.get(run_id) not in ("completed", "cancelled")
            verdict.pause_posts_off += watch.pause_posts[run_id] != 1
            verdict.root_posts_off += watch.roots[run_id] != 1
            verdict.notes_off += watch.terminal_notes[run_id] != 1
            verdict.outcome_updates_off += watch.outcome_updates[run_id] != 1
    verdict.timed_out = verdict.decisions_by_outcome["timed_out"]
    return verdict


# -- one set-up ----------------------------------------------------------------------------------
@dataclass
class Result:
    name: str
    runs: int
    completed: int
    throughput: float  # clicked runs per second, end to end
    command_ack: Summary
    click_ack: Summary
    click_to_update: Summary
    end_to_end: Summary
    deadline_to_shown: Summary
    http_errors: int
    run_failures: collections.Counter[str]
    verdict: Verdict
    expected_ephemerals: int
    retries: int
    ephemerals: int
    log_problems: dict[str, int]
    phase_s: float
    capped: bool

    @property
    def errors(self) -> int:
        return self.http_errors + sum(self.run_failures.values())


def _bot_env(fake: Any, database_url: str) -> dict[str, str]:
    """The environment of a served bot (``python -m bot serve``) against ``fake``."""
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "SLACK_BOT_TOKEN": fake.state.bot_token,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": fake.api_url,
        "SIGNOFF_DATABASE_URL": database_url,
        "SIGNOFF_WORKFLOWS": "benchmarks.load:workflows",
        "SIGNOFF_HOST": "127.0.0.1",
        "SIGNOFF_CHANNEL": CHANNEL,
        "SIGNOFF_POLL_SECONDS": POLL_SECONDS,
        "SIGNOFF_LOG_LEVEL": "WARNING",
    }
    env.pop("SLACK_APP_TOKEN", None)
    return env


def run_setup(
    name: str,
    *,
    database_url: str,
    db: Any,
    replicas: int,
    runs: int,
    concurrency: int,
    max_seconds: float,
    log_dir: Path,
) -> Result:
    from bot.sandbox import SlackFakeServer
    from engine import ManualClock

    fake = SlackFakeServer().start()
    for user in (APPROVER, OTHER, REQUESTER):
        fake.state.join_channel(CHANNEL, user)
    env = _bot_env(fake, database_url)
    # The script's deadline runs: paused an hour and a bit ago, so already past due; a long
    # lease, so no bot mistakes one this process is running for one whose process died.
    past = ManualClock(datetime.now(UTC) - DEADLINE - timedelta(minutes=5))
    past_workflow = next(
        wf
        for wf in build_workflows(db=db, clock=past, lease=timedelta(days=1))
        if wf.name == DEADLINE_WORKFLOW
    )
    started: list[Replica] = []
    try:
        for k in range(replicas):
            started.append(Replica(f"replica-{k + 1}", env, log_dir / f"{name}-{k + 1}.log"))
        for replica in started:
            replica.wait_healthy()
        loop = asyncio.new_event_loop()
        watch = Watch(fake.state, loop)
        unsubscribe = fake.state.add_listener(watch)
        try:
            load = loop.run_until_complete(
                _load(
                    urls=[r.events_url for r in started],
                    state=fake.state,
                    watch=watch,
                    runs=runs,
                    concurrency=concurrency,
                    past_workflow=past_workflow,
                    timeouts=max(1, runs // 20),
                    max_seconds=max_seconds,
                )
            )
            clicked = [r.run_id for r in load.records if r.run_id and r.clicked is not None]
            deadline_ids = list(load.deadline_runs)
            _settle(db, watch, clicked + deadline_ids, SETTLE_S)
            verdict = _verify(db, watch, clicked, deadline_ids)
        finally:
            unsubscribe()
            loop.close()
    finally:
        for replica in started:
            replica.stop()
        fake.stop()
    logs = "\n".join(r.log() for r in started)
    return _result(name, load, watch, verdict, logs)


def _result(name: str, load: Load, watch: Watch, verdict: Verdict, logs: str) -> Result:
    records = load.records
    ok = [r for r in records if r.run_id and r.run_id in watch.done_at]
    first = min((r.started for r in records if r.started), default=0.0)
    last = max((watch.done_at[r.run_id] for r in ok if r.run_id), default=first)
    click_to_update = [
        watch.decided_at[r.run_id] - r.clicked
        for r in records
        if r.run_id and r.clicked and r.run_id in watch.decided_at
    ]
    end_to_end = [watch.done_at[r.run_id] - r.started for r in ok if r.run_id]
    deadline_to_shown = [
        watch.decided_at[run_id] - at
        for run_id, at in load.deadline_runs.items()
        if run_id in watch.decided_at
    ]
    failures = collections.Counter(r.failure for r in records if r.failure)
    double = sum(
        1
        for r in records
        if r.clicked is not None and r.index % DOUBLE_CLICK_EVERY == DOUBLE_CLICK_EVERY // 2
    )
    return Result(
        name=name,
        runs=len(records),
        completed=len(ok),
        throughput=len(ok) / (last - first) if last > first else float("nan"),
        command_ack=Summary.of([r.command_ack for r in records if r.command_ack is not None]),
        click_ack=Summary.of([a for r in records for a in r.click_acks]),
        click_to_update=Summary.of(click_to_update),
        end_to_end=Summary.of(end_to_end),
        deadline_to_shown=Summary.of(deadline_to_shown),
        http_errors=sum(load.http_errors.values()),
        run_failures=failures,
        verdict=verdict,
        expected_ephemerals=double,
        retries=sum(
            1
            for r in records
            if r.clicked is not None and r.index % RETRY_EVERY == RETRY_EVERY // 3
        ),
        ephemerals=sum(watch.ephemerals.values()),
        log_problems={
            "tracebacks": logs.count("Traceback (most recent call last)"),
            "scheduler threads died": logs.count("Exception in thread APScheduler"),
            "ERROR lines": logs.count(" ERROR "),
        },
        phase_s=load.phase_s,
        capped=load.capped,
    )


def print_result(result: Result) -> None:
    print_latency_table(
        [
            ("ack: click", result.click_ack),
            ("ack: /signoff run", result.command_ack),
            ("click -> message updated", result.click_to_update),
            ("start -> done note (e2e)", result.end_to_end),
            ("deadline run -> timed out", result.deadline_to_shown),
        ]
    )
    v = result.verdict
    outcomes = ", ".join(f"{k} {n}" for k, n in sorted(v.decisions_by_outcome.items()))
    print_kv(
        [
            ("runs clicked, completed e2e", f"{result.runs}, {result.completed}"),
            ("throughput (runs/s, end to end)", f"{result.throughput:.1f}"),
            ("load phase", f"{result.phase_s:.1f} s{' (cut off)' if result.capped else ''}"),
            ("decisions in the database", outcomes or "none"),
            ("errors: HTTP", str(result.http_errors)),
            (
                "errors: runs not through",
                f"{sum(result.run_failures.values())}  {dict(result.run_failures) or ''}".rstrip(),
            ),
            ("LOST decisions", str(v.lost_decisions)),
            ("DUPLICATED decisions", str(v.duplicated_decisions)),
            ("runs not ended", str(v.unfinished_runs)),
            (
                "messages not once: root/pause/note/update",
                f"{v.root_posts_off}/{v.pause_posts_off}/{v.notes_off}/{v.outcome_updates_off}",
            ),
            ("outbox items not sent", str(v.outbox_not_sent or 0)),
            (
                "'Already decided' notes",
                f"{result.ephemerals} = {result.expected_ephemerals} double clicks + "
                f"{result.ephemerals - result.expected_ephemerals} of {result.retries} "
                "retried deliveries not dropped",
            ),
            ("bot logs", ", ".join(f"{k} {n}" for k, n in result.log_problems.items())),
        ],
        width=42,
    )


# -- databases -----------------------------------------------------------------------------------
def _libpq(url: str) -> str:
    from engine.db.postgres import normalize_postgres_url

    return normalize_postgres_url(url).replace("postgresql+psycopg://", "postgresql://", 1)


def _with_database(url: str, dbname: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + dbname


def _admin_execute(url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(_libpq(url), autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql)


def _migrate(database_url: str) -> None:
    """``signoff migrate``, as the deployment's migration Job does before the replicas start."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "SIGNOFF_DATABASE_URL": database_url}
    subprocess.run(
        [sys.executable, "-m", "bot", "migrate"],
        cwd=REPO_ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )


def bench_sqlite(tmp: Path, args: argparse.Namespace) -> Result:
    from engine.db.sqlite import SqliteDb

    db_file = tmp / "load.db"
    url = f"sqlite:///{db_file}"
    _migrate(url)
    db = SqliteDb(db_file=db_file)
    try:
        return run_setup(
            "sqlite-1",
            database_url=url,
            db=db,
            replicas=1,
            runs=args.runs,
            concurrency=args.concurrency,
            max_seconds=args.max_seconds,
            log_dir=tmp,
        )
    finally:
        db.dispose()


def bench_postgres(tmp: Path, args: argparse.Namespace) -> tuple[Result, str]:
    from engine.db.postgres import PostgresDb

    dbname = f"signoff_load_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    _admin_execute(args.postgres_url, f'CREATE DATABASE "{dbname}"')
    url = _with_database(args.postgres_url, dbname)
    try:
        _migrate(url)
        db = PostgresDb(url, pool_size=4)
        try:
            result = run_setup(
                "postgres-2",
                database_url=url,
                db=db,
                replicas=2,
                runs=args.runs,
                concurrency=args.concurrency,
                max_seconds=args.max_seconds,
                log_dir=tmp,
            )
        finally:
            db.dispose()
    finally:
        _admin_execute(args.postgres_url, f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
    return result, dbname


# -- main ----------------------------------------------------------------------------------------
# -- --clicks: click rates through the durable inbox --------------------------------------------
CLICK_PROFILES = ((100.0, 60.0), (300.0, 20.0))  # (clicks/s, seconds)
CLICK_ACK_P99_TARGET_MS = 300.0  # at 100 clicks/s
SLACK_ACK_LIMIT_MS = 3000.0
DRAIN_TIMEOUT_S = 300.0


@dataclass
class ClickResult:
    rate: float
    seconds: float
    clicks: int
    achieved_rate: float
    ack: Summary
    errors: int
    drained_after_s: float | None  # after the last ack, until no interaction was pending
    refused: int  # not recorded in time: answered 503, the person sees it failed
    lost: int  # acked with a 200, and never decided
    doubled: int
    not_completed: int
    duplicate_pause_messages: int
    inbox: dict[str, int]
    retries: float
    given_up: float
    # Background items that waited for requests first (bot/pressure.py); None when the bots
    # are other processes.
    stepped_aside: int | None = None
    setup: str = "in-process SQLite"


def _inbox_drain_time(runtime: Any, last_ack: float) -> float | None:
    """Seconds from ``last_ack`` (perf_counter) until the inbox has nothing pending."""
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    store = runtime.signoff.store
    while time.monotonic() < deadline:
        if not store.inbox_counts().get("pending"):
            return max(0.0, time.perf_counter() - last_ack)
        time.sleep(0.02)  # settling, bounded; its resolution is in the figure
    return None


def _approve_button(message: Any) -> Any:
    from bot import blocks
    from bot.sandbox import find_element

    return find_element(message.blocks, blocks.ACTION_APPROVE)


def _counter_total(counter: Any) -> float:
    return float(
        sum(s.value for m in counter.collect() for s in m.samples if s.name.endswith("_total"))
    )


def _pause_posted_twice(state: Any) -> int:
    """Pause messages in the fake beyond one per pause (by the outbox key in their metadata)."""
    posted: collections.Counter[str] = collections.Counter()
    for message in state.messages(CHANNEL, include_ephemeral=False):
        key = ((message.metadata or {}).get("event_payload") or {}).get("key", "")
        if key.startswith("pause:"):
            posted[key] += 1
    return sum(c - 1 for c in posted.values() if c > 1)


def click_profile(rate: float, seconds: float, sender: Any, tmp: Path) -> ClickResult:
    from benchmarks import bot_interactions as bi

    n = max(2, int(rate * seconds))
    where = tmp / f"clicks-{rate:g}"
    where.mkdir()
    setup = bi.start_bot(str(where), n)
    try:
        state = setup.fake.state
        phase = bi.click_phase(
            f"{rate:g}/s",
            executor=sender,
            state=state,
            url=setup.server.url + "/slack/events",
            bodies=bi.click_bodies(state, setup.pauses),
            keys=[(m.channel, m.ts) for m in setup.pauses],
            rate=rate,
            warmup=0,
            expects_updates=True,
        )
        answered = [r[2] for r in phase.results if r[3] != -1]
        drained = _inbox_drain_time(
            setup.runtime, max(answered) if answered else time.perf_counter()
        )
        integrity = bi.check_integrity(setup)
        db = setup.runtime.db
        refused = lost = 0
        for message, result in zip(setup.pauses, phase.results, strict=True):
            (_, button) = _approve_button(message)
            run_id = setup.run_by_token[button["value"]]
            decided = bool(db.get_decisions(run_id))
            if result[3] == 200:
                lost += not decided
            else:
                refused += 1
        metrics = setup.runtime.signoff.metrics
        return ClickResult(
            rate=rate,
            seconds=seconds,
            clicks=n,
            achieved_rate=phase.achieved_rate,
            ack=Summary.of(phase.acks),
            errors=phase.errors,
            drained_after_s=drained,
            refused=refused,
            lost=lost,
            doubled=integrity.duplicated,
            not_completed=integrity.not_completed,
            duplicate_pause_messages=_pause_posted_twice(state),
            inbox=setup.runtime.signoff.store.inbox_counts(),
            retries=_counter_total(metrics.inbox_retries),
            given_up=_counter_total(metrics.inbox_given_up),
            stepped_aside=setup.runtime.signoff.pressure.yields,
        )
    finally:
        setup.server.stop()
        setup.runtime.stop()
        setup.fake.stop()


def _served_database(tmp: Path, postgres_url: str | None) -> tuple[str, Any, Callable[[], None]]:
    """A fresh database for served bots, migrated; its URL, an engine handle, and cleanup."""
    if postgres_url is None:
        from engine.db.sqlite import SqliteDb

        db_file = tmp / f"clicks-{uuid.uuid4().hex[:8]}.db"
        url = f"sqlite:///{db_file}"
        _migrate(url)
        sqlite_db = SqliteDb(db_file=db_file)
        return url, sqlite_db, sqlite_db.dispose
    from engine.db.postgres import PostgresDb

    dbname = f"signoff_clicks_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    _admin_execute(postgres_url, f'CREATE DATABASE "{dbname}"')
    url = _with_database(postgres_url, dbname)
    _migrate(url)
    pg_db = PostgresDb(url, pool_size=4)

    def cleanup() -> None:
        pg_db.dispose()
        _admin_execute(postgres_url, f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')

    return url, pg_db, cleanup


def _drain_time_served(db: Any, last_ack: float) -> float | None:
    """Seconds from ``last_ack`` until no clicked run is paused any more (all applied)."""
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while time.monotonic() < deadline:
        if db.count_paused_runs(workflow_names=[WORKFLOW]) == 0:
            return max(0.0, time.perf_counter() - last_ack)
        time.sleep(0.05)  # settling, bounded; its resolution is in the figure
    return None


@dataclass
class ServedSetup:
    """Served bots on a fresh database with a Slack fake, and paused runs whose pause
    messages the bots posted (``served_setup``)."""

    fake: Any
    url: str  # the bots' database
    db: Any  # this process's handle on it
    env: dict[str, str]  # the bots' environment
    replicas: list[Replica]
    pauses: list[Any]  # the pause messages, oldest first
    run_by_token: dict[str, str]  # a pause's Approve token -> its run id


@contextmanager
def served_setup(
    tmp: Path,
    *,
    label: str,
    replicas: int,
    postgres_url: str | None,
    paused: int,
    post_timeout: float = DRAIN_TIMEOUT_S,
) -> Iterator[ServedSetup]:
    """``replicas`` served bots (``python -m bot serve``, each its own process, logs in
    ``tmp/<label>-replica-<k>.log``) on a fresh SQLite file or PostgreSQL database, the Slack
    fake, and ``paused`` runs of the gate workflow, their pause messages posted by the bots.
    Everything is stopped and the database dropped afterwards."""
    from benchmarks import bot_interactions as bi
    from bot.sandbox import SlackFakeServer

    fake = SlackFakeServer().start()
    for user in (APPROVER, OTHER, REQUESTER):
        fake.state.join_channel(CHANNEL, user)
    url, db, cleanup = _served_database(tmp, postgres_url)
    started: list[Replica] = []
    try:
        env = _bot_env(fake, url)
        for k in range(replicas):
            log_path = tmp / f"{label}-replica-{k + 1}.log"
            started.append(Replica(f"replica-{k + 1}", env, log_path))
        for replica in started:
            replica.wait_healthy()
        gate = next(wf for wf in build_workflows(db=db) if wf.name == WORKFLOW)
        posted = bi.MessageWatch(
            fake.state, "message.posted", bi._has_approve_button, expected=paused
        )
        unsubscribe = fake.state.add_listener(posted)
        try:
            run_by_token = {}
            for i in range(paused):
                run = gate.run(f"item {i}", user_id=REQUESTER)
                run_by_token[run.step_requirements[0].requirement_id] = run.run_id
            if not posted.wait(post_timeout):  # the replicas find and post the pauses
                raise TimeoutError(
                    f"only {len(posted.hits)} of {paused} pause messages were posted"
                )
        finally:
            unsubscribe()
        pauses = sorted(posted.messages.values(), key=lambda m: float(m.ts))
        yield ServedSetup(fake, url, db, env, started, pauses, run_by_token)
    finally:
        for replica in started:
            replica.stop()
        fake.stop()
        cleanup()


def served_click_profile(
    rate: float,
    seconds: float,
    sender: Any,
    tmp: Path,
    *,
    replicas: int,
    postgres_url: str | None,
) -> ClickResult:
    """The click profile against ``replicas`` served bots (``python -m bot serve``, each its
    own process) on SQLite or PostgreSQL, clicks sent to the replicas in turn."""
    from benchmarks import bot_interactions as bi
    from engine import RunStatus

    n = max(2, int(rate * seconds))
    with served_setup(
        tmp, label=f"clicks-{rate:g}", replicas=replicas, postgres_url=postgres_url, paused=n
    ) as served:
        fake, db, pauses = served.fake, served.db, served.pauses
        phase = bi.click_phase(
            f"{rate:g}/s",
            executor=sender,
            state=fake.state,
            url=[r.events_url for r in served.replicas],
            bodies=bi.click_bodies(fake.state, pauses),
            keys=[(m.channel, m.ts) for m in pauses],
            rate=rate,
            warmup=0,
            expects_updates=True,
            secret=SECRET,
        )
        answered = [r[2] for r in phase.results if r[3] != -1]
        drained = _drain_time_served(db, max(answered) if answered else time.perf_counter())
        lost = doubled = not_completed = refused = 0
        for message, result in zip(pauses, phase.results, strict=True):
            (_, button) = _approve_button(message)
            run_id = served.run_by_token[button["value"]]
            decisions = db.get_decisions(run_id)
            stored = db.get_run(run_id)
            if result[3] == 200:
                lost += not decisions
            else:
                refused += 1
            doubled += len(decisions) > 1
            not_completed += stored is None or stored.status is not RunStatus.completed
        logs = "\n".join(r.log() for r in served.replicas)
        return ClickResult(
            rate=rate,
            seconds=seconds,
            clicks=n,
            achieved_rate=phase.achieved_rate,
            ack=Summary.of(phase.acks),
            errors=phase.errors,
            drained_after_s=drained,
            refused=refused,
            lost=lost,
            doubled=doubled,
            not_completed=not_completed,
            duplicate_pause_messages=_pause_posted_twice(fake.state),
            inbox={"tracebacks in bot logs": logs.count("Traceback (most recent call last)")},
            retries=float("nan"),
            given_up=float("nan"),
            setup=f"{replicas} served replica(s), {'PostgreSQL' if postgres_url else 'SQLite'}",
        )


def clicks_main(args: argparse.Namespace) -> int:
    import logging
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from benchmarks import bot_interactions as bi

    warnings = bi.WarningCounter()
    logging.basicConfig(level=logging.WARNING, handlers=[warnings])
    scale = 0.1 if args.quick else args.scale
    profiles = [(rate, seconds * scale) for rate, seconds in CLICK_PROFILES]
    # (label, replicas, PostgreSQL URL or None); None replicas: in this process.
    setups: list[tuple[str, int | None, str | None]] = [("in-process SQLite", None, None)]
    if args.served:
        setups = [] if args.skip_sqlite else [("served SQLite", 1, None)]
        if not args.skip_postgres:
            setups.append(("served PG x2", 2, args.postgres_url))
    print(
        f"benchmarks.load --clicks: {'; '.join(s[0] for s in setups)}; the Slack fake and the "
        f"sender on this machine; {os.cpu_count()} CPUs"
    )
    tmp = Path(tempfile.mkdtemp(prefix="signoff-clicks-"))
    results: list[ClickResult] = []
    runs = [(setup, rate, seconds) for setup in setups for rate, seconds in profiles]
    try:
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as sender:
            for number, ((label, replicas, pg_url), rate, seconds) in enumerate(runs, 1):
                print_header(f"{number}. {label}: {rate:g} clicks/s for {seconds:g} s")
                if replicas is None:
                    result = click_profile(rate, seconds, sender, tmp)
                else:
                    result = served_click_profile(
                        rate, seconds, sender, tmp, replicas=replicas, postgres_url=pg_url
                    )
                result.setup = label
                results.append(result)
                print_latency_table([("ack (HTTP response)", result.ack)])
                drained = (
                    f"{result.drained_after_s:.2f} s"
                    if result.drained_after_s is not None
                    else f"not within {DRAIN_TIMEOUT_S:g} s"
                )
                print_kv(
                    [
                        ("clicks / rate sent", f"{result.clicks} / {result.achieved_rate:.1f}/s"),
                        ("errors (no answer or non-200)", str(result.errors)),
                        ("503s (not recorded; told)", str(result.refused)),
                        ("backlog applied, after last ack", drained),
                        ("acked yet lost / doubled", f"{result.lost} / {result.doubled}"),
                        (
                            "inbox rows / retries / given up",
                            f"{result.inbox} / {result.retries:g} / {result.given_up:g}",
                        ),
                        ("runs not completed", str(result.not_completed)),
                        ("background stepped aside", str(result.stepped_aside)),
                        ("pause messages posted twice", str(result.duplicate_pause_messages)),
                    ]
                )
                bi.print_warnings(warnings)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rows: list[tuple[str, str, str, bool | None]] = []
    for r in results:
        name = f"{r.setup}, {r.rate:g}/s x {r.seconds:g}s"
        clean = r.lost == 0 and r.doubled == 0 and r.duplicate_pause_messages == 0
        backlog_done = r.drained_after_s is not None and r.not_completed == r.refused
        p99_target = r.rate == CLICK_PROFILES[0][0]
        rows.append(
            (
                f"{name}: ack p50 / p99",
                f"p99 < {CLICK_ACK_P99_TARGET_MS:.0f} ms" if p99_target else "",
                f"{r.ack.p50_ms:.0f}/{r.ack.p99_ms:.0f} ms",
                r.ack.p99_ms < CLICK_ACK_P99_TARGET_MS if p99_target else None,
            )
        )
        rows.append(
            (
                f"{name}: ack max, errors",
                f"< {SLACK_ACK_LIMIT_MS:.0f} ms, 0",
                f"{r.ack.max_ms:.0f} ms, {r.errors}",
                r.ack.max_ms < SLACK_ACK_LIMIT_MS and r.errors == 0,
            )
        )
        rows.append(
            (
                f"{name}: lost/doubled/dup msgs",
                "0/0/0",
                f"{r.lost}/{r.doubled}/{r.duplicate_pause_messages}",
                clean,
            )
        )
        rows.append(
            (f"{name}: backlog drained", "yes", "yes" if backlog_done else "no", backlog_done)
        )
    print_summary(rows)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.load",
        description="Many concurrent workflows through served bot(s) and the Slack fake.",
    )
    parser.add_argument("--runs", type=int, default=1000, help="clicked runs per set-up (1000)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 100 runs per set-up")
    parser.add_argument("--skip-postgres", action="store_true", help="only one replica on SQLite")
    parser.add_argument(
        "--skip-sqlite",
        action="store_true",
        help="with --clicks --served: only the two replicas on PostgreSQL",
    )
    parser.add_argument("--concurrency", type=int, default=32, help="runs in flight (32)")
    parser.add_argument(
        "--max-seconds", type=float, default=600.0, help="cap on each load phase (600)"
    )
    parser.add_argument(
        "--postgres-url",
        default="postgresql://postgres@127.0.0.1:5432/test",
        help="a database on the server to create the throwaway one from",
    )
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="with --clicks: each profile's duration times this (--quick: 0.1)",
    )
    parser.add_argument(
        "--served",
        action="store_true",
        help="with --clicks: served bots instead (python -m bot serve): one replica on "
        "SQLite, then two on PostgreSQL (unless --skip-postgres)",
    )
    parser.add_argument(
        "--clicks",
        action="store_true",
        help="click rates through the inbox instead: 100/s x 60 s, 300/s x 20 s (one replica)",
    )
    parser.add_argument(
        "--faults",
        action="store_true",
        help="clicks at a steady rate while Slack is down or slow, a replica is killed and "
        "the database restarted or locked (benchmarks/_faults.py)",
    )
    args = parser.parse_args(argv)
    if args.faults:
        from benchmarks._faults import faults_main

        return faults_main(args)
    if args.clicks:
        return clicks_main(args)
    if args.quick:
        args.runs = min(args.runs, 100)
        args.concurrency = min(args.concurrency, 16)
    args.runs = max(1, min(args.runs, 20_000))

    print(
        f"benchmarks.load: {args.runs} runs per set-up, {args.concurrency} in flight, "
        f"{max(1, args.runs // 20)} deadline runs, a double click every {DOUBLE_CLICK_EVERY}, "
        f"a retried delivery every {RETRY_EVERY}; {os.cpu_count()} CPUs"
    )
    tmp = Path(tempfile.mkdtemp(prefix="signoff-load-"))
    results: list[Result] = []
    try:
        print_header(f"1. one replica on SQLite ({args.runs} runs)")
        result = bench_sqlite(tmp, args)
        print_result(result)
        results.append(result)
        if args.skip_postgres:
            print_header("2. two replicas on PostgreSQL: skipped (--skip-postgres)")
        else:
            print_header(f"2. two replicas on PostgreSQL ({args.runs} runs)")
            try:
                result, dbname = bench_postgres(tmp, args)
            except Exception as exc:  # no server here: say so, keep the SQLite figures
                print(f"  PostgreSQL set-up failed: {type(exc).__name__}: {exc}")
            else:
                print(f"  (throwaway database {dbname}, dropped)")
                print_result(result)
                results.append(result)
        print_kv([("peak RSS of this process", f"{peak_rss_mb():.0f} MiB")], width=42)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    rows: list[tuple[str, str, str, bool | None]] = []
    for r in results:
        v = r.verdict
        rows += [
            (f"{r.name}: throughput", "", f"{r.throughput:.1f} runs/s", None),
            (
                f"{r.name}: ack p50 / p99",
                "",
                f"{r.click_ack.p50_ms:.0f}/{r.click_ack.p99_ms:.0f} ms",
                None,
            ),
            (f"{r.name}: click->update p99", "", f"{r.click_to_update.p99_ms:.0f} ms", None),
            (f"{r.name}: errors", "", str(r.errors), None),
            (
                f"{r.name}: bot tracebacks",
                "0",
                str(r.log_problems["tracebacks"]),
                r.log_problems["tracebacks"] == 0,
            ),
            (f"{r.name}: lost decisions", "0", str(v.lost_decisions), v.lost_decisions == 0),
            (
                f"{r.name}: duplicated decisions",
                "0",
                str(v.duplicated_decisions),
                v.duplicated_decisions == 0,
            ),
        ]
    print_summary(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
