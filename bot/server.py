"""HTTP: ``POST /slack/events`` (events, interactivity, slash commands) and ``GET /healthz``,
on Starlette + uvicorn; or Socket Mode when ``SLACK_APP_TOKEN`` is set.

``Runtime`` wires a running bot together: database, Slack client, the Signoff core, the
outbox worker, the deadline scheduler, the Bolt app and the ASGI app.
"""

from __future__ import annotations

import logging
import time

import uvicorn
from slack_bolt import App, BoltRequest
from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.app import build_app
from bot.config import Settings
from bot.http_thread import BackgroundServer
from bot.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from bot.outbox import OutboxWorker
from bot.request_shapes import request_problem
from bot.routing import SlackRoute, load_routes, resolve_channels
from bot.scheduler import DeadlineScheduler
from bot.service import Signoff
from engine import Clock, db_from_url
from engine.db.base import BaseDb

log = logging.getLogger("signoff.server")
MAX_BODY_BYTES = 1_000_000


def make_client(settings: Settings) -> WebClient:
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    # No retry handlers: the outbox retries without holding a thread asleep.
    client = WebClient(token=token, base_url=settings.slack_api_url, timeout=10)
    client.retry_handlers = []
    return client


class Runtime:
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
        self.db = db or db_from_url(settings.database_url)
        self.client = client or make_client(settings)
        # Channel names become IDs once, here: a missing channel stops start-up clearly.
        resolved_routes, default_channel = resolve_channels(
            routes if routes is not None else load_routes(settings.workflow_specs),
            settings.channel,
            self.client,
        )
        self.signoff = Signoff(
            routes=resolved_routes,
            db=self.db,
            client=self.client,
            default_channel=default_channel,
            clock=clock,
            workers=settings.workers,
        )
        self.outbox = OutboxWorker(self.signoff, poll_interval=outbox_poll_interval)
        self.scheduler = DeadlineScheduler(self.signoff, poll_seconds=settings.poll_seconds)
        self._scheduler_paused = scheduler_paused
        secret = settings.slack_signing_secret
        self.signing_secret = secret.get_secret_value() if secret else ""
        self.bolt: App = build_app(
            self.signoff, signing_secret=self.signing_secret, client=self.client
        )
        self.asgi = make_asgi(self)

    def start(self) -> None:
        self.signoff.start()
        self.outbox.start()
        self.scheduler.start(paused=self._scheduler_paused)

    def stop(self) -> None:
        self.scheduler.stop()
        self.signoff.stop()
        self.outbox.stop()


def make_asgi(runtime: Runtime) -> Starlette:
    verifier = SignatureVerifier(runtime.signing_secret)

    async def slack_events(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return JSONResponse({"error": "request too large"}, status_code=413)
        timestamp = request.headers.get("x-slack-request-timestamp", "")
        signature = request.headers.get("x-slack-signature", "")
        if not (
            timestamp.isdigit()
            and signature
            and verifier.is_valid(body=body, timestamp=timestamp, signature=signature)
        ):
            return JSONResponse({"error": "invalid or expired signature"}, status_code=401)
        try:
            text = body.decode("utf-8")
            bolt_request = BoltRequest(
                body=text, query=request.url.query, headers=dict(request.headers)
            )
        except (ValueError, AttributeError, TypeError, UnicodeDecodeError) as exc:
            return JSONResponse(
                {"error": f"malformed payload: {type(exc).__name__}"}, status_code=400
            )
        if not isinstance(bolt_request.body, dict) or not bolt_request.body:
            return JSONResponse({"error": "malformed payload: empty"}, status_code=400)
        problem = request_problem(bolt_request.body)
        if problem is not None:
            return JSONResponse({"error": f"malformed payload: {problem}"}, status_code=400)
        started = time.perf_counter()
        response = await run_in_threadpool(runtime.bolt.dispatch, bolt_request)
        kind = bolt_request.body.get("type") or (
            "command" if "command" in bolt_request.body else "other"
        )
        runtime.signoff.metrics.ack_seconds.labels(kind=str(kind)[:32]).observe(
            time.perf_counter() - started
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

    return Starlette(
        routes=[
            Route("/slack/events", slack_events, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ]
    )


# Kept under this name for callers that serve the bot in a thread (tests, benchmarks).
ServerThread = BackgroundServer


def serve(runtime: Runtime) -> None:
    """Serve until interrupted (``signoff serve``)."""
    settings = runtime.settings
    runtime.start()
    handler = None
    try:
        if settings.slack_app_token is not None:
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            handler = SocketModeHandler(runtime.bolt, settings.slack_app_token.get_secret_value())
            handler.connect()
            log.info("connected to Slack in Socket Mode; /healthz on port %s", settings.port)
        uvicorn.run(
            runtime.asgi,
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level.lower(),
            access_log=False,
        )
    finally:
        if handler is not None:
            handler.close()
        runtime.stop()
