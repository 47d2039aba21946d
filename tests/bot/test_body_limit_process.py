"""A 300 MB body does not become 300 MB of memory: a real ``python -m bot serve`` process is
sent one (declared, and chunked without a length) and its peak resident memory is read from
``/proc``. Before the bound was enforced while reading, one such request took the process
from 69 to 634 MiB."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from bot.sandbox import DEFAULT_CHANNEL_ID, SlackFakeServer

REPO_ROOT = Path(__file__).resolve().parents[2]
ATTACK_BYTES = 300 * 1024 * 1024
CHUNK = b"a" * (1024 * 1024)
# The body bound is 1 MB; buffers around it are a few more. A body read whole is 300.
PEAK_GROWTH_BOUND_MIB = 48

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="reads peak memory from /proc"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc status")


class _Bot:
    def __init__(self, proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.proc, self.port, self.log = proc, port, log

    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"bot exited:\n{self.log.read_text(errors='replace')}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"bot not healthy:\n{self.log.read_text(errors='replace')}")


@pytest.fixture
def bot_process(tmp_path: Path) -> Iterator[_Bot]:
    fake = SlackFakeServer().start()
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "SLACK_BOT_TOKEN": fake.state.bot_token,
        "SLACK_SIGNING_SECRET": "process-signing-secret",
        "SLACK_API_URL": fake.api_url,
        "SIGNOFF_DATABASE_URL": f"sqlite:///{tmp_path / 'signoff.db'}",
        "SIGNOFF_HOST": "127.0.0.1",
        "SIGNOFF_PORT": str(port),
        "SIGNOFF_CHANNEL": DEFAULT_CHANNEL_ID,
        "SIGNOFF_EXAMPLES_OUTPUT": str(tmp_path / "out"),
        "SIGNOFF_POLL_SECONDS": "3600",
        "SIGNOFF_LOG_LEVEL": "WARNING",
    }
    env.pop("SLACK_APP_TOKEN", None)
    log = tmp_path / "bot.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve"],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    bot = _Bot(proc, port, log)
    try:
        bot.wait_healthy()
        yield bot
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        fake.stop()


def _send_body(port: int, head: bytes, framed: Iterator[bytes]) -> tuple[int | None, int]:
    """Send ``head`` then body pieces until the bot answers or closes; (status, bytes sent)."""
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        sock.setblocking(False)
        answer = b""
        for piece in framed:
            try:
                answer += sock.recv(4096)
            except BlockingIOError:
                pass
            except ConnectionError:
                break
            if answer:
                break
            try:
                sock.setblocking(True)
                sock.sendall(piece)
                sent += len(piece)
                sock.setblocking(False)
            except (BrokenPipeError, ConnectionResetError):
                break
        sock.setblocking(True)
        try:
            while b"\r\n" not in answer:
                more = sock.recv(4096)
                if not more:
                    break
                answer += more
        except ConnectionError:
            pass
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else None
    return status, sent


def _plain(total: int) -> Iterator[bytes]:
    for _ in range(total // len(CHUNK)):
        yield CHUNK


def _chunked(total: int) -> Iterator[bytes]:
    framed = f"{len(CHUNK):x}\r\n".encode() + CHUNK + b"\r\n"
    for _ in range(total // len(CHUNK)):
        yield framed
    yield b"0\r\n\r\n"


def _head(framing: str) -> bytes:
    return (
        "POST /slack/events HTTP/1.1\r\nHost: bot\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"X-Slack-Request-Timestamp: {int(time.time())}\r\nX-Slack-Signature: v0=00\r\n"
        f"{framing}\r\n\r\n"
    ).encode()


@pytest.mark.parametrize(
    ("framing", "pieces"),
    [
        (f"Content-Length: {ATTACK_BYTES}", _plain),
        ("Transfer-Encoding: chunked", _chunked),
    ],
    ids=["declared", "chunked"],
)
def test_300_mb_unsigned_body_is_413_and_memory_stays_bounded(
    bot_process: _Bot, framing: str, pieces: Callable[[int], Iterator[bytes]]
) -> None:
    before = _peak_rss_mib(bot_process.proc.pid)
    status, sent = _send_body(bot_process.port, _head(framing), pieces(ATTACK_BYTES))
    after = _peak_rss_mib(bot_process.proc.pid)
    assert status == 413, (status, sent)
    assert after - before < PEAK_GROWTH_BOUND_MIB, (before, after, sent)
    # The bot stopped reading: most of the body was never taken.
    assert sent < ATTACK_BYTES // 2, sent
    bot_process.wait_healthy(timeout=10)
