"""The HTTP edge of Slack's requests: read the body within a bound, then verify its signature,
before anything parses a byte of it.

Every header and body byte is untrusted until the signature checks out, so nothing here
trusts a type or a size: a ``Content-Length`` past the bound is refused before the body is
read, a stream is cut off as soon as it passes the bound (chunked bodies declare no length),
and the signature headers are checked for the shapes Slack sends before the SDK's verifier,
which raises on others (``OverflowError``, ``ValueError``, ``TypeError``), sees them.

Socket Mode needs none of this: its payloads arrive over a connection the app token opened.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from typing import Any

from slack_sdk.signature import SignatureVerifier

from bot.request_shapes import MAX_NESTING, nesting_exceeds

MAX_BODY_BYTES = 1_000_000
# Slack sends a request's body with its headers; a body that trickles in holds a connection.
BODY_TIMEOUT = timedelta(seconds=10)
# Slack's timestamps are Unix seconds; twelve digits reach the year 33658.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")
_LENGTH = re.compile(r"[0-9]{1,20}")


class BodyTooLargeError(Exception):
    """The body is (or says it will be) larger than the bound: 413."""


class BodyTimeoutError(Exception):
    """The body did not arrive within the timeout: 408."""


class MalformedRequestError(Exception):
    """The request is not HTTP we can read (a ``Content-Length`` that is not a number): 400."""


async def read_bounded_body(
    headers: Mapping[str, str],
    stream: AsyncIterator[bytes],
    *,
    limit: int = MAX_BODY_BYTES,
    timeout: timedelta = BODY_TIMEOUT,
) -> bytes:
    """The whole body if it is at most ``limit`` bytes and arrives within ``timeout``; raises
    as soon as it cannot be."""
    try:
        async with asyncio.timeout(timeout.total_seconds()):
            return await _read(headers, stream, limit=limit)
    except TimeoutError:
        raise BodyTimeoutError(f"body not received within {timeout}") from None


async def _read(headers: Mapping[str, str], stream: AsyncIterator[bytes], *, limit: int) -> bytes:
    declared = headers.get("content-length")
    if declared is not None:
        if not _LENGTH.fullmatch(declared):
            raise MalformedRequestError("Content-Length is not a number")
        if int(declared) > limit:
            raise BodyTooLargeError(f"Content-Length {declared} is over {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in stream:
        size += len(chunk)
        if size > limit:
            raise BodyTooLargeError(f"body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class SlackSignature:
    """Slack's request signature (``v0=`` HMAC-SHA256, five-minute window), verified by the
    SDK's ``SignatureVerifier`` on inputs it can take."""

    def __init__(self, signing_secret: str) -> None:
        self._verifier = SignatureVerifier(signing_secret) if signing_secret else None

    def verified_text(
        self, body: bytes, *, timestamp: str | None, signature: str | None
    ) -> str | None:
        """The body as text if Slack signed it, else None (never raises on what it is given)."""
        if (
            self._verifier is None
            or timestamp is None
            or signature is None
            or not _TIMESTAMP.fullmatch(timestamp)
            or not _SIGNATURE.fullmatch(signature)
        ):
            return None
        try:
            # Slack signs UTF-8 text, and the SDK signs the text it decodes.
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return None
        if not self._verifier.is_valid(body=text, timestamp=timestamp, signature=signature):
            return None
        return text


def parse_json(data: str | bytes, *, max_nesting: int = MAX_NESTING) -> Any:
    """``json.loads`` for bytes we did not write: too deep a nesting is a ``ValueError`` like
    any other malformed JSON (``json`` itself raises ``RecursionError`` past ~1,000 levels,
    and anything that walks the value recursively fails near there too)."""
    try:
        value = json.loads(data)
    except RecursionError:
        raise ValueError("JSON nested too deep") from None
    if nesting_exceeds(value, max_nesting):
        raise ValueError(f"JSON nested more than {max_nesting} deep")
    return value
