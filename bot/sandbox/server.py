"""Serve the Slack fake (or any ASGI app, e.g. a bolt app under test) over real loopback HTTP."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from slack_sdk import WebClient
from starlette.applications import Starlette

from bot.http_thread import BackgroundServer

from .slack_api import SlackWebApi, create_app
from .state import WorkspaceState


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
        """Serve the fake; returns once it accepts connections."""
        self._http.start(timeout)
        self._api.state.base_url = self.base_url
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
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
        """The workspace the fake serves: channels, users, messages, views and recorded calls."""
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
        """The port the fake listens on."""
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
        """Answer the next ``times`` calls of ``method`` with ``ok: false`` and ``error``."""
        self.state.fail_next(method, error=error, times=times)

    def rate_limit_next(self, method: str, retry_after: int = 1, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with a 429 and ``Retry-After``."""
        self.state.rate_limit_next(method, retry_after=retry_after, times=times)

    def set_down(self, down: bool = True) -> None:
        """Answer every call with a 503 until ``set_down(False)``."""
        self.state.set_down(down)

    def http_error_next(self, method: str, status: int = 500, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` answer HTTP ``status`` without acting."""
        self.state.http_error_next(method, status=status, times=times)

    def fail_after_acting_next(self, method: str, status: int = 500, times: int = 1) -> None:
        """The next ``times`` calls act, then answer HTTP ``status`` (the caller cannot tell)."""
        self.state.fail_after_acting_next(method, status=status, times=times)

    def slow_next(self, method: str, delay: float, times: int = 1) -> None:
        """The next ``times`` calls act, then answer after ``delay`` seconds."""
        self.state.slow_next(method, delay=delay, times=times)
