"""The benchmarks' HTTP client (``benchmarks/_sender.py``) against a real uvicorn server:
statuses and bodies read whole, connections reused, a server that closes them, a late
answer and a refused connection."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from benchmarks._sender import ConnectionFailed, HttpError, Poster
from bot.http_thread import BackgroundServer

PEERS: set[tuple[str, int]] = set()


async def echo(request: Request) -> Response:
    body = await request.body()
    client = request.client
    assert client is not None
    PEERS.add((client.host, client.port))
    if request.headers.get("x-close"):
        return Response(body, status_code=201, headers={"Connection": "close"})
    if request.headers.get("x-slow"):
        await asyncio.sleep(2)
    return Response(body[::-1], status_code=int(request.headers.get("x-status", "200")))


@pytest.fixture
def url() -> Iterator[str]:
    server = BackgroundServer(Starlette(routes=[Route("/in", echo, methods=["POST"])])).start()
    PEERS.clear()
    try:
        yield f"http://127.0.0.1:{server.port}/in"
    finally:
        server.stop()


def test_answers_are_read_whole_and_connections_reused(url: str) -> None:
    async def go() -> list[int]:
        poster = Poster(url, timeout=5)
        statuses = [await poster.post(b"x" * 5000, {"X-Status": "202"}) for _ in range(20)]
        statuses += await asyncio.gather(*(poster.post(b"y", {}) for _ in range(50)))
        await poster.close()
        return statuses

    statuses = asyncio.run(go())
    assert statuses == [202] * 20 + [200] * 50
    assert len(PEERS) <= 50, "connections are reused, not one per request"


def test_a_connection_the_server_closes_is_not_reused(url: str) -> None:
    async def go() -> list[int]:
        poster = Poster(url, timeout=5)
        return [await poster.post(b"z", {"X-Close": "1"}) for _ in range(3)]

    assert asyncio.run(go()) == [201, 201, 201]
    assert len(PEERS) == 3


def test_a_late_answer_and_a_refused_connection_are_errors(url: str) -> None:
    async def late() -> None:
        await Poster(url, timeout=0.2).post(b"", {"X-Slow": "1"})

    with pytest.raises(HttpError, match=r"no answer within 0\.2 s"):
        asyncio.run(late())

    async def refused() -> None:
        await Poster("http://127.0.0.1:9/in", timeout=1).post(b"", {})

    with pytest.raises(ConnectionFailed):
        asyncio.run(refused())
