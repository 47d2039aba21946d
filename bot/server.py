"""HTTP: ``POST /slack/events`` (events, interactivity, slash commands) and ``GET /healthz``,
on Starlette + uvicorn; or Socket Mode when ``SLACK_APP_TOKEN`` is set.

``Runtime`` wires a running bot together, in one place: database, Slack client, the
``Signoff`` core, its parts (permissions, publisher, decider, queries, deadlines…), the
outbox and inbox workers, the scheduler, the Bolt app and the ASGI app.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta

import uvicorn
from slack_bolt import App, BoltRequest, BoltResponse
from slack_sdk import WebClient
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.app import CachedAuthorization, build_app
from bot.config import Settings, open_database
from bot.deadlines import Deadlines
from bot.decider import Decider
from bot.delegation import Delegations, Delegator
from bot.escalation import Escalator
from bot.forms import form_closed_handler
from bot.http_thread import BackgroundServer, PortUnavailableError
from bot.inbox import RECEIVED_AT, InboxWorker
from bot.kinds import InboxKind, OutboxKind
from bot.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from bot.notify import Notifier
from bot.outbox import OutboxWorker
from bot.outbox_queue import OutboxQueue
from bot.parts import Parts
from bot.permissions import Groups, Permissions
from bot.publisher import Publisher
from bot.queries import Queries
from bot.routing import ChannelDirectory, ChannelLookupError, SlackRoute, load_routes
from bot.scheduler import DeadlineScheduler, PauseJobs
from bot.service import Signoff
from bot.slack_http import (
    BODY_TIMEOUT,
    MAX_BODY_BYTES,
    BodyTimeoutError,
    BodyTooLargeError,
    MalformedRequestError,
    SlackSignature,
    read_bounded_body,
)
from bot.starts import Starts
from bot.teller import Teller
from engine import Clock
from engine.db.base import BaseDb

log = logging.getLogger("signoff.server")
CHANNEL_LOOKUP_RETRY_MIN = timedelta(seconds=5)
CHANNEL_LOOKUP_RETRY_MAX = timedelta(minutes=5)
__all__ = ["MAX_BODY_BYTES", "Runtime", "ServerThread", "make_asgi", "serve"]


def make_client(settings: Settings) -> WebClient:
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    # No retry handlers: the outbox retries without holding a thread asleep.
    client = WebClient(token=token, base_url=settings.slack_api_url, timeout=10)
    client.retry_handlers = []
    return client


class Runtime:
    """A running bot wired together: database, Slack client, core, outbox, scheduler and apps."""

    def __init__(
        self,
        settings: Settings,
        *,
        routes: list[SlackRoute] | None = None,
        db: BaseDb | None = None,
        client: WebClient | None = None,
        clock: Clock | None = None,
        scheduler_paused: bool = False,
        outbox_poll_interval: float = 0.5,
    ) -> None:
        self.settings = settings
        self.db = db or open_database(settings)
        self.client = client or make_client(settings)
        routes = routes if routes is not None else load_routes(settings.workflow_specs)
        self.channels = ChannelDirectory(routes, settings.channel)
        # Every part is built here and given its collaborators; none is rewired later.
        self.signoff = signoff = Signoff(
            routes=routes,
            db=self.db,
            client=self.client,
            channels=self.channels,
            clock=clock,
            workers=settings.workers,
            outbox_retention=timedelta(days=settings.outbox_retention_days),
        )
        self.queue = OutboxQueue(signoff.store, wakeup=signoff.outbox_wakeup)
        self.groups = Groups(self.client, signoff.clock, signoff.metrics)
        # The policies beyond a route's approvers: escalation of pauses still open after a
        # while (bot/escalation.py), delegates deciding in place of delegators.
        self.escalator = Escalator(signoff, self.groups)
        self.delegations = Delegations(signoff)
        self.permissions = Permissions(
            self.groups,
            extra=(self.escalator, self.delegations),
            refusals=(self.delegations,),
        )
        self.queries = Queries(
            signoff, self.permissions, self.groups, notes=(self.escalator, self.delegations)
        )
        # Direct messages, reminders to each approver and the App Home (bot/notify.py).
        self.notifier = Notifier(
            signoff,
            self.queue,
            permissions=self.permissions,
            groups=self.groups,
            queries=self.queries,
        )
        self.teller = Teller(self.client, signoff.metrics, untold=(self.notifier.on_untold,))
        self.outbox = OutboxWorker(
            signoff,
            self.queries,
            handlers={
                **self.notifier.handlers(),
                OutboxKind.form_closed: form_closed_handler(signoff),
            },
            poll_interval=outbox_poll_interval,
        )
        self.decider = Decider(signoff, self.queue, self.permissions, outbox=self.outbox)
        self.delegator = Delegator(
            signoff, decider=self.decider, permissions=self.permissions, teller=self.teller
        )
        self.deadlines = Deadlines(signoff, self.queue, on_reminded=(self.notifier.on_reminded,))
        self.pause_jobs = PauseJobs(signoff, self.deadlines, sources=(self.escalator,))
        self.publisher = Publisher(
            signoff,
            self.queue,
            on_pause_recorded=(self.notifier.on_pause_recorded, self.pause_jobs.schedule),
            on_event=(self.notifier.on_event,),
        )
        self.scheduler = DeadlineScheduler(
            signoff,
            self.publisher,
            self.pause_jobs,
            poll_interval=timedelta(seconds=settings.poll_seconds),
        )
        self.inbox = InboxWorker(
            signoff,
            handlers={
                InboxKind.decide: self.decider.apply_decide,
                InboxKind.start: Starts(signoff, self.permissions).apply,
            },
            reply=self.teller.reply_to,
            poll_interval=outbox_poll_interval,
        )
        signoff.metrics.watch_state(
            self.queries.pending_count, signoff.store.outbox_counts, signoff.store.inbox_counts
        )
        self._scheduler_paused = scheduler_paused
        self._stopping = threading.Event()
        self._channel_retry: threading.Thread | None = None
        secret = settings.slack_signing_secret
        self.signing_secret = secret.get_secret_value() if secret else ""
        # auth.test is asked in the background once serving starts, never on a request's path.
        self.authorization = CachedAuthorization(self.client, start=False)
        parts = Parts(
            signoff=signoff,
            permissions=self.permissions,
            decider=self.decider,
            queries=self.queries,
            teller=self.teller,
            delegator=self.delegator,
            notifier=self.notifier,
        )
        self.bolt: App = build_app(
            parts,
            signing_secret=self.signing_secret,
            client=self.client,
            authorization=self.authorization,
        )
        self.asgi = make_asgi(self)

    def start(self) -> None:
        """Start serving; raises for what an operator must fix (database, a missing channel)."""
        self.signoff.start()
        self.publisher.start()
        self._load_channels()
        self.authorization.start()
        self.outbox.start()
        self.inbox.start()
        self.scheduler.start(paused=self._scheduler_paused)

    def _load_channels(self) -> None:
        # Channel names become IDs once, here, after the database answered: a channel that
        # does not exist stops start-up; Slack not answering only delays the lookup.
        try:
            self.channels.load(self.client)
        except ChannelLookupError as exc:
            log.warning("%s; posting by channel name and retrying in the background", exc)
            self._channel_retry = threading.Thread(
                target=self._retry_channel_lookup, name="signoff-channels", daemon=True
            )
            self._channel_retry.start()

    def _retry_channel_lookup(self) -> None:
        delay = CHANNEL_LOOKUP_RETRY_MIN
        while not self._stopping.wait(delay.total_seconds()):
            try:
                self.channels.load(self.client)
            except ChannelLookupError:
                delay = min(delay * 2, CHANNEL_LOOKUP_RETRY_MAX)
                continue
            except ValueError as exc:
                log.error("signoff: %s", exc)
            else:
                log.info("channel names resolved to IDs")
            return

    def stop(self) -> None:
        """Stop the scheduler, the core and the outbox, in that order."""
        self._stopping.set()
        self.authorization.stop()
        self.scheduler.stop()
        self.inbox.stop()
        self.publisher.stop()
        self.signoff.stop()
        self.outbox.stop()


def make_asgi(runtime: Runtime, *, body_timeout: timedelta = BODY_TIMEOUT) -> Starlette:
    """The ASGI app: ``POST /slack/events`` (verified before parsing), healthz and metrics."""
    signature = SlackSignature(runtime.signing_secret)

    pressure = runtime.signoff.pressure

    async def slack_events(request: Request) -> Response:
        received = time.monotonic()  # Slack's 3 s run from here (at best)
        # In flight until answered: the background steps aside while requests wait.
        with pressure.request(received):
            return await _slack_event(request, received)

    async def _slack_event(request: Request, received: float) -> Response:
        try:
            raw = await read_bounded_body(
                request.headers, request.stream(), limit=MAX_BODY_BYTES, timeout=body_timeout
            )
        except BodyTimeoutError:
            return _refusal(408, "request body not received in time", close=True)
        except BodyTooLargeError:
            # Not reading the rest: the connection closes after this answer.
            return _refusal(413, "request too large", close=True)
        except (MalformedRequestError, ClientDisconnect):
            return _refusal(400, "malformed request", close=True)
        text = signature.verified_text(
            raw,
            timestamp=request.headers.get("x-slack-request-timestamp"),
            signature=request.headers.get("x-slack-signature"),
        )
        if text is None:
            return _refusal(401, "invalid or expired signature")
        response = await run_in_threadpool(
            _dispatch, runtime.bolt, text, request.url.query, {**request.headers}, received
        )
        return Response(
            content=response.body,
            status_code=response.status,
            headers=response.first_headers_without_set_cookie(),
        )

    async def healthz(_request: Request) -> Response:
        ok = await run_in_threadpool(runtime.db.ping)
        return JSONResponse(
            {"ok": ok, "database": "reachable" if ok else "unreachable"},
            status_code=200 if ok else 503,
        )

    async def metrics(_request: Request) -> Response:
        body = await run_in_threadpool(runtime.signoff.metrics.render)
        return Response(body, media_type=METRICS_CONTENT_TYPE)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with pressure.loop_watch():  # how late the event loop runs, while serving
            yield

    return Starlette(
        routes=[
            Route("/slack/events", slack_events, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


def _refusal(status: int, error: str, *, close: bool = False) -> Response:
    return JSONResponse(
        {"error": error}, status_code=status, headers={"Connection": "close"} if close else None
    )


def _dispatch(
    bolt: App,
    text: str,
    query: str,
    headers: dict[str, str | Sequence[str]],
    received: float | None = None,
) -> BoltResponse:
    """Parse a verified body into Bolt's request and dispatch it (in a worker thread: parsing
    a large payload stays off the event loop). Shapes are checked by Bolt middleware.
    ``received``: when the request arrived (its listeners' recording is bounded by it)."""
    token = RECEIVED_AT.set(received)
    try:
        return _parse_and_dispatch(bolt, text, query, headers)
    finally:
        RECEIVED_AT.reset(token)


def _parse_and_dispatch(
    bolt: App, text: str, query: str, headers: dict[str, str | Sequence[str]]
) -> BoltResponse:
    try:
        request = BoltRequest(body=text, query=query, headers=headers)
    # Bolt parses JSON (RecursionError past ~1,000 levels) and reads fields of the parsed
    # payload without checking their types; any of that means the payload is malformed.
    except (ValueError, TypeError, AttributeError, LookupError, RecursionError) as exc:
        return BoltResponse(status=400, body={"error": f"malformed payload: {type(exc).__name__}"})
    return bolt.dispatch(request)


# Kept under this name for callers that serve the bot in a thread (tests, benchmarks).
ServerThread = BackgroundServer


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port``, before anything else starts: a port in use is then
    one ``PortUnavailableError`` (uvicorn would log it and exit the process)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise PortUnavailableError(port, exc) from exc
    return sock


def serve(runtime: Runtime) -> None:
    """Serve until interrupted (``signoff serve``)."""
    settings = runtime.settings
    sock = listen(settings.host, settings.port)
    handler = None
    try:
        runtime.start()
        if settings.slack_app_token is not None:
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            handler = SocketModeHandler(runtime.bolt, settings.slack_app_token.get_secret_value())
            handler.connect()  # type: ignore[no-untyped-call]  # slack_bolt's adapter is untyped
            log.info("connected to Slack in Socket Mode; /healthz on port %s", settings.port)
        config = uvicorn.Config(
            runtime.asgi,
            log_level=settings.log_level.lower(),
            access_log=False,
        )
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        if handler is not None:
            handler.close()  # type: ignore[no-untyped-call]
        runtime.stop()
        sock.close()
