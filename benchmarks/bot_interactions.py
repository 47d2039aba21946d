"""Bot benchmark: signed Approve clicks against the served bot at a steady rate.

    .venv/bin/python -m benchmarks.bot_interactions                # 1000 clicks at 50/s
    .venv/bin/python -m benchmarks.bot_interactions --quick        # smoke run, ~1 minute
    .venv/bin/python -m benchmarks.bot_interactions --rate 100 --clicks 2000

Set-up: the Slack Web API fake and the bot (``bot.server.Runtime`` on a SQLite file in a
temp dir, production defaults for the outbox and scheduler) are both served over real HTTP
on 127.0.0.1. N runs of a workflow (a step needing confirmation, then one more step) are
started through the engine (``workflow.run``), so the bot's outbox posts their pause
messages; the benchmark waits until all N exist in the fake.

Clicks: real ``block_actions`` payloads built from the stored pause messages, signed at
send time, sent on an open-loop schedule (click i at t0 + i/rate, whatever earlier acks
do) over asyncio streams (``benchmarks/_sender.py``) in a separate process, so the sender
never competes with the servers for this process's GIL (a real Slack is on another
machine). Measured:

  * ack latency: the HTTP response time of each click;
  * click-to-update: from sending the click to the fake recording the ``chat.update`` of
    that very pause message with "Approved" (a change listener on the fake's state
    timestamps it; both processes read the same system-wide monotonic clock).

The floor, in the same run and at the same rate: a Bolt app with a listener that only
calls ``ack()`` (ack floor), then one that calls ``ack()`` then ``client.chat_update`` to the
fake directly (update floor), served through the same Starlette/uvicorn path. The engine's
continue (claim + remaining step, ``continue_run`` after ``confirm``) is timed in-process
on its own SQLite file while the bot is idle. Figures are printed, never asserted: the
targets are for the 2-core reference machine.

Order: 1 set-up (and the fake's own chat.update time at that channel size, for reference),
2 engine continue, 3 ack floor, 4 update floor, 5 the bot (with a check that every run has
exactly one decision and completed), then a summary with the targets. Warnings logged
meanwhile are counted, not printed one by one. Bounded: set-up and settling have time
limits; everything after is reported as missing, not waited for.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from benchmarks._stats import (
    Summary,
    peak_rss_mb,
    print_header,
    print_kv,
    print_latency_table,
    print_summary,
)

TARGET_ACK_P99_MS = 100.0  # at 50 clicks/s on 2 cores
TARGET_CORES = 2
SECRET = "bench-signing-secret"
APPROVER = "U0ALICE"
REQUESTER = "U0CAROL"
FLOOR_CHANNEL = "C0BENCHFLOOR"
WORKFLOW_NAME = "bench_approve"
APPROVED = "Approved"
SETUP_TIMEOUT_S = 300.0  # pre-creating the paused runs and their messages
SETTLE_TIMEOUT_S = 60.0  # after the last click: updates, outbox, run completion
ENGINE_WARMUP = 20


# -- the workflow under test -----------------------------------------------------------------
def _gate(step_input: Any) -> Any:
    from engine import StepOutput

    return StepOutput(content=f"gate passed for {step_input.input}")


def _after(step_input: Any) -> Any:
    from engine import StepOutput

    return StepOutput(content=f"after: {step_input.previous_step_content}")


def build_workflow(db: Any = None) -> Any:
    """One step that needs a confirmation, plus one more step after it."""
    from engine import Step, Workflow

    return Workflow(
        name=WORKFLOW_NAME,
        description="benchmark: one confirmation, then one step",
        db=db,
        steps=[
            Step(
                name="gate",
                executor=_gate,
                requires_confirmation=True,
                confirmation_message="Ship it?",
            ),
            Step(name="after", executor=_after),
        ],
    )


# -- watching the fake -------------------------------------------------------------------------
class MessageWatch:
    """A change listener on the fake's state: the first time a watched message (kind of change,
    optional set of ``(channel, ts)`` keys) matches ``match``, its ``perf_counter`` time is
    recorded. It runs on the fake's request thread under the state lock, so it stays small."""

    def __init__(
        self,
        state: Any,
        kind: str,
        match: Callable[[Any], bool],
        *,
        keys: set[tuple[str, str]] | None = None,
        expected: int = 0,
    ) -> None:
        import threading

        self.state = state
        self.kind = kind
        self.match = match
        self.keys = keys
        self.expected = expected
        self.hits: dict[tuple[str, str], float] = {}
        self.messages: dict[tuple[str, str], Any] = {}
        self.done = threading.Event()
        self._lock = threading.Lock()
        if expected == 0:
            self.done.set()

    def __call__(self, event: Any) -> None:
        if event.kind != self.kind or event.channel is None or event.ts is None:
            return
        key = (event.channel, event.ts)
        if key in self.hits or (self.keys is not None and key not in self.keys):
            return
        at = time.perf_counter()
        message = self.state.message(*key)  # re-entrant lock: already held by the caller
        if message is None or not self.match(message):
            return
        with self._lock:
            self.hits[key] = at
            self.messages[key] = message
            if self.expected and len(self.hits) >= self.expected:
                self.done.set()

    def snapshot(self) -> dict[tuple[str, str], float]:
        with self._lock:
            return dict(self.hits)

    def wait(self, timeout: float) -> bool:
        return self.done.wait(timeout)


def _has_approve_button(message: Any) -> bool:
    from bot import blocks

    for block in message.blocks:
        if block.get("type") != "actions":
            continue
        for element in block.get("elements") or []:
            if element.get("action_id") == blocks.ACTION_APPROVE:
                return True
    return False


def _shows_approved(message: Any) -> bool:
    return APPROVED in message.text or APPROVED in str(message.blocks)


# -- the sender (runs in a child process) ------------------------------------------------------
def clock_probe() -> float:
    return time.perf_counter()


def send_clicks(
    url: str | Sequence[str],
    secret: str,
    bodies: Sequence[str],
    rate: float,
    lead_s: float = 0.3,
) -> list[tuple[float, float, float, int, str]]:
    """Send ``bodies`` (form bodies of interactions) open-loop: body i at t0 + i/rate, to
    ``url`` (several: in turn, as a load balancer in front of replicas would).

    Returns, per click, ``(scheduled, sent, answered, status, error)`` in ``perf_counter``
    seconds; status -1 when no HTTP answer came (``error`` says why)."""
    urls = [url] if isinstance(url, str) else list(url)
    return asyncio.run(_send_clicks(urls, secret, list(bodies), rate, lead_s))


async def _send_clicks(
    urls: list[str], secret: str, bodies: list[str], rate: float, lead_s: float
) -> list[tuple[float, float, float, int, str]]:
    from benchmarks._sender import HttpError, Poster
    from bot.sandbox.payloads import signed_headers

    results: list[tuple[float, float, float, int, str]] = [(0.0, 0.0, 0.0, -1, "not sent")] * len(
        bodies
    )
    posters = [Poster(url, timeout=30.0) for url in urls]

    async def one(i: int, scheduled: float, body: bytes, headers: dict[str, str]) -> None:
        sent = time.perf_counter()
        try:
            status, error = await posters[i % len(posters)].post(body, headers), ""
        except HttpError as exc:
            status, error = -1, f"{type(exc).__name__}: {exc}"
        results[i] = (scheduled, sent, time.perf_counter(), status, error)

    tasks = []
    t0 = time.perf_counter() + lead_s
    for i, text in enumerate(bodies):
        scheduled = t0 + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        headers = signed_headers(text, secret)  # signed when sent, as Slack does
        tasks.append(asyncio.create_task(one(i, scheduled, text.encode(), headers)))
    await asyncio.gather(*tasks)
    for poster in posters:
        await poster.close()
    return results


# -- one phase of clicks -----------------------------------------------------------------------
@dataclass
class Phase:
    name: str
    rate: float
    warmup: int
    results: list[tuple[float, float, float, int, str]]
    update_at: dict[int, float] = field(default_factory=dict)  # click index -> update seen
    expects_updates: bool = True

    @property
    def measured(self) -> range:
        return range(self.warmup, len(self.results))

    @property
    def acks(self) -> list[float]:
        return [
            self.results[i][2] - self.results[i][1]
            for i in self.measured
            if self.results[i][3] != -1
        ]

    @property
    def click_to_update(self) -> list[float]:
        return [
            self.update_at[i] - self.results[i][1] for i in self.measured if i in self.update_at
        ]

    @property
    def schedule_lag(self) -> list[float]:
        return [self.results[i][1] - self.results[i][0] for i in self.measured]

    @property
    def errors(self) -> int:
        return sum(1 for r in self.results if r[3] != 200)

    @property
    def error_kinds(self) -> dict[str, int]:
        kinds: dict[str, int] = {}
        for r in self.results:
            if r[3] != 200:
                key = r[4].split(":")[0] if r[3] == -1 else f"HTTP {r[3]}"
                kinds[key] = kinds.get(key, 0) + 1
        return kinds

    @property
    def missing_updates(self) -> int:
        if not self.expects_updates:
            return 0
        return sum(1 for i in range(len(self.results)) if i not in self.update_at)

    @property
    def achieved_rate(self) -> float:
        sent = [self.results[i][1] for i in self.measured]
        if len(sent) < 2 or max(sent) == min(sent):
            return float("nan")
        return (len(sent) - 1) / (max(sent) - min(sent))


def click_phase(
    name: str,
    *,
    executor: ProcessPoolExecutor,
    state: Any,
    url: str | Sequence[str],
    bodies: list[str],
    keys: list[tuple[str, str]],
    rate: float,
    warmup: int,
    expects_updates: bool,
    secret: str = SECRET,
) -> Phase:
    watch = MessageWatch(
        state,
        "message.updated",
        _shows_approved,
        keys=set(keys) if expects_updates else set(),
        expected=len(keys) if expects_updates else 0,
    )
    unsubscribe = state.add_listener(watch)
    try:
        budget = len(bodies) / rate + SETTLE_TIMEOUT_S + 30.0
        results = executor.submit(send_clicks, url, secret, bodies, rate).result(timeout=budget)
        if expects_updates:
            watch.wait(SETTLE_TIMEOUT_S)
    finally:
        unsubscribe()
    index = {key: i for i, key in enumerate(keys)}
    update_at = {index[key]: at for key, at in watch.snapshot().items()}
    return Phase(name, rate, warmup, results, update_at, expects_updates)


def print_phase(phase: Phase) -> None:
    rows = [("ack (HTTP response)", Summary.of(phase.acks))]
    if phase.expects_updates:
        rows.append(("click -> chat.update seen", Summary.of(phase.click_to_update)))
    rows.append(("sender lag behind schedule", Summary.of(phase.schedule_lag)))
    print_latency_table(rows)
    kv = [
        ("clicks measured (+ warm-up)", f"{len(phase.measured)} (+{phase.warmup})"),
        ("rate sent", f"{phase.achieved_rate:.1f}/s  (asked {phase.rate:g}/s)"),
        (
            "errors (no answer or non-200)",
            f"{phase.errors}  {phase.error_kinds if phase.errors else ''}".rstrip(),
        ),
    ]
    if phase.expects_updates:
        kv.append(("pause messages never updated", str(phase.missing_updates)))
    print_kv(kv)


# -- the floor: a Bolt app that does nothing else ----------------------------------------------
def build_floor_app(client: Any, *, update: bool) -> Any:
    """Bolt configured like the bot (same authorization, ack before processing), with one
    listener: ``ack()``, and with ``update`` a direct ``chat.update`` of the clicked message."""
    from slack_bolt import Ack, App

    from bot import blocks
    from bot.app import cached_authorization

    app = App(
        client=client,
        signing_secret=SECRET,
        authorize=cached_authorization(client),
        process_before_response=False,
        logger=logging.getLogger("bench.floor"),
    )

    @app.action(blocks.ACTION_APPROVE)
    def approve(ack: Ack, body: dict[str, Any], client: Any) -> None:
        ack()
        if not update:
            return
        container = body.get("container") or {}
        user = (body.get("user") or {}).get("id")
        client.chat_update(
            channel=container.get("channel_id"),
            ts=container.get("message_ts"),
            text=f"{APPROVED} by <@{user}>",
            blocks=[
                {
                    "type": "section",
                    "text": {
                        "type": "mrkdwn",
                        "text": f":white_check_mark: *{APPROVED}* by <@{user}>",
                    },
                }
            ],
        )

    return app


def floor_messages(state: Any, template: Any, n: int, label: str) -> list[Any]:
    """``n`` thread replies in the floor channel carrying the blocks of a real pause message
    (so payloads are the same size as the bot's)."""
    root = state.post_message(
        FLOOR_CHANNEL, text=f"floor {label}", user=state.bot_user_id, bot_id=state.bot_id
    )
    return [
        state.post_message(
            FLOOR_CHANNEL,
            text=template.text,
            blocks=template.blocks,
            thread_ts=root.ts,
            user=state.bot_user_id,
            bot_id=state.bot_id,
        )
        for _ in range(n)
    ]


def click_bodies(state: Any, messages: Sequence[Any]) -> list[str]:
    """One Approve click per message, as Slack would send it (unique action_ts each)."""
    from bot import blocks
    from bot.sandbox import block_actions_payload, interactive_body

    bodies, seen = [], set()
    for message in messages:
        payload = block_actions_payload(
            state, user_id=APPROVER, source=message, action_id=blocks.ACTION_APPROVE
        )
        action = payload["actions"][0]
        while action["action_ts"] in seen:  # two clicks in one microsecond: not a real case
            action["action_ts"] = f"{float(action['action_ts']) + 1e-6:.6f}"
        seen.add(action["action_ts"])
        bodies.append(interactive_body(payload))
    return bodies


def serve_bolt(app: Any) -> Any:
    """Serve a Bolt app through the bot's own Starlette handler on uvicorn (``ServerThread``)."""
    from bot.metrics import Metrics
    from bot.pressure import FrontDoorPressure
    from bot.server import ServerThread, make_asgi

    # What make_asgi reads from a Runtime: the secret, the Bolt app, the metrics it records
    # and the front door's pressure it reports.
    shim = SimpleNamespace(
        signing_secret=SECRET,
        bolt=app,
        db=None,
        signoff=SimpleNamespace(metrics=Metrics(), pressure=FrontDoorPressure()),
    )
    return ServerThread(make_asgi(shim)).start()  # type: ignore[arg-type]


# -- the engine's continue, in-process ---------------------------------------------------------
def bench_engine_continue(tmp: str, n: int) -> list[float]:
    """``continue_run`` (claim + the remaining step) after ``confirm()``, on its own file."""
    from engine import RunStatus
    from engine.db.sqlite import SqliteDb

    db = SqliteDb(db_file=os.path.join(tmp, "engine-continue.db"))
    try:
        wf = build_workflow(db)
        samples = []
        for i in range(ENGINE_WARMUP + n):
            run = wf.run(f"item {i}", user_id=REQUESTER)
            run.step_requirements[0].confirm(by=APPROVER)
            t0 = time.perf_counter()
            done = wf.continue_run(run)
            elapsed = time.perf_counter() - t0
            if done.status is not RunStatus.completed:
                raise RuntimeError(f"engine continue ended {done.status!r}")
            if i >= ENGINE_WARMUP:
                samples.append(elapsed)
        return samples
    finally:
        db.dispose()


# -- the bot -----------------------------------------------------------------------------------
@dataclass
class BotSetup:
    fake: Any
    runtime: Any
    server: Any
    workflow: Any
    run_by_token: dict[str, str]
    pauses: list[Any]  # pause messages, in creation order
    create_s: float
    messages_s: float


def start_bot(tmp: str, n: int) -> BotSetup:
    from pydantic import SecretStr

    from bot import blocks
    from bot.config import Settings
    from bot.routing import SlackRoute
    from bot.sandbox import DEFAULT_CHANNEL_ID, SlackFakeServer, find_element
    from bot.server import Runtime, ServerThread
    from engine import RunStatus
    from engine.db.sqlite import SqliteDb

    fake = SlackFakeServer().start()
    fake.state.add_channel(FLOOR_CHANNEL, "bench-floor")
    db_file = Path(tmp) / "signoff.db"
    # Production defaults otherwise: outbox poll 0.5 s (woken at once by new items),
    # scheduler running with its 5 s sync of paused runs, 8 workers.
    settings = Settings(
        SLACK_BOT_TOKEN=SecretStr(fake.state.bot_token),
        SLACK_SIGNING_SECRET=SecretStr(SECRET),
        SLACK_API_URL=fake.api_url,
        SIGNOFF_CHANNEL=DEFAULT_CHANNEL_ID,
        SIGNOFF_DATABASE_URL=f"sqlite:///{db_file}",
    )
    wf = build_workflow()
    runtime = Runtime(
        settings,
        routes=[SlackRoute(workflow=wf, approvers=(APPROVER,))],
        db=SqliteDb(db_file=db_file),
    )
    runtime.start()
    server = ServerThread(runtime.asgi).start()

    watch = MessageWatch(fake.state, "message.posted", _has_approve_button, expected=n)
    unsubscribe = fake.state.add_listener(watch)
    run_by_token: dict[str, str] = {}
    try:
        t0 = time.perf_counter()
        for i in range(n):
            run = wf.run(f"item {i}", user_id=REQUESTER)
            if run.status is not RunStatus.paused:
                raise RuntimeError(f"run {i} is {run.status!r}, expected paused")
            run_by_token[run.step_requirements[0].requirement_id] = run.run_id
        create_s = time.perf_counter() - t0
        if not watch.wait(SETUP_TIMEOUT_S):
            raise TimeoutError(f"only {len(watch.hits)} of {n} pause messages were posted")
        messages_s = time.perf_counter() - t0
    finally:
        unsubscribe()
    _wait_outbox_idle(runtime, SETUP_TIMEOUT_S)
    pauses = sorted(watch.messages.values(), key=lambda m: m.ts)
    for message in pauses:
        if _shows_approved(message):
            raise RuntimeError("a pause message already says 'Approved': the probe would lie")
        _, button = find_element(message.blocks, blocks.ACTION_APPROVE)
        if button.get("value") not in run_by_token:
            raise RuntimeError(f"pause message {message.ts} carries an unknown token")
    return BotSetup(fake, runtime, server, wf, run_by_token, pauses, create_s, messages_s)


def _wait_outbox_idle(runtime: Any, timeout: float) -> dict[str, int]:
    """Set-up and settling only (not a measurement): poll the outbox until nothing is due."""
    deadline = time.monotonic() + timeout
    while True:
        counts = runtime.signoff.store.outbox_counts()
        if not counts.get("pending") and not counts.get("sending"):
            return counts
        if time.monotonic() > deadline:
            return counts
        time.sleep(0.1)


def _wait_inbox_applied(runtime: Any, timeout: float) -> dict[str, int]:
    """Settling only: poll until no recorded interaction is pending."""
    deadline = time.monotonic() + timeout
    while True:
        counts = runtime.signoff.store.inbox_counts()
        if not counts.get("pending") or time.monotonic() > deadline:
            return counts
        time.sleep(0.05)


@dataclass
class Integrity:
    runs: int
    lost: int  # no decision stored
    duplicated: int  # more than one decision stored
    not_completed: int
    refusals: int  # ephemeral answers ("already decided", "not allowed"...)
    outbox: dict[str, int]

    @property
    def exactly_one(self) -> int:
        return self.runs - self.lost - self.duplicated


def check_integrity(setup: BotSetup) -> Integrity:
    from bot.sandbox import DEFAULT_CHANNEL_ID
    from engine import RunStatus

    _wait_inbox_applied(setup.runtime, SETTLE_TIMEOUT_S)  # decisions are applied after acks
    outbox = _wait_outbox_idle(setup.runtime, SETTLE_TIMEOUT_S)
    db = setup.runtime.db
    lost = duplicated = not_completed = 0
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    for run_id in setup.run_by_token.values():
        decisions = db.get_decisions(run_id)
        lost += len(decisions) == 0
        duplicated += len(decisions) > 1
        run = db.get_run(run_id)
        while (
            run is None or run.status is not RunStatus.completed
        ) and time.monotonic() < deadline:
            time.sleep(0.05)  # settling, not measured
            run = db.get_run(run_id)
        not_completed += run is None or run.status is not RunStatus.completed
    refusals = sum(
        1 for m in setup.fake.state.messages(DEFAULT_CHANNEL_ID) if m.ephemeral_for is not None
    )
    return Integrity(len(setup.run_by_token), lost, duplicated, not_completed, refusals, outbox)


# -- diagnostics -------------------------------------------------------------------------------
class WarningCounter(logging.Handler):
    """Counts warnings and errors by logger and message start instead of printing each one
    (under overload Bolt logs a long suggestion per unanswered click)."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.counts: dict[tuple[str, str], int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        try:
            first = record.getMessage().splitlines()[0][:70]
        except Exception:  # a record that cannot be formatted is still counted
            first = str(record.msg)[:70]
        key = (record.name, first)
        self.counts[key] = self.counts.get(key, 0) + 1

    def take(self) -> list[tuple[str, str, int]]:
        rows = sorted(((n, k) for k, n in self.counts.items()), reverse=True)
        self.counts = {}
        return [(name, message, n) for n, (name, message) in rows]


def print_warnings(counter: WarningCounter, top: int = 6) -> None:
    rows = counter.take()
    if not rows:
        print_kv([("warnings logged", "none")])
        return
    print(f"  warnings logged ({sum(n for *_, n in rows)}), most frequent:")
    for name, message, n in rows[:top]:
        print(f"    {n:>6}x {name}: {message}")


def probe_fake_update(
    state: Any, client: Any, channel: str, samples: int = 20
) -> tuple[Summary, Summary, int]:
    """The fake's own chat.update time for a top-level message vs a thread reply, in the
    channel the bot posts to, at its current size (a reference for the figures below)."""
    root = state.post_message(channel, text="probe", user=state.bot_user_id, bot_id=state.bot_id)
    reply = state.post_message(
        channel, text="probe reply", thread_ts=root.ts, user=state.bot_user_id, bot_id=state.bot_id
    )
    size = len(state.messages(channel))
    timings: dict[str, list[float]] = {"root": [], "reply": []}
    for i in range(samples):
        for kind, message in (("root", root), ("reply", reply)):
            t0 = time.perf_counter()
            client.chat_update(channel=channel, ts=message.ts, text=f"probe {i}")
            timings[kind].append(time.perf_counter() - t0)
    return Summary.of(timings["root"]), Summary.of(timings["reply"]), size


# -- main --------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bot_interactions",
        description="Signed Approve clicks against the served bot at a steady rate, "
        "with a no-op Bolt app as the floor; prints figures.",
    )
    parser.add_argument("--rate", type=float, default=50.0, help="clicks per second (50)")
    parser.add_argument("--clicks", type=int, default=1000, help="measured clicks per phase (1000)")
    parser.add_argument("--quick", action="store_true", help="small smoke run (200 clicks)")
    parser.add_argument("--tmp-dir", default=None, help="where the SQLite files go")
    args = parser.parse_args(argv)
    if args.quick:
        args.clicks = min(args.clicks, 200)
    if args.clicks < 2 or not 0 < args.rate <= 1000:
        parser.error("--clicks must be >= 2 and 0 < --rate <= 1000")
    warmup = 10 if args.quick else 20
    n = args.clicks + warmup
    warnings = WarningCounter()
    logging.basicConfig(level=logging.WARNING, handlers=[warnings])

    import slack_bolt.version
    import slack_sdk

    from bot.sandbox import DEFAULT_CHANNEL_ID
    from bot.server import make_client

    tmp = tempfile.mkdtemp(prefix="signoff-bot-bench-", dir=args.tmp_dir)
    spawn = multiprocessing.get_context("spawn")
    setup: BotSetup | None = None
    try:
        with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as sender:
            before = time.perf_counter()
            child_clock = sender.submit(clock_probe).result(timeout=60)
            after = time.perf_counter()
            if not before <= child_clock <= after:
                raise RuntimeError(
                    "the sender process does not share this process's "
                    "monotonic clock; click-to-update cannot be measured"
                )

            print("Signoff bot interactions benchmark")
            print_kv(
                [
                    ("python", sys.version.split()[0]),
                    (
                        "slack_bolt / slack_sdk",
                        f"{slack_bolt.version.__version__} / {slack_sdk.version.__version__}",
                    ),
                    ("cpus", str(os.cpu_count())),
                    (
                        "rate / measured clicks per phase",
                        f"{args.rate:g}/s / {args.clicks} (+{warmup} warm-up, not counted)",
                    ),
                    ("sender", "asyncio streams in a child process, open loop"),
                    ("traffic", "127.0.0.1 only: sender -> bot/floor -> Slack fake"),
                ]
            )

            print_header(f"1. Set-up: bot on SQLite ({tmp}), {n} paused runs")
            setup = start_bot(tmp, n)
            state = setup.fake.state
            print_kv(
                [
                    ("workflow", "gate (confirmation) -> after"),
                    ("runs started (workflow.run)", f"{n} in {setup.create_s:.2f} s"),
                    ("all pause messages posted after", f"{setup.messages_s:.2f} s"),
                    ("bot", setup.server.url + "/slack/events"),
                    ("Slack fake", setup.fake.api_url),
                ]
            )
            client = make_client(setup.runtime.settings)
            root_s, reply_s, size = probe_fake_update(state, client, DEFAULT_CHANNEL_ID)
            print_kv(
                [
                    (
                        f"fake chat.update ({size} msgs)",
                        f"top-level p50 {root_s.p50_ms:.1f} ms, reply p50 {reply_s.p50_ms:.1f} ms",
                    ),
                ]
            )
            print_warnings(warnings)

            print_header(
                f"2. Engine continue in-process (claim + remaining step), {args.clicks}x, bot idle"
            )
            engine = bench_engine_continue(tmp, args.clicks)
            engine_s = Summary.of(engine)
            print_latency_table([("confirm -> continue_run", engine_s)])

            # -- the floors, then the bot: same fake, same rate, same payload size ----------
            template = setup.pauses[0]
            floors: dict[str, Phase] = {}
            for label, update in (
                ("ack floor: ack() only", False),
                ("update floor: ack() + chat.update", True),
            ):
                number = "3" if not update else "4"
                print_header(f"{number}. {label} ({args.clicks} clicks at {args.rate:g}/s)")
                messages = floor_messages(state, template, n, label)
                server = serve_bolt(build_floor_app(client, update=update))
                try:
                    floors[label] = click_phase(
                        label,
                        executor=sender,
                        state=state,
                        url=server.url + "/slack/events",
                        bodies=click_bodies(state, messages),
                        keys=[(m.channel, m.ts) for m in messages],
                        rate=args.rate,
                        warmup=warmup,
                        expects_updates=update,
                    )
                finally:
                    server.stop()
                print_phase(floors[label])
                print_warnings(warnings)
            ack_floor = floors["ack floor: ack() only"]
            update_floor = floors["update floor: ack() + chat.update"]

            print_header(f"5. The bot: Approve clicks ({args.clicks} at {args.rate:g}/s)")
            fresh = [state.message(m.channel, m.ts) for m in setup.pauses]
            bot = click_phase(
                "bot",
                executor=sender,
                state=state,
                url=setup.server.url + "/slack/events",
                bodies=click_bodies(state, fresh),
                keys=[(m.channel, m.ts) for m in fresh],
                rate=args.rate,
                warmup=warmup,
                expects_updates=True,
            )
            print_phase(bot)
            integrity = check_integrity(setup)
            print_kv(
                [
                    (
                        "runs with exactly 1 decision",
                        f"{integrity.exactly_one} of {integrity.runs}",
                    ),
                    (
                        "lost (0) / duplicated (>1 decision)",
                        f"{integrity.lost} / {integrity.duplicated}",
                    ),
                    ("runs not completed", str(integrity.not_completed)),
                    ("ephemeral refusals sent", str(integrity.refusals)),
                    ("outbox after settling", str(integrity.outbox)),
                    ("Slack API calls (fake, whole run)", str(len(state.calls()))),
                ]
            )
            print_warnings(warnings)

        # -- summary -----------------------------------------------------------------------
        bot_ack, bot_c2u = Summary.of(bot.acks), Summary.of(bot.click_to_update)
        floor_ack = Summary.of(ack_floor.acks)
        floor_upd_ack = Summary.of(update_floor.acks)
        floor_c2u = Summary.of(update_floor.click_to_update)
        c2u_target = 2 * floor_c2u.p50_ms + engine_s.p50_ms
        cpus = os.cpu_count() or 0
        errors = ack_floor.errors + update_floor.errors + bot.errors
        rows: list[tuple[str, str, str, bool | None]] = [
            ("cpus", f"{TARGET_CORES} (ref.)", str(cpus), None),
            (
                "click rate sent (bot)",
                f"{args.rate:g}/s",
                f"{bot.achieved_rate:.1f}/s",
                bot.achieved_rate >= 0.95 * args.rate,
            ),
            (
                "bot ack p99",
                f"< {TARGET_ACK_P99_MS:.0f} ms",
                f"{bot_ack.p99_ms:.1f} ms",
                bot_ack.p99_ms < TARGET_ACK_P99_MS,
            ),
            ("bot ack p50 / max", "", f"{bot_ack.p50_ms:.1f} / {bot_ack.max_ms:.1f} ms", None),
            (
                "floor ack p50 / p99 (ack only)",
                "",
                f"{floor_ack.p50_ms:.1f} / {floor_ack.p99_ms:.1f} ms",
                None,
            ),
            (
                "floor ack p50 / p99 (+update)",
                "",
                f"{floor_upd_ack.p50_ms:.1f} / {floor_upd_ack.p99_ms:.1f} ms",
                None,
            ),
            (
                "bot click-to-update p50",
                f"<= {c2u_target:.1f} ms",
                f"{bot_c2u.p50_ms:.1f} ms",
                bot_c2u.p50_ms <= c2u_target,
            ),
            (
                "  = 2 x floor p50 + engine p50",
                "",
                f"2x{floor_c2u.p50_ms:.1f}+{engine_s.p50_ms:.1f}",
                None,
            ),
            (
                "bot click-to-update p99 / max",
                "",
                f"{bot_c2u.p99_ms:.0f} / {bot_c2u.max_ms:.0f} ms",
                None,
            ),
            (
                "floor click-to-update p50 / p99",
                "",
                f"{floor_c2u.p50_ms:.1f} / {floor_c2u.p99_ms:.1f} ms",
                None,
            ),
            ("engine continue p50 (in-process)", "", f"{engine_s.p50_ms:.3f} ms", None),
            ("errors (non-200, all phases)", "0", str(errors), errors == 0),
            ("pause messages not updated", "0", str(bot.missing_updates), bot.missing_updates == 0),
            ("lost decisions", "0", str(integrity.lost), integrity.lost == 0),
            ("duplicated decisions", "0", str(integrity.duplicated), integrity.duplicated == 0),
            ("runs not completed", "0", str(integrity.not_completed), integrity.not_completed == 0),
            ("peak RSS (this process)", "", f"{peak_rss_mb():.0f} MiB", None),
        ]
        print_summary(rows)
        if cpus != TARGET_CORES:
            print(f"(targets are for {TARGET_CORES} cores; this machine has {cpus})")
        if args.quick:
            print("(--quick: small sample sizes, figures are indicative only)")
    finally:
        logging.disable(logging.CRITICAL)  # the outbox may still be retrying as things stop
        if setup is not None:
            setup.server.stop()
            setup.runtime.stop()
            setup.fake.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
