"""The sandbox's own endpoints (the Web API fake, response_urls, the page's API) refuse
oversized and hostile input as the bot does: a 4xx (or Slack's ``ok: false``), never a 5xx,
never a whole oversized body in memory."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from bot.sandbox import BackgroundServer, SlackFakeServer
from bot.sandbox.page import SandboxPage
from bot.slack_http import MAX_BODY_BYTES

from .conftest import SIGNING_SECRET, Bot


@pytest.fixture(scope="module")
def page_url(fake_server: SlackFakeServer, bot_server: Bot) -> Iterator[str]:
    page = SandboxPage(fake_server, signing_secret=SIGNING_SECRET, bot_url=bot_server.url)
    app = Starlette()
    page.install(app)
    with BackgroundServer(app, name="sandbox-page") as server:
        yield server.url
        page.close()


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def _raw_status(url: str, head: str, body: bytes = b"") -> int:
    """Send a request by hand; the socket's 5 s timeout means 'no answer'."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(f"POST {parts.path} HTTP/1.1\r\nHost: x\r\n{head}\r\n".encode() + body)
        data = b""
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    return int(data.split(b" ", 2)[1])


def _endpoints(fake: SlackFakeServer, page_url: str) -> list[str]:
    rid = fake.state.issue_response_url("C0SIGNOFF", "U0ALICE").url
    return [f"{fake.api_url}chat.postMessage", rid, f"{page_url}/page/api/compose"]


def test_declared_oversized_bodies_are_413_before_they_are_sent(
    fake: SlackFakeServer, page_url: str
) -> None:
    for url in _endpoints(fake, page_url):
        head = "Content-Type: application/json\r\nContent-Length: 300000000\r\n"
        assert _raw_status(url, head) == 413, url


def test_chunked_bodies_past_the_limit_are_413_without_waiting_for_their_end(
    fake: SlackFakeServer, page_url: str
) -> None:
    chunk = b"a" * 65_536
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    body = framed * (MAX_BODY_BYTES // len(chunk) + 2)  # and no terminating chunk
    for url in _endpoints(fake, page_url):
        head = "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        assert _raw_status(url, head, body) == 413, url


@pytest.mark.parametrize("depth", [100, 1_000, 100_000])
def test_deeply_nested_json_is_refused(fake: SlackFakeServer, page_url: str, depth: int) -> None:
    token = fake.state.bot_token
    auth = {"Authorization": f"Bearer {token}"}
    deep = '{"channel":"C0SIGNOFF","text":"x","blocks":' + _deep(depth) + "}"
    api = httpx.post(
        f"{fake.api_url}chat.postMessage",
        content=deep,
        headers={**auth, "Content-Type": "application/json"},
    )
    assert api.status_code == 200 and api.json()["ok"] is False, api.text
    # The same as a JSON-string form field, as slack_sdk sends blocks.
    form = urlencode({"channel": "C0SIGNOFF", "text": "x", "blocks": _deep(depth)})
    api_form = httpx.post(
        f"{fake.api_url}chat.postMessage",
        content=form,
        headers={**auth, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert api_form.status_code == 200 and api_form.json()["ok"] is False, api_form.text
    rid = fake.state.issue_response_url("C0SIGNOFF", "U0ALICE").url
    response_url = httpx.post(rid, content=deep, headers={"Content-Type": "application/json"})
    assert response_url.status_code == 400, response_url.text
    page = httpx.post(
        f"{page_url}/page/api/compose",
        content='{"user":"U0ALICE","text":' + _deep(depth) + "}",
        headers={"Content-Type": "application/json"},
    )
    assert page.status_code == 400, page.text
    assert fake.state.messages("C0SIGNOFF") == []


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    path=st.sampled_from(
        [
            "/api/chat.postMessage",
            "/api/views.open",
            "/api/chat.update",
            "/page/api/compose",
            "/page/api/action",
            "/page/api/submit",
        ]
    ),
    body=st.binary(max_size=200) | st.sampled_from([b"\xff\xfe", b"[" * 5000, b"{" * 5000]),
    content_type=st.sampled_from(
        ["application/json", "application/x-www-form-urlencoded", "", "text/plain"]
    ),
)
def test_any_bytes_to_any_sandbox_endpoint_never_5xx(
    fake_server: SlackFakeServer, page_url: str, path: str, body: bytes, content_type: str
) -> None:
    base = page_url if path.startswith("/page/") else fake_server.base_url
    headers = {"Authorization": f"Bearer {fake_server.state.bot_token}"}
    if content_type:
        headers["Content-Type"] = content_type
    response = httpx.post(f"{base}{path}", content=body, headers=headers, timeout=10)
    assert response.status_code < 500, (response.status_code, response.text)
