"""Delivers the outbox to Slack, in order per run, retrying until Slack answers.

A 429 is retried after its Retry-After; a network error or 5xx with exponential backoff;
an error that will not go away by itself (``channel_not_found``, ``invalid_auth``…) is
retried a few times and then marked failed and logged. Time comes from the injected
clock, so tests move it instead of sleeping.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError
from sqlalchemy import Connection

from bot import blocks
from bot.decisions import resolving_decision
from bot.kinds import REFRESH_KINDS, OutboxKind, OutboxState
from bot.store import OutboxItem
from engine import RunStatus, StepRequirement

if TYPE_CHECKING:
    from bot.queries import Queries
    from bot.service import Signoff

log = logging.getLogger("signoff.outbox")
# Short, and renewed while a pass delivers: a run's items go out in order, so a replica that
# died holding one holds back the rest of its run until this runs out.
LEASE = timedelta(seconds=10)
MAX_BACKOFF = timedelta(minutes=5)
PERMANENT_ERRORS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "invalid_auth",
        "account_inactive",
        "token_revoked",
        "is_archived",
        "invalid_blocks",
        "msg_too_long",
        "no_permission",
        "missing_scope",
        "message_not_found",
        "cant_update_message",
    }
)
PERMANENT_ATTEMPTS = 5
DELIVERY_THREADS = 4
OUTBOX_EVENT = "signoff_outbox"  # message metadata event_type: the post's outbox key inside
LOOKUP_WINDOW = 200  # recent messages searched for an earlier attempt's post
LOOKUP_UNAVAILABLE = frozenset({"missing_scope", "not_allowed_token_type", "no_permission"})


# (item id, state, error, next attempt): what a delivery pass records for each item.
Outcome = tuple[int, str, str | None, datetime]


# A decision's own message update (the clicked pause's buttons go, a vote's progress shows).
URGENT_KINDS = (OutboxKind.resolve, OutboxKind.pause_update)
URGENT_THREADS = 4


class NotReady(Exception):
    """The item depends on one not delivered yet (a reply before its root message)."""


class NotBefore(Exception):
    """The item may go out only at ``at`` (a refresh of a surface published just now)."""

    def __init__(self, at: datetime) -> None:
        super().__init__(at.isoformat())
        self.at = at


class OutboxWorker:
    """Delivers the outbox in the background: wakes on new items or each ``poll_interval``."""

    def __init__(
        self,
        signoff: Signoff,
        queries: Queries,
        *,
        handlers: Mapping[str, Callable[[OutboxItem], None]] | None = None,
        poll_interval: float = 0.5,
        lease: timedelta = LEASE,
    ) -> None:
        self.signoff = signoff
        self.store = signoff.store
        self.queries = queries
        self.poll_interval = poll_interval
        self.lease = lease
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._urgent_thread: threading.Thread | None = None
        # Items claimed by passes under way, whose lease one keeper thread renews.
        self._held: set[int] = set()
        self._held_lock = threading.Lock()
        self._keeper: threading.Thread | None = None
        self.delivered = 0
        self.errors = 0
        # Delivery by kind: the run's channel messages here, and kinds defined elsewhere
        # (bot/notify.py) given by the runtime.
        self.handlers: dict[str, Callable[[OutboxItem], None]] = {
            OutboxKind.root: self._deliver_root,
            OutboxKind.root_update: self._deliver_root_update,
            OutboxKind.pause: self._deliver_pause,
            OutboxKind.pause_update: self._deliver_pause_update,
            OutboxKind.resolve: self._deliver_resolve,
            OutboxKind.note: self._deliver_note,
            **(handlers or {}),
        }
        # Runs are delivered in parallel; Slack's per-channel limits are met by its 429s.
        self._pool = ThreadPoolExecutor(
            max_workers=DELIVERY_THREADS, thread_name_prefix="signoff-outbox"
        )
        # The fast lane's own threads: never queued behind a busy bulk pass.
        self._urgent_pool = ThreadPoolExecutor(
            max_workers=URGENT_THREADS, thread_name_prefix="signoff-outbox-urgent"
        )

    def start(self) -> None:
        """Start delivering, in two daemon threads: everything, and the fast lane."""
        self._thread = threading.Thread(target=self._loop, name="signoff-outbox", daemon=True)
        self._thread.start()
        self._urgent_thread = threading.Thread(
            target=self._urgent_loop, name="signoff-outbox-urgent", daemon=True
        )
        self._urgent_thread.start()

    def stop(self) -> None:
        """Stop delivering and wait for the deliveries in flight."""
        self._stop.set()
        self.signoff.outbox_wakeup.set()
        self.signoff.urgent_wakeup.set()
        for thread in (self._thread, self._urgent_thread, self._keeper):
            if thread:
                thread.join(timeout=10)
        self._pool.shutdown(wait=True)
        self._urgent_pool.shutdown(wait=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.signoff.outbox_wakeup.wait(self.poll_interval)
            self.signoff.outbox_wakeup.clear()
            try:
                self.deliver_due()
            except Exception:
                log.exception("outbox pass failed")

    def _urgent_loop(self) -> None:
        # The person who clicked sees their message change now: a decision's own update
        # does not wait for a pass busy with notes, root updates and App Home refreshes.
        while not self._stop.is_set():
            self.signoff.urgent_wakeup.wait(self.poll_interval)
            self.signoff.urgent_wakeup.clear()
            try:
                self.deliver_due(kinds=URGENT_KINDS)
            except Exception:
                log.exception("outbox fast-lane pass failed")

    def deliver_due(self, *, kinds: tuple[str, ...] | None = None) -> int:
        """One pass: claim what is due (one commit; of ``kinds`` only, if given), deliver
        it — runs in parallel, each run's items in order — and record the outcomes (one
        commit). Returns how many items were delivered."""
        now = self.signoff.clock.now()
        items = self.store.claim_due(now=now, lease=self.lease, kinds=kinds)
        pool = self._pool if kinds is None else self._urgent_pool
        if not items:
            return 0
        by_run: dict[str, list[OutboxItem]] = {}
        for item in items:
            by_run.setdefault(item.run_id, []).append(item)
        outcomes: list[Outcome] = []
        # The bulk steps aside while Slack's requests wait (bot/pressure.py); a decision's
        # own message update (the fast lane) does not.
        bulk = kinds is None
        with self._leases_renewed([item.id for item in items]):
            for result in pool.map(
                lambda run_items: self._deliver_run(run_items, now, step_aside=bulk),
                by_run.values(),
            ):
                outcomes.extend(result)
            self.store.finish_many(outcomes, claimed={i.id: i.attempts for i in items})
        delivered = sum(1 for _, state, _, _ in outcomes if state == OutboxState.sent)
        self.delivered += delivered
        return delivered

    # -- the fast lane's hand-over -----------------------------------------------------
    def take_on(
        self, conn: Connection, item: tuple[str, str, str, dict[str, Any]], now: datetime
    ) -> OutboxItem | None:
        """Add a decision's own message update in the decision's transaction already taken
        by this worker (``BotStore.enqueue_taken_on``): ``deliver_taken`` sends it once the
        transaction commits, with no claim. None: queued for a pass instead."""
        return self.store.enqueue_taken_on(conn, item, now=now, lease=self.lease)

    def deliver_taken(self, items: list[OutboxItem]) -> None:
        """Send items ``take_on`` took, on the fast lane's threads (never the caller's: a
        slow Slack holds no decision's thread); their outcome recorded as a pass's is."""
        if self._stop.is_set():
            return  # stopping: their lease runs out and a pass (here or elsewhere) sends them
        self._urgent_pool.submit(self._deliver_taken, items)

    def _deliver_taken(self, items: list[OutboxItem]) -> None:
        try:
            with self._leases_renewed([item.id for item in items]):
                outcomes = self._deliver_run(items, self.signoff.clock.now())
                self.store.finish_many(outcomes, claimed={i.id: i.attempts for i in items})
            self.delivered += sum(1 for _, state, _, _ in outcomes if state == OutboxState.sent)
        except Exception:
            # The lease runs out and a pass takes the item again: delivery is idempotent.
            log.exception("delivering a decision's own update failed")

    @contextmanager
    def _leases_renewed(self, ids: list[int]) -> Iterator[None]:
        """Keep the claimed items' lease renewed (every third of it, by one keeper thread
        for all passes, like the engine's run leases) until the block ends: a slow pass
        keeps its items, a dead replica loses them soon."""
        with self._held_lock:
            self._held.update(ids)
            if self._keeper is None:
                self._keeper = threading.Thread(
                    target=self._keep_leases, name="signoff-outbox-lease", daemon=True
                )
                self._keeper.start()
        try:
            yield
        finally:
            with self._held_lock:
                self._held.difference_update(ids)

    def _keep_leases(self) -> None:
        interval = max(self.lease.total_seconds() / 3, 0.01)
        while not self._stop.wait(interval):
            with self._held_lock:
                ids = sorted(self._held)
            if not ids:
                continue
            try:
                self.store.renew_outbox_leases(ids, until=self.signoff.clock.now() + self.lease)
            except Exception:  # the database may be briefly unreachable; try again
                log.warning("could not renew outbox leases", exc_info=True)

    def _deliver_run(
        self, items: list[OutboxItem], now: datetime, *, step_aside: bool = False
    ) -> list[Outcome]:
        outcomes: list[Outcome] = []
        # Only the newest update of a run's root message matters: it renders the run as it
        # is now, so older ones in the same batch are dropped without a Slack call. The same
        # holds for a person's App Home (its items are grouped under "home:<user>").
        newest: dict[str, int | None] = {
            kind: max((i.id for i in items if i.kind == kind), default=None)
            for kind in REFRESH_KINDS
        }
        for position, item in enumerate(items):
            if item.kind in newest and item.id != newest[item.kind]:
                outcomes.append((item.id, OutboxState.sent, "superseded", now))
                continue
            if step_aside:
                self.signoff.pressure.step_aside()
            try:
                self._deliver(item)
            except NotReady:
                # Waits for another delivery, not for Slack: due again at once, so the next
                # pass (the worker's own poll, in real time) retries it; a later clock time
                # would leave it waiting on a clock a test may never move.
                outcomes.append((item.id, OutboxState.pending, None, now))
            except NotBefore as wait:
                outcomes.append((item.id, OutboxState.pending, None, wait.at))
            except SlackApiError as exc:
                outcomes.append(self._failed(item, exc, now))
            except Exception as exc:  # network errors and the like: Slack unreachable
                outcomes.append(
                    self._retry(item, f"{type(exc).__name__}: {exc}", now, self._backoff(item))
                )
            else:
                outcomes.append((item.id, OutboxState.sent, None, now))
                continue
            # Keep the run's messages in order: what follows waits for this one.
            retry_at = outcomes[-1][3]
            outcomes.extend(
                (later.id, OutboxState.pending, None, retry_at) for later in items[position + 1 :]
            )
            break
        return outcomes

    def _backoff(self, item: OutboxItem) -> timedelta:
        return min(timedelta(seconds=2 ** min(item.attempts, 10)), MAX_BACKOFF)

    def _failed(self, item: OutboxItem, exc: SlackApiError, now: datetime) -> Outcome:
        self.errors += 1
        response = exc.response
        method = str(getattr(response, "api_url", "") or "").rsplit("/", 1)[-1] or item.kind
        self.signoff.metrics.record_slack_error(method, exc)
        error = str(response.get("error") if response is not None else exc)
        if response is not None and response.status_code == HTTPStatus.TOO_MANY_REQUESTS:
            retry_after = int(response.headers.get("Retry-After", "1") or 1)
            return self._retry(item, "ratelimited", now, timedelta(seconds=retry_after))
        if error in PERMANENT_ERRORS and item.attempts >= PERMANENT_ATTEMPTS:
            log.error("giving up on %s for run %s: %s", item.kind, item.run_id, error)
            return (item.id, OutboxState.failed, error, now)
        return self._retry(item, error, now, self._backoff(item))

    def _retry(self, item: OutboxItem, error: str, now: datetime, after: timedelta) -> Outcome:
        log.warning("will retry %s for run %s in %s: %s", item.kind, item.run_id, after, error)
        return (item.id, OutboxState.pending, error, now + after)

    # -- delivery of each kind ----------------------------------------------------------------
    def _deliver(self, item: OutboxItem) -> None:
        handler = self.handlers.get(item.kind)
        if handler is None:
            log.error("unknown outbox kind %r; dropping item %s", item.kind, item.id)
            return
        handler(item)

    def _ref(self, run_id: str) -> Any:
        ref = self.store.get_run_ref(run_id)
        if ref is None:
            raise NotReady(run_id)
        return ref

    def _card(self, run_id: str, data: dict[str, Any]) -> blocks.RunCard:
        ref = self._ref(run_id)
        route = self.signoff.routes.get(ref.workflow_name)
        run = route.workflow.get_run(run_id) if route else None
        steps = [s.name for s in route.workflow.steps] if route else []
        if run is not None:
            return blocks.RunCard(
                workflow_name=ref.workflow_name,
                run_id=run_id,
                status=run.status,
                user_id=run.user_id,
                created_at=run.created_at,
                step_names=steps,
                run=run,
            )
        created = data.get("created_at")
        return blocks.RunCard(
            workflow_name=ref.workflow_name,
            run_id=run_id,
            status=RunStatus.running,
            user_id=data.get("user_id"),
            created_at=datetime.fromisoformat(created) if created else None,
            step_names=steps,
        )

    def _post(
        self, item: OutboxItem, *, channel: str, thread_ts: str | None = None, **fields: Any
    ) -> tuple[str, str]:
        return post_once(self.signoff, item, channel=channel, thread_ts=thread_ts, **fields)

    def _deliver_root(self, item: OutboxItem) -> None:
        ref = self._ref(item.run_id)
        if ref.root_ts:
            return
        text, message_blocks = blocks.run_root_message(self._card(item.run_id, item.data))
        ts, channel_id = self._post(item, channel=ref.channel, text=text, blocks=message_blocks)
        self.store.set_root_ts(item.run_id, ts, channel_id)

    def _deliver_root_update(self, item: OutboxItem) -> None:
        ref = self._ref(item.run_id)
        if not ref.root_ts:
            raise NotReady(item.run_id)
        text, message_blocks = blocks.run_root_message(self._card(item.run_id, item.data))
        self.signoff.client.chat_update(
            channel=self._channel_id(ref), ts=ref.root_ts, text=text, blocks=message_blocks
        )

    def _deliver_pause(self, item: OutboxItem) -> None:
        ref = self._ref(item.run_id)
        pause = self.store.get_pause(item.data["requirement_id"])
        if pause is None:
            return
        if pause.message_ts:
            return
        if not ref.root_ts:
            raise NotReady(item.run_id)
        route = self.signoff.routes.get(pause.workflow_name)
        run = route.workflow.get_run(pause.run_id) if route else None
        if route is None or run is None:
            return
        req = next(
            (r for r in run.step_requirements if r.requirement_id == pause.requirement_id), None
        )
        if req is None:
            # Decided before its message went out: post the outcome instead of buttons.
            decision = resolving_decision(self.signoff.db, run.run_id, pause.requirement_id)
            req = self._requirement_from_decision(route, run, pause.step_name)
            if decision is None or req is None:
                return
            ctx = self.queries.pause_context(route, run, req)
            text, message_blocks = blocks.resolved_message(ctx, decision)
        else:
            text, message_blocks = blocks.pause_message(self.queries.pause_context(route, run, req))
        thread_ts = ref.root_ts if pause.channel == ref.channel else None
        ts, channel_id = self._post(
            item, channel=pause.channel, text=text, blocks=message_blocks, thread_ts=thread_ts
        )
        # A pause with several requirements is one message: each requirement points at it.
        ids = sorted({pause.requirement_id, *(r.requirement_id for r in run.step_requirements)})
        for requirement_id in ids:
            self.store.set_pause_ts(requirement_id, ts, channel_id)
        self._store_permalink(ids, channel_id, ts)

    def _deliver_pause_update(self, item: OutboxItem) -> None:
        """A pause with several requirements after one of them was answered: the message
        re-rendered as the pause is now (once it is resolved, ``resolve`` updates it)."""
        pause = self.store.get_pause(item.data["requirement_id"])
        if pause is None:
            return
        if not pause.message_ts:
            raise NotReady(item.run_id)
        route = self.signoff.routes.get(pause.workflow_name)
        run = route.workflow.get_run(pause.run_id) if route else None
        if route is None or run is None or not run.is_paused:
            return
        req = next(
            (r for r in run.step_requirements if r.requirement_id == pause.requirement_id), None
        )
        if req is None:
            return
        text, message_blocks = blocks.pause_message(self.queries.pause_context(route, run, req))
        self.signoff.client.chat_update(
            channel=self._pause_channel_id(pause),
            ts=pause.message_ts,
            text=text,
            blocks=message_blocks,
        )

    def _store_permalink(self, requirement_ids: list[str], channel_id: str, ts: str) -> None:
        """For ``/signoff pending``, which answers from the database alone: the message's
        link, stored for each requirement it shows. Best effort: without it the list shows
        the pause without a link."""
        try:
            link = self.signoff.client.chat_getPermalink(channel=channel_id, message_ts=ts).get(
                "permalink"
            )
        except Exception as exc:
            if isinstance(exc, SlackApiError):
                self.signoff.metrics.record_slack_error("chat.getPermalink", exc)
            log.warning("no permalink for pause %s: %s", requirement_ids[0], exc)
            return
        if isinstance(link, str):
            for requirement_id in requirement_ids:
                self.store.set_pause_permalink(requirement_id, link)

    def _deliver_resolve(self, item: OutboxItem) -> None:
        req = StepRequirement.from_dict(item.data["requirement"])
        pause = self.store.get_pause(req.requirement_id)
        if pause is None:
            return
        route = self.signoff.routes.get(pause.workflow_name)
        if not pause.message_ts:
            if route is not None and not route.posts_in_channel(pause.step_name):
                return  # sent only as direct messages (bot/notify.py updates those)
            raise NotReady(item.run_id)
        run = route.workflow.get_run(pause.run_id) if route else None
        if route is None or run is None:
            return
        decision = resolving_decision(self.signoff.db, run.run_id, req.requirement_id)
        if decision is None:
            return
        siblings = [StepRequirement.from_dict(d) for d in item.data.get("siblings") or ()]
        ctx = self.queries.pause_context(route, run, req, siblings=siblings)
        text, message_blocks = blocks.resolved_message(ctx, decision)
        self.signoff.client.chat_update(
            channel=self._pause_channel_id(pause),
            ts=pause.message_ts,
            text=text,
            blocks=message_blocks,
        )

    def _deliver_note(self, item: OutboxItem) -> None:
        ref = self._ref(item.run_id)
        if not ref.root_ts:
            raise NotReady(item.run_id)
        self._post(
            item,
            channel=ref.channel,
            thread_ts=ref.root_ts,
            text=blocks.clip(item.data["text"], blocks.MESSAGE_TEXT_MAX),
        )

    # -- helpers ---------------------------------------------------------------------------------

    @staticmethod
    def _requirement_from_decision(route: Any, run: Any, step_name: str) -> StepRequirement | None:
        step = next((s for s in route.workflow.steps if s.name == step_name), None)
        if step is None:
            return None
        index = route.workflow.steps.index(step)
        requirement: StepRequirement = step.new_requirement(
            index=index, path=[index], now=run.created_at
        )
        return requirement

    @staticmethod
    def _channel_id(ref: Any) -> str:
        return str(ref.channel_id or ref.channel)

    @staticmethod
    def _pause_channel_id(pause: Any) -> str:
        return str(pause.channel_id or pause.channel)


# -- posting exactly once ------------------------------------------------------------------
def post_once(
    signoff: Signoff, item: OutboxItem, *, channel: str, thread_ts: str | None = None, **fields: Any
) -> tuple[str, str]:
    """chat.postMessage carrying the item's key in its metadata; returns (ts, channel id).

    Slack has no idempotency key, and an attempt may have posted although its answer was
    lost (a timeout, a 5xx, a reset connection, a crash before the ts was stored). So every
    attempt after the first looks the message up by its key first and adopts it. Every
    post an outbox item makes goes through here (the run's messages, DM copies, reminders).
    """
    if item.attempts > 1:
        found = find_posted(signoff, item, channel=channel, thread_ts=thread_ts)
        if found is not None:
            log.info("adopting %s of run %s, already posted", item.kind, item.run_id)
            return found, channel
    response = signoff.client.chat_postMessage(
        channel=channel,
        thread_ts=thread_ts,
        metadata={"event_type": OUTBOX_EVENT, "event_payload": {"key": item.dedupe_key}},
        **fields,
    )
    return str(response["ts"]), str(response.get("channel") or channel)


def find_posted(
    signoff: Signoff, item: OutboxItem, *, channel: str, thread_ts: str | None
) -> str | None:
    """The ts of the message an earlier attempt of ``item`` posted, found by its key."""
    client = signoff.client
    try:
        if thread_ts is not None:
            response = client.conversations_replies(
                channel=channel, ts=thread_ts, include_all_metadata=True, limit=LOOKUP_WINDOW
            )
        else:
            response = client.conversations_history(
                channel=channel, include_all_metadata=True, limit=LOOKUP_WINDOW
            )
    except SlackApiError as exc:
        error = exc.response.get("error") if exc.response is not None else None
        if error not in LOOKUP_UNAVAILABLE:
            raise  # Slack down or slow: retried later, like the post itself
        # An app installed before it asked for the history scopes: post anyway (as before),
        # rather than never.
        signoff.metrics.record_slack_error("conversations.history", exc)
        log.warning("cannot look up earlier posts (%s); posting %s again", error, item.kind)
        return None
    for message in response.get("messages") or []:
        metadata = message.get("metadata") or {}
        payload = metadata.get("event_payload") or {}
        if metadata.get("event_type") == OUTBOX_EVENT and payload.get("key") == item.dedupe_key:
            return str(message["ts"])
    return None
