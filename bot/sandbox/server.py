"""Serve the Slack fake (or any ASGI app, e.g. a bolt app under test) over real loopback HTTP."""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Any

import uvicorn
from slack_sdk import WebClient
from starlette.applications import Starlette

from .slack_api import SlackWebApi, create_app
from .state import WorkspaceState


class BackgroundServer:
    """Run an ASGI app with uvicorn in a daemon thread on a free loopback port."""

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int = 0, name: str = "asgi"):
        self.app = app
        self.host = host
        self._requested_port = port
        self._name = name
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._port: int | None = None

    def start(self, timeout: float = 10.0) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{self._name} server already started")
        config = uvicorn.Config(
            self.app,
            host=self.host,
            port=self._requested_port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            # Tests stop servers often; don't wait long for idle keep-alive connections.
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(
            target=self._run, args=(server,), name=f"sandbox-{self._name}", daemon=True
        )
        self._thread.start()
        # uvicorn sets `started` only once its sockets listen, so a connection made after this
        # loop cannot be refused.  Polling also notices a thread that died during startup.
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"{self._name} server failed to start") from self._error
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"{self._name} server did not start within {timeout}s")
            time.sleep(0.005)
        self._port = server.servers[0].sockets[0].getsockname()[1]

    def _run(self, server: uvicorn.Server) -> None:
        try:
            server.run()
        except BaseException as exc:  # uvicorn calls sys.exit on bind errors
            self._error = exc

    def stop(self, timeout: float = 5.0) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(timeout)
        if thread.is_alive():  # a stuck connection; don't hang the test run on it
            server.force_exit = True
            thread.join(timeout)
        self._server = self._thread = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError(f"{self._name} server is not running")
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> BackgroundServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class SlackFakeServer:
    """The Slack Web API fake on a free loopback port.

    >>> with SlackFakeServer() as fake:
    ...     client = WebClient(base_url=fake.api_url, token=fake.state.bot_token)
    """

    def __init__(
        self, state: WorkspaceState | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self._app = create_app(state or WorkspaceState())
        self._api: SlackWebApi = self._app.state.slack_api
        self._http = BackgroundServer(self._app, host=host, port=port, name="slack-fake")

    def start(self, timeout: float = 10.0) -> SlackFakeServer:
        self._http.start(timeout)
        self._api.state.base_url = self.base_url
        return self

    def stop(self) -> None:
        self._http.stop()

    def __enter__(self) -> SlackFakeServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def state(self) -> WorkspaceState:
        return self._api.state

    @property
    def app(self) -> Starlette:
        """The Starlette app; the sandbox page adds its routes to it (``SandboxPage.install``)."""
        return self._app

    def reset(self, state: WorkspaceState | None = None) -> WorkspaceState:
        """Swap in a fresh workspace without restarting (keeps one server per test session)."""
        new_state = state or WorkspaceState()
        new_state.base_url = self.base_url
        self._api.state = new_state
        return new_state

    @property
    def port(self) -> int:
        return self._http.port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` — root of the sandbox (response_urls, later the page)."""
        return self._http.url

    @property
    def api_url(self) -> str:
        """``http://127.0.0.1:PORT/api/`` — the form slack_sdk's ``base_url`` expects."""
        return f"{self.base_url}/api/"

    def web_client(self, token: str | None = None, **kwargs: Any) -> WebClient:
        """A real ``slack_sdk.WebClient`` aimed at this fake (bot token by default)."""
        return WebClient(base_url=self.api_url, token=token or self.state.bot_token, **kwargs)

    # Failure injection, delegated so tests can say `fake.fail_next(...)`.
    def fail_next(self, method: str, error: str = "channel_not_found", times: int = 1) -> None:
        self.state.fail_next(method, error=error, times=times)

    def rate_limit_next(self, method: str, retry_after: int = 1, times: int = 1) -> None:
        self.state.rate_limit_next(method, retry_after=retry_after, times=times)

    def set_down(self, down: bool = True) -> None:
        self.state.set_down(down)
