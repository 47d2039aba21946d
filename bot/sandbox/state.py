"""In-memory model of one Slack workspace, shared by the Web API fake and (later) the sandbox page.

Everything lives behind one re-entrant lock; a ``threading.Condition`` on that lock is notified
after every mutation so tests can ``wait_for`` a condition instead of sleeping, and listeners get
a small ``ChangeEvent`` so a live page can re-render what changed.  Getters hand out deep copies:
callers (tests, the page, request handlers on other threads) can never mutate state by accident.
"""

from __future__ import annotations

import copy
import logging
import random
import string
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal, TypeVar

from .blockkit_limits import ACTIONS_ELEMENT_TYPES, INPUT_ELEMENT_TYPES

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_TEAM_ID = "T0SIGNOFF"
DEFAULT_TEAM_DOMAIN = "signoff-sandbox"
DEFAULT_APP_ID = "A0SIGNOFF"
DEFAULT_BOT_TOKEN = "xoxb-signoff-sandbox"
DEFAULT_BOT_USER_ID = "U0SIGNOFFBOT"
DEFAULT_BOT_ID = "B0SIGNOFF"
DEFAULT_CHANNEL_ID = "C0SIGNOFF"
# The legacy verification token Slack still puts into every payload; bolt ignores it.
VERIFICATION_TOKEN = "sandbox-verification-token"

TRIGGER_TTL_SECONDS = 3.0  # Slack: a trigger_id works once, within 3 seconds.
RESPONSE_URL_TTL_SECONDS = 30 * 60  # Slack: up to 5 uses within 30 minutes.
RESPONSE_URL_MAX_USES = 5
VIEW_STACK_MAX = 3  # Slack: at most 3 modals stacked.

# Every element that can carry an action_id (state.values and block_actions come from these).
_INTERACTIVE_ELEMENTS = ACTIONS_ELEMENT_TYPES | INPUT_ELEMENT_TYPES


# --------------------------------------------------------------------------------------------
# Records.  Frozen so a record handed to a listener is a stable snapshot; updates replace them.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Channel:
    """A channel, public, private or a direct message, and its members."""

    id: str
    name: str
    members: tuple[str, ...] = ()
    is_private: bool = False
    is_im: bool = False
    topic: str = ""

    def to_api(self, *, viewer_id: str | None = None) -> dict[str, Any]:
        """The channel as the Web API returns it, ``is_member`` for ``viewer_id``."""
        data: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "is_channel": not self.is_private and not self.is_im,
            "is_group": False,
            "is_im": self.is_im,
            "is_private": self.is_private or self.is_im,
            "is_archived": False,
            "is_member": viewer_id in self.members if viewer_id else False,
            "num_members": len(self.members),
            "topic": {"value": self.topic, "creator": "", "last_set": 0},
        }
        if self.is_im:
            data["user"] = next((m for m in self.members if m != viewer_id), None)
            data.pop("name")
        return data


@dataclass(frozen=True)
class User:
    """A person or bot of the workspace."""

    id: str
    name: str
    real_name: str = ""
    is_bot: bool = False
    deleted: bool = False

    def to_api(self, *, team_id: str) -> dict[str, Any]:
        """The user as ``users.info`` returns it."""
        real_name = self.real_name or self.name
        return {
            "id": self.id,
            "team_id": team_id,
            "name": self.name,
            "real_name": real_name,
            "deleted": self.deleted,
            "is_bot": self.is_bot,
            "is_admin": False,
            "tz": "UTC",
            "profile": {"real_name": real_name, "display_name": self.name, "team": team_id},
        }


@dataclass(frozen=True)
class UserGroup:
    """A user group (``<!subteam^ID>``) and its members."""

    id: str
    handle: str
    name: str
    users: tuple[str, ...] = ()


@dataclass(frozen=True)
class TokenInfo:
    """Who a token speaks for; ``bot_id`` is set for bot tokens."""

    token: str
    user_id: str
    bot_id: str | None = None


@dataclass(frozen=True)
class Message:
    """A posted message, ephemeral ones included."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    user: str | None = None
    bot_id: str | None = None
    app_id: str | None = None
    team: str = DEFAULT_TEAM_ID
    thread_ts: str | None = None
    edited: bool = False
    # Set for ephemeral messages: only this user sees it, and chat.update cannot reach it.
    ephemeral_for: str | None = None
    metadata: dict[str, Any] | None = None

    @property
    def is_ephemeral(self) -> bool:
        """Whether only one person sees the message."""
        return self.ephemeral_for is not None

    @property
    def is_reply(self) -> bool:
        """Whether the message is a reply in a thread (not the thread's root)."""
        return self.thread_ts is not None and self.thread_ts != self.ts

    def to_api(self) -> dict[str, Any]:
        """The message object as Slack's API and interaction payloads show it."""
        data: dict[str, Any] = {"type": "message", "ts": self.ts, "text": self.text}
        if self.user:
            data["user"] = self.user
        if self.bot_id:
            data["bot_id"] = self.bot_id
            data["app_id"] = self.app_id
        data["team"] = self.team
        if self.blocks:
            data["blocks"] = copy.deepcopy(self.blocks)
        if self.thread_ts:
            data["thread_ts"] = self.thread_ts
        if self.edited:
            data["edited"] = {"user": self.user or "", "ts": self.ts}
        if self.metadata:
            data["metadata"] = copy.deepcopy(self.metadata)
        return data


@dataclass(frozen=True)
class View:
    """An open (or closed) modal; ``payload`` is the view object exactly as the API returns it."""

    id: str
    user_id: str
    payload: dict[str, Any]
    trigger_id: str | None
    root_view_id: str
    previous_view_id: str | None = None
    is_open: bool = True
    # Field errors from the bot's ``response_action: errors``; the page shows them under inputs.
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def hash(self) -> str:
        """The view's ``hash``, which ``views.update`` checks against."""
        return str(self.payload.get("hash", ""))

    @property
    def external_id(self) -> str:
        """The view's ``external_id``, empty if none."""
        return str(self.payload.get("external_id", ""))

    @property
    def callback_id(self) -> str:
        """The view's ``callback_id``, empty if none."""
        return str(self.payload.get("callback_id", ""))

    @property
    def private_metadata(self) -> str:
        """The view's ``private_metadata``, empty if none."""
        return str(self.payload.get("private_metadata", ""))

    @property
    def blocks(self) -> list[dict[str, Any]]:
        """The view's blocks, in a new list."""
        return list(self.payload.get("blocks", []))

    @property
    def notify_on_close(self) -> bool:
        """Whether closing the view sends ``view_closed`` to the app."""
        return bool(self.payload.get("notify_on_close", False))


@dataclass(frozen=True)
class RecordedCall:
    """One Web API call the fake answered, for tests to inspect."""

    method: str
    params: dict[str, Any]
    token: str | None
    status: int
    ok: bool
    error: str | None
    at: float

    def describe(self) -> str:
        """The call in one line: method, HTTP status and outcome."""
        outcome = "ok" if self.ok else f"error={self.error}"
        return f"{self.method} -> {self.status} {outcome}"


@dataclass(frozen=True)
class Trigger:
    """A ``trigger_id``: usable once, within 3 seconds, to open or push a modal."""

    id: str
    user_id: str
    issued_at: float
    used_at: float | None = None
    # Set when the interaction happened inside a modal, so views.push knows which stack to grow.
    view_id: str | None = None


@dataclass(frozen=True)
class ResponseUrl:
    """A ``response_url`` given with an interaction: up to 5 uses within 30 minutes."""

    id: str
    url: str
    channel_id: str
    user_id: str
    issued_at: float
    # The message the interaction came from; replace_original/delete_original act on it.
    message_ts: str | None = None
    uses: int = 0


@dataclass(frozen=True)
class ResponsePost:
    """One post the app made to a ``response_url``, and what it did."""

    response_url_id: str
    body: dict[str, Any]
    at: float
    # What the post did: "replaced", "deleted", "posted" (in_channel) or "ephemeral".
    applied: str
    message_ts: str | None


@dataclass(frozen=True)
class ChangeEvent:
    """A small notice that something changed; the listener re-reads state for the details."""

    seq: int
    kind: str
    at: float
    channel: str | None = None
    ts: str | None = None
    view_id: str | None = None
    user_id: str | None = None
    method: str | None = None


@dataclass(frozen=True)
class Fault:
    """``error``: ok=false; ``ratelimit``: HTTP 429; ``http``: HTTP ``status`` without acting;
    ``after``: acts, then answers HTTP ``status`` (the caller cannot tell it happened);
    ``slow``: acts, then answers after ``delay`` seconds (past a client's timeout)."""

    kind: Literal["error", "ratelimit", "http", "after", "slow"]
    error: str = "ratelimited"
    retry_after: int = 1
    status: int = 500
    delay: float = 0.0


Listener = Callable[[ChangeEvent], None]


class ManualClock:
    """A clock that only moves when told to: inject it to expire triggers without sleeping."""

    def __init__(self, now: float = 1_764_000_000.0) -> None:
        self._now = now
        self._lock = threading.Lock()

    def __call__(self) -> float:
        """The current time, in seconds since the epoch."""
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move the time forward by ``seconds``."""
        with self._lock:
            self._now += seconds


class WorkspaceState:
    """One workspace: channels, users, messages, views, plus everything the fake recorded."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        seed: bool = True,
        team_id: str = DEFAULT_TEAM_ID,
        team_domain: str = DEFAULT_TEAM_DOMAIN,
        app_id: str = DEFAULT_APP_ID,
        bot_token: str = DEFAULT_BOT_TOKEN,
        bot_user_id: str = DEFAULT_BOT_USER_ID,
        bot_id: str = DEFAULT_BOT_ID,
        rng: random.Random | None = None,
    ) -> None:
        self.clock = clock
        self.team_id = team_id
        self.team_domain = team_domain
        self.app_id = app_id
        self.bot_token = bot_token
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        # The server sets this once it knows its port; response_urls and permalinks use it.
        self.base_url = "http://127.0.0.1"
        self._rng = rng or random.Random()
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._listeners: list[Listener] = []
        self._seq = 0
        self._events: deque[ChangeEvent] = deque(maxlen=1000)
        self._last_ts_us = 0
        self._channels: dict[str, Channel] = {}
        self._users: dict[str, User] = {}
        self._usergroups: dict[str, UserGroup] = {}
        self._tokens: dict[str, TokenInfo] = {}
        # channel id -> ts -> message; ts are monotonic, so insertion order is time order.
        self._messages: dict[str, dict[str, Message]] = {}
        self._views: dict[str, View] = {}
        # (channel, ts, user) -> block id -> action id -> element state: what a person picked
        # in a message's stateful elements (selects, radio buttons, checkboxes), as their
        # Slack client keeps it and sends it with every block_actions of that message.
        self._message_state: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = {}
        self._view_stacks: dict[str, list[str]] = {}  # user id -> open view ids, root first
        self._home_views: dict[str, str] = {}  # user id -> the id of their Home tab view
        self._triggers: dict[str, Trigger] = {}
        self._response_urls: dict[str, ResponseUrl] = {}
        self._response_posts: list[ResponsePost] = []
        self._calls: list[RecordedCall] = []
        self._faults: dict[str, deque[Fault]] = {}
        self._down = False
        self.add_user(bot_user_id, "signoff", real_name="Signoff", is_bot=True)
        self.add_token(bot_token, bot_user_id, bot_id=bot_id)
        if seed:
            self._seed()

    def _seed(self) -> None:
        self.add_user("U0ALICE", "alice", real_name="Alice Approver")
        self.add_user("U0BOB", "bob", real_name="Bob Builder")
        self.add_user("U0CAROL", "carol", real_name="Carol Requester")
        self.add_channel(DEFAULT_CHANNEL_ID, "signoff")
        self.add_channel("C0GENERAL", "general")
        self.add_usergroup("S0APPROVERS", "approvers", ["U0ALICE", "U0BOB"], name="Approvers")

    # ---------------------------------------------------------------- change notification ----

    def add_listener(self, callback: Listener) -> Callable[[], None]:
        """Call ``callback(event)`` after every mutation; returns a function that unsubscribes.

        Listeners run on the mutating thread while the state lock is held, which keeps events in
        order; keep them quick (e.g. hand off with ``loop.call_soon_threadsafe``).
        """
        with self._lock:
            self._listeners.append(callback)

        def unsubscribe() -> None:
            self.remove_listener(callback)

        return unsubscribe

    def remove_listener(self, callback: Listener) -> None:
        """Stop calling a listener added with ``add_listener``."""
        with self._lock:
            if callback in self._listeners:
                self._listeners.remove(callback)

    def events_since(self, seq: int) -> list[ChangeEvent]:
        """Recent events after ``seq`` (bounded history), for a page that polls or reconnects."""
        with self._lock:
            return [e for e in self._events if e.seq > seq]

    @property
    def seq(self) -> int:
        """The number of the latest change event."""
        with self._lock:
            return self._seq

    def _emit(self, kind: str, **fields: Any) -> None:
        # Caller holds the lock.
        self._seq += 1
        event = ChangeEvent(seq=self._seq, kind=kind, at=self.clock(), **fields)
        self._events.append(event)
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a broken page must not break the API
                log.exception("sandbox listener failed on %s", kind)
        self._cond.notify_all()

    def wait_for(
        self,
        predicate: Callable[[WorkspaceState], T | None],
        timeout: float = 5.0,
        *,
        what: str | None = None,
    ) -> T:
        """Block until ``predicate(state)`` is truthy and return its value.

        Waits on the condition (woken by every mutation), so it neither sleeps blindly nor spins.
        Raises ``TimeoutError`` listing the recent API calls, which is usually the clue.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                result = predicate(self)
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    recent = "; ".join(c.describe() for c in self._calls[-10:]) or "none"
                    label = what or getattr(predicate, "__name__", "condition")
                    raise TimeoutError(
                        f"{label} not met within {timeout}s; recent API calls: {recent}"
                    )
                self._cond.wait(remaining)

    # ------------------------------------------------------------------------- id helpers ----

    def _random_id(self, prefix: str, length: int = 10) -> str:
        alphabet = string.ascii_uppercase + string.digits
        return prefix + "".join(self._rng.choice(alphabet) for _ in range(length))

    def _next_ts(self) -> str:
        # Slack ts: seconds with 6 decimals; bump by 1 microsecond so ts stay unique & ordered
        # even with a frozen test clock.
        now_us = int(self.clock() * 1_000_000)
        self._last_ts_us = max(now_us, self._last_ts_us + 1)
        return f"{self._last_ts_us // 1_000_000}.{self._last_ts_us % 1_000_000:06d}"

    def new_event_id(self) -> str:
        """An Events API ``event_id`` (``Ev…``), unique per delivery of a new event."""
        with self._lock:
            return self._random_id("Ev")

    def _short_id(self) -> str:
        alphabet = string.ascii_letters + string.digits
        return "".join(self._rng.choice(alphabet) for _ in range(5))

    def _fill_ids(self, blocks: Iterable[Any]) -> list[dict[str, Any]]:
        """Copy blocks, giving every block and interactive element an id, as Slack does.

        Real Slack invents block_id/action_id when they are missing, so code that relies on them
        being absent would break in production; the fake behaves the same.
        """
        filled: list[dict[str, Any]] = []
        for block in blocks:
            if not isinstance(block, Mapping):
                continue
            new = copy.deepcopy(dict(block))
            new.setdefault("block_id", self._short_id())
            elements: list[Any] = []
            if isinstance(new.get("elements"), list):
                elements.extend(new["elements"])
            for key in ("accessory", "element"):
                if isinstance(new.get(key), dict):
                    elements.append(new[key])
            for element in elements:
                if isinstance(element, dict) and element.get("type") in _INTERACTIVE_ELEMENTS:
                    element.setdefault("action_id", self._short_id())
            filled.append(new)
        return filled

    # ------------------------------------------------------------------ workspace directory ----

    def add_user(
        self, user_id: str, name: str, *, real_name: str = "", is_bot: bool = False
    ) -> User:
        """Add a user, or replace the one with this id."""
        with self._lock:
            user = User(id=user_id, name=name, real_name=real_name, is_bot=is_bot)
            self._users[user_id] = user
            self._emit("user.added", user_id=user_id)
            return user

    def ensure_user(self, user_id: str) -> User:
        """The user, created with a name derived from the id if unknown (handy in tests)."""
        with self._lock:
            return self._users.get(user_id) or self.add_user(user_id, user_id.lower())

    def add_channel(
        self,
        channel_id: str,
        name: str,
        *,
        members: Iterable[str] | None = None,
        is_private: bool = False,
    ) -> Channel:
        """Add a channel; without ``members`` everybody known so far (bot included) joins."""
        with self._lock:
            member_ids = tuple(members) if members is not None else tuple(self._users)
            channel = Channel(id=channel_id, name=name, members=member_ids, is_private=is_private)
            self._channels[channel_id] = channel
            self._messages.setdefault(channel_id, {})
            self._emit("channel.added", channel=channel_id)
            return channel

    def ensure_channel(self, channel_id: str) -> Channel:
        """The channel with this id, created (named after it) if it does not exist."""
        with self._lock:
            existing = self._channels.get(channel_id)
            if existing:
                return existing
            return self.add_channel(channel_id, channel_id.lower())

    def join_channel(self, channel_id: str, user_id: str) -> Channel:
        """Make ``user_id`` a member of the channel."""
        with self._lock:
            channel = self._channels[channel_id]
            if user_id not in channel.members:
                channel = replace(channel, members=(*channel.members, user_id))
                self._channels[channel_id] = channel
                self._emit("channel.changed", channel=channel_id, user_id=user_id)
            return channel

    def open_dm(self, user_id: str, other_id: str | None = None) -> Channel:
        """The direct-message channel between ``user_id`` and the bot (created on first use)."""
        other = other_id or self.bot_user_id
        with self._lock:
            for channel in self._channels.values():
                if channel.is_im and set(channel.members) == {user_id, other}:
                    return channel
            channel = Channel(
                id="D" + user_id.lstrip("U"), name=user_id, members=(user_id, other), is_im=True
            )
            self._channels[channel.id] = channel
            self._messages.setdefault(channel.id, {})
            self._emit("channel.added", channel=channel.id)
            return channel

    def add_usergroup(
        self, group_id: str, handle: str, users: Iterable[str], *, name: str | None = None
    ) -> UserGroup:
        """Add a user group, or replace the one with this id."""
        with self._lock:
            group = UserGroup(id=group_id, handle=handle, name=name or handle, users=tuple(users))
            self._usergroups[group_id] = group
            self._emit("usergroup.changed", user_id=None)
            return group

    def add_token(self, token: str, user_id: str, *, bot_id: str | None = None) -> TokenInfo:
        """Make ``token`` valid for ``user_id`` (and ``bot_id``, for a bot token)."""
        with self._lock:
            info = TokenInfo(token=token, user_id=user_id, bot_id=bot_id)
            self._tokens[token] = info
            return info

    def token_info(self, token: str) -> TokenInfo | None:
        """Whose token this is, or None for an unknown one."""
        with self._lock:
            return self._tokens.get(token)

    def channels(self) -> list[Channel]:
        """All channels, in the order they were added."""
        with self._lock:
            return list(self._channels.values())

    def channel(self, channel_id: str) -> Channel | None:
        """The channel with this id, or None."""
        with self._lock:
            return self._channels.get(channel_id)

    def resolve_channel(self, ref: str) -> Channel | None:
        """A channel by id, ``#name`` or bare name (chat.postMessage accepts all three)."""
        with self._lock:
            if ref in self._channels:
                return self._channels[ref]
            name = ref[1:] if ref.startswith("#") else ref
            return next(
                (c for c in self._channels.values() if c.name == name and not c.is_im), None
            )

    def users(self) -> list[User]:
        """All users, in the order they were added."""
        with self._lock:
            return list(self._users.values())

    def user(self, user_id: str) -> User | None:
        """The user with this id, or None."""
        with self._lock:
            return self._users.get(user_id)

    def usergroup(self, group_id: str) -> UserGroup | None:
        """The user group with this id, or None."""
        with self._lock:
            return self._usergroups.get(group_id)

    def usergroups(self) -> list[UserGroup]:
        """All user groups, in the order they were added."""
        with self._lock:
            return list(self._usergroups.values())

    # ----------------------------------------------------------------------------- messages ----

    def post_message(
        self,
        channel: str,
        *,
        text: str = "",
        blocks: Iterable[Any] | None = None,
        user: str | None = None,
        bot_id: str | None = None,
        thread_ts: str | None = None,
        ephemeral_for: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Message:
        """Post a message: a reply with ``thread_ts``, seen by one person with ``ephemeral_for``."""
        with self._lock:
            if channel not in self._channels:
                raise KeyError(f"unknown channel {channel}")
            message = Message(
                channel=channel,
                ts=self._next_ts(),
                text=text,
                blocks=self._fill_ids(blocks or []),
                user=user,
                bot_id=bot_id,
                app_id=self.app_id if bot_id else None,
                team=self.team_id,
                thread_ts=thread_ts,
                ephemeral_for=ephemeral_for,
                metadata=copy.deepcopy(metadata),
            )
            self._messages[channel][message.ts] = message
            self._emit("message.posted", channel=channel, ts=message.ts, user_id=ephemeral_for)
            return copy.deepcopy(message)

    def update_message(
        self,
        channel: str,
        ts: str,
        *,
        text: str | None = None,
        blocks: Iterable[Any] | None = None,
    ) -> Message | None:
        """Edit a message; ``None`` arguments keep the old value (chat.update semantics)."""
        with self._lock:
            old = self._messages.get(channel, {}).get(ts)
            if old is None:
                return None
            new = replace(
                old,
                text=old.text if text is None else text,
                blocks=old.blocks if blocks is None else self._fill_ids(blocks),
                edited=True,
            )
            self._messages[channel][ts] = new
            self._emit("message.updated", channel=channel, ts=ts)
            return copy.deepcopy(new)

    def delete_message(self, channel: str, ts: str) -> bool:
        """Delete a message; False if there was none."""
        with self._lock:
            if self._messages.get(channel, {}).pop(ts, None) is None:
                return False
            self._emit("message.deleted", channel=channel, ts=ts)
            return True

    def messages(
        self,
        channel: str | None = None,
        *,
        visible_to: str | None = None,
        include_ephemeral: bool = True,
    ) -> list[Message]:
        """Messages in time order (all channels if ``channel`` is None), replies included.

        ``visible_to`` hides other users' ephemeral messages, as that user's client would.
        """
        with self._lock:
            channels = [channel] if channel is not None else list(self._messages)
            found: list[Message] = []
            for cid in channels:
                for message in self._messages.get(cid, {}).values():
                    if message.ephemeral_for is not None:
                        if not include_ephemeral:
                            continue
                        if visible_to is not None and message.ephemeral_for != visible_to:
                            continue
                    found.append(message)
            found.sort(key=lambda m: m.ts)
            return copy.deepcopy(found)

    def message(self, channel: str, ts: str) -> Message | None:
        """A copy of the message, or None."""
        with self._lock:
            found = self._messages.get(channel, {}).get(ts)
            return copy.deepcopy(found)

    def last_message(
        self, channel: str | None = None, *, include_ephemeral: bool = True
    ) -> Message | None:
        """The latest message, in ``channel`` or anywhere."""
        found = self.messages(channel, include_ephemeral=include_ephemeral)
        return found[-1] if found else None

    def thread(self, channel: str, thread_ts: str) -> list[Message]:
        """Parent first, then replies in order."""
        # Filter before copying: copying the whole channel made every update O(channel).
        with self._lock:
            found = [
                m
                for m in self._messages.get(channel, {}).values()
                if thread_ts in (m.ts, m.thread_ts)
            ]
            found.sort(key=lambda m: m.ts)
            return copy.deepcopy(found)

    def export_messages(self) -> list[dict[str, Any]]:
        """Every non-ephemeral message as plain data (the sandbox keeps them across restarts)."""
        with self._lock:
            return [
                asdict(m)
                for channel in self._messages.values()
                for m in channel.values()
                if m.ephemeral_for is None
            ]

    def import_messages(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Put exported messages back (into channels that exist); returns how many."""
        fields = set(Message.__dataclass_fields__)
        count = 0
        with self._lock:
            for record in records:
                message = Message(**{k: v for k, v in record.items() if k in fields})
                if message.channel not in self._channels or message.ephemeral_for is not None:
                    continue
                self._messages[message.channel][message.ts] = message
                seconds, _, micros = message.ts.partition(".")
                ts_us = int(seconds) * 1_000_000 + int(micros.ljust(6, "0")[:6] or 0)
                self._last_ts_us = max(self._last_ts_us, ts_us)
                count += 1
            for channel in self._messages:
                self._messages[channel] = dict(sorted(self._messages[channel].items()))
            self._emit("messages.imported")
        return count

    def message_json(self, message: Message) -> dict[str, Any]:
        """``message.to_api()`` plus thread summary fields that need the rest of the channel."""
        data = message.to_api()
        if message.is_reply:
            with self._lock:
                parent = self._messages.get(message.channel, {}).get(message.thread_ts or "")
            if parent is not None:
                data["parent_user_id"] = parent.user
        else:
            with self._lock:  # only the summary is needed: no copies
                replies = sorted(
                    (
                        m
                        for m in self._messages.get(message.channel, {}).values()
                        if m.thread_ts == message.ts and m.is_reply
                    ),
                    key=lambda m: m.ts,
                )
            if replies:
                data["thread_ts"] = message.ts
                data["reply_count"] = len(replies)
                data["reply_users"] = sorted({m.user for m in replies if m.user})
                data["latest_reply"] = replies[-1].ts
        return data

    # ----------------------------------------------------------------------------- triggers ----

    def issue_trigger(self, user_id: str, *, view_id: str | None = None) -> Trigger:
        """Mint a trigger_id as Slack does for each interaction (valid once, for 3 seconds)."""
        with self._lock:
            trigger_id = (
                f"{self._rng.randrange(10**10)}.{self._rng.randrange(10**10)}."
                f"{self._rng.getrandbits(64):016x}"
            )
            trigger = Trigger(
                id=trigger_id, user_id=user_id, issued_at=self.clock(), view_id=view_id
            )
            self._triggers[trigger_id] = trigger
            self._emit("trigger.issued", user_id=user_id)
            return trigger

    def check_trigger(self, trigger_id: str) -> tuple[Trigger | None, str | None]:
        """The trigger if usable, else the error Slack would answer."""
        with self._lock:
            trigger = self._triggers.get(trigger_id)
            if trigger is None:
                return None, "invalid_trigger_id"
            if trigger.used_at is not None:
                return None, "exchanged_trigger_id"
            if self.clock() - trigger.issued_at > TRIGGER_TTL_SECONDS:
                return None, "expired_trigger_id"
            return trigger, None

    def _use_trigger(self, trigger_id: str) -> None:
        trigger = self._triggers[trigger_id]
        self._triggers[trigger_id] = replace(trigger, used_at=self.clock())

    def triggers(self) -> list[Trigger]:
        """All triggers issued, used and expired ones included."""
        with self._lock:
            return list(self._triggers.values())

    # -------------------------------------------------------------------------------- views ----

    def _view_payload(
        self,
        view: Mapping[str, Any],
        *,
        view_id: str,
        root_view_id: str,
        previous_view_id: str | None,
        values: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The view object as views.* return it: the bot's view plus the fields Slack adds."""
        payload: dict[str, Any] = {
            "id": view_id,
            "team_id": self.team_id,
            "type": view.get("type", "modal"),
            "title": copy.deepcopy(view.get("title")),
            "close": copy.deepcopy(view.get("close")),
            "submit": copy.deepcopy(view.get("submit")),
            "blocks": self._fill_ids(view.get("blocks") or []),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "external_id": view.get("external_id", ""),
            "state": {"values": copy.deepcopy(dict(values or {}))},
            "hash": f"{int(self.clock())}.{self._rng.getrandbits(32):08x}",
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "root_view_id": root_view_id,
            "previous_view_id": previous_view_id,
            "app_id": self.app_id,
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }
        return payload

    def external_id_in_use(self, external_id: str) -> bool:
        """Whether an open view has this ``external_id`` (Slack refuses a second one)."""
        with self._lock:
            return any(
                v.is_open and external_id and v.external_id == external_id
                for v in self._views.values()
            )

    def open_view(self, trigger_id: str, view: Mapping[str, Any]) -> View:
        """views.open: a new modal stack for the trigger's user (the trigger is consumed)."""
        with self._lock:
            trigger, error = self.check_trigger(trigger_id)
            if trigger is None:
                raise ValueError(error)
            self._use_trigger(trigger_id)
            for old_id in self._view_stacks.pop(trigger.user_id, []):
                self._views[old_id] = replace(self._views[old_id], is_open=False)
            view_id = self._random_id("V")
            record = View(
                id=view_id,
                user_id=trigger.user_id,
                payload=self._view_payload(
                    view, view_id=view_id, root_view_id=view_id, previous_view_id=None
                ),
                trigger_id=trigger_id,
                root_view_id=view_id,
            )
            self._views[view_id] = record
            self._view_stacks[trigger.user_id] = [view_id]
            self._emit("view.opened", view_id=view_id, user_id=trigger.user_id)
            return copy.deepcopy(record)

    def push_view(self, trigger_id: str, view: Mapping[str, Any]) -> View:
        """views.push: put a modal on top of the user's stack; errors raise ValueError(code)."""
        with self._lock:
            trigger, error = self.check_trigger(trigger_id)
            if trigger is None:
                raise ValueError(error)
            record = self._push(trigger.user_id, view, trigger_id)
            self._use_trigger(trigger_id)
            return record

    def push_view_for(self, user_id: str, view: Mapping[str, Any]) -> View:
        """Push without a trigger, as Slack does for ``response_action: push``."""
        with self._lock:
            return self._push(user_id, view, None)

    def _push(self, user_id: str, view: Mapping[str, Any], trigger_id: str | None) -> View:
        stack = self._view_stacks.get(user_id, [])
        if not stack:
            raise ValueError("not_found")
        if len(stack) >= VIEW_STACK_MAX:
            raise ValueError("push_limit_reached")
        view_id = self._random_id("V")
        root = stack[0]
        record = View(
            id=view_id,
            user_id=user_id,
            payload=self._view_payload(
                view, view_id=view_id, root_view_id=root, previous_view_id=stack[-1]
            ),
            trigger_id=trigger_id,
            root_view_id=root,
            previous_view_id=stack[-1],
        )
        self._views[view_id] = record
        stack.append(view_id)
        self._emit("view.pushed", view_id=view_id, user_id=user_id)
        return copy.deepcopy(record)

    def update_view(self, view_id: str, view: Mapping[str, Any]) -> View:
        """Replace a view's content (views.update or ``response_action: update``); new hash."""
        with self._lock:
            old = self._views[view_id]
            record = replace(
                old,
                payload=self._view_payload(
                    view,
                    view_id=view_id,
                    root_view_id=old.root_view_id,
                    previous_view_id=old.previous_view_id,
                ),
                errors={},
            )
            self._views[view_id] = record
            self._emit("view.updated", view_id=view_id, user_id=old.user_id)
            return copy.deepcopy(record)

    def set_view_errors(self, view_id: str, errors: Mapping[str, str]) -> View:
        """Show ``errors`` under the view's fields, as a ``response_action: errors`` does."""
        with self._lock:
            record = replace(self._views[view_id], errors=dict(errors))
            self._views[view_id] = record
            self._emit("view.errors", view_id=view_id, user_id=record.user_id)
            return copy.deepcopy(record)

    def close_view(self, view_id: str, *, clear: bool = False) -> list[View]:
        """Close a view (and those stacked above it); ``clear`` closes the whole stack."""
        with self._lock:
            view = self._views.get(view_id)
            if view is None or not view.is_open:
                return []
            stack = self._view_stacks.get(view.user_id, [])
            if view_id in stack:
                cut = 0 if clear else stack.index(view_id)
                closing, self._view_stacks[view.user_id] = stack[cut:], stack[:cut]
            else:
                closing = [view_id]
            closed = []
            for vid in closing:
                self._views[vid] = replace(self._views[vid], is_open=False)
                closed.append(copy.deepcopy(self._views[vid]))
                self._emit("view.closed", view_id=vid, user_id=view.user_id)
            return closed

    def remember_message_state(
        self, channel: str, ts: str, *, user_id: str, block_id: str, action_id: str, state: Any
    ) -> None:
        """Keep ``user_id``'s pick in a message element, as Slack's client sends it back in
        ``state.values`` with the next click."""
        with self._lock:
            values = self._message_state.setdefault((channel, ts, user_id), {})
            values.setdefault(block_id, {})[action_id] = dict(state)

    def message_state(self, channel: str, ts: str, user_id: str) -> dict[str, dict[str, Any]]:
        """The person's picks in a message, for elements the message still has."""
        with self._lock:
            values = self._message_state.get((channel, ts, user_id), {})
            message = self.message(channel, ts)
            present = {
                (str(b.get("block_id")), str(e.get("action_id")))
                for b in (message.blocks if message else [])
                for e in (b.get("elements") or [])
                if isinstance(e, dict)
            }
            return {
                block_id: {a: dict(v) for a, v in actions.items() if (block_id, a) in present}
                for block_id, actions in values.items()
                if any((block_id, a) in present for a in actions)
            }

    def view(self, view_id: str) -> View | None:
        """A copy of the view with this id, or None."""
        with self._lock:
            return copy.deepcopy(self._views.get(view_id))

    def view_by_external_id(self, external_id: str) -> View | None:
        """A copy of the open view with this ``external_id``, or None."""
        with self._lock:
            found = next(
                (v for v in self._views.values() if v.is_open and v.external_id == external_id),
                None,
            )
            return copy.deepcopy(found)

    def views(
        self, *, user_id: str | None = None, open_only: bool = True, kind: str = "modal"
    ) -> list[View]:
        """Views of ``kind`` (``"modal"``, or ``"home"`` for published Home tabs)."""
        with self._lock:
            return copy.deepcopy(
                [
                    v
                    for v in self._views.values()
                    if (not open_only or v.is_open)
                    and (user_id is None or v.user_id == user_id)
                    and v.payload.get("type", "modal") == kind
                ]
            )

    # ------------------------------------------------------------------------ App Home ----

    def publish_home(
        self, user_id: str, view: Mapping[str, Any], *, expected_hash: str | None = None
    ) -> View:
        """views.publish: the user's Home tab, created on first publish and replaced after;
        its id stays the same, its hash changes. ``expected_hash`` that is not the current
        one raises ValueError("hash_conflict"), as Slack answers."""
        with self._lock:
            old_id = self._home_views.get(user_id)
            old = self._views.get(old_id) if old_id else None
            if expected_hash is not None and (old is None or old.hash != expected_hash):
                raise ValueError("hash_conflict")
            view_id = old.id if old else self._random_id("V")
            record = View(
                id=view_id,
                user_id=user_id,
                payload=self._view_payload(
                    {**view, "type": "home"},
                    view_id=view_id,
                    root_view_id=view_id,
                    previous_view_id=None,
                ),
                trigger_id=None,
                root_view_id=view_id,
            )
            self._views[view_id] = record
            self._home_views[user_id] = view_id
            self._emit("home.published", view_id=view_id, user_id=user_id)
            return copy.deepcopy(record)

    def home_view(self, user_id: str) -> View | None:
        """The user's published Home tab, or None before the app's first views.publish."""
        with self._lock:
            view_id = self._home_views.get(user_id)
            return copy.deepcopy(self._views[view_id]) if view_id else None

    def view_stack(self, user_id: str) -> list[View]:
        """The user's open modals, root first; the last one is what the user sees."""
        with self._lock:
            return copy.deepcopy([self._views[v] for v in self._view_stacks.get(user_id, [])])

    def top_view(self, user_id: str) -> View | None:
        """The modal on top of the user's stack, or None."""
        stack = self.view_stack(user_id)
        return stack[-1] if stack else None

    # ------------------------------------------------------------------------ response_url ----

    def issue_response_url(
        self, channel_id: str, user_id: str, *, message_ts: str | None = None
    ) -> ResponseUrl:
        """A new ``response_url`` for an interaction in ``channel_id`` by ``user_id``."""
        with self._lock:
            rid = self._random_id("R", 16)
            response_url = ResponseUrl(
                id=rid,
                url=f"{self.base_url}/response/{rid}",
                channel_id=channel_id,
                user_id=user_id,
                issued_at=self.clock(),
                message_ts=message_ts,
            )
            self._response_urls[rid] = response_url
            return response_url

    def response_url(self, response_url_id: str) -> ResponseUrl | None:
        """The ``response_url`` with this id, or None."""
        with self._lock:
            return self._response_urls.get(response_url_id)

    def post_to_response_url(
        self, response_url_id: str, body: Mapping[str, Any]
    ) -> tuple[ResponsePost | None, str | None]:
        """Apply a response_url post the way Slack does; returns (post, error)."""
        with self._lock:
            rurl = self._response_urls.get(response_url_id)
            if rurl is None:
                return None, "invalid_url"
            if (
                self.clock() - rurl.issued_at > RESPONSE_URL_TTL_SECONDS
                or rurl.uses >= RESPONSE_URL_MAX_USES
            ):
                return None, "expired_url"
            self._response_urls[response_url_id] = replace(rurl, uses=rurl.uses + 1)
            original = (
                self._messages.get(rurl.channel_id, {}).get(rurl.message_ts)
                if rurl.message_ts
                else None
            )
            text = str(body.get("text", ""))
            blocks = body.get("blocks") if isinstance(body.get("blocks"), list) else []
            applied: str
            ts: str | None
            if _truthy(body.get("delete_original")) and original is not None:
                self.delete_message(original.channel, original.ts)
                applied, ts = "deleted", original.ts
            elif _truthy(body.get("replace_original")) and original is not None:
                # Replacing means the new payload is the whole message: no blocks -> none left.
                self.update_message(original.channel, original.ts, text=text, blocks=blocks or [])
                applied, ts = "replaced", original.ts
            elif body.get("response_type") == "in_channel":
                thread_ts = body.get("thread_ts")
                posted = self.post_message(
                    rurl.channel_id,
                    text=text,
                    blocks=blocks,
                    user=self.bot_user_id,
                    bot_id=self.bot_id,
                    thread_ts=str(thread_ts) if thread_ts else None,
                )
                applied, ts = "posted", posted.ts
            else:
                posted = self.post_message(
                    rurl.channel_id,
                    text=text,
                    blocks=blocks,
                    user=self.bot_user_id,
                    bot_id=self.bot_id,
                    ephemeral_for=rurl.user_id,
                )
                applied, ts = "ephemeral", posted.ts
            post = ResponsePost(
                response_url_id=response_url_id,
                body=copy.deepcopy(dict(body)),
                at=self.clock(),
                applied=applied,
                message_ts=ts,
            )
            self._response_posts.append(post)
            self._emit("response_url.posted", channel=rurl.channel_id, ts=ts)
            return post, None

    def response_posts(self, response_url_id: str | None = None) -> list[ResponsePost]:
        """Copies of the posts made to response URLs, or to one of them."""
        with self._lock:
            return copy.deepcopy(
                [
                    p
                    for p in self._response_posts
                    if response_url_id is None or p.response_url_id == response_url_id
                ]
            )

    # ------------------------------------------------------------------------ recorded calls ----

    def record_call(self, call: RecordedCall) -> None:
        """Record a call the fake answered."""
        with self._lock:
            self._calls.append(call)
            self._emit("api.call", method=call.method)

    def calls(self, method: str | None = None) -> list[RecordedCall]:
        """Copies of the recorded calls, of one method or all."""
        with self._lock:
            return copy.deepcopy([c for c in self._calls if method is None or c.method == method])

    def last_call(self, method: str | None = None) -> RecordedCall | None:
        """The latest recorded call, of one method or any."""
        found = self.calls(method)
        return found[-1] if found else None

    # -------------------------------------------------------------------------------- faults ----

    def fail_next(self, method: str, error: str = "channel_not_found", times: int = 1) -> None:
        """Make the next ``times`` calls of ``method`` ("*" = any) answer ok=false ``error``."""
        with self._lock:
            queue = self._faults.setdefault(method, deque())
            queue.extend(Fault("error", error=error) for _ in range(times))
            self._emit("faults.changed", method=method)

    def rate_limit_next(self, method: str, retry_after: int = 1, times: int = 1) -> None:
        """Answer the next ``times`` calls with HTTP 429, ``Retry-After`` and ``ratelimited``."""
        with self._lock:
            queue = self._faults.setdefault(method, deque())
            queue.extend(Fault("ratelimit", retry_after=retry_after) for _ in range(times))
            self._emit("faults.changed", method=method)

    def http_error_next(self, method: str, status: int = 500, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with HTTP ``status``, doing nothing."""
        self._add_faults(method, Fault("http", status=status), times)

    def fail_after_acting_next(self, method: str, status: int = 500, times: int = 1) -> None:
        """Carry out the next ``times`` calls of ``method`` (a message is posted…), then
        answer HTTP ``status``, as Slack does when it fails after acting."""
        self._add_faults(method, Fault("after", status=status), times)

    def slow_next(self, method: str, delay: float, times: int = 1) -> None:
        """Carry out the next ``times`` calls of ``method`` at once, but answer only after
        ``delay`` seconds: a client with a shorter timeout sees a timeout."""
        self._add_faults(method, Fault("slow", delay=delay), times)

    def _add_faults(self, method: str, fault: Fault, times: int) -> None:
        with self._lock:
            self._faults.setdefault(method, deque()).extend(fault for _ in range(times))
            self._emit("faults.changed", method=method)

    def history(
        self, channel: str, *, thread_ts: str | None = None, limit: int = 100
    ) -> list[Message]:
        """What conversations.history (root messages, newest first) or, with ``thread_ts``,
        conversations.replies (parent then replies, oldest first) returns; no ephemerals."""
        with self._lock:
            found = [
                m
                for m in self._messages.get(channel, {}).values()
                if not m.is_ephemeral
                and (
                    (thread_ts is None and not m.is_reply)
                    or (thread_ts is not None and thread_ts in (m.ts, m.thread_ts))
                )
            ]
            found.sort(key=lambda m: m.ts, reverse=thread_ts is None)
            return copy.deepcopy(found[:limit])

    def set_down(self, down: bool = True) -> None:
        """Simulate a Slack outage: every API call answers HTTP 503 until set back."""
        with self._lock:
            self._down = down
            self._emit("faults.changed")

    @property
    def is_down(self) -> bool:
        """Whether the fake answers every call with a 503."""
        with self._lock:
            return self._down

    def clear_faults(self) -> None:
        """Forget the injected failures and bring the fake back up."""
        with self._lock:
            self._faults.clear()
            self._down = False
            self._emit("faults.changed")

    def faults_left(self, method: str) -> int:
        """How many injected faults for ``method`` ("*" = any) no call has taken yet: what is
        left of a window of faults (``times`` large, ended with ``clear_faults``)."""
        with self._lock:
            return len(self._faults.get(method, ()))

    def take_fault(self, method: str) -> Fault | None:
        """Pop the next injected fault for ``method`` (exact name first, then "*")."""
        with self._lock:
            for key in (method, "*"):
                queue = self._faults.get(key)
                if queue:
                    return queue.popleft()
            return None

    # ------------------------------------------------------------------------------ snapshot ----

    def snapshot(self) -> dict[str, Any]:
        """Everything a page needs to render, as plain JSON-able data."""
        with self._lock:
            return {
                "seq": self._seq,
                "team": {"id": self.team_id, "domain": self.team_domain},
                "bot": {"user_id": self.bot_user_id, "bot_id": self.bot_id, "app_id": self.app_id},
                "users": [asdict(u) for u in self._users.values()],
                "usergroups": [asdict(g) for g in self._usergroups.values()],
                "channels": [
                    {
                        **asdict(c),
                        "messages": [
                            {**self.message_json(m), "ephemeral_for": m.ephemeral_for}
                            for m in self._messages.get(c.id, {}).values()
                        ],
                    }
                    for c in self._channels.values()
                ],
                "views": [asdict(v) for v in self._views.values() if v.is_open],
                "down": self._down,
            }


def _truthy(value: Any) -> bool:
    # Form posts send "true"/"false" strings, JSON posts send booleans.
    if isinstance(value, str):
        return value.lower() in ("true", "1", "yes")
    return bool(value)
