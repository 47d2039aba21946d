"""``/signoff run | list | status | pending | audit | help``."""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Any

from slack_bolt import Ack, App

from bot import blocks
from bot.audit import read_audit
from bot.inbox import record_then_ack
from bot.kinds import InboxKind
from bot.middleware.dedupe import interaction_key
from bot.parts import Parts
from bot.service import Signoff, new_run_id
from bot.text import code

log = logging.getLogger("signoff.commands")
COMMAND = "/signoff"
_RUN_ID = re.compile(r"^[0-9a-f]{8,64}$")
NAME_MAX = 100  # a name echoed back from what someone typed


def register(app: App, parts: Parts) -> None:
    """Register ``/signoff``, whose ack is the whole reply."""
    signoff = parts.signoff

    @app.command(COMMAND)
    def on_command(ack: Ack, command: dict[str, Any]) -> None:
        answer = reply(parts, command)
        record = answer.pop("record", None)
        if record is None:
            ack(**answer)  # reads only: nothing to record
            return
        record_then_ack(
            signoff,
            ack,
            key=interaction_key(command),
            surface="command",
            ack_kwargs=answer,
            **record,
        )


def _ephemeral(text_and_blocks: tuple[str, list[dict[str, Any]]]) -> dict[str, Any]:
    text, message_blocks = text_and_blocks
    return {"text": text, "blocks": message_blocks, "response_type": "ephemeral"}


# One return per /signoff verb: each is that verb's whole ack.
def reply(parts: Parts, command: dict[str, Any]) -> dict[str, Any]:  # noqa: PLR0911
    """The ack of a slash command: answered within Slack's 3 s from database reads and
    cached groups only. A command that changes something also returns ``record`` (what
    ``record_then_ack`` records first; the inbox worker then carries it out)."""
    signoff, permissions = parts.signoff, parts.permissions
    user_id = command.get("user_id")
    text = command.get("text")
    if not isinstance(user_id, str) or not isinstance(text, (str, type(None))):
        return _ephemeral(blocks.help_blocks("That request was malformed."))
    verb, _, rest = (text or "").strip().partition(" ")
    rest = rest.strip()
    verb = verb.lower()
    if verb in ("", "help"):
        return _ephemeral(blocks.help_blocks())
    if verb == "list":
        items = [
            (r.name, r.workflow.description, [s.name for s in r.workflow.steps])
            for r in signoff.routes.values()
            if permissions.can_start(user_id, r, cached_only=True)
        ]
        return _ephemeral(blocks.list_blocks(items))
    if verb == "run":
        name, _, run_input = rest.partition(" ")
        if not name:
            return _ephemeral(
                blocks.help_blocks("Which workflow? `/signoff run &lt;workflow&gt; [input]`")
            )
        route = signoff.routes.get(name)
        if route is None:
            known = ", ".join(code(n, NAME_MAX) for n in signoff.routes) or "none"
            return _ephemeral(
                blocks.help_blocks(f"Unknown workflow {code(name, NAME_MAX)}. Known: {known}.")
            )
        if not permissions.can_start(user_id, route, cached_only=True):
            return _ephemeral(blocks.problem_blocks(f"You may not start {code(name, NAME_MAX)}."))
        # From the interaction's key when it has one: a Slack retry of this command is
        # answered with the same run id, the one its first delivery recorded.
        key = interaction_key(command)
        run_id = hashlib.sha256(key.encode()).hexdigest()[:32] if key else new_run_id()
        channel = signoff.channels.channel_for(route, None)
        response_url = command.get("response_url")
        return {
            "response_type": "ephemeral",
            "text": blocks.started_text(name, run_id, channel=channel, link=None),
            "record": {
                "kind": InboxKind.start,
                "user_id": user_id,
                "data": {
                    "workflow": name,
                    "input": run_input.strip() or None,
                    "run_id": run_id,
                    "reply": {
                        "response_url": response_url if isinstance(response_url, str) else None,
                        "channel": command.get("channel_id"),
                    },
                },
            },
        }
    if verb == "status":
        if not rest:
            return _ephemeral(
                blocks.help_blocks("`/signoff status &lt;run_id&gt;` needs a run id.")
            )
        run = signoff.db.get_run(rest) if _RUN_ID.match(rest) else None
        if run is None or run.workflow_name not in signoff.routes:
            return _ephemeral(blocks.help_blocks(f"No run {code(rest, NAME_MAX)}."))
        return _ephemeral(blocks.status_blocks(run, signoff.db.get_decisions(run.run_id)))
    if verb == "audit":
        return _audit(signoff, rest)
    if verb == "pending":
        return _ephemeral(blocks.pending_blocks(parts.queries.pending_for(user_id)))
    return _ephemeral(blocks.help_blocks(f"Unknown command {code(verb, NAME_MAX)}."))


def _audit(signoff: Signoff, run_id: str) -> dict[str, Any]:
    """``/signoff audit <run_id>``: every approval, rejection, escalation and delegation."""
    if not run_id:
        return _ephemeral(blocks.help_blocks("`/signoff audit &lt;run_id&gt;` needs a run id."))
    run = signoff.db.get_run(run_id) if _RUN_ID.match(run_id) else None
    if run is None or run.workflow_name not in signoff.routes:
        return _ephemeral(blocks.help_blocks(f"No run {code(run_id, NAME_MAX)}."))
    return _ephemeral(blocks.audit_blocks(run, read_audit(signoff.db, run.run_id)))
