"""A load generator's HTTP client: POSTs over asyncio streams on reused keep-alive
connections, and nothing more.

The benchmarks' sender used httpx's ``AsyncClient``: with thousands of requests in flight
its pool costs milliseconds of CPU per request (about a core at 300 clicks/s), on the same
two cores as the bot it measures, and falls behind its own schedule. Slack is on another
machine; the sender should cost the bot as little as it can. This client costs a few tens
of microseconds a request: one connection per request in flight, reused when it is done.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit


class HttpError(Exception):
    """No HTTP answer: the connection failed, closed early, or the answer was late."""


class ConnectionFailed(HttpError):
    """The request may not have reached the server (connect refused or reset while
    sending): a client may send it again."""


class Poster:
    """POST to one URL (``http://host:port/path``) on keep-alive connections."""

    def __init__(self, url: str, *, timeout: float) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"an http:// URL with a host is needed, not {url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.path = parts.path or "/"
        self.timeout = timeout
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._head = f"POST {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"

    async def post(self, body: bytes, headers: dict[str, str]) -> int:
        """Send the request and read the whole answer; returns its status code. Raises
        ``ConnectionFailed`` or ``HttpError`` (``TimeoutError`` past ``timeout``)."""
        head = self._head + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        request = f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body
        reused = bool(self._idle)
        try:
            reader, writer = self._idle.pop() if reused else await self._connect()
        except OSError as exc:
            raise ConnectionFailed(f"connect: {exc}") from exc
        keep = False
        try:
            async with asyncio.timeout(self.timeout):
                try:
                    writer.write(request)
                    await writer.drain()
                    answer = await reader.readuntil(b"\r\n\r\n")
                except (ConnectionError, asyncio.IncompleteReadError) as exc:
                    if reused:  # the server closed an idle connection: not sent, try anew
                        writer.close()
                        return await self.post(body, headers)
                    raise ConnectionFailed(f"{type(exc).__name__}: {exc}") from exc
                status, length, keep_alive = _parse_head(answer)
                await reader.readexactly(length)
                keep = keep_alive
        except TimeoutError as exc:
            raise HttpError(f"no answer within {self.timeout:g} s") from exc
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            raise HttpError(f"{type(exc).__name__}: {exc}") from exc
        finally:
            if keep:
                self._idle.append((reader, writer))
            else:
                writer.close()
        return status

    async def close(self) -> None:
        """Close the idle connections."""
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(self.host, self.port)


def _parse_head(head: bytes) -> tuple[int, int, bool]:
    """(status, Content-Length, keep-alive) of an HTTP/1.1 answer's head."""
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length, keep = 0, True
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "connection" and value == "close":
            keep = False
        elif name == "transfer-encoding":
            raise ValueError(f"transfer-encoding {value} is not read by this client")
    return status, length, keep


__all__ = ["ConnectionFailed", "HttpError", "Poster"]
