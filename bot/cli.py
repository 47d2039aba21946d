"""``signoff``: serve the bot, run the local sandbox, migrate the database, list runs."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from bot.config import Settings, SettingsError, database_problem, load_settings

DESCRIPTION = """\
Signoff: human sign-off for workflow steps, done in Slack.

Configuration comes from the environment (see README: SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET,
SLACK_APP_TOKEN, SLACK_API_URL, SIGNOFF_DATABASE_URL, SIGNOFF_WORKFLOWS, SIGNOFF_PORT,
SIGNOFF_SANDBOX_PORT, SIGNOFF_CHANNEL, ...). Without Slack credentials `serve` starts the
local sandbox."""


# One return per subcommand and per start-up error (exit 2), read top to bottom.
def main(argv: Sequence[str] | None = None) -> int:  # noqa: PLR0911
    """Run the ``signoff`` command line; returns the exit code (2 for a problem an operator can
    fix, printed as one line)."""
    parser = argparse.ArgumentParser(
        prog="signoff",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    sub.add_parser(
        "serve",
        help="serve the Slack app (the local sandbox without credentials)",
        description="Serve POST /slack/events and GET /healthz on SIGNOFF_PORT (Socket Mode if "
        "SLACK_APP_TOKEN is set). Without SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET this starts "
        "the local sandbox instead.",
    )
    sandbox = sub.add_parser(
        "sandbox",
        help="serve the bot against a local Slack sandbox",
        description="A page on localhost plays Slack: type /signoff commands, click buttons, "
        "fill modals. Every interaction reaches the bot as a real, signed Slack request.",
    )
    sandbox.add_argument(
        "--sandbox-port",
        type=int,
        default=None,
        help="port of the sandbox page and fake Slack API (default SIGNOFF_SANDBOX_PORT, 3001)",
    )
    manifest = sub.add_parser(
        "manifest",
        help="print the Slack app manifest",
        description="Print manifests/slack-app.yaml, with the request URLs filled in from --url.",
    )
    manifest.add_argument(
        "--url", help="public base URL of the bot, e.g. https://signoff.example.com"
    )
    sub.add_parser(
        "migrate",
        help="create or upgrade the database schema (Alembic)",
        description="Create or upgrade the schema of SIGNOFF_DATABASE_URL to the latest Alembic "
        "revision. Safe to run again; the Kubernetes migration Job runs it.",
    )
    runs = sub.add_parser(
        "runs",
        help="list paused and recent runs, or show one",
        description="List paused runs (soonest deadline first, with time left) and recent runs; "
        "with a run id, show that run: its steps, decisions (who, when, values) and result.",
    )
    runs.add_argument("run_id", nargs="?", help="show this run in full")
    runs.add_argument("--limit", type=int, default=20, help="recent runs to list (default 20)")
    args = parser.parse_args(argv)

    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"signoff: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Alembic's INFO lines (one per migration context and step) say nothing to an operator;
    # `migrate` prints what it applied itself.
    alembic_level = max(logging.WARNING, logging.getLevelNamesMapping()[settings.log_level])
    logging.getLogger("alembic").setLevel(alembic_level)
    try:
        if args.command == "serve":
            problem = settings.slack_credentials_problem()
            if problem is not None:
                print(f"signoff: {problem}", file=sys.stderr)
                return 2
            return _serve(settings, sandbox_port=None, force_sandbox=False)
        if args.command == "sandbox":
            return _serve(settings, sandbox_port=args.sandbox_port, force_sandbox=True)
        if args.command == "manifest":
            from bot.manifest import render_manifest

            print(render_manifest(args.url), end="")
            return 0
        if args.command == "migrate":
            return _migrate(settings)
        if args.command == "runs":
            from bot.runs_cli import show_runs

            return show_runs(settings, run_id=args.run_id, limit=args.limit)
    except (SettingsError, ValueError) as exc:
        print(f"signoff: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        problem = _start_up_problem(exc, settings)
        if problem is None:
            raise
        print(f"signoff: {problem}", file=sys.stderr)
        return 2
    return 1


def _start_up_problem(exc: Exception, settings: Settings) -> str | None:
    """One line for what an operator can fix (a port, the database), None for a bug."""
    from bot.http_thread import PortUnavailableError

    if isinstance(exc, PortUnavailableError):
        return (
            f"cannot listen on {settings.host}:{exc.port}: {exc.strerror or exc}; "
            "set SIGNOFF_PORT to a free port"
        )
    return database_problem(exc, settings.database_url)


def _serve(settings: Settings, *, sandbox_port: int | None, force_sandbox: bool) -> int:
    if force_sandbox or not settings.has_slack_credentials:
        from bot.sandbox.run import serve_sandbox

        if sandbox_port is None:
            sandbox_port, port_source = settings.sandbox_port, "SIGNOFF_SANDBOX_PORT"
        else:
            port_source = "--sandbox-port"
        if sandbox_port == settings.port:
            raise SettingsError(
                f"{port_source} and SIGNOFF_PORT are both {sandbox_port}: the sandbox page "
                "and the bot need a port each"
            )
        return serve_sandbox(settings, sandbox_port=sandbox_port, sandbox_port_source=port_source)
    from bot.server import Runtime, serve

    serve(Runtime(settings))
    return 0


def _migrate(settings: Settings) -> int:
    from bot.config import open_database
    from bot.store import BotStore
    from engine.db import mask_url
    from engine.db.migrations import pending_revisions

    db = open_database(settings)
    try:
        engine_applied = pending_revisions(db.engine)
        db.upgrade()
        bot_applied = BotStore(db).ensure_schema()
    finally:
        db.dispose()
    applied = [f"engine {r}" for r in engine_applied] + [f"bot {r}" for r in bot_applied]
    done = "applied " + ", ".join(applied) if applied else "nothing to apply"
    print(f"signoff: database schema is up to date ({mask_url(settings.database_url)}): {done}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
