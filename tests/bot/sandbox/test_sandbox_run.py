"""``serve_sandbox``: the real bot, the example workflows and the page, from start to stop —
driven through the page's API (the browser version is in tests/e2e)."""

from __future__ import annotations

import io
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.config import Settings
from bot.sandbox.run import Sandbox, serve_sandbox, workspace_file


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def example_workflows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    import examples.pipelines

    monkeypatch.setattr(examples.pipelines, "OUTPUT_DIR", tmp_path / "output")
    for workflow in examples.pipelines.workflows:  # each test its own database
        monkeypatch.setattr(workflow, "_db", None)
    yield


class Lines(io.StringIO):
    """stdout that can be waited on."""

    def wait_lines(self, count: int, timeout: float = 15.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self.getvalue().splitlines()
            if len(lines) >= count:
                return lines
            time.sleep(0.02)
        raise AssertionError(f"printed only {self.getvalue()!r}")


def test_serve_sandbox_runs_a_workflow_and_stops(tmp_path: Path, example_workflows: None) -> None:
    bot_port, page_port = free_port(), free_port()
    settings = Settings(
        SIGNOFF_DATABASE_URL=f"sqlite:///{tmp_path / 'signoff.db'}", SIGNOFF_PORT=bot_port
    )
    out, stop = Lines(), threading.Event()
    result: list[int] = []
    thread = threading.Thread(
        target=lambda: result.append(
            serve_sandbox(settings, sandbox_port=page_port, out=out, stop_event=stop)
        )
    )
    thread.start()
    try:
        first, second = out.wait_lines(2)
        assert f"http://127.0.0.1:{page_port}/" in first and "/signoff run" in first
        assert "local sandbox" in second and "no Slack workspace" in second

        with httpx.Client(base_url=f"http://127.0.0.1:{page_port}", timeout=10) as page:
            assert httpx.get(f"http://127.0.0.1:{bot_port}/healthz").status_code == 200
            state = page.get("/page/api/state").json()
            assert "/signoff run data_pipeline" in state["suggestions"]
            assert state["bot_url"] == f"http://127.0.0.1:{bot_port}/slack/events"

            body = {"user": "U0BOB", "channel": "C0SIGNOFF", "text": "/signoff run data_pipeline"}
            assert page.post("/page/api/compose", json=body).json()["status"] == 200
            pause = wait_for(
                page, "U0BOB", lambda m: any(b["type"] == "actions" for b in m.get("blocks", []))
            )
            assert pause["thread_ts"] != pause["ts"]  # in the run's thread
            click = {
                "user": "U0BOB",
                "channel": "C0SIGNOFF",
                "ts": pause["ts"],
                "action_id": "signoff_approve",
                "block_id": "decision",
            }
            assert page.post("/page/api/action", json=click).json()["status"] == 200
            done = wait_for(
                page, "U0BOB", lambda m: m["text"].startswith(":white_check_mark: Completed")
            )
            assert re.search(r"saved .*\.json", done["text"])
    finally:
        stop.set()
        thread.join(15)
    assert result == [0]
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{page_port}/", timeout=2)


def test_serve_sandbox_says_when_a_port_is_taken(
    tmp_path: Path, example_workflows: None, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        settings = Settings(
            SIGNOFF_DATABASE_URL=f"sqlite:///{tmp_path / 'signoff.db'}",
            SIGNOFF_PORT=taken.getsockname()[1],
        )
        code = serve_sandbox(
            settings, sandbox_port=free_port(), out=io.StringIO(), stop_event=threading.Event()
        )
    assert code == 2
    assert "cannot listen on port" in capsys.readouterr().err


def wait_for(page: httpx.Client, user: str, predicate: Any, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = page.get("/page/api/state", params={"user": user}).json()
        for message in state["messages"]["C0SIGNOFF"]:
            if predicate(message):
                return message
        time.sleep(0.05)
    raise AssertionError("no such message")


def test_a_restart_keeps_the_channel_so_waiting_runs_can_still_be_decided(
    tmp_path: Path, example_workflows: None
) -> None:
    import examples.pipelines

    settings = Settings(SIGNOFF_DATABASE_URL=f"sqlite:///{tmp_path / 'signoff.db'}")
    assert workspace_file(settings.database_url) == tmp_path / "signoff.db.sandbox.json"
    with Sandbox(settings) as first, httpx.Client(base_url=first.page_url, timeout=10) as page:
        body = {"user": "U0ALICE", "channel": "C0SIGNOFF", "text": "/signoff run data_pipeline"}
        page.post("/page/api/compose", json=body)
        pause = wait_for(page, "U0ALICE", is_pause)
    for workflow in examples.pipelines.workflows:  # as a new process would load them
        workflow._db = None

    with Sandbox(settings) as second, httpx.Client(base_url=second.page_url, timeout=10) as page:
        restored = wait_for(page, "U0ALICE", is_pause)
        assert restored["ts"] == pause["ts"] and restored["blocks"] == pause["blocks"]
        click = {
            "user": "U0ALICE",
            "channel": "C0SIGNOFF",
            "ts": pause["ts"],
            "action_id": "signoff_approve",
            "block_id": "decision",
        }
        assert page.post("/page/api/action", json=click).json()["status"] == 200
        wait_for(page, "U0ALICE", lambda m: "Completed (3 steps run)" in m["text"])
        # New messages come after the restored ones.
        assert page.get("/page/api/state").json()["messages"]["C0SIGNOFF"][-1]["ts"] > pause["ts"]


def test_workspace_file_only_for_sqlite_files() -> None:
    assert workspace_file("sqlite:///signoff.db") == Path("signoff.db.sandbox.json")
    assert workspace_file("sqlite:////data/s.db") == Path("/data/s.db.sandbox.json")
    assert workspace_file("runs.db") == Path("runs.db.sandbox.json")
    assert workspace_file("sqlite://") is None
    assert workspace_file("sqlite:///:memory:") is None
    assert workspace_file("postgresql://u@h/db") is None


def is_pause(message: dict[str, Any]) -> bool:
    return any(b["type"] == "actions" for b in message.get("blocks", []))
