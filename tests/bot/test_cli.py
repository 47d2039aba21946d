"""``signoff`` from a terminal: real ``python -m bot`` processes on a SQLite file that holds
runs made by the real engine (one paused with a deadline, one completed after a
confirmation, one rejected and cancelled)."""

from __future__ import annotations

import os
import re
import select
import socket
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from engine import OnReject, SqliteDb, Step, StepInput, StepOutput, Workflow

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ("serve", "sandbox", "manifest", "migrate", "runs")


@dataclass
class Runs:
    db_url: str
    paused: str
    completed: str
    cancelled: str


@dataclass
class Result:
    code: int
    out: str
    err: str


def signoff(*args: str, cwd: Path, **env: str) -> Result:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "SIGNOFF_"))}
    proc = subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env={**base, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def prepare(step_input: StepInput) -> StepOutput:
    return StepOutput(content={"rows": 3, "input": step_input.input})


def ship(step_input: StepInput) -> StepOutput:
    return StepOutput(content="shipped 3 rows")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    path = tmp_path_factory.mktemp("cli") / "signoff.db"
    db = SqliteDb(db_file=str(path))
    workflow = Workflow(
        name="approve_me",
        db=db,
        steps=[
            Step(name="prepare", executor=prepare),
            Step(
                name="ship",
                executor=ship,
                requires_confirmation=True,
                confirmation_message="Ship it?",
                on_reject=OnReject.cancel,
                pause_timeout=timedelta(hours=2),
            ),
        ],
    )
    completed = workflow.run("batch-1", user_id="U0ALICE")
    completed.step_requirements[0].confirm(by="U0CAROL", comment="looks good")
    workflow.continue_run(completed)
    cancelled = workflow.run("batch-2", user_id="U0ALICE")
    cancelled.step_requirements[0].reject(by="U0DAVE", reason="wrong batch")
    workflow.continue_run(cancelled)
    paused = workflow.run("batch-3", user_id="U0BOB")
    assert paused.is_paused and completed.is_completed and cancelled.is_cancelled
    db.dispose()
    return Runs(f"sqlite:///{path}", paused.run_id, completed.run_id, cancelled.run_id)


def section(out: str, title: str) -> list[str]:
    """The lines of one section (from its title to the next blank line)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].strip()), len(lines))
    return lines[start + 1 : end]


def assert_aligned(rows: list[str], headers: list[str]) -> None:
    """Every row's cells start where their column's header starts."""
    header = rows[0]
    starts = [header.index(h) for h in headers]
    assert starts == sorted(starts)
    for row in rows[1:]:
        for start in starts[1:]:
            assert row[start - 2 : start] == "  " and row[start] != " ", (header, row)


# -- runs ------------------------------------------------------------------------------------
def test_runs_lists_paused_runs_with_deadlines_and_recent_runs(runs: Runs, tmp_path: Path) -> None:
    result = signoff("runs", cwd=tmp_path, SIGNOFF_DATABASE_URL=runs.db_url)
    assert result.code == 0, result.err
    assert result.err == ""

    paused = section(result.out, "Paused runs: 1")
    headers = ["WORKFLOW", "STEP", "RUN ID", "WAITING SINCE", "DEADLINE", "TIME LEFT"]
    assert paused[0].split() == [w for h in headers for w in h.split()]
    assert_aligned(paused, headers)
    (row,) = paused[1:]
    assert row.split()[:3] == ["approve_me", "ship", runs.paused]
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", row)
    assert re.search(r"1h 5\dm left$", row), row

    recent = section(result.out, "Recent runs: 3")
    assert_aligned(recent, ["STATUS", "WORKFLOW", "RUN ID", "STARTED", "BY"])
    statuses = {line.split()[2]: (line.split()[0], line.split()[-1]) for line in recent[1:]}
    assert statuses == {
        runs.paused: ("paused", "U0BOB"),
        runs.cancelled: ("cancelled", "U0ALICE"),
        runs.completed: ("completed", "U0ALICE"),
    }
    order = [line.split()[2] for line in recent[1:]]
    assert order == [runs.paused, runs.cancelled, runs.completed], "newest first"
    assert "signoff runs RUN_ID" in result.out


def test_runs_limit_caps_the_recent_runs(runs: Runs, tmp_path: Path) -> None:
    result = signoff("runs", "--limit", "1", cwd=tmp_path, SIGNOFF_DATABASE_URL=runs.db_url)
    assert result.code == 0, result.err
    assert len(section(result.out, "Recent runs: 1")) == 2  # header and the newest run
    assert len(section(result.out, "Paused runs: 1")) == 2  # paused runs are always all shown


def test_runs_shows_a_completed_run_in_full(runs: Runs, tmp_path: Path) -> None:
    result = signoff("runs", runs.completed, cwd=tmp_path, SIGNOFF_DATABASE_URL=runs.db_url)
    assert result.code == 0, result.err
    out = result.out
    assert out.startswith(f"Run {runs.completed}\n")
    assert re.search(r"^  Status: +completed$", out, re.M)
    assert re.search(r"^  Started: +\d{4}-.* by U0ALICE$", out, re.M)
    assert re.search(r"^  Input: +batch-1$", out, re.M)
    steps = section(out, "Steps")
    assert steps[0].split() == ["#", "STEP", "OUTCOME", "DETAIL"]
    assert steps[1].split()[:3] == ["1", "prepare", "completed"]
    assert '"rows": 3' in steps[1]
    assert "2  ship" in steps[2] and "completed, confirmed by U0CAROL" in steps[2]
    decisions = section(out, "Decisions (audit trail): 1")
    assert decisions[1].split()[2:] == ["ship", "confirmed", "U0CAROL", "looks", "good"]
    assert section(out, "Content:") == ["  shipped 3 rows"]


def test_runs_shows_a_paused_run_with_its_deadline(runs: Runs, tmp_path: Path) -> None:
    result = signoff("runs", runs.paused, cwd=tmp_path, SIGNOFF_DATABASE_URL=runs.db_url)
    assert result.code == 0, result.err
    assert re.search(
        r"^  Status: +paused at step 'ship', waiting since \S+ \S+; "
        r"deadline \S+ \S+ \(1h 5\dm left\)$",
        result.out,
        re.M,
    )
    steps = section(result.out, "Steps")
    assert "waiting for confirmation" in steps[2] and "Ship it?" in steps[2]
    assert section(result.out, "Decisions (audit trail): 0") == ["  none yet"]


def test_runs_shows_a_rejected_run_with_who_and_why(runs: Runs, tmp_path: Path) -> None:
    result = signoff("runs", runs.cancelled, cwd=tmp_path, SIGNOFF_DATABASE_URL=runs.db_url)
    assert result.code == 0, result.err
    assert re.search(r"^  Status: +cancelled$", result.out, re.M)
    assert any("rejected by U0DAVE" in line for line in section(result.out, "Steps"))
    (row,) = section(result.out, "Decisions (audit trail): 1")[1:]
    assert row.split()[2:] == ["ship", "rejected", "U0DAVE", "wrong", "batch"]


def test_runs_of_an_unknown_run_says_so(runs: Runs, tmp_path: Path) -> None:
    result = signoff("runs", "0" * 32, cwd=tmp_path, SIGNOFF_DATABASE_URL=runs.db_url)
    assert result.code == 1 and result.out == ""
    assert result.err.startswith(f"signoff: no run '{'0' * 32}'") and result.err.count("\n") == 1


def test_runs_without_a_database_does_not_create_one(tmp_path: Path) -> None:
    result = signoff("runs", cwd=tmp_path)  # the default: sqlite:///signoff.db in the cwd
    assert result.code == 1 and result.out == ""
    assert result.err.startswith("signoff: no database at signoff.db")
    assert result.err.count("\n") == 1
    assert not (tmp_path / "signoff.db").exists()


def test_runs_with_a_bad_limit_stops_with_one_line(runs: Runs, tmp_path: Path) -> None:
    result = signoff("runs", "--limit", "0", cwd=tmp_path, SIGNOFF_DATABASE_URL=runs.db_url)
    assert result.code == 2 and result.out == ""
    assert result.err == "signoff: --limit must be at least 1\n"


# -- manifest --------------------------------------------------------------------------------
def test_manifest_with_url(tmp_path: Path) -> None:
    result = signoff("manifest", "--url", "https://x.example", cwd=tmp_path)
    assert result.code == 0, result.err
    manifest = yaml.safe_load(result.out)
    assert manifest["features"]["slash_commands"][0]["url"] == "https://x.example/slack/events"
    assert manifest["settings"]["interactivity"]["request_url"] == "https://x.example/slack/events"
    assert "YOUR-HOST/" not in result.out


def test_manifest_without_url_prints_the_template(tmp_path: Path) -> None:
    result = signoff("manifest", cwd=tmp_path)
    assert result.code == 0, result.err
    assert result.out == (ROOT / "manifests" / "slack-app.yaml").read_text(encoding="utf-8")


def test_manifest_with_a_plain_http_url_stops_with_one_line(tmp_path: Path) -> None:
    result = signoff("manifest", "--url", "http://x.example", cwd=tmp_path)
    assert result.code == 2 and result.out == ""
    assert result.err.startswith("signoff: --url 'http://x.example' must start with https://")
    assert result.err.count("\n") == 1


# -- migrate ---------------------------------------------------------------------------------
def test_migrate_creates_the_schema_and_is_idempotent(tmp_path: Path) -> None:
    db_file = tmp_path / "fresh.db"
    outputs = []
    for _ in range(2):
        result = signoff("migrate", cwd=tmp_path, SIGNOFF_DATABASE_URL=f"sqlite:///{db_file}")
        assert result.code == 0, result.err
        assert result.out.startswith("signoff: database schema is up to date")
        assert result.err == "", "no alembic INFO lines"
        outputs.append(result.out)
    # It says what it applied: every engine and bot migration the first time, none after.
    assert outputs[0] == (
        f"signoff: database schema is up to date (sqlite:///{db_file}): applied engine "
        "0001_initial, engine 0002_run_leases, engine 0003_approval_votes, "
        "engine 0004_runs_by_user, engine 0005_paused_requirements, bot 0001_bot_tables, "
        "bot 0002_inbox, "
        "bot 0003_dm_copies_and_home, bot 0004_policies, bot 0005_open_forms, "
        "bot 0005_outbox_run_order\n"
    )
    assert outputs[1].endswith("): nothing to apply\n")
    with sqlite3.connect(db_file) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        (revision,) = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    assert {"wf_runs", "wf_sessions", "wf_decisions", "alembic_version"} <= tables
    assert tables - {"wf_runs", "wf_sessions", "wf_decisions", "alembic_version"}, "bot tables"
    assert revision
    # And the migrated database is one `runs` reads.
    result = signoff("runs", cwd=tmp_path, SIGNOFF_DATABASE_URL=f"sqlite:///{db_file}")
    assert result.code == 0 and "Paused runs: 0" in result.out and "no runs yet" in result.out


# -- help and bad settings -------------------------------------------------------------------
def test_help_lists_every_command(tmp_path: Path) -> None:
    result = signoff("--help", cwd=tmp_path)
    assert result.code == 0 and result.err == ""
    assert result.out.startswith("usage: signoff")
    for command in COMMANDS:
        assert re.search(rf"^\s+{command}\s+\S", result.out, re.M), command


@pytest.mark.parametrize("command", COMMANDS)
def test_help_of_each_command(command: str, tmp_path: Path) -> None:
    result = signoff(command, "--help", cwd=tmp_path, SIGNOFF_PORT="abc")  # help needs no settings
    assert result.code == 0 and result.err == ""
    assert result.out.startswith(f"usage: signoff {command}")
    assert len(result.out.splitlines()) >= 3


def test_runs_help_explains_its_arguments(tmp_path: Path) -> None:
    out = signoff("runs", "--help", cwd=tmp_path).out
    assert "run_id" in out and "--limit" in out and "default 20" in out


def test_a_bad_setting_stops_with_one_clear_line(tmp_path: Path) -> None:
    result = signoff("runs", cwd=tmp_path, SIGNOFF_PORT="abc")
    assert result.code == 2 and result.out == ""
    assert result.err.count("\n") == 1
    assert result.err.startswith("signoff: bad setting SIGNOFF_PORT: ")
    assert "Traceback" not in result.err


def test_an_unknown_command_is_a_usage_error(tmp_path: Path) -> None:
    result = signoff("deploy", cwd=tmp_path)
    assert result.code == 2 and "invalid choice: 'deploy'" in result.err


# -- start-up errors: one line each ------------------------------------------------------------
def one_line(result: Result) -> str:
    assert result.out == "" and result.err.count("\n") == 1, result.err
    assert "Traceback" not in result.err
    return result.err.strip()


@pytest.mark.parametrize("url", ["nonsense://x", "mysql://u:hunter2@db.example/x", "runs.db"])
@pytest.mark.parametrize("command", ["migrate", "runs", "serve"])
def test_an_unsupported_database_url_is_refused_naming_the_variable(
    url: str, command: str, tmp_path: Path
) -> None:
    result = signoff(command, cwd=tmp_path, SIGNOFF_DATABASE_URL=url)
    assert result.code == 2
    line = one_line(result)
    assert line.startswith("signoff: bad setting SIGNOFF_DATABASE_URL: ")
    assert "sqlite:///" in line and "postgresql://" in line and "postgresql+psycopg://" in line
    assert "hunter2" not in line
    assert list(tmp_path.iterdir()) == [], "nothing is created for a URL that is refused"


UNREACHABLE = [
    ("postgresql://signoff:hunter2@127.0.0.1:1/x", "postgresql://signoff:***@127.0.0.1:1/x"),
    ("postgresql+psycopg://signoff:hunter2@127.0.0.1:1/x", "postgresql+psycopg://signoff:***@"),
    ("sqlite:///nodir/x.db", "sqlite:///nodir/x.db"),
]


@pytest.mark.parametrize(("url", "shown"), UNREACHABLE)
@pytest.mark.parametrize("command", ["migrate", "serve"])
def test_an_unreachable_database_is_one_line_naming_the_masked_url(
    url: str, shown: str, command: str, tmp_path: Path
) -> None:
    credentials = {"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": "s"}
    port = str(free_port())
    result = signoff(
        command,
        cwd=tmp_path,
        SIGNOFF_DATABASE_URL=url,
        SIGNOFF_PORT=port,
        SLACK_API_URL="http://127.0.0.1:9/api/",
        **(credentials if command == "serve" else {}),
    )
    assert result.code == 2
    line = one_line(result)
    assert line.startswith(f"signoff: cannot reach the database {shown}"), line
    assert "(SIGNOFF_DATABASE_URL)" in line and "hunter2" not in line
    assert not (tmp_path / "nodir").exists()


def test_runs_on_an_unreachable_database_names_the_masked_url(tmp_path: Path) -> None:
    url, shown = UNREACHABLE[0]
    result = signoff("runs", cwd=tmp_path, SIGNOFF_DATABASE_URL=url)
    assert result.code == 2
    assert one_line(result).startswith(f"signoff: cannot reach the database {shown}")


def test_runs_errors_name_the_database_url(runs: Runs, tmp_path: Path) -> None:
    result = signoff("runs", "f" * 32, cwd=tmp_path, SIGNOFF_DATABASE_URL=runs.db_url)
    assert result.code == 1
    assert one_line(result) == f"signoff: no run {'f' * 32!r} in {runs.db_url}"


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ({"SLACK_BOT_TOKEN": "xoxb-test"}, "SLACK_SIGNING_SECRET"),
        ({"SLACK_SIGNING_SECRET": "s"}, "SLACK_BOT_TOKEN"),
        ({"SLACK_APP_TOKEN": "xapp-test"}, "SLACK_BOT_TOKEN"),
    ],
)
def test_incomplete_slack_credentials_are_refused_not_the_sandbox(
    given: dict[str, str], named: str, tmp_path: Path
) -> None:
    result = signoff("serve", cwd=tmp_path, **given)
    assert result.code == 2
    line = one_line(result)
    assert line.startswith("signoff: ") and named in line and "is not" in line
    assert "xoxb-test" not in line and "xapp-test" not in line
    assert not (tmp_path / "signoff.db").exists()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """The next line the process prints, waiting at most ``timeout`` for it."""
    assert proc.stdout is not None
    if not select.select([proc.stdout], [], [], timeout)[0]:
        raise AssertionError(f"no output within {timeout}s")
    return proc.stdout.readline()


def test_the_sandbox_listens_on_signoff_sandbox_port(tmp_path: Path) -> None:
    page, bot = free_port(), free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "SIGNOFF_"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve"],
        cwd=tmp_path,
        env={
            **base,
            "PYTHONPATH": str(ROOT),
            "SIGNOFF_SANDBOX_PORT": str(page),
            "SIGNOFF_PORT": str(bot),
            "SIGNOFF_LOG_LEVEL": "WARNING",
            "SIGNOFF_EXAMPLES_OUTPUT": str(tmp_path / "out"),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        first = read_line(proc, timeout=60)
        assert first.startswith(f"Signoff sandbox: open http://127.0.0.1:{page}/"), first
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.parametrize("which", ["SIGNOFF_SANDBOX_PORT", "SIGNOFF_PORT"])
def test_a_sandbox_port_in_use_names_the_variable_to_change(which: str, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        ports = {"SIGNOFF_SANDBOX_PORT": str(free_port()), "SIGNOFF_PORT": str(free_port())}
        ports[which] = str(busy)
        result = signoff("serve", cwd=tmp_path, SIGNOFF_LOG_LEVEL="WARNING", **ports)
    assert result.code == 2
    assert result.out == ""
    (line,) = [ln for ln in result.err.splitlines() if ln.startswith("signoff:")]
    assert f"port {busy}" in line and f"set {which} to a free port" in line, result.err
    assert "Traceback" not in result.err


def test_the_bot_port_in_use_names_signoff_port(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        result = signoff(
            "serve",
            cwd=tmp_path,
            SLACK_BOT_TOKEN="xoxb-test",
            SLACK_SIGNING_SECRET="s",
            SLACK_API_URL="http://127.0.0.1:9/api/",
            SIGNOFF_HOST="127.0.0.1",
            SIGNOFF_PORT=str(busy),
            SIGNOFF_DATABASE_URL=f"sqlite:///{tmp_path / 'signoff.db'}",
        )
    assert result.code == 2
    line = one_line(result)
    assert line.startswith(f"signoff: cannot listen on 127.0.0.1:{busy}: ")
    assert line.endswith("set SIGNOFF_PORT to a free port")
