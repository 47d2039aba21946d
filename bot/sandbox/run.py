"""``signoff sandbox`` (and ``signoff serve`` without credentials): the bot against a local Slack.

One process runs three things on loopback:

- the Slack fake with its page (``SlackFakeServer`` + ``SandboxPage``) on ``sandbox_port``;
- the real bot (``bot.server.Runtime``) whose Web API client points at the fake, with a bot
  token the fake knows, a freshly generated signing secret shared with the page, and
  ``SIGNOFF_CHANNEL`` set to the fake's #signoff; on the embedded defaults (the SQLite file of
  ``SIGNOFF_DATABASE_URL``, the in-process deadline scheduler);
- the bot's HTTP server (uvicorn) on ``SIGNOFF_PORT``, which the page sends signed requests to.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType, TracebackType
from typing import TextIO

from pydantic import SecretStr
from sqlalchemy.engine import make_url

from bot.config import Settings
from bot.routing import SlackRoute
from bot.server import Runtime, ServerThread
from engine.db.base import BaseDb

from .page import SandboxPage
from .server import SlackFakeServer
from .state import DEFAULT_CHANNEL_ID, WorkspaceState

log = logging.getLogger("signoff.sandbox")
LOOPBACK = "127.0.0.1"


def workspace_file(database_url: str) -> Path | None:
    """Where the sandbox keeps its channel history: next to the SQLite file, so the messages of
    runs still waiting survive a restart as the runs do. None for in-memory or PostgreSQL."""
    if database_url.startswith(("postgres", "postgresql")):
        return None
    database = (
        make_url(database_url).database if database_url.startswith("sqlite") else (database_url)
    )
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database + ".sandbox.json")


def sandbox_settings(
    settings: Settings, *, api_url: str, bot_token: str, signing_secret: str
) -> Settings:
    """The user's settings, pointed at the local Slack (database, workflows, port are kept)."""
    return settings.model_copy(
        update={
            "slack_bot_token": SecretStr(bot_token),
            "slack_signing_secret": SecretStr(signing_secret),
            "slack_app_token": None,  # never Socket Mode: the page talks HTTP
            "slack_api_url": api_url if api_url.endswith("/") else api_url + "/",
            "channel": DEFAULT_CHANNEL_ID,
        }
    )


class Sandbox:
    """The local Slack, its page and the bot, wired together; ``start()``/``stop()``.

    Ports default to 0 (free ports, for tests); ``serve_sandbox`` passes the real ones.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        sandbox_port: int = 0,
        bot_port: int = 0,
        host: str = LOOPBACK,
        routes: list[SlackRoute] | None = None,
        db: BaseDb | None = None,
        state: WorkspaceState | None = None,
    ) -> None:
        self.settings = settings
        self.host = host
        self.bot_port = bot_port
        self._routes = routes
        self._db = db
        self.signing_secret = secrets.token_hex(16)
        self.fake = SlackFakeServer(state, host=host, port=sandbox_port)
        self.history = workspace_file(settings.database_url)
        self._load_history()
        self.page = SandboxPage(self.fake, signing_secret=self.signing_secret)
        self.page.install(self.fake.app)
        self.runtime: Runtime | None = None
        self.bot_server: ServerThread | None = None

    def start(self) -> Sandbox:
        """Start the fake, the bot and the page; on any failure stop what started, then raise."""
        try:
            self.fake.start()
            bot_settings = sandbox_settings(
                self.settings,
                api_url=self.fake.api_url,
                bot_token=self.fake.state.bot_token,
                signing_secret=self.signing_secret,
            )
            self.runtime = Runtime(bot_settings, routes=self._routes, db=self._db)
            self.page.suggestions = [
                *(f"/signoff run {name}" for name in self.runtime.signoff.routes),
                "/signoff pending",
                "/signoff help",
            ]
            self.runtime.start()
            self.bot_server = ServerThread(self.runtime.asgi, host=self.host, port=self.bot_port)
            self.bot_server.start()
            self.page.bot_url = f"{self.bot_server.url}/slack/events"
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the page, the bot and the fake, and save the workspace's history."""
        self.page.bot_url = None
        self.page.close()
        if self.bot_server is not None:
            self.bot_server.stop()
            self.bot_server = None
        if self.runtime is not None:
            self.runtime.stop()
            self.runtime = None
        self.fake.stop()
        self._save_history()

    def _load_history(self) -> None:
        if self.history is None or not self.history.is_file():
            return
        try:
            data = json.loads(self.history.read_text())
            count = self.fake.state.import_messages(data.get("messages", []))
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            log.warning("ignoring the sandbox history in %s: %s", self.history, exc)
            return
        log.info("sandbox: %d messages restored from %s", count, self.history)

    def _save_history(self) -> None:
        if self.history is None:
            return
        data = {"version": 1, "messages": self.fake.state.export_messages()}
        try:
            self.history.write_text(json.dumps(data))
        except OSError as exc:
            log.warning("could not keep the sandbox history in %s: %s", self.history, exc)

    @property
    def page_url(self) -> str:
        """Where a person opens the sandbox page."""
        return self.fake.base_url + "/"

    @property
    def bot_url(self) -> str:
        """Where the bot listens for the fake's requests; raises if not running."""
        if self.bot_server is None:
            raise RuntimeError("the sandbox is not running")
        return self.bot_server.url

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve_sandbox(
    settings: Settings,
    *,
    sandbox_port: int,
    sandbox_port_source: str = "SIGNOFF_SANDBOX_PORT",
    out: TextIO | None = None,
    stop_event: threading.Event | None = None,
) -> int:
    """Run the sandbox until Ctrl-C (or SIGTERM, or ``stop_event``); the exit code.
    ``sandbox_port_source`` is what set ``sandbox_port``, named when it is taken."""
    out = out or sys.stdout
    stop = stop_event or threading.Event()
    scheduler_log = logging.getLogger("apscheduler")
    if scheduler_log.level == logging.NOTSET:  # its per-job INFO lines would drown the console
        scheduler_log.setLevel(logging.WARNING)
    sandbox = Sandbox(settings, sandbox_port=sandbox_port, bot_port=settings.port)
    try:
        sandbox.start()
    except OSError as exc:  # the bot's or the page's port is taken
        reason = exc.strerror or exc
        port = getattr(exc, "port", settings.port)
        source = sandbox_port_source if port == sandbox_port else "SIGNOFF_PORT"
        print(
            f"signoff: cannot listen on port {port}: {reason}; set {source} to a free port",
            file=sys.stderr,
        )
        return 2
    except RuntimeError as exc:  # the fake's port is taken (uvicorn exits in its thread)
        print(
            f"signoff: cannot start the sandbox on port {sandbox_port}: {exc}; "
            f"set {sandbox_port_source} to a free port",
            file=sys.stderr,
        )
        return 2
    restore = _stop_on_sigterm(stop)
    try:
        print(
            f"Signoff sandbox: open {sandbox.page_url} and type /signoff run data_pipeline",
            file=out,
            flush=True,
        )
        print(
            "This is a local sandbox with no Slack workspace: the page plays Slack and sends "
            f"signed requests to the bot at {sandbox.bot_url}. Ctrl-C stops it.",
            file=out,
            flush=True,
        )
        with contextlib.suppress(KeyboardInterrupt):
            while not stop.wait(0.5):
                pass
    finally:
        restore()
        sandbox.stop()
    return 0


def _stop_on_sigterm(stop: threading.Event) -> Callable[[], None]:
    if threading.current_thread() is not threading.main_thread():
        return _noop

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, handler)

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)

    return restore


def _noop() -> None:
    return None
