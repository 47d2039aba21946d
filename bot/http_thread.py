"""An ASGI app served by uvicorn in a background thread: the bot under test, the Slack
fake, the sandbox page. One implementation for all of them."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn


class PortUnavailableError(OSError):
    """The port to listen on is taken (or not ours to use)."""

    def __init__(self, port: int, cause: OSError) -> None:
        super().__init__(cause.errno, cause.strerror)
        self.port = port


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
        self._socket: socket.socket | None = None

    def start(self, timeout: float = 10.0) -> BackgroundServer:
        """Bind the port (a taken one is a ``PortUnavailableError`` here) and serve until
        ``stop()``; returns once the server accepts connections."""
        if self._thread is not None:
            raise RuntimeError(f"{self._name} server already started")
        # Bind here, not in uvicorn's thread: a taken port is then an OSError to the caller
        # (with the port on it) rather than a thread that exits.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self._requested_port))
        except OSError as exc:
            sock.close()
            raise PortUnavailableError(self._requested_port, exc) from exc
        self._socket = sock
        config = uvicorn.Config(
            self.app,
            host=self.host,
            port=self._requested_port,
            log_level="warning",
            access_log=False,
            lifespan="auto",  # the app's own start-up and shut-down (a Starlette lifespan)
            # Tests stop servers often; don't wait long for idle keep-alive connections.
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(
            target=self._run, args=(server,), name=f"http-{self._name}", daemon=True
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
        return self

    def _run(self, server: uvicorn.Server) -> None:
        try:
            server.run(sockets=[self._socket] if self._socket else None)
        except BaseException as exc:  # uvicorn calls sys.exit on bind errors
            self._error = exc

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the server to finish its requests and exit, and force it after ``timeout``."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(timeout)
        if thread.is_alive():  # a stuck connection; don't hang the test run on it
            server.force_exit = True
            thread.join(timeout)
        self._server = self._thread = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    @property
    def port(self) -> int:
        """The port the server listens on (the free one picked for port 0)."""
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
