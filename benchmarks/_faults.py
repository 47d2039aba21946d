"""The fault mode of ``benchmarks.load`` (``--faults``): clicks at a steady rate while faults
are applied one after another (issue 8 §5).

Two set-ups, each a fresh database and a fresh Slack fake (served over real HTTP on
127.0.0.1 in this process), the bots real ``python -m bot serve`` processes as in
``--clicks --served``: two replicas on PostgreSQL (a throwaway database on the local server,
dropped afterwards), then one replica on SQLite. Paused runs are made beforehand (one per
click) and their pause messages awaited in the fake; then a sender in a child process sends
one signed Approve click per run, open loop, at ``rate`` for the whole schedule, through a
small load balancer of its own: round robin over the replicas; a click whose connection
failed (refused, reset, closed) is re-sent once to another replica and counted apart, that
replica left out until its ``/healthz`` answers 200 again (probed every 0.5 s).

Meanwhile, from this process, with clean time between them (15 s; ``--quick`` 4 s; after
Slack slow at least until the calls it held timed out in the bot), for 30 s, 15 + 10 s,
10 s, 8 s (``--quick``: 5, 3 + 3, 3, 3 s; 15 clicks/s instead of 30):

  1. Slack down: every Web API call answers 503 (``state.set_down``);
  2. Slack slow: every call acts, then answers after 12 s, past the bot's Slack client
     timeout (10 s); then Slack failing after acting: every call acts, then answers 500;
  3. (PostgreSQL, two replicas) ``kill -9`` of replica 1 (``Popen.kill()``), restarted on
     the same port after a while; the window lasts until it answers ``/healthz`` again;
  4. the database: PostgreSQL "restarted" for this database only — new connections refused
     (``ALTER DATABASE … ALLOW_CONNECTIONS false``, from an admin connection to the database
     named in ``--postgres-url``) and every backend on it terminated, then allowed again; the
     shared server itself is never restarted. SQLite: another process holds the write lock
     (``BEGIN IMMEDIATE``) for the window.

Afterwards it waits (bounded) until every acked click was applied, no run is running and
the outbox is idle, then prints, per window (the faults and the clean time between, a click
belonging to the window it was sent in) and overall: ack p50/p99/max (from the first send to
the answer, a re-sent click included), 503s ("not recorded", the person is told), clicks with
no answer, clicks re-sent after a failed connection; and from the database and the fake:
acked (200) yet never decided (lost), runs with more than one decision (doubled), messages
posted twice (by the outbox key in their metadata, and notes by their text in a thread),
runs not completed. A summary table puts the targets beside the figures (lost 0, doubled 0,
posted twice 0, every ack < 3 s). An acked run that did not complete is shown with what its
thread says and the bot log lines naming it; a click refused in clean time with how near
the faults beside it it was sent. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any

from benchmarks._stats import Summary, print_header, print_kv, print_summary

BOT_SLACK_TIMEOUT_S = 10.0  # the bot's Slack client timeout (bot.server.make_client)
SLOW_DELAY_S = 12.0  # past it
ALL_CALLS = 1_000_000  # "every call" for a fault window: far more than a window makes
PROBE_S = 0.5  # the load balancer's health probe period for a replica it left out
CLICK_TIMEOUT_S = 30.0  # a click unanswered this long counts as no answer
DRAIN_S = 150.0  # after the last click: applied, nothing running, outbox idle
HEALTHY_S = 60.0  # a restarted replica's start-up
LOCK_READY_S = 15.0  # the SQLite lock holder's BEGIN IMMEDIATE
ACK_LIMIT_MS = 3000.0  # Slack's: an interaction answered later is shown as failed


# -- the plan -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    rate: float
    lead_s: float  # clean time before the first fault
    gap_s: float  # clean time after each fault
    down_s: float
    slow_s: float
    after_acting_s: float
    killed_s: float  # replica 1 down before its restart
    database_s: float
    tail_s: float  # clicks sent after the last fault's gap

    def gap_after(self, fault: str) -> float:
        """Clean time after a fault; after Slack slow at least until the calls it held have
        timed out in the bot, so that its effect does not run into the next fault."""
        return max(self.gap_s, BOT_SLACK_TIMEOUT_S + 1.0) if fault == "slow" else self.gap_s

    def seconds(self, *, kill: bool) -> float:
        faults = [self.down_s, self.slow_s, self.after_acting_s, self.database_s]
        if kill:
            faults.append(self.killed_s + 10.0)  # its restart, about
        clean = len(faults) * self.gap_s + self.gap_after("slow") - self.gap_s
        return self.lead_s + sum(faults) + clean + self.tail_s


FULL = Plan(
    rate=30.0,
    lead_s=10.0,
    gap_s=15.0,
    down_s=30.0,
    slow_s=15.0,
    after_acting_s=10.0,
    killed_s=10.0,
    database_s=8.0,
    tail_s=5.0,
)
QUICK = Plan(
    rate=15.0,
    lead_s=2.0,
    gap_s=4.0,
    down_s=5.0,
    slow_s=3.0,
    after_acting_s=3.0,
    killed_s=3.0,
    database_s=3.0,
    tail_s=1.0,
)


@dataclass
class Window:
    name: str
    start: float  # perf_counter
    end: float
    fault: bool = True
    short: str = ""  # for the summary


# -- the sender: a child process with a small load balancer ------------------------------------
# Per click: (scheduled, sent, answered, status, error, re-sent after, replica index).
Click = tuple[float, float, float, int, str, str, int]


def send_through_balancer(
    urls: Sequence[str], secret: str, bodies: Sequence[str], rate: float, t0: float
) -> list[Click]:
    """Send ``bodies`` open loop (body i at ``t0 + i/rate``, ``t0`` on the shared monotonic
    clock) through a round-robin balancer over ``urls``; status -1 when no HTTP answer came."""
    return asyncio.run(_balance(list(urls), secret, list(bodies), rate, t0))


async def _balance(
    urls: list[str], secret: str, bodies: list[str], rate: float, t0: float
) -> list[Click]:
    import httpx

    from bot.sandbox.payloads import signed_headers

    results: list[Click] = [(0.0, 0.0, 0.0, -1, "not sent", "", -1)] * len(bodies)
    ready = [True] * len(urls)
    turn = [0]
    health = [u.replace("/slack/events", "/healthz") for u in urls]
    stop = asyncio.Event()

    def pick(exclude: int = -1) -> int:
        candidates = [k for k in range(len(urls)) if ready[k] and k != exclude]
        if not candidates:  # nothing known good: try the others all the same
            candidates = [k for k in range(len(urls)) if k != exclude] or [0]
        turn[0] += 1
        return candidates[turn[0] % len(candidates)]

    limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
    async with httpx.AsyncClient(limits=limits, timeout=CLICK_TIMEOUT_S) as client:

        async def probe() -> None:  # brings a left-out replica back once it is healthy
            while not stop.is_set():
                for k, url in enumerate(health):
                    if ready[k]:
                        continue
                    with contextlib.suppress(httpx.HTTPError):
                        ready[k] = (await client.get(url, timeout=1.0)).status_code == 200
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), PROBE_S)

        async def one(i: int, scheduled: float, body: bytes, headers: dict[str, str]) -> None:
            sent = time.perf_counter()
            k, resent, status, error = pick(), "", -1, ""
            for attempt in range(2):
                try:
                    response = await client.post(urls[k], content=body, headers=headers)
                    status, error = response.status_code, ""
                    if status != 200:
                        error = response.text[:120]
                    break
                except httpx.TimeoutException as exc:  # answered too late: no answer
                    status, error = -1, f"{type(exc).__name__}: {exc}"
                    break
                except httpx.TransportError as exc:  # the connection failed: re-send once
                    ready[k] = False
                    status, error = -1, f"{type(exc).__name__}: {exc}"
                    if attempt == 0 and len(urls) > 1:
                        resent = type(exc).__name__
                        k = pick(exclude=k)
            results[i] = (scheduled, sent, time.perf_counter(), status, error, resent, k)

        prober = asyncio.create_task(probe())
        tasks = []
        for i, text in enumerate(bodies):
            scheduled = t0 + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            headers = signed_headers(text, secret)  # signed when sent, as Slack does
            tasks.append(asyncio.create_task(one(i, scheduled, text.encode(), headers)))
        await asyncio.gather(*tasks)
        stop.set()
        await prober
    return results


# -- the faults ---------------------------------------------------------------------------------
def _until(at: float) -> None:
    """Sleep until ``at`` (perf_counter): the schedule's own times."""
    delay = at - time.perf_counter()
    if delay > 0:
        time.sleep(delay)


def _hold(seconds: float) -> tuple[float, float]:
    """A fault window's own duration; returns its (start, end)."""
    start = time.perf_counter()
    time.sleep(seconds)
    return start, time.perf_counter()


class Faults:
    """The faults one set-up can apply, each returning the window it lasted."""

    def __init__(
        self,
        fake: Any,
        replicas: list[Any],
        env: dict[str, str],
        database_url: str,
        admin_url: str | None,
    ) -> None:
        self.fake = fake
        self.replicas = replicas
        self.env = env
        self.database_url = database_url
        self.admin_url = admin_url
        self.notes: list[str] = []

    def slack_down(self, seconds: float) -> tuple[float, float]:
        self.fake.state.set_down(True)
        try:
            return _hold(seconds)
        finally:
            self.fake.state.clear_faults()

    def slack_slow(self, seconds: float) -> tuple[float, float]:
        self.fake.state.slow_next("*", SLOW_DELAY_S, times=ALL_CALLS)
        return self._slack_window("slow", seconds)

    def slack_fails_after_acting(self, seconds: float) -> tuple[float, float]:
        self.fake.state.fail_after_acting_next("*", times=ALL_CALLS)
        return self._slack_window("500 after acting", seconds)

    def _slack_window(self, what: str, seconds: float) -> tuple[float, float]:
        try:
            return _hold(seconds)
        finally:
            hit = ALL_CALLS - self.fake.state.faults_left("*")
            self.fake.state.clear_faults()
            self.notes.append(f"Slack {what}: {hit} Web API calls answered so")

    def kill_replica(self, seconds: float) -> tuple[float, float]:
        """``kill -9`` replica 1, restart it on the same port after ``seconds``; the window
        ends when it answers ``/healthz``."""
        replica = self.replicas[0]
        start = time.perf_counter()
        replica.proc.kill()
        replica.proc.wait(timeout=10)
        time.sleep(seconds)
        with replica.log_path.open("ab") as log:
            log.write(b"\n--- killed (kill -9) and restarted by benchmarks.load --faults ---\n")
            log.flush()
            replica.proc = subprocess.Popen(
                [sys.executable, "-m", "bot", "serve"],
                cwd=str(Path(__file__).resolve().parent.parent),
                env={**self.env, "SIGNOFF_PORT": str(replica.port)},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            replica.wait_healthy(HEALTHY_S)
        except RuntimeError as exc:
            self.notes.append(f"restarted replica not healthy: {str(exc)[:300]}")
        return start, time.perf_counter()

    def postgres_restarted(self, seconds: float) -> tuple[float, float]:
        """This database only: new connections refused, every backend on it terminated, then
        allowed again after ``seconds``. The server and its other databases are untouched."""
        import psycopg

        from benchmarks.load import _libpq

        assert self.admin_url is not None
        dbname = self.database_url.rsplit("/", 1)[1].split("?")[0]
        with psycopg.connect(_libpq(self.admin_url), autocommit=True, connect_timeout=5) as conn:
            start = time.perf_counter()
            conn.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS false')
            try:
                terminated = conn.execute(
                    "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = %s AND pid <> pg_backend_pid()) AS t",
                    (dbname,),
                ).fetchone()
                self.notes.append(
                    f"database fault: {terminated[0] if terminated else '?'} backends terminated"
                )
                time.sleep(seconds)
            finally:
                conn.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')
            return start, time.perf_counter()

    def sqlite_write_locked(self, seconds: float) -> tuple[float, float]:
        """Another process holds the file's write lock (``BEGIN IMMEDIATE``) for ``seconds``."""
        db_file = self.database_url.removeprefix("sqlite:///")
        holder = subprocess.Popen(
            [sys.executable, "-c", _LOCK_HOLDER, db_file],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert holder.stdin is not None and holder.stdout is not None
        try:
            line = _readline(holder.stdout, LOCK_READY_S)
            said, _, at = line.partition(" ")
            if said != "locked":
                self.notes.append(f"SQLite lock holder said {line!r}, not 'locked'")
            start = float(at) if at else time.perf_counter()  # when it held the lock
            time.sleep(seconds)
            holder.stdin.write("release\n")
            holder.stdin.flush()
            released = _readline(holder.stdout, LOCK_READY_S)
            end = time.perf_counter()
            if released != "released":
                self.notes.append(f"SQLite lock holder said {released!r}, not 'released'")
            return start, end
        finally:
            with contextlib.suppress(subprocess.TimeoutExpired):
                holder.wait(timeout=10)
            if holder.poll() is None:
                holder.kill()
                holder.wait(timeout=5)


_LOCK_HOLDER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], timeout=10, isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", time.perf_counter(), flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
print("released", flush=True)
"""


def _readline(stream: Any, timeout: float) -> str:
    """One line from a child's pipe, bounded by ``timeout``."""
    import selectors

    with selectors.DefaultSelector() as sel:
        sel.register(stream, selectors.EVENT_READ)
        if not sel.select(timeout):
            return f"(nothing within {timeout:g} s)"
    return str(stream.readline()).strip()


def run_schedule(
    faults: Faults, plan: Plan, t0: float, *, kill: bool, sqlite: bool
) -> list[Window]:
    """The faults one after another, each followed by ``plan.gap_s`` of clean time; returns
    every window, clean ones included, in order."""
    steps: list[tuple[str, str, Callable[[float], tuple[float, float]], float]] = [
        ("1. Slack down (503)", "Slack down", faults.slack_down, plan.down_s),
        (f"2a. Slack slow ({SLOW_DELAY_S:g} s)", "Slack slow", faults.slack_slow, plan.slow_s),
        (
            "2b. Slack 500 after acting",
            "500 after acting",
            faults.slack_fails_after_acting,
            plan.after_acting_s,
        ),
    ]
    if kill:
        steps.append(("3. kill -9 replica 1", "kill -9", faults.kill_replica, plan.killed_s))
    if sqlite:
        steps.append(
            ("4. SQLite write-locked", "DB locked", faults.sqlite_write_locked, plan.database_s)
        )
    else:
        steps.append(
            ("4. PostgreSQL restarted", "DB restarted", faults.postgres_restarted, plan.database_s)
        )
    windows: list[Window] = []
    clean_from = t0
    at = t0 + plan.lead_s
    for name, short, apply, seconds in steps:
        _until(at)
        start, end = apply(seconds)
        windows.append(Window("clean", clean_from, start, fault=False))
        windows.append(Window(name, start, end, short=short))
        clean_from = end
        at = end + plan.gap_after("slow" if short == "Slack slow" else short)
    windows.append(Window("clean", clean_from, float("inf"), fault=False))
    return windows


# -- one set-up ---------------------------------------------------------------------------------
@dataclass
class Verdict:
    """From the database and the fake, per run (one click per run)."""

    decisions: dict[str, int] = field(default_factory=dict)  # run id -> decisions stored
    status: dict[str, str] = field(default_factory=dict)  # run id -> run status
    posted_twice: collections.Counter[str] = field(default_factory=collections.Counter)
    posted_twice_kinds: collections.Counter[str] = field(default_factory=collections.Counter)
    notes_twice: collections.Counter[str] = field(default_factory=collections.Counter)
    thread_notes: dict[str, list[str]] = field(default_factory=dict)  # run id -> notes


@dataclass
class SetupResult:
    name: str
    plan: Plan
    clicks: list[Click]
    run_ids: list[str]  # per click
    windows: list[Window]
    verdict: Verdict
    drained_after_s: float | None
    notes: list[str]
    log_problems: dict[str, int]
    log_kinds: list[tuple[str, int]]
    outbox_not_sent: dict[str, int]


def _verify(db: Any, state: Any, run_ids: list[str]) -> Verdict:
    from sqlalchemy import func, select

    from benchmarks.load import _chunks
    from engine.db.schema import decisions
    from engine.db.schema import runs as runs_t

    verdict = Verdict()
    with db.engine.connect() as conn:
        for chunk in _chunks(run_ids):
            for row in conn.execute(
                select(decisions.c.run_id, func.count())
                .where(decisions.c.run_id.in_(chunk))
                .group_by(decisions.c.run_id)
            ):
                verdict.decisions[row[0]] = int(row[1])
            for row in conn.execute(
                select(runs_t.c.run_id, runs_t.c.status).where(runs_t.c.run_id.in_(chunk))
            ):
                verdict.status[row.run_id] = row.status
    # Messages posted more than once: by the outbox key each post carries in its metadata,
    # and notes (thread replies without blocks) by their text within a thread.
    keys: collections.Counter[str] = collections.Counter()
    texts: collections.Counter[tuple[str, str, str]] = collections.Counter()
    root_run: dict[tuple[str, str], str] = {}
    for message in state.messages(None, include_ephemeral=False):
        key = ((message.metadata or {}).get("event_payload") or {}).get("key", "")
        if key:
            keys[key] += 1
            if key.startswith("root:"):
                root_run[(message.channel, message.ts)] = key.split(":")[1]
        if message.thread_ts not in (None, message.ts) and not message.blocks:
            texts[(message.channel, message.thread_ts, message.text)] += 1
    by_requirement = {}
    with db.engine.connect() as conn:
        for chunk in _chunks(run_ids):
            for row in conn.execute(
                select(decisions.c.run_id, decisions.c.requirement_id).where(
                    decisions.c.run_id.in_(chunk)
                )
            ):
                by_requirement[row.requirement_id] = row.run_id
    for key, n in keys.items():
        if n < 2:
            continue
        kind, _, rest = key.partition(":")
        ident = rest.split(":")[0]
        run_id = by_requirement.get(ident, ident)
        verdict.posted_twice[run_id] += n - 1
        verdict.posted_twice_kinds[kind] += n - 1
    for (channel, thread_ts, text), n in texts.items():
        run_id = root_run.get((channel, thread_ts), thread_ts)
        verdict.thread_notes.setdefault(run_id, []).append(text)
        if n > 1:
            verdict.notes_twice[run_id] += n - 1
    return verdict


_NUMBERS = re.compile(r"\b[0-9a-f]{8,}\b|\d+(\.\d+)?")
_KEYS = re.compile(r"\b(action|command|view|event):[\w#.:-]*")


_LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\d |^--- ")
_CHAINED = ("During handling of the above exception", "The above exception was the direct cause")


def _raised(lines: list[str], start: int) -> str:
    """The exception a traceback starting at ``lines[start]`` ends with: with chained
    exceptions, the last one (what was raised), not the first."""
    raised = ""
    for line in lines[start + 1 :]:
        if _LOG_RECORD.match(line):
            break
        # SQLAlchemy's message goes on with [SQL: …], [parameters: …] and (Background …).
        if line and not line.startswith((" ", "Traceback", "[", "(Background", *_CHAINED)):
            raised = line
    return raised


def _log_kinds(logs: str) -> list[tuple[str, int]]:
    """WARNING and ERROR lines (logger: message) and the exception line ending each
    traceback, counted by their text with ids and numbers blanked, most frequent first."""
    kinds: collections.Counter[str] = collections.Counter()
    lines = logs.splitlines()
    for i, line in enumerate(lines):
        level = next((lv for lv in (" ERROR ", " WARNING ") if lv in line), None)
        if level is not None:
            text = _NUMBERS.sub("#", line.split(level, 1)[1])
            kinds[level.strip() + " " + _KEYS.sub("<key>", text)[:130]] += 1
        elif line.startswith("Traceback (most recent call last)"):
            previous = next((p for p in reversed(lines[max(0, i - 3) : i]) if p), "")
            if not previous.startswith(_CHAINED):  # a chain is counted once, by its end
                kinds["raised " + _NUMBERS.sub("#", _raised(lines, i))[:110]] += 1
    return kinds.most_common()


def _log_evidence(logs: str, run_ids: list[str], per_run: int = 3) -> list[str]:
    """The bot log lines naming each of ``run_ids`` (a failure's traceback: its last line)."""
    lines = logs.splitlines()
    out: list[str] = []
    for run_id in run_ids[:6]:
        found = 0
        for i, line in enumerate(lines):
            if run_id not in line or found >= per_run or not _LOG_RECORD.match(line):
                continue
            found += 1
            raised = ""
            if i + 1 < len(lines) and lines[i + 1].startswith("Traceback"):
                raised = _raised(lines, i + 1)
            out.append(f"log: {line[:200]}" + (f" -> {raised[:160]}" if raised else ""))
        if not found:
            out.append(f"log: nothing names run {run_id}")
    return out


def _fresh_db(url: str) -> Any:
    if url.startswith("sqlite"):
        from engine.db.sqlite import SqliteDb

        return SqliteDb(db_file=url.removeprefix("sqlite:///"))
    from engine.db.postgres import PostgresDb

    return PostgresDb(url, pool_size=2)


def _drain(db: Any, acked: list[str], last_answer: float) -> float | None:
    """Seconds from ``last_answer`` until every acked click's run left ``paused``, no run is
    ``running`` and the outbox has nothing unsent; None if not within ``DRAIN_S``."""
    from sqlalchemy import func, select

    from benchmarks.load import _chunks
    from bot.store import slack_outbox
    from engine.db.schema import runs as runs_t

    deadline = time.monotonic() + DRAIN_S
    while time.monotonic() < deadline:
        try:
            with db.engine.connect() as conn:
                open_runs = sum(
                    conn.execute(
                        select(func.count())
                        .select_from(runs_t)
                        .where(runs_t.c.run_id.in_(chunk), runs_t.c.status == "paused")
                    ).scalar_one()
                    for chunk in _chunks(acked)
                )
                open_runs += conn.execute(
                    select(func.count()).select_from(runs_t).where(runs_t.c.status == "running")
                ).scalar_one()
                unsent = conn.execute(
                    select(func.count())
                    .select_from(slack_outbox)
                    .where(slack_outbox.c.state != "sent")
                ).scalar_one()
        except Exception:  # the database coming back: ask again
            open_runs = unsent = 1
        if open_runs == 0 and unsent == 0:
            return max(0.0, time.perf_counter() - last_answer)
        time.sleep(0.1)  # settling, bounded; its resolution is in the figure
    return None


def _outbox_states(db: Any) -> dict[str, int]:
    from sqlalchemy import func, select

    from bot.store import slack_outbox

    with db.engine.connect() as conn:
        rows = conn.execute(
            select(slack_outbox.c.state, func.count()).group_by(slack_outbox.c.state)
        ).all()
    return {str(state): int(n) for state, n in rows if state != "sent"}


def fault_setup(
    name: str,
    plan: Plan,
    sender: Any,
    tmp: Path,
    *,
    replicas: int,
    postgres_url: str | None,
) -> SetupResult:
    from benchmarks import bot_interactions as bi
    from benchmarks.load import SECRET, _approve_button, served_setup

    kill = replicas > 1
    n = max(2, int(plan.rate * plan.seconds(kill=kill)))
    t_made = time.perf_counter()
    fresh: Any = None
    with served_setup(
        tmp,
        label=f"faults-{name.replace(' ', '-')}",
        replicas=replicas,
        postgres_url=postgres_url,
        paused=n,
        post_timeout=300.0,
    ) as served:
        try:
            fake, db, url, env, started = (
                served.fake,
                served.db,
                served.url,
                served.env,
                served.replicas,
            )
            print(
                f"  {n} paused runs made and their pause messages posted in "
                f"{time.perf_counter() - t_made:.1f} s; clicking at {plan.rate:g}/s "
                f"for about {n / plan.rate:.0f} s"
            )
            pauses = served.pauses
            run_ids = [served.run_by_token[_approve_button(m)[1]["value"]] for m in pauses]
            bodies = bi.click_bodies(fake.state, pauses)
            db.dispose()  # its connections would be terminated by the database fault
            faults = Faults(fake, started, env, url, postgres_url)
            t0 = time.perf_counter() + 1.0
            wall_t0 = time.time() + 1.0
            pids = {r.name: [r.proc.pid] for r in started}
            future = sender.submit(
                send_through_balancer,
                [r.events_url for r in started],
                SECRET,
                bodies,
                plan.rate,
                t0,
            )
            windows = run_schedule(faults, plan, t0, kill=kill, sqlite=postgres_url is None)
            for r in started:
                if r.proc.pid not in pids[r.name]:
                    pids[r.name].append(r.proc.pid)  # restarted
            faults.notes.insert(
                0,
                f"t0 = {time.strftime('%H:%M:%S', time.gmtime(wall_t0))} UTC; replica pids: "
                + ", ".join(f"{name} {'/'.join(map(str, p))}" for name, p in pids.items()),
            )
            clicks = future.result(timeout=n / plan.rate + 2 * CLICK_TIMEOUT_S + 60.0)
            down = sum(
                1 for call in fake.state.calls() if call.status == HTTPStatus.SERVICE_UNAVAILABLE
            )
            faults.notes.insert(0, f"Slack down: {down} Web API calls answered 503")
            fresh = _fresh_db(url)
            acked = [run_ids[i] for i, c in enumerate(clicks) if c[3] == 200]
            answered = [c[2] for c in clicks if c[3] != -1]
            drained = _drain(fresh, acked, max(answered) if answered else time.perf_counter())
            verdict = _verify(fresh, fake.state, run_ids)
            outbox = _outbox_states(fresh)
            for i, run_id in enumerate(run_ids):  # what a person saw of an acked run not completed
                state = verdict.status.get(run_id)
                if clicks[i][3] == 200 and state != "completed" and len(faults.notes) < 12:
                    said = " | ".join(verdict.thread_notes.get(run_id, []))[:240] or "no note"
                    faults.notes.append(f"run {run_id} (click {i}) {state}: {said}")
            logs = "\n".join(r.log() for r in started)
            faults.notes += _log_evidence(
                logs,
                [
                    rid
                    for rid, c in zip(run_ids, clicks, strict=True)
                    if c[3] == 200 and verdict.status.get(rid) != "completed"
                ],
            )
            return SetupResult(
                name=name,
                plan=plan,
                clicks=clicks,
                run_ids=run_ids,
                windows=windows,
                verdict=verdict,
                drained_after_s=drained,
                notes=faults.notes,
                log_problems={
                    "tracebacks": logs.count("Traceback (most recent call last)"),
                    "ERROR lines": logs.count(" ERROR "),
                },
                log_kinds=_log_kinds(logs),
                outbox_not_sent=outbox,
            )
        finally:
            served.fake.state.clear_faults()
            if fresh is not None:
                fresh.dispose()


# -- figures ------------------------------------------------------------------------------------
@dataclass
class Figures:
    clicks: int = 0
    acks: list[float] = field(default_factory=list)
    refused: int = 0  # 503: not recorded, the person is told
    other_status: collections.Counter[int] = field(default_factory=collections.Counter)
    no_answer: int = 0
    resent: int = 0
    lost: int = 0  # 200, yet no decision stored
    refused_yet_applied: int = 0  # 503, yet decided (told it failed; it went through)
    doubled: int = 0
    posted_twice: int = 0
    notes_twice: int = 0
    not_completed: collections.Counter[str] = field(default_factory=collections.Counter)
    acked_not_completed: collections.Counter[str] = field(default_factory=collections.Counter)

    @property
    def ack(self) -> Summary:
        return Summary.of(self.acks)

    @property
    def over_limit(self) -> int:
        return sum(1 for a in self.acks if a * 1e3 >= ACK_LIMIT_MS)


def figures(result: SetupResult, indices: Sequence[int]) -> Figures:
    v = result.verdict
    out = Figures()
    for i in indices:
        _scheduled, sent, answered, status, _error, resent, _k = result.clicks[i]
        run_id = result.run_ids[i]
        decided = v.decisions.get(run_id, 0)
        out.clicks += 1
        out.resent += bool(resent)
        if status == -1:
            out.no_answer += 1
        else:
            out.acks.append(answered - sent)
        if status == 200:
            out.lost += decided == 0
        elif status == 503:
            out.refused += 1
            out.refused_yet_applied += decided > 0
        elif status != -1:
            out.other_status[status] += 1
        out.doubled += decided > 1
        out.posted_twice += v.posted_twice.get(run_id, 0)
        out.notes_twice += v.notes_twice.get(run_id, 0)
        state = v.status.get(run_id, "missing")
        if state != "completed":
            out.not_completed[state] += 1
            if status == 200:
                out.acked_not_completed[state] += 1
    return out


def _window_of(windows: list[Window], sent: float) -> int:
    for w, window in enumerate(windows):
        if window.start <= sent < window.end:
            return w
    return 0 if sent < windows[0].start else len(windows) - 1


def print_setup(result: SetupResult) -> tuple[Figures, list[tuple[Window, Figures]]]:
    groups: dict[int, list[int]] = collections.defaultdict(list)
    for i, click in enumerate(result.clicks):
        groups[_window_of(result.windows, click[1])].append(i)
    t0 = result.windows[0].start
    rows = []
    per_window: list[tuple[Window, Figures]] = []
    for w, window in enumerate(result.windows):
        f = figures(result, groups.get(w, []))
        per_window.append((window, f))
        end = window.end if window.end != float("inf") else max(c[1] for c in result.clicks)
        rows.append((f"{window.name} [{window.start - t0:.0f}-{end - t0:.0f} s]", f))
    overall = figures(result, range(len(result.clicks)))
    rows.append(("overall", overall))
    # A click refused in clean time: how near the fault next to it (a click sent just before
    # a fault may meet it; one sent well after may be its aftermath).
    refused_clean: list[str] = []
    for w, window in enumerate(result.windows):
        if window.fault:
            continue
        before = result.windows[w - 1] if w > 0 else None
        after = result.windows[w + 1] if w + 1 < len(result.windows) else None
        for i in groups.get(w, []):
            _scheduled, sent, answered, status, error, _resent, _k = result.clicks[i]
            if status in (200, -1):
                continue
            near = []
            if before is not None:
                near.append(f"{(sent - before.end) * 1e3:.0f} ms after {before.short} ended")
            if after is not None:
                near.append(f"{(after.start - sent) * 1e3:.0f} ms before {after.short}")
            refused_clean.append(
                f"click {i} answered {status} in {(answered - sent) * 1e3:.0f} ms "
                f"({error[:60]!r}) in clean time, sent {', '.join(near)}"
            )
    result.notes += refused_clean[:6]
    if len(refused_clean) > 6:
        result.notes.append(f"... and {len(refused_clean) - 6} more clicks refused in clean time")
    print(
        f"  {'window [from t0]':<36} {'clicks':>6} {'p50':>7} {'p99':>7} {'max':>7}"
        f" {'>=3s':>5} {'503':>5} {'no ans':>6} {'resent':>6} {'lost':>5} {'dbl':>4}"
        f" {'twice':>5} {'not done':>8}"
    )
    for label, f in rows:
        a = f.ack
        print(
            f"  {label:<36} {f.clicks:>6} {a.p50_ms:>7.0f} {a.p99_ms:>7.0f} {a.max_ms:>7.0f}"
            f" {f.over_limit:>5} {f.refused:>5} {f.no_answer:>6} {f.resent:>6} {f.lost:>5}"
            f" {f.doubled:>4} {f.posted_twice + f.notes_twice:>5}"
            f" {sum(f.not_completed.values()):>8}"
        )
    print("  (ack p50/p99/max in ms, from the first send to the answer; 'twice': messages")
    print(
        "   posted twice by outbox key, plus notes twice by text; 'not done': runs not completed)"
    )
    drained = (
        f"{result.drained_after_s:.1f} s"
        if result.drained_after_s is not None
        else f"not within {DRAIN_S:g} s"
    )
    kinds = dict(result.verdict.posted_twice_kinds) or 0
    print_kv(
        [
            ("backlog applied, after the last answer", drained),
            ("acked (200) yet lost / doubled", f"{overall.lost} / {overall.doubled}"),
            (
                "503 (not recorded; told) / yet applied",
                f"{overall.refused} / {overall.refused_yet_applied}",
            ),
            ("other statuses", str(dict(overall.other_status) or 0)),
            ("no answer / re-sent after a failed conn.", f"{overall.no_answer} / {overall.resent}"),
            ("posted twice by key (kinds) / notes by text", f"{kinds} / {overall.notes_twice}"),
            ("runs not completed (by status)", str(dict(overall.not_completed) or 0)),
            ("  of them acked with a 200", str(dict(overall.acked_not_completed) or 0)),
            ("outbox rows not sent", str(result.outbox_not_sent or 0)),
            ("bot logs", ", ".join(f"{k} {n}" for k, n in result.log_problems.items())),
            *((f"  {n}x", kind) for kind, n in result.log_kinds[:10]),
            *(("note", note) for note in result.notes),
        ],
        width=44,
    )
    return overall, per_window


def faults_main(args: argparse.Namespace) -> int:
    import logging
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from benchmarks import bot_interactions as bi

    warnings = bi.WarningCounter()
    logging.basicConfig(level=logging.WARNING, handlers=[warnings])
    plan = QUICK if args.quick else FULL
    setups: list[tuple[str, int, str | None]] = []
    if not args.skip_postgres:
        setups.append(("PG x2", 2, args.postgres_url))
    setups.append(("SQLite", 1, None))
    print(
        f"benchmarks.load --faults{' --quick' if args.quick else ''}: "
        f"{'; '.join(s[0] for s in setups)}; {plan.rate:g} clicks/s throughout; Slack down "
        f"{plan.down_s:g} s, slow {plan.slow_s:g} s, 500 after acting {plan.after_acting_s:g} s, "
        f"a replica killed {plan.killed_s:g} s (PG), the database {plan.database_s:g} s; "
        f"{plan.gap_s:g} s clean between; {os.cpu_count()} CPUs"
    )
    tmp = Path(tempfile.mkdtemp(prefix="signoff-faults-"))
    results: list[tuple[SetupResult, Figures, list[tuple[Window, Figures]]]] = []
    try:
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as sender:
            before = time.perf_counter()
            child = sender.submit(bi.clock_probe).result(timeout=60)
            if not before <= child <= time.perf_counter():
                raise RuntimeError("the sender does not share this process's monotonic clock")
            for number, (label, replicas, pg_url) in enumerate(setups, 1):
                where = "two replicas on PostgreSQL" if replicas > 1 else "one replica on SQLite"
                print_header(f"{number}. {label}: {where}, faults under {plan.rate:g} clicks/s")
                result = fault_setup(
                    label, plan, sender, tmp, replicas=replicas, postgres_url=pg_url
                )
                overall, per_window = print_setup(result)
                results.append((result, overall, per_window))
                bi.print_warnings(warnings)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rows: list[tuple[str, str, str, bool | None]] = []
    for result, overall, per_window in results:
        name = result.name
        clean = overall.lost == 0 and overall.doubled == 0
        rows.append(
            (
                f"{name}: acked yet lost / doubled",
                "0 / 0",
                f"{overall.lost} / {overall.doubled}",
                clean,
            )
        )
        twice = f"{overall.posted_twice} / {overall.notes_twice}"
        rows.append(
            (
                f"{name}: posted twice: msgs / notes",
                "0 / 0",
                twice,
                overall.posted_twice == 0 and overall.notes_twice == 0,
            )
        )
        for window, f in per_window:
            if window.fault:
                rows.append(
                    (
                        f"{name}, {window.short}: ack p99/max",
                        f"max < {ACK_LIMIT_MS:.0f} ms",
                        f"{f.ack.p99_ms:.0f} / {f.ack.max_ms:.0f} ms",
                        f.over_limit == 0 and f.no_answer == 0,
                    )
                )
        rows.append(
            (
                f"{name}: acks >= 3 s / no answer",
                "0 / 0",
                f"{overall.over_limit} / {overall.no_answer}",
                overall.over_limit == 0 and overall.no_answer == 0,
            )
        )
        rows.append(
            (f"{name}: 503 (told) / re-sent", "", f"{overall.refused} / {overall.resent}", None)
        )
        stuck = sum(overall.acked_not_completed.values())
        by_status = ", ".join(f"{k} {n}" for k, n in sorted(overall.acked_not_completed.items()))
        rows.append(
            (
                f"{name}: acked, run not completed",
                "0",
                f"{stuck} ({by_status})" if stuck else "0",
                stuck == 0,
            )
        )
        drained = result.drained_after_s
        rows.append(
            (
                f"{name}: backlog drained after",
                f"< {DRAIN_S:g} s",
                f"{drained:.1f} s" if drained is not None else "not drained",
                drained is not None,
            )
        )
    print_summary(rows)
    return 0
