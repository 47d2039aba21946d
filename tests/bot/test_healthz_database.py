"""``/healthz`` follows the database: 503 while it is down, 200 again once it is back, with no
restart of the bot; and the bot works on afterwards.

The database that goes down is a private PostgreSQL server started for this test in a temp
directory on a free port (never the machine's shared server).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bot.config import Settings
from bot.sandbox import DEFAULT_CHANNEL_ID, SlackFakeServer
from bot.server import Runtime, ServerThread
from tests.bot.conftest import CAROL, SECRET, make_routes


def _pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


@dataclass
class PrivatePostgres:
    """A PostgreSQL server of our own: ``stop()`` and ``start()`` it at will."""

    data: Path
    port: int
    as_postgres: list[str]

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, *args: str) -> None:
        pg_ctl = _pg_bin("pg_ctl")
        assert pg_ctl is not None
        subprocess.run(
            [*self.as_postgres, pg_ctl, "-D", str(self.data), "-w", "-t", "60", *args],
            check=True,
            capture_output=True,
            timeout=90,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data.parent} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg_ctl("-o", options, "-l", str(self.data.parent / "server.log"), "start")

    def stop(self) -> None:
        self._pg_ctl("-m", "fast", "stop")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    initdb = _pg_bin("initdb")
    if initdb is None or _pg_bin("pg_ctl") is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    # PostgreSQL refuses to run as root: then it runs as the postgres user, in a directory
    # that user can reach (pytest's own temp root is private to root).
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    root = Path(tempfile.mkdtemp(prefix="signoff-pg-", dir="/tmp"))
    try:
        data = root / "data"
        if as_postgres:
            shutil.chown(root, user="postgres")
        subprocess.run(
            [*as_postgres, initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        server = PrivatePostgres(data=data, port=_free_port(), as_postgres=as_postgres)
        server.start()
        try:
            yield server
        finally:
            if (data / "postmaster.pid").exists():
                server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_healthz_is_503_while_the_database_is_down_and_200_after(
    private_postgres: PrivatePostgres,
) -> None:
    fake = SlackFakeServer().start()
    settings = Settings(
        SLACK_BOT_TOKEN=fake.state.bot_token,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=fake.api_url,
        SIGNOFF_CHANNEL=DEFAULT_CHANNEL_ID,
        SIGNOFF_DATABASE_URL=private_postgres.url,
        SIGNOFF_POLL_SECONDS=0.2,  # the poll runs against the dead database too
    )
    runtime = Runtime(settings, routes=make_routes(), outbox_poll_interval=0.05)
    runtime.start()
    server = ServerThread(runtime.asgi).start()
    try:
        healthz = f"{server.url}/healthz"
        first = httpx.get(healthz, timeout=30)
        assert (first.status_code, first.json()) == (200, {"ok": True, "database": "reachable"})

        private_postgres.stop()
        down = httpx.get(healthz, timeout=30)
        assert (down.status_code, down.json()) == (503, {"ok": False, "database": "unreachable"})

        private_postgres.start()
        back = httpx.get(healthz, timeout=30)
        assert (back.status_code, back.json()) == (200, {"ok": True, "database": "reachable"})

        # Not only the probe: the bot's threads lived through it and work on.
        run_id = runtime.signoff.start_run("cancel_me", "", user_id=CAROL)
        fake.state.wait_for(
            lambda s: any(
                "danger" in m.text and any(b.get("type") == "actions" for b in m.blocks)
                for m in s.messages(DEFAULT_CHANNEL_ID, include_ephemeral=False)
            ),
            timeout=15,
            what="the pause of a run started after the database came back",
        )
        run = runtime.db.get_run(run_id)
        assert run is not None and run.is_paused
    finally:
        server.stop()
        runtime.stop()
        runtime.db.dispose()
        fake.stop()
