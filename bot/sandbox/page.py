"""The sandbox page: the Slack fake grown a web page that plays Slack for the bot.

``SandboxPage.install(app)`` adds to the fake's Starlette app:

- ``GET /`` and ``/static/*``: a Slack-like channel view (plain HTML, JS and CSS in ``static/``);
- ``GET /page/api/state?user=U…``: what that user sees (channels, messages, their open modal);
- ``GET /page/api/events``: Server-Sent Events, one per change of the workspace;
- ``POST /page/api/{compose,action,submit,close,dismiss}``: what the person does.

Nothing is faked towards the bot: every interaction goes through ``SlackActor``, which sends a
real, signed Slack payload to the bot over HTTP and applies the bot's answer to the workspace
the same way Slack would (the tests use the same code).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from bot.slack_http import parse_json

from .payloads import SlackActor
from .server import SlackFakeServer
from .slack_api import read_body
from .state import DEFAULT_CHANNEL_ID, ChangeEvent, Message, WorkspaceState

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).with_name("static")
SLACKBOT_USER_ID = "USLACKBOT"
# Changes that alter nothing a person sees; the page is not told about them.
QUIET_EVENTS = frozenset({"api.call", "trigger.issued", "faults.changed"})
MAX_MESSAGES_PER_CHANNEL = 400
RECENT_CALLS = 30
KEEPALIVE_SECONDS = 15.0
NO_STORE = {"Cache-Control": "no-store"}


class PageError(Exception):
    """A request from the page that cannot be carried out; becomes ``{"ok": false}``."""

    def __init__(self, message: str, status_code: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


@dataclass
class SlashCommand:
    """A slash command the page's composer offers, with its usage line."""

    command: str
    usage: str
    description: str = ""


@dataclass
class SandboxPage:
    """The page and its small API, over the fake's workspace.

    ``bot_url`` (the bot's ``/slack/events``) may be set after construction: the fake must be
    up before the bot (the bot's Web API client points at it), and the page needs the bot.
    """

    fake: SlackFakeServer | WorkspaceState
    signing_secret: str
    bot_url: str | None = None
    commands: list[SlashCommand] = field(
        default_factory=lambda: [
            SlashCommand(
                "/signoff",
                "run <workflow> [input] | list | status <run_id> | pending | help",
                "Human sign-off for workflow steps",
            )
        ]
    )
    # Shown as clickable examples ("/signoff run data_pipeline") in the page.
    suggestions: list[str] = field(default_factory=lambda: ["/signoff help"])
    timeout: float = 10.0
    _streams: set[tuple[asyncio.AbstractEventLoop, asyncio.Queue[int]]] = field(
        default_factory=set, init=False, repr=False
    )
    _streams_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def state(self) -> WorkspaceState:
        """The fake's workspace, read through the server each time (``reset`` may swap it)."""
        # Read through the server each time: ``SlackFakeServer.reset`` may swap the state.
        return self.fake.state if isinstance(self.fake, SlackFakeServer) else self.fake

    # ------------------------------------------------------------------------------ routes ----

    def routes(self) -> list[BaseRoute]:
        """The page's routes: the page, permalinks, its state and event stream, and its actions."""
        return [
            Route("/", self.index, methods=["GET"]),
            Route("/archives/{channel}/{p}", self.permalink, methods=["GET"]),
            Route("/page/api/state", self.get_state, methods=["GET"]),
            Route("/page/api/events", self.events, methods=["GET"]),
            Route("/page/api/compose", self.post_compose, methods=["POST"]),
            Route("/page/api/action", self.post_action, methods=["POST"]),
            Route("/page/api/submit", self.post_submit, methods=["POST"]),
            Route("/page/api/close", self.post_close, methods=["POST"]),
            Route("/page/api/dismiss", self.post_dismiss, methods=["POST"]),
            Route("/page/api/home", self.post_home, methods=["POST"]),
            Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
        ]

    def install(self, app: Starlette) -> SandboxPage:
        """Add the page's routes to the fake's app (before or after it started serving)."""
        app.router.routes.extend(self.routes())
        return self

    def close(self) -> None:
        """End open event streams so the server can stop without waiting for them."""
        with self._streams_lock:
            streams = list(self._streams)
        for loop, queue in streams:
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(queue.put_nowait, -1)

    # ---------------------------------------------------------------------------- reading ----

    async def index(self, request: Request) -> Response:
        """The page itself, never cached by the browser."""
        return FileResponse(STATIC_DIR / "index.html", headers=NO_STORE)

    async def permalink(self, request: Request) -> Response:
        """chat.getPermalink links point here; open the page at that message."""
        channel = request.path_params["channel"]
        digits = str(request.path_params["p"]).removeprefix("p")
        ts = f"{digits[:-6]}.{digits[-6:]}" if len(digits) > 6 else digits  # noqa: PLR2004  6 digits of µs
        return RedirectResponse(f"/?channel={channel}&ts={ts}", status_code=302)

    async def get_state(self, request: Request) -> Response:
        """``GET /page/api/state``: what the page shows to the person in ``?user=``."""
        user_id = request.query_params.get("user") or ""
        try:
            data = await run_in_threadpool(self.page_state, user_id)
        except PageError as exc:
            return JSONResponse({"ok": False, "error": exc.message}, status_code=exc.status_code)
        return JSONResponse(data, headers=NO_STORE)

    def page_state(self, user_id: str) -> dict[str, Any]:
        """Everything the page renders for ``user_id``, as JSON-able data."""
        state = self.state
        people = [u for u in state.users() if not u.is_bot and not u.deleted]
        if not user_id and people:
            user_id = people[0].id
        user_id = self.resolve_person(user_id) or user_id
        if state.user(user_id) is None:
            known = ", ".join(u.name for u in people) or "none"
            raise PageError(f"no user {user_id!r} in this sandbox (people: {known})", 404)
        seq = state.seq
        channels = []
        messages: dict[str, list[dict[str, Any]]] = {}
        for channel in state.channels():
            if (channel.is_im or channel.is_private) and user_id not in channel.members:
                continue
            label = channel.name
            if channel.is_im:
                other = next((m for m in channel.members if m != user_id), user_id)
                who = state.user(other)
                label = (who.real_name or who.name) if who else other
            channels.append(
                {
                    "id": channel.id,
                    "name": channel.name,
                    "label": label,
                    "is_im": channel.is_im,
                    "is_private": channel.is_private,
                    "topic": channel.topic,
                    "members": len(channel.members),
                    "is_member": user_id in channel.members,
                }
            )
            visible = state.messages(channel.id, visible_to=user_id)
            messages[channel.id] = [
                self._message_json(state, m, user_id) for m in visible[-MAX_MESSAGES_PER_CHANNEL:]
            ]
        stack = state.view_stack(user_id)
        top = stack[-1] if stack else None
        view = None
        if top is not None:
            view = {
                "id": top.id,
                "hash": top.hash,
                "payload": top.payload,
                "errors": top.errors,
                "depth": len(stack),
            }
        published = state.home_view(user_id)
        home = (
            {"id": published.id, "hash": published.hash, "payload": published.payload}
            if published is not None
            else None
        )
        calls = [
            {"method": c.method, "ok": c.ok, "error": c.error, "status": c.status, "at": c.at}
            for c in state.calls()[-RECENT_CALLS:]
        ]
        return {
            "ok": True,
            "seq": seq,
            "me": user_id,
            "team": {"id": state.team_id, "domain": state.team_domain},
            "bot": {"user_id": state.bot_user_id, "bot_id": state.bot_id, "name": "Signoff"},
            "bot_url": self.bot_url,
            "users": [
                {"id": u.id, "name": u.name, "real_name": u.real_name or u.name, "is_bot": u.is_bot}
                for u in state.users()
            ],
            "people": [u.id for u in people],
            "usergroups": [
                {"id": g.id, "handle": g.handle, "name": g.name} for g in state.usergroups()
            ],
            "channels": channels,
            "messages": messages,
            "view": view,
            "home": home,
            "calls": calls,
            "commands": [
                {"command": c.command, "usage": c.usage, "description": c.description}
                for c in self.commands
            ],
            "suggestions": self.suggestions,
        }

    @staticmethod
    def _message_json(state: WorkspaceState, message: Message, user_id: str) -> dict[str, Any]:
        data = state.message_json(message)
        data["channel"] = message.channel
        data["ephemeral"] = message.is_ephemeral
        # What this person picked in the message's selects and choices (their client's state).
        data["picks"] = state.message_state(message.channel, message.ts, user_id)
        data.pop("metadata", None)
        return data

    async def events(self, request: Request) -> Response:
        """Server-Sent Events: ``data: {"seq": N}`` after changes (coalesced), keep-alives."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[int] = asyncio.Queue()
        entry = (loop, queue)

        def listener(event: ChangeEvent) -> None:
            if event.kind in QUIET_EVENTS:
                return
            with contextlib.suppress(RuntimeError):  # the server's loop has stopped
                loop.call_soon_threadsafe(queue.put_nowait, event.seq)

        state = self.state
        unsubscribe = state.add_listener(listener)
        with self._streams_lock:
            self._streams.add(entry)

        async def stream() -> AsyncIterator[str]:
            try:
                yield f"retry: 1000\ndata: {json.dumps({'seq': state.seq})}\n\n"
                while True:
                    try:
                        seq = await asyncio.wait_for(queue.get(), timeout=KEEPALIVE_SECONDS)
                    except TimeoutError:
                        yield ": keep-alive\n\n"
                        continue
                    if seq < 0:
                        return
                    await asyncio.sleep(0.02)  # let a burst of changes settle into one event
                    while not queue.empty():
                        seq = max(seq, queue.get_nowait())
                    yield f"data: {json.dumps({'seq': seq})}\n\n"
            finally:
                unsubscribe()
                with self._streams_lock:
                    self._streams.discard(entry)

        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)

    # ---------------------------------------------------------------------------- acting ----

    async def _post(self, request: Request, handler: Callable[[dict[str, Any]], Any]) -> Response:
        try:
            body = parse_json(await read_body(request))
        except ValueError:
            return JSONResponse({"ok": False, "error": "body must be JSON"}, status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"ok": False, "error": "body must be an object"}, status_code=400)
        try:
            result = await run_in_threadpool(handler, body)
        except PageError as exc:
            return JSONResponse({"ok": False, "error": exc.message}, status_code=exc.status_code)
        return JSONResponse({"ok": True, **(result or {})})

    async def post_compose(self, request: Request) -> Response:
        """``POST /page/api/compose``: send a message or a slash command."""
        return await self._post(request, self.compose)

    async def post_action(self, request: Request) -> Response:
        """``POST /page/api/action``: click a button or pick an option."""
        return await self._post(request, self.action)

    async def post_submit(self, request: Request) -> Response:
        """``POST /page/api/submit``: submit the open modal."""
        return await self._post(request, self.submit)

    async def post_close(self, request: Request) -> Response:
        """``POST /page/api/close``: close the open modal."""
        return await self._post(request, self.close_view)

    async def post_dismiss(self, request: Request) -> Response:
        """``POST /page/api/dismiss``: dismiss an ephemeral message."""
        return await self._post(request, self.dismiss)

    async def post_home(self, request: Request) -> Response:
        """Open the acting person's App Home (``app_home_opened`` to the bot)."""
        return await self._post(request, self.open_home)

    def resolve_person(self, who: str) -> str | None:
        """A person's user ID from their ID, handle (``alice``, ``@alice``) or real name,
        as people write them in a link (``?as=alice``); None if nobody matches."""
        if self.state.user(who) is not None:
            return who
        wanted = who.strip().removeprefix("@").casefold()
        for user in self.state.users():
            if user.is_bot or user.deleted:
                continue
            names = {user.name.casefold(), (user.real_name or "").casefold()}
            first = (user.real_name or "").split(" ")[0].casefold()
            if wanted and (wanted in names or wanted == first):
                return user.id
        return None

    def _person(self, body: Mapping[str, Any]) -> str:
        user_id = body.get("user")
        if isinstance(user_id, str):
            user_id = self.resolve_person(user_id) or user_id
        user = self.state.user(user_id) if isinstance(user_id, str) else None
        if user is None or user.is_bot:
            raise PageError(f"unknown user {user_id!r}")
        return user.id

    def _channel(self, body: Mapping[str, Any]) -> str:
        channel_id = body.get("channel") or DEFAULT_CHANNEL_ID
        if not isinstance(channel_id, str) or self.state.channel(channel_id) is None:
            raise PageError(f"unknown channel {channel_id!r}")
        return channel_id

    def _actor(self, user_id: str, channel_id: str) -> SlackActor:
        if not self.bot_url:
            raise PageError("the bot is not running yet", 503)
        return SlackActor(
            bot_url=self.bot_url,
            signing_secret=self.signing_secret,
            fake=self.state,
            user_id=user_id,
            channel_id=channel_id,
            timeout=self.timeout,
        )

    def _slackbot_says(self, channel_id: str, user_id: str, text: str) -> None:
        self.state.post_message(channel_id, text=text, user=SLACKBOT_USER_ID, ephemeral_for=user_id)

    def compose(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """The composer: ``/command text`` is a slash command; anything else a plain message."""
        user_id, channel_id = self._person(body), self._channel(body)
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            raise PageError("nothing to send")
        text = text.strip()
        if not text.startswith("/"):
            self.state.join_channel(channel_id, user_id)
            message = self.state.post_message(channel_id, text=_escape(text), user=user_id)
            return {"ts": message.ts}
        command, _, rest = text.partition(" ")
        command = command.split("\n")[0]
        if command not in {c.command for c in self.commands}:
            self._slackbot_says(
                channel_id,
                user_id,
                f"`{_escape(command)}` is not a valid command. In Slack, all messages that "
                'start with the "/" character are interpreted as commands.',
            )
            return {"status": None}
        with self._actor(user_id, channel_id) as actor:
            try:
                response = actor.slash(command, rest.strip())
            except httpx.HTTPError as exc:
                timed_out = isinstance(exc, httpx.TimeoutException)
                error = "operation_timeout" if timed_out else "dispatch_failed"
                self._slackbot_says(
                    channel_id, user_id, f'{command} failed with the error "{error}"'
                )
                return {"status": None, "error": error}
        if response.status_code != HTTPStatus.OK:
            error = "http_client_error" if response.status_code < 500 else "http_service_error"  # noqa: PLR2004
            self._slackbot_says(channel_id, user_id, f'{command} failed with the error "{error}"')
            return {"status": response.status_code, "error": error}
        return {"status": response.status_code}

    def action(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """A click on a button (or a pick in a select) in a message or in the open modal."""
        user_id = self._person(body)
        action_id = body.get("action_id")
        block_id = body.get("block_id")
        if not isinstance(action_id, str) or not isinstance(block_id, (str, type(None))):
            raise PageError("action_id (and block_id) must be strings")
        view_id = body.get("view_id")
        shown = body.get("shown_blocks")
        if shown is not None and not (
            isinstance(shown, list) and all(isinstance(b, dict) for b in shown)
        ):
            raise PageError("shown_blocks must be a list of blocks")
        channel_id = DEFAULT_CHANNEL_ID
        target: Message | str
        if isinstance(view_id, str) and view_id:
            target = view_id
        else:
            channel_id = self._channel(body)
            ts = body.get("ts")
            message = self.state.message(channel_id, ts) if isinstance(ts, str) else None
            if message is None:
                raise PageError("that message no longer exists", 404)
            target = message
        with self._actor(user_id, channel_id) as actor:
            try:
                # A message is clicked as the page showed it (Slack's client does the same):
                # a confirm dialog left open while someone else decided still sends its click.
                response = actor.click(
                    target,
                    action_id=action_id,
                    block_id=block_id,
                    value=body.get("value"),
                    shown_blocks=shown if isinstance(target, Message) else None,
                )
            except (LookupError, ValueError) as exc:
                raise PageError(str(exc).strip("'\""), 409) from exc
            except httpx.HTTPError as exc:
                raise PageError(f"the bot did not answer ({type(exc).__name__})", 502) from exc
        return _outcome(response)

    def submit(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """The modal's submit button, with the values typed, keyed by input block id."""
        user_id = self._person(body)
        view_id = body.get("view_id")
        values = body.get("values") or {}
        if not isinstance(view_id, str) or not isinstance(values, dict):
            raise PageError("view_id must be a string and values an object")
        view = self.state.view(view_id)
        if view is None or not view.is_open or view.user_id != user_id:
            raise PageError("that modal is no longer open", 409)
        with self._actor(user_id, DEFAULT_CHANNEL_ID) as actor:
            try:
                response = actor.submit(view_id, values)
            except (LookupError, ValueError) as exc:
                raise PageError(str(exc).strip("'\"")) from exc
            except httpx.HTTPError as exc:
                raise PageError(f"the bot did not answer ({type(exc).__name__})", 502) from exc
        result = _outcome(response)
        if response.status_code != HTTPStatus.OK:
            result["error"] = "We had some trouble connecting. Try again?"
        return result

    def close_view(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """The modal's close button (``view_closed`` reaches the bot if it asked for it)."""
        user_id = self._person(body)
        view_id = body.get("view_id")
        view = self.state.view(view_id) if isinstance(view_id, str) else None
        if view is None or not view.is_open or view.user_id != user_id:
            return {"status": None}  # already gone: nothing to do
        with self._actor(user_id, DEFAULT_CHANNEL_ID) as actor:
            try:
                response = actor.close(view.id)
            except LookupError:
                return {"status": None}
            except httpx.HTTPError:
                return {"status": None, "error": "the bot did not answer"}
        return {"status": None} if response is None else _outcome(response)

    def open_home(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """The app's Home tab opened: Slack sends ``app_home_opened``; the bot publishes it."""
        user_id = self._person(body)
        with self._actor(user_id, DEFAULT_CHANNEL_ID) as actor:
            try:
                response = actor.open_home()
            except httpx.HTTPError as exc:
                raise PageError(f"the bot did not answer ({type(exc).__name__})", 502) from exc
        return _outcome(response)

    def dismiss(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """The "Dismiss" link of an ephemeral message: gone for good, as in Slack."""
        user_id, channel_id = self._person(body), self._channel(body)
        ts = body.get("ts")
        message = self.state.message(channel_id, ts) if isinstance(ts, str) else None
        if message is None or message.ephemeral_for != user_id:
            raise PageError("only your own ephemeral messages can be dismissed", 404)
        self.state.delete_message(channel_id, message.ts)
        return {}


def _outcome(response: httpx.Response) -> dict[str, Any]:
    result: dict[str, Any] = {"status": response.status_code}
    if response.status_code == HTTPStatus.OK and response.content.strip():
        with contextlib.suppress(ValueError):
            body = response.json()
            if isinstance(body, dict) and body.get("response_action"):
                result["response_action"] = body["response_action"]
                if isinstance(body.get("errors"), dict):
                    result["errors"] = body["errors"]
    elif response.status_code != HTTPStatus.OK:
        result["error"] = f"the bot answered HTTP {response.status_code}"
    return result


def _escape(text: str) -> str:
    """What Slack does to typed text: only &, < and > are escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
