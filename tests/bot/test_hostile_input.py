"""Hostile input over real HTTP against the served bot: a 4xx for each, never a 5xx, never
the whole body in memory, and nothing changes.

Every header and body byte is untrusted until the signature checks out; after that the
payload's shape (and depth) is checked before anything else reads it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import time
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
from slack_sdk.signature import SignatureVerifier

from bot import blocks
from bot.sandbox import block_actions_payload, interactive_body, signed_headers
from bot.server import MAX_BODY_BYTES, ServerThread, make_asgi
from tests.bot.conftest import ALICE, SECRET, BotHarness
from tests.bot.test_approval_flow import _start

FORM = "application/x-www-form-urlencoded"


def _sign_bytes(body: bytes, timestamp: str) -> str:
    """Slack's signature over raw bytes (the sandbox's helper takes text only)."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(SECRET.encode(), base, hashlib.sha256).hexdigest()


def _post_raw(harness: BotHarness, body: bytes, headers: dict[str, str | bytes]) -> httpx.Response:
    # Raw bytes header values on purpose: what arrives on the wire, not what httpx types.
    return httpx.post(harness.url, content=body, headers=headers, timeout=10)  # type: ignore[arg-type]


# -- unsigned requests that used to crash the signature check -------------------------------
def _now() -> str:
    return str(int(time.time()))


@pytest.mark.parametrize(
    ("case", "timestamp", "signature", "body"),
    [
        # int() of it is fine, but comparing it with the float clock overflows.
        ("400-digit timestamp", b"9" * 400, b"v0=" + b"0" * 64, b"command=%2Fsignoff"),
        # Latin-1 "²": str.isdigit() says yes, int() says no.
        ("timestamp byte 0xb2", b"\xb2", b"v0=" + b"0" * 64, b"command=%2Fsignoff"),
        ("negative timestamp", b"-1", b"v0=" + b"0" * 64, b"command=%2Fsignoff"),
        ("fractional timestamp", b"1.5", b"v0=" + b"0" * 64, b"command=%2Fsignoff"),
        # hmac.compare_digest refuses non-ASCII str.
        ("non-ASCII signature", None, "v0=é".encode("latin-1"), b"command=%2Fsignoff"),
        ("empty signature", None, b"", b"command=%2Fsignoff"),
        # The SDK decodes the body as UTF-8 to sign it.
        ("body 0xff 0xfe", None, b"v0=" + b"0" * 64, b"\xff\xfe"),
    ],
)
def test_unsigned_garbage_is_401_not_a_crash(
    harness: BotHarness, case: str, timestamp: bytes | None, signature: bytes, body: bytes
) -> None:
    headers: dict[str, str | bytes] = {
        "Content-Type": FORM,
        "X-Slack-Request-Timestamp": timestamp if timestamp is not None else _now(),
        "X-Slack-Signature": signature,
    }
    response = _post_raw(harness, body, headers)
    assert response.status_code == 401, (case, response.status_code, response.text)
    assert harness.runtime.db.list_runs() == []


def test_signed_body_that_is_not_utf8_is_401(harness: BotHarness) -> None:
    """Slack signs UTF-8 text; bytes that are not cannot be verified as Slack's (the SDK's
    verifier signs text), whoever computed an HMAC over them."""
    body = b"command=%2Fsignoff&text=\xff\xfe"
    timestamp = _now()
    headers: dict[str, str | bytes] = {
        "Content-Type": FORM,
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": _sign_bytes(body, timestamp),
    }
    response = _post_raw(harness, body, headers)
    assert response.status_code == 401, response.text


def test_signature_is_verified_once_per_request(
    harness: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One place verifies (the HTTP edge, before anything parses the body); Bolt does not
    verify the same request again."""
    calls: list[str] = []
    original = SignatureVerifier.is_valid

    def counting_is_valid(self: SignatureVerifier, *args: object, **kwargs: object) -> bool:
        calls.append("is_valid")
        return original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(SignatureVerifier, "is_valid", counting_is_valid)
    response = harness.actor(ALICE).slash("/signoff", "help")
    assert response.status_code == 200
    assert calls == ["is_valid"]


# -- signed JSON nested deeper than any Slack payload ------------------------------------------
@pytest.mark.parametrize("depth", [65, 500, 1_000, 5_000, 100_000])
@pytest.mark.parametrize("container", ["list", "object"])
def test_deeply_nested_signed_json_is_400(harness: BotHarness, depth: int, container: str) -> None:
    opener, closer = ("[", "]") if container == "list" else ('{"a":', "}")
    inner = opener * depth + "1" + closer * depth
    payload = '{"type":"block_actions","user":{"id":"' + ALICE + '"},"actions":[{"action_id":'
    payload += '"x","value":' + inner + "}]}"
    for body, content_type in (
        (urlencode({"payload": payload}), FORM),
        ('{"type":"event_callback","event":' + inner + "}", "application/json"),
    ):
        if len(body) > MAX_BODY_BYTES:
            continue
        headers = signed_headers(body, SECRET, content_type=content_type)
        response = httpx.post(harness.url, content=body, headers=headers, timeout=10)
        assert response.status_code == 400, (depth, content_type, response.text[:200])


def test_slack_shaped_nesting_is_accepted(harness: BotHarness) -> None:
    """The depth bound leaves room for real payloads: a click carrying its message's rich
    text blocks (about 12 levels) is handled."""
    run_id = _start(harness, "approve_me")
    message = harness.pause_message("ship")
    payload = block_actions_payload(
        harness.state, user_id=ALICE, source=message, action_id=blocks.ACTION_APPROVE
    )
    payload["message"]["blocks"].append(
        {
            "type": "rich_text",
            "elements": [
                {
                    "type": "rich_text_list",
                    "elements": [
                        {"type": "rich_text_section", "elements": [{"type": "text", "text": "a"}]}
                    ],
                }
            ],
        }
    )
    body = interactive_body(payload)
    response = httpx.post(harness.url, content=body, headers=signed_headers(body, SECRET))
    assert response.status_code == 200, response.text
    harness.wait_run(run_id, "completed")


# -- body size: refused from Content-Length, or as soon as the stream passes the limit -------
def _raw_http(harness: BotHarness, head: str) -> socket.socket:
    url = urlsplit(harness.url)
    sock = socket.create_connection((url.hostname, url.port), timeout=5)
    sock.sendall(head.encode("latin-1"))
    return sock


def _read_status(sock: socket.socket) -> int:
    """The status of the response; the socket's 5 s timeout means 'the bot did not answer'."""
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return int(data.split(b" ", 2)[1])


def _head(harness: BotHarness, extra: str) -> str:
    path = urlsplit(harness.url).path
    return f"POST {path} HTTP/1.1\r\nHost: bot\r\nContent-Type: {FORM}\r\n{extra}\r\n"


def test_declared_oversized_body_is_413_before_it_is_sent(harness: BotHarness) -> None:
    sock = _raw_http(harness, _head(harness, "Content-Length: 300000000\r\n"))
    with sock:
        assert _read_status(sock) == 413


def test_chunked_body_is_413_once_past_the_limit_without_waiting_for_its_end(
    harness: BotHarness,
) -> None:
    sock = _raw_http(harness, _head(harness, "Transfer-Encoding: chunked\r\n"))
    with sock:
        chunk = b"a" * 65_536
        framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        for _ in range(MAX_BODY_BYTES // len(chunk) + 2):
            sock.sendall(framed)
        # No terminating chunk: the body never ends, the answer must not wait for it.
        assert _read_status(sock) == 413


def test_body_exactly_at_the_limit_is_read(harness: BotHarness) -> None:
    form = urlencode({"command": "/signoff", "text": "help", "user_id": ALICE})
    body = form + "&pad=" + "x" * (MAX_BODY_BYTES - len(form) - len("&pad="))
    assert len(body) == MAX_BODY_BYTES
    response = httpx.post(harness.url, content=body, headers=signed_headers(body, SECRET))
    assert response.status_code != 413
    assert response.status_code < 500


@pytest.mark.parametrize("length", ["abc", "-1", "1, 2"])
def test_malformed_content_length_is_400(harness: BotHarness, length: str) -> None:
    sock = _raw_http(harness, _head(harness, f"Content-Length: {length}\r\n"))
    with sock:
        assert _read_status(sock) == 400


# -- signed but not a payload Bolt can take ----------------------------------------------------
def _signed(harness: BotHarness, body: str, content_type: str = FORM) -> httpx.Response:
    headers = signed_headers(body, SECRET, content_type=content_type)
    return httpx.post(harness.url, content=body, headers=headers, timeout=10)


@pytest.mark.parametrize(
    "payload",
    [
        # Bolt's context building indexes these without checking their types.
        {"type": "event_callback", "event": {}, "authorizations": {"a": 1}},
        {"type": "event_callback", "event": {}, "authorizations": "x"},
        {"type": "event_callback", "is_ext_shared_channel": True, "event": "x"},
        {"type": "block_actions", "enterprise": {"id": 1}, "user": {"id": ALICE}},
    ],
)
def test_payloads_bolt_cannot_take_are_4xx(harness: BotHarness, payload: object) -> None:
    for body, content_type in (
        (urlencode({"payload": json.dumps(payload)}), FORM),
        (json.dumps(payload), "application/json"),
    ):
        response = _signed(harness, body, content_type)
        assert 400 <= response.status_code < 500, (payload, content_type, response.text)


def _chunks(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_chunked_signed_request_within_the_limit_is_handled(harness: BotHarness) -> None:
    body = urlencode({"command": "/signoff", "text": "help", "user_id": ALICE}).encode()
    headers = signed_headers(body, SECRET)
    response = httpx.post(harness.url, content=_chunks(body, 7), headers=headers, timeout=10)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "head",
    [
        "X-Slack-Signature: " + "a" * 2_000_000 + "\r\n",
        "X-A: a\r\n" * 100_000,
    ],
    ids=["one 2 MB header", "100,000 headers"],
)
def test_oversized_request_head_is_400(harness: BotHarness, head: str) -> None:
    """uvicorn's HTTP parser (h11) bounds the request line and headers (16 KiB)."""
    sock = _raw_http(harness, _head(harness, head + "Content-Length: 0\r\n"))
    with sock:
        assert _read_status(sock) == 400


def test_body_that_trickles_in_is_408(harness: BotHarness) -> None:
    """A body that does not arrive holds no connection for long: the bot answers 408 once
    its body timeout passes (here 0.2 s) instead of waiting for the rest."""
    asgi = make_asgi(harness.runtime, body_timeout=timedelta(seconds=0.2))
    with ServerThread(asgi) as server:
        head = (
            f"POST /slack/events HTTP/1.1\r\nHost: bot\r\nContent-Type: {FORM}\r\n"
            "Content-Length: 100\r\n\r\ncommand="
        )
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(head.encode())
            assert _read_status(sock) == 408
