"""views.open/update/push with trigger_id rules, over real HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.sandbox import TRIGGER_TTL_SECONDS, ManualClock, SlackFakeServer

MODAL: dict[str, Any] = {
    "type": "modal",
    "callback_id": "approve_step",
    "external_id": "run-42",
    "private_metadata": "run=42",
    "title": {"type": "plain_text", "text": "Approve"},
    "submit": {"type": "plain_text", "text": "Submit"},
    "blocks": [
        {
            "type": "input",
            "label": {"type": "plain_text", "text": "Reason"},
            "element": {"type": "plain_text_input"},
        }
    ],
}


def error_of(call: Any) -> str:
    with pytest.raises(SlackApiError) as err:
        call()
    return str(err.value.response["error"])


def test_views_open_with_valid_trigger(clocked_fake: SlackFakeServer, clock: ManualClock) -> None:
    client = clocked_fake.web_client()
    trigger = clocked_fake.state.issue_trigger("U0ALICE")
    clock.advance(TRIGGER_TTL_SECONDS - 0.1)
    view = client.views_open(trigger_id=trigger.id, view=MODAL)["view"]
    assert view["id"].startswith("V") and view["hash"]
    assert view["callback_id"] == "approve_step" and view["private_metadata"] == "run=42"
    assert view["root_view_id"] == view["id"]
    # Slack fills in block_id/action_id the bot left out.
    assert view["blocks"][0]["block_id"] and view["blocks"][0]["element"]["action_id"]
    stored = clocked_fake.state.top_view("U0ALICE")
    assert stored is not None and stored.id == view["id"] and stored.trigger_id == trigger.id


def test_views_open_with_expired_trigger(clocked_fake: SlackFakeServer, clock: ManualClock) -> None:
    client = clocked_fake.web_client()
    trigger = clocked_fake.state.issue_trigger("U0ALICE")
    clock.advance(TRIGGER_TTL_SECONDS + 0.01)
    assert error_of(lambda: client.views_open(trigger_id=trigger.id, view=MODAL)) == (
        "expired_trigger_id"
    )
    assert clocked_fake.state.views() == []


def test_views_open_with_reused_or_unknown_trigger(
    client: WebClient, fake: SlackFakeServer
) -> None:
    trigger = fake.state.issue_trigger("U0ALICE")
    client.views_open(trigger_id=trigger.id, view=MODAL)
    other = dict(MODAL, external_id="")
    assert error_of(lambda: client.views_open(trigger_id=trigger.id, view=other)) == (
        "exchanged_trigger_id"
    )
    assert error_of(lambda: client.views_open(trigger_id="1.2.abc", view=MODAL)) == (
        "invalid_trigger_id"
    )
    fresh = fake.state.issue_trigger("U0BOB")
    assert error_of(lambda: client.views_open(trigger_id=fresh.id, view=MODAL)) == (
        "duplicate_external_id"
    )


def test_views_update_by_id_and_external_id_with_hash_check(
    client: WebClient, fake: SlackFakeServer
) -> None:
    trigger = fake.state.issue_trigger("U0ALICE")
    opened = client.views_open(trigger_id=trigger.id, view=MODAL)["view"]
    changed = dict(MODAL, title={"type": "plain_text", "text": "Approved"})
    updated = client.views_update(view_id=opened["id"], view=changed, hash=opened["hash"])["view"]
    assert updated["title"]["text"] == "Approved" and updated["hash"] != opened["hash"]
    assert (
        error_of(lambda: client.views_update(view_id=opened["id"], view=MODAL, hash=opened["hash"]))
        == "hash_conflict"
    )
    by_external = client.views_update(external_id="run-42", view=MODAL)["view"]
    assert by_external["id"] == opened["id"]
    assert error_of(lambda: client.views_update(view_id="VNOPE", view=MODAL)) == "not_found"


def test_views_push_stacks_up_to_three(client: WebClient, fake: SlackFakeServer) -> None:
    root = client.views_open(trigger_id=fake.state.issue_trigger("U0ALICE").id, view=MODAL)["view"]
    plain_modal = dict(MODAL, external_id="")
    for _ in range(2):
        pushed = client.views_push(
            trigger_id=fake.state.issue_trigger("U0ALICE").id, view=plain_modal
        )["view"]
        assert pushed["root_view_id"] == root["id"]
    assert len(fake.state.view_stack("U0ALICE")) == 3
    assert (
        error_of(
            lambda: client.views_push(
                trigger_id=fake.state.issue_trigger("U0ALICE").id, view=plain_modal
            )
        )
        == "push_limit_reached"
    )
    closed = fake.state.close_view(root["id"])
    assert len(closed) == 3 and fake.state.view_stack("U0ALICE") == []
