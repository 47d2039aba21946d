"""The poll reads what changed, not everything waiting: between full sweeps it lists only
the paused runs written since the previous poll (less ``CHANGE_OVERLAP``), so its cost
follows the rate of new pauses rather than how many wait. Past-due pauses are expired
whenever they were written; a full sweep every ``FULL_SWEEP_INTERVAL`` catches a write the
window missed and drops the jobs of pauses decided elsewhere."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import update

from bot.scheduler import CHANGE_OVERLAP, EXPIRE_PREFIX, FULL_SWEEP_INTERVAL
from bot.testing import pending_jobs
from engine import RunStatus, SqliteDb, Workflow
from engine.db.schema import runs
from tests.bot import workflows as test_workflows
from tests.bot.conftest import BotHarness


@pytest.fixture
def elsewhere(harness: BotHarness) -> Iterator[dict[str, Workflow]]:
    """The test workflows on a handle of their own, as a script's process would run them,
    writing by the bot's clock (so a test can make a write look late)."""
    db = SqliteDb(db_file=harness.db_file)
    workflows = {wf.name: wf for wf in test_workflows.make_workflows()}
    for wf in workflows.values():
        wf.use_default_db(db)
        wf.clock = harness.clock
    try:
        yield workflows
    finally:
        db.dispose()


def _pause(harness: BotHarness, wf: Workflow, *, written_at: datetime | None = None) -> str:
    """A paused run of ``wf`` made elsewhere; ``written_at``: as if written then."""
    now = harness.clock.now()
    if written_at is not None:
        harness.clock.set(written_at)
    try:
        run = wf.run("from a script")
    finally:
        harness.clock.set(now)
    assert run.is_paused
    return run.step_requirements[0].requirement_id


def _posted(harness: BotHarness, *requirement_ids: str) -> set[str]:
    return harness.runtime.signoff.store.known_pause_ids(list(requirement_ids))


def test_a_poll_posts_what_was_written_since_the_last_and_a_sweep_what_it_missed(
    harness: BotHarness, elsewhere: dict[str, Workflow]
) -> None:
    harness.runtime.outbox.stop()  # what is enqueued matters here, not Slack
    scheduler = harness.runtime.scheduler
    scheduler.poll()  # the harness's start swept; this poll opens the first window
    late = _pause(
        harness,
        elsewhere["approve_me"],
        written_at=harness.clock.now() - CHANGE_OVERLAP - timedelta(seconds=5),
    )
    harness.clock.advance(timedelta(seconds=5))
    fresh = _pause(harness, elsewhere["approve_me"])
    scheduler.poll()
    assert _posted(harness, late, fresh) == {fresh}, "the window reads only recent writes"

    harness.clock.advance(FULL_SWEEP_INTERVAL)
    scheduler.poll()  # a full sweep
    assert _posted(harness, late, fresh) == {late, fresh}
    assert harness.runtime.publisher.sync_paused_runs() == 0  # each posted once


def test_a_pause_whose_row_has_no_pause_id_is_posted_once(
    harness: BotHarness, elsewhere: dict[str, Workflow]
) -> None:
    """A run last written by a release before the column: the sync reads its data."""
    harness.runtime.outbox.stop()
    requirement_id = _pause(harness, elsewhere["approve_me"])
    with harness.runtime.db.engine.begin() as conn:
        conn.execute(update(runs).values(paused_requirement_id=None))
    publisher = harness.runtime.publisher
    assert publisher.sync_paused_runs() == 1
    assert _posted(harness, requirement_id) == {requirement_id}
    assert publisher.sync_paused_runs() == 0


def test_an_old_pause_past_its_deadline_is_expired_by_a_poll_between_sweeps(
    harness: BotHarness, elsewhere: dict[str, Workflow]
) -> None:
    scheduler = harness.runtime.scheduler
    scheduler.poll()
    old = elsewhere["cancel_me"]
    requirement_id = _pause(
        harness, old, written_at=harness.clock.now() - timedelta(minutes=59, seconds=50)
    )
    (run_id,) = [p.run_id for p in old.list_paused_runs()]
    assert f"{EXPIRE_PREFIX}{requirement_id}" not in pending_jobs(scheduler)  # never seen
    harness.clock.advance(timedelta(seconds=15))  # past its hour, long before a sweep
    scheduler.poll()
    stored = old.get_run(run_id)
    assert stored is not None and stored.status is RunStatus.cancelled


def test_the_jobs_of_a_pause_decided_elsewhere_go_at_the_next_sweep(
    harness: BotHarness, elsewhere: dict[str, Workflow]
) -> None:
    harness.runtime.outbox.stop()
    wf = elsewhere["cancel_me"]
    requirement_id = _pause(harness, wf)
    scheduler = harness.runtime.scheduler
    scheduler.poll()
    job = f"{EXPIRE_PREFIX}{requirement_id}"
    assert job in pending_jobs(scheduler)
    (paused,) = wf.list_paused_runs()
    run = wf.get_run(paused.run_id)
    assert run is not None
    run.step_requirements[0].confirm()
    wf.continue_run(run)  # decided by another process: this replica is not told

    harness.clock.advance(timedelta(seconds=5))
    scheduler.poll()
    assert job in pending_jobs(scheduler), "a window does not see what left the paused state"
    harness.clock.advance(FULL_SWEEP_INTERVAL)
    scheduler.poll()
    assert job not in pending_jobs(scheduler)
