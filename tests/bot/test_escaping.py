"""Content we did not write never becomes Slack markup: whatever run input, step output, error,
reason, typed value or name a message or modal is built from, no mention, link, date or code
fence from it survives into any text Slack parses (mrkdwn and a message's ``text``)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from slack_sdk.models.views import View

from bot import blocks
from bot.text import code, code_block, escape
from engine import (
    Decision,
    OnReject,
    Outcome,
    RunStatus,
    StepOutput,
    StepRequirement,
    UserInputField,
    WorkflowRunOutput,
)

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
STARTER, APPROVER, GROUP = "U0SAFE", "U0DECIDER", "S0SAFE"
ROOT_LINK = "https://sandbox.test/archives/C0SAFE/p1764583200000100"
HOSTILE = [
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<@U0EVIL>",
    "<@W0EVIL|someone>",
    "<#C0EVIL>",
    "<#C0EVIL|general>",
    "<!subteam^S0EVIL>",
    "<!subteam^S0EVIL|@team>",
    "<http://evil.example|click me>",
    "<https://evil.example>",
    "<mailto:evil@example.com|mail>",
    "<!date^1^{date}|yesterday>",
    "```",
    "``",
    "`",
    "&",
    "&lt;!here&gt;",
    "<",
    ">",
    "\n",
]
content = st.lists(st.sampled_from(HOSTILE) | st.text(max_size=8), min_size=1, max_size=8).map(
    "".join
)
# What the bot itself may put inside <…>: dates, mentions of the IDs it was configured with or
# given by Slack, and links it got from Slack.
OURS = re.compile(
    r"!date\^\d{9,}\^\{date_short_pretty\} \{time\}\|\d{4}-\d\d-\d\d \d\d:\d\d UTC"
    rf"|@{STARTER}|@{APPROVER}|!subteam\^{GROUP}|#C0SAFE"
    rf"|{re.escape(ROOT_LINK)}\|run [0-9a-f]{{8}}"
)
FENCE = "```"


def parsed_texts(value: Any) -> Iterator[str]:
    """Every string Slack parses as mrkdwn in a message or view payload."""
    if isinstance(value, dict):
        if value.get("type") == "mrkdwn" and isinstance(value.get("text"), str):
            yield value["text"]
        for key, child in value.items():
            if key != "text" or not isinstance(child, str):
                yield from parsed_texts(child)
    elif isinstance(value, list):
        for child in value:
            yield from parsed_texts(child)


def assert_inert(texts: list[str], *, fences_we_wrote: int | None = None) -> None:
    for text in texts:
        for inner in re.findall(r"<([^<>]*)>", text):
            assert OURS.fullmatch(inner), f"live markup <{inner}> in {text!r}"
        assert "<" not in re.sub(r"<[^<>]*>", "", text), f"stray < in {text!r}"
        # Every fence is one of ours: they pair up, and what is between a pair has no backtick.
        assert text.count(FENCE) % 2 == 0, text
        for body in re.findall(r"```(.*?)```", text, flags=re.DOTALL):
            assert "`" not in body, f"a backtick inside a code block: {text!r}"
    if fences_we_wrote is not None:
        assert sum(t.count(FENCE) for t in texts) == fences_we_wrote, texts


def message_texts(built: tuple[str, list[dict[str, Any]]]) -> list[str]:
    text, message_blocks = built
    return [text, *parsed_texts(message_blocks)]


def view_texts(view: View) -> list[str]:
    return list(parsed_texts(view.to_dict()))


def _run(
    hostile: str, *, status: RunStatus, output: Any, req: StepRequirement
) -> WorkflowRunOutput:
    return WorkflowRunOutput(
        run_id="0123456789abcdef0123456789abcdef",
        session_id="s",
        workflow_name="wf",
        input=hostile,
        user_id=STARTER,
        status=status,
        content=output,
        step_results=[
            StepOutput(content=output, step_name=hostile or "first"),
            StepOutput(content=None, step_name="skipped", skipped=True),
        ],
        step_requirements=[req] if status is RunStatus.paused else [],
        created_at=NOW,
    )


def _requirement(hostile: str, *, name: str, field: str) -> StepRequirement:
    return StepRequirement(
        requirement_id="r1",
        step_name=name,
        step_index=1,
        step_path=[1],
        requires_confirmation=True,
        confirmation_message=hostile,
        requires_user_input=True,
        user_input_message=hostile,
        user_input_schema=[
            UserInputField(name=field, description=hostile, allowed_values=[hostile, "b"]),
            UserInputField(name="n", field_type="int", description=hostile),
        ],
        on_reject=OnReject.cancel,
        paused_at=NOW,
        expires_at=NOW + timedelta(hours=1),
        decided_at=NOW + timedelta(minutes=5),
    )


@settings(max_examples=300, deadline=None)
@given(
    hostile=content,
    name=content,
    output=content | st.dictionaries(content, content, max_size=3) | st.lists(content, max_size=3),
    field=st.from_regex(r"[a-z][a-z_]{0,10}", fullmatch=True),
    outcome=st.sampled_from(list(Outcome)),
)
def test_no_markup_from_content_survives_into_any_message_or_modal(
    hostile: str, name: str, output: Any, field: str, outcome: Outcome
) -> None:
    req = _requirement(hostile, name=name, field=field)
    paused = _run(hostile, status=RunStatus.paused, output=output, req=req)
    ctx = blocks.PauseContext(
        token="r1",
        workflow_name=name,
        run=paused,
        requirement=req,
        approvers=(APPROVER, GROUP),
        root_link=ROOT_LINK,
    )
    decision = Decision(
        run_id=paused.run_id,
        requirement_id="r1",
        step_name=name,
        outcome=outcome,
        decided_by=APPROVER,
        decided_at=NOW,
        comment=hostile,
        values={field: hostile, hostile or "k": output},
    )
    # The pause and its resolved form each hold one code block: the previous output.
    assert_inert(message_texts(blocks.pause_message(ctx)), fences_we_wrote=2)
    assert_inert(message_texts(blocks.resolved_message(ctx, decision)), fences_we_wrote=2)
    # The same pause reaching people elsewhere: a DM copy, the App Home, the delegate form.
    assert_inert(message_texts(blocks.dm_pause_message(ctx, channel=hostile)))
    assert_inert(
        view_texts(
            blocks.home_view(
                pending=[ctx],
                started=[],
                decided=[
                    blocks.HomeDecision(workflow_name=name, decision=decision, root_link=None)
                ],
            )
        )
    )
    assert_inert(view_texts(blocks.delegate_modal(ctx)))
    for status in RunStatus:
        run = _run(hostile, status=status, output=output, req=req)
        card = blocks.RunCard(
            workflow_name=name,
            run_id=run.run_id,
            status=status,
            user_id=STARTER,
            created_at=NOW,
            step_names=[name, "skipped", hostile],
            run=run,
        )
        assert_inert(message_texts(blocks.run_root_message(card)), fences_we_wrote=0)
        final = 2 if status.is_final else 0
        assert_inert(message_texts(blocks.status_blocks(run, [decision])), fences_we_wrote=final)
    finished = _run(hostile, status=RunStatus.completed, output=output, req=req)
    assert_inert([blocks.completion_note(finished)], fences_we_wrote=2)
    assert_inert(
        [
            blocks.timeout_note(req),
            blocks.cancelled_note(step_name=name, cancelled_by=APPROVER, reason=hostile),
            blocks.cancelled_note(step_name=None, cancelled_by=None, reason=hostile),
            blocks.failed_note(hostile),
            blocks.reminder_note(req, (APPROVER, GROUP)),
            # A channel comes from the routes (an operator's); one given as an ID becomes a
            # channel link by design, anything else must stay text.
            blocks.started_text(
                name,
                paused.run_id,
                channel="C0SAFE" if re.fullmatch(r"[CG][A-Z0-9]+", hostile) else hostile,
                link=None,
            ),
            blocks.describe_decision(decision),
        ],
        fences_we_wrote=0,
    )
    assert_inert(view_texts(blocks.input_modal(ctx)), fences_we_wrote=0)
    assert_inert(view_texts(blocks.reject_modal(ctx)), fences_we_wrote=0)
    assert_inert(
        message_texts(blocks.list_blocks([(name, hostile, [name, hostile])])), fences_we_wrote=0
    )
    assert_inert(
        message_texts(blocks.pending_blocks([(name, hostile, paused.run_id, NOW, None)])),
        fences_we_wrote=0,
    )


@given(hostile=content)
def test_escape_and_code_never_leave_markup_or_a_fence(hostile: str) -> None:
    for text in (escape(hostile), code(hostile, 80), code_block(hostile, 300)):
        assert "<" not in text and ">" not in text
    assert FENCE not in escape(hostile)
    assert "`" not in code(hostile, 80)[1:-1] and "`" not in code_block(hostile, 300)[3:-3]
    assert len(code(hostile, 80)) <= 80 and len(code_block(hostile, 300)) <= 300


def test_escaped_content_reads_as_written() -> None:
    assert escape("a < b && c > d") == "a &lt; b &amp;&amp; c &gt; d"
    assert escape({"k": "<!here>"}) == '{"k": "&lt;!here&gt;"}'
    assert code_block("```\n<!channel>```", 100) == "```ˋˋˋ\n&lt;!channel&gt;ˋˋˋ```"
    assert blocks.mrkdwn_to_plain(
        "Already decided: approved by <@U0A> at <!date^1764583200^{date_short_pretty} {time}|"
        "2026-12-01 10:00 UTC>; *x* &lt;y&gt;"
    ) == ("Already decided: approved by @U0A at 2026-12-01 10:00 UTC; x <y>")
