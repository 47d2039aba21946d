"""What the periodic poll and ``/metrics`` cost with a large history (issue 8 §3).

    .venv/bin/python -m benchmarks.poll_scale                # 100,000 finished runs
    .venv/bin/python -m benchmarks.poll_scale --runs 20000   # smaller

    .venv/bin/python -m benchmarks.poll_scale --paused 20000 # more approvals waiting

Set-up: a SQLite file with ``--runs`` finished runs (each with its JSON, as the engine
writes them), as many delivered outbox rows and applied inbox rows, written directly in
bulk (the figures are about reading them), and ``--paused`` paused runs with a deadline a
week away, made by the engine and already posted (known to the bot). Then, each timed
several times: ``/metrics``' scrape (pending approvals, outbox and inbox counts by state:
indexed counts, no JSON read), ``sync_paused_runs`` (an index read of the paused runs' pause
ids, no run's data), the poll between full sweeps (``DeadlineScheduler.poll``: only pauses
written since the last poll are read) and a full sweep (``reconcile``: every paused run
with a deadline read for its jobs, every 5 minutes), ``forget_old_outbox`` with nothing old
enough and with everything past retention. Printed beside a target of 50 ms for the scrape,
the sync and the poll (no full scan of history or of what waits).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks._stats import Summary, print_header, print_latency_table, print_summary

TARGET_MS = 50.0
REPEAT = 20


def _fill(db: Any, store: Any, n: int, now: datetime) -> None:
    from bot.store import slack_inbox, slack_outbox
    from engine.db.schema import runs, sessions

    data = json.dumps({"content": "x" * 400, "step_results": [{"content": "y" * 200}] * 3})
    batch = 5000
    with db.engine.begin() as conn:
        for start in range(0, n, batch):
            ids = [uuid.uuid4().hex for _ in range(min(batch, n - start))]
            conn.execute(
                sessions.insert(),
                [{"session_id": i, "workflow_name": "bench", "created_at": now} for i in ids],
            )
            conn.execute(
                runs.insert(),
                [
                    {
                        "run_id": i,
                        "session_id": i,
                        "workflow_name": "bench_approve",
                        "status": "completed",
                        "version": 3,
                        "created_at": now,
                        "updated_at": now,
                        "data": data,
                    }
                    for i in ids
                ],
            )
            conn.execute(
                slack_outbox.insert(),
                [
                    {
                        "dedupe_key": f"note:{i}:completed",
                        "run_id": i,
                        "kind": "note",
                        "data": json.dumps({"text": "Completed"}),
                        "state": "sent",
                        "attempts": 1,
                        "next_attempt_at": now,
                        "created_at": now,
                    }
                    for i in ids
                ],
            )
            conn.execute(
                slack_inbox.insert(),
                [
                    {
                        "request_key": f"action:U1:approve:{i}",
                        "kind": "decide",
                        "user_id": "U1",
                        "data": "{}",
                        "state": "done",
                        "attempts": 1,
                        "next_attempt_at": now,
                        "created_at": now,
                        "finished_at": now,
                    }
                    for i in ids
                ],
            )


def _time(fn: Any, repeat: int = REPEAT) -> Summary:
    seconds = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - t0)
    return Summary.of(seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.poll_scale")
    parser.add_argument("--runs", type=int, default=100_000, help="finished runs (100000)")
    parser.add_argument("--paused", type=int, default=5000, help="paused runs (5000)")
    args = parser.parse_args(argv)

    from slack_sdk import WebClient

    from bot.deadlines import Deadlines
    from bot.outbox_queue import OutboxQueue
    from bot.permissions import Groups, Permissions
    from bot.publisher import Publisher
    from bot.queries import Queries
    from bot.routing import ChannelDirectory, SlackRoute
    from bot.scheduler import DeadlineScheduler, PauseJobs
    from bot.service import Signoff
    from engine import ManualClock, Step, Workflow
    from engine.db.sqlite import SqliteDb

    tmp = Path(tempfile.mkdtemp(prefix="signoff-poll-"))
    try:
        now = datetime.now(UTC).replace(microsecond=0)
        clock = ManualClock(now)
        db = SqliteDb(db_file=tmp / "signoff.db")
        wf = Workflow(
            name="bench_approve",
            steps=[
                Step(
                    name="gate",
                    executor=lambda step_input: "gate",
                    requires_confirmation=True,
                    pause_timeout=timedelta(days=7),
                ),
                Step(name="after", executor=lambda step_input: "after"),
            ],
        )
        # Slack is never called here: the paused runs are posted already (known to the bot).
        signoff = Signoff(
            routes=[SlackRoute(workflow=wf, approvers=("U0ALICE",))],
            db=db,
            client=WebClient(token="xoxb-unused", base_url="http://127.0.0.1:9/"),
            channels=ChannelDirectory([], "C0SIGNOFF"),
            clock=clock,
        )
        # The parts this measures, wired as bot/server.py's Runtime does.
        queue = OutboxQueue(signoff.store, wakeup=signoff.outbox_wakeup)
        publisher = Publisher(signoff, queue)
        jobs = PauseJobs(signoff, Deadlines(signoff, queue))
        scheduler = DeadlineScheduler(signoff, publisher, jobs)
        groups = Groups(signoff.client, signoff.clock, signoff.metrics)
        queries = Queries(signoff, Permissions(groups), groups)
        signoff.metrics.watch_state(
            queries.pending_count, signoff.store.outbox_counts, signoff.store.inbox_counts
        )
        signoff.db.ensure_schema()
        signoff.store.ensure_schema()
        print_header(
            f"Set-up: {args.runs} finished runs, outbox and inbox rows, {args.paused} paused"
        )
        t0 = time.perf_counter()
        _fill(db, signoff.store, args.runs, now)
        for i in range(args.paused):
            run = wf.run(f"paused {i}")
            req = run.step_requirements[0]
            signoff.store.record_pause(
                requirement_id=req.requirement_id,
                run_id=run.run_id,
                workflow_name=wf.name,
                step_name=req.step_name,
                channel="C0SIGNOFF",
                now=now,
            )
        print(f"  written in {time.perf_counter() - t0:.1f} s")

        scrape = _time(signoff.metrics.render)
        sync = _time(publisher.sync_paused_runs)
        assert publisher.sync_paused_runs() == 0  # all known: nothing posted
        clock.advance(timedelta(minutes=2))  # the pauses were written before the window
        jobs.scheduler.start(paused=True)  # holds the jobs; none runs by the wall clock
        sweep = _time(scheduler.reconcile, repeat=5)
        assert len(jobs.scheduler.get_jobs()) == args.paused  # an expiry job per pause
        poll = _time(scheduler.poll)
        jobs.stop()
        keep = _time(signoff.forget_old_outbox, repeat=5)
        clock.advance(signoff.outbox_retention + timedelta(seconds=1))
        t0 = time.perf_counter()
        removed = signoff.forget_old_outbox()
        purge_s = time.perf_counter() - t0
        print_header("Timings")
        print_latency_table(
            [
                ("/metrics scrape", scrape),
                ("sync_paused_runs", sync),
                ("poll between sweeps", poll),
                ("full sweep (every 5 min)", sweep),
                ("retention, nothing due", keep),
            ]
        )
        print(f"  retention, {removed} rows past it: {purge_s * 1e3:.0f} ms (batches of 1000)")
        print_summary(
            [
                (
                    f"/metrics p50 at {args.runs} runs",
                    f"< {TARGET_MS:.0f} ms",
                    f"{scrape.p50_ms:.1f} ms",
                    scrape.p50_ms < TARGET_MS,
                ),
                (
                    f"poll sync p50 at {args.runs} runs",
                    f"< {TARGET_MS:.0f} ms",
                    f"{sync.p50_ms:.1f} ms",
                    sync.p50_ms < TARGET_MS,
                ),
                (
                    f"poll p50 with {args.paused} paused",
                    f"< {TARGET_MS:.0f} ms",
                    f"{poll.p50_ms:.1f} ms",
                    poll.p50_ms < TARGET_MS,
                ),
                ("rows past retention removed", str(args.runs), str(removed), removed == args.runs),
            ]
        )
        db.dispose()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
