"""Every Slack message and modal Signoff sends, built from slack_sdk's Block Kit objects.

Nothing else in the bot writes Block Kit by hand. Text is clipped to the limits the
slack_sdk classes declare, so whatever a step produces, a message stays valid.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    CheckboxesElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    NumberInputElement,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from engine import Decision, Outcome, RunStatus, StepRequirement, UserInputField, WorkflowRunOutput

# Action and view ids: the bot's listeners match on these.
ACTION_APPROVE = "signoff_approve"
ACTION_REJECT = "signoff_reject"
ACTION_REJECT_WITH_REASON = "signoff_reject_with_reason"
ACTION_PROVIDE_INPUT = "signoff_provide_input"
VIEW_INPUT = "signoff_input"
VIEW_REJECT = "signoff_reject"
REASON_BLOCK = "reason"
VALUE_ACTION = "value"

MESSAGE_MAX_BLOCKS = 50
MODAL_MAX_BLOCKS = 100
MESSAGE_TEXT_MAX = 40_000
SECTION_TEXT_MAX = SectionBlock.text_max_length  # 3000
FIELD_TEXT_MAX = 2000
HEADER_TEXT_MAX = HeaderBlock.text_max_length  # 150
BUTTON_TEXT_MAX = 75
MODAL_TITLE_MAX = 24
OUTPUT_PREVIEW_MAX = 1200
SELECT_OPTIONS_MAX = 100
OPTION_TEXT_MAX = 75
OPTION_VALUE_MAX = 150

_STATUS_LABEL = {
    RunStatus.pending: ":hourglass: Pending",
    RunStatus.running: ":arrows_counterclockwise: Running",
    RunStatus.paused: ":double_vertical_bar: Waiting for a decision",
    RunStatus.completed: ":white_check_mark: Completed",
    RunStatus.cancelled: ":no_entry_sign: Cancelled",
    RunStatus.error: ":x: Failed",
}


def clip(text: str, limit: int) -> str:
    """Shorten ``text`` to ``limit`` characters, marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def mrkdwn_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_date(when: datetime | None) -> str:
    """A date Slack renders in each reader's time zone, with a UTC fallback."""
    if when is None:
        return "—"
    fallback = when.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(when.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def mention(who: str | None) -> str:
    if not who:
        return "someone"
    if who.startswith("S"):
        return f"<!subteam^{who}>"
    if who[:1] in ("U", "W"):
        return f"<@{who}>"
    return mrkdwn_escape(who)


def format_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, ensure_ascii=False)


def _md(text: str, limit: int = SECTION_TEXT_MAX) -> MarkdownTextObject:
    return MarkdownTextObject(text=clip(text, limit))


def _plain(text: str, limit: int) -> PlainTextObject:
    return PlainTextObject(text=clip(text, limit), emoji=True)


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=_md(text))


def _fields(pairs: Iterable[tuple[str, str]]) -> SectionBlock:
    fields = [_md(f"*{label}*\n{value}", FIELD_TEXT_MAX) for label, value in pairs]
    return SectionBlock(fields=fields[: SectionBlock.fields_max_length])


def _finish(blocks: list[Block], limit: int = MESSAGE_MAX_BLOCKS) -> list[dict[str, Any]]:
    """Validate each block (slack_sdk raises on a limit) and cap the count."""
    if len(blocks) > limit:
        blocks = [*blocks[: limit - 1], ContextBlock(elements=[_md("_(more omitted)_")])]
    return [b.to_dict() for b in blocks]


# -- pause messages ------------------------------------------------------------------------
@dataclass(frozen=True)
class PauseContext:
    """What a pause message shows, gathered by the bot from the run and its route."""

    token: str  # opaque: looked up in the database, never trusted
    workflow_name: str
    run: WorkflowRunOutput
    requirement: StepRequirement
    approvers: Sequence[str] = ()


def _previous_output(run: WorkflowRunOutput, req: StepRequirement) -> str | None:
    """The output of the last step run before the pause (not whatever ran after it)."""
    before = run.step_results[: req.step_index]
    executed = [s for s in before if not s.skipped and s.content is not None]
    if not executed:
        return None
    return clip(format_value(executed[-1].content), OUTPUT_PREVIEW_MAX)


def channel_mention(channel: str) -> str:
    """``<#C…>`` for a channel id (Slack shows its name), the name itself otherwise."""
    return f"<#{channel}>" if channel[:1] in ("C", "G") and channel.isalnum() else channel


def _pause_header_blocks(ctx: PauseContext, title: str) -> list[Block]:
    req, run = ctx.requirement, ctx.run
    blocks: list[Block] = [HeaderBlock(text=_plain(title, HEADER_TEXT_MAX))]
    messages = [m for m in (req.confirmation_message, req.user_input_message) if m]
    if messages:
        blocks.append(_section("\n".join(mrkdwn_escape(m) for m in messages)))
    blocks.append(
        _fields(
            [
                ("Workflow", mrkdwn_escape(ctx.workflow_name)),
                ("Step", mrkdwn_escape(req.step_name)),
                ("Started by", mention(run.user_id) if run.user_id else "a script"),
                ("Started", slack_date(run.created_at)),
                (
                    "Deadline",
                    slack_date(req.expires_at)
                    + (f" (then {req.on_reject.value})" if req.expires_at else "")
                    if req.expires_at
                    else "none",
                ),
                ("Run", f"`{run.run_id}`"),
            ]
        )
    )
    previous = _previous_output(run, req)
    if previous is not None:
        blocks.append(_section(f"*Previous step output*\n```{previous}```"))
    return blocks


def pause_message(ctx: PauseContext) -> tuple[str, list[dict[str, Any]]]:
    """The interactive message of a paused step: Approve/Reject, or Provide input…"""
    req = ctx.requirement
    verb = "input" if req.requires_user_input else "approval"
    title = f"Needs {verb}: {ctx.workflow_name} › {req.step_name}"
    blocks = _pause_header_blocks(ctx, title)
    if ctx.approvers:
        who = ", ".join(mention(a) for a in ctx.approvers)
        blocks.append(ContextBlock(elements=[_md(f"Who may decide: {who}")]))
    reject = ButtonElement(
        text=_plain("Reject", BUTTON_TEXT_MAX),
        action_id=ACTION_REJECT,
        value=ctx.token,
        style="danger",
        confirm=ConfirmObject(
            title=_plain("Reject this step?", 100),
            text=_md(
                clip(
                    f"Step *{mrkdwn_escape(req.step_name)}* will be rejected; the run "
                    f"will {'be cancelled' if req.on_reject.value == 'cancel' else 'skip it'}.",
                    300,
                )
            ),
            confirm=_plain("Reject", 30),
            deny=_plain("Back", 30),
            style="danger",
        ),
    )
    reason = ButtonElement(
        text=_plain("Reject with reason…", BUTTON_TEXT_MAX),
        action_id=ACTION_REJECT_WITH_REASON,
        value=ctx.token,
    )
    if req.requires_user_input:
        go = ButtonElement(
            text=_plain("Provide input…", BUTTON_TEXT_MAX),
            action_id=ACTION_PROVIDE_INPUT,
            value=ctx.token,
            style="primary",
        )
    else:
        go = ButtonElement(
            text=_plain("Approve", BUTTON_TEXT_MAX),
            action_id=ACTION_APPROVE,
            value=ctx.token,
            style="primary",
        )
    blocks.append(ActionsBlock(block_id="decision", elements=[go, reject, reason]))
    return clip(title, MESSAGE_TEXT_MAX), _finish(blocks)


def resolved_message(ctx: PauseContext, decision: Decision) -> tuple[str, list[dict[str, Any]]]:
    """The same message after its decision: buttons gone, the outcome in their place."""
    req = ctx.requirement
    outcome = decision.outcome
    if outcome is Outcome.timed_out:
        then = "cancelled" if req.on_reject.value == "cancel" else "skipped"
        line = f":hourglass_flowing_sand: *Timed out — {then}* at {slack_date(decision.decided_at)}"
    elif outcome is Outcome.rejected:
        then = "run cancelled" if req.on_reject.value == "cancel" else "step skipped"
        line = (
            f":no_entry: *Rejected* by {mention(decision.decided_by)} at "
            f"{slack_date(decision.decided_at)} ({then})"
        )
    else:
        label = "Approved" if outcome is Outcome.confirmed else "Input given"
        line = (
            f":white_check_mark: *{label}* by {mention(decision.decided_by)} at "
            f"{slack_date(decision.decided_at)}"
        )
    title = f"{ctx.workflow_name} › {req.step_name}"
    blocks = _pause_header_blocks(ctx, title)
    blocks.append(DividerBlock())
    blocks.append(_section(line))
    if decision.values:
        given = "\n".join(
            f"• *{mrkdwn_escape(k)}*: {mrkdwn_escape(format_value(v))}"
            for k, v in decision.values.items()
        )
        blocks.append(_section(f"*Values*\n{given}"))
    if decision.comment:
        label = "Reason" if outcome in (Outcome.rejected, Outcome.timed_out) else "Comment"
        blocks.append(_section(f"*{label}:* {mrkdwn_escape(decision.comment)}"))
    text = f"{title}: {outcome.value.replace('_', ' ')}"
    return clip(text, MESSAGE_TEXT_MAX), _finish(blocks)


# -- the run's root message ---------------------------------------------------------------------
@dataclass(frozen=True)
class RunCard:
    """What the root message shows; built from the stored run, or from the start event
    before the run's first write."""

    workflow_name: str
    run_id: str
    status: RunStatus
    user_id: str | None
    created_at: datetime | None
    step_names: Sequence[str]
    run: WorkflowRunOutput | None = None


def _progress(card: RunCard) -> str:
    run = card.run
    done = {s.step_name: s for s in run.step_results} if run else {}
    waiting = run.paused_step_name if run and run.is_paused else None
    marks = []
    for name in card.step_names:
        result = done.get(name)
        if result is not None:
            mark = (
                ":fast_forward:"
                if result.skipped
                else (":white_check_mark:" if result.success else ":x:")
            )
        elif name == waiting:
            mark = ":double_vertical_bar:"
        else:
            mark = ":white_circle:"
        marks.append(f"{mark} {mrkdwn_escape(name)}")
    return "  ".join(marks)


def run_root_message(card: RunCard) -> tuple[str, list[dict[str, Any]]]:
    label = _STATUS_LABEL[card.status]
    run = card.run
    title = f"{card.workflow_name}"
    status_line = f"*{label}*"
    if run is not None and run.is_paused and run.paused_step_name:
        status_line += f" at *{mrkdwn_escape(run.paused_step_name)}* (see thread)"
    if run is not None and card.status in (RunStatus.cancelled, RunStatus.error) and run.content:
        status_line += f"\n{mrkdwn_escape(clip(format_value(run.content), 1500))}"
    blocks: list[Block] = [
        HeaderBlock(text=_plain(f"Run: {title}", HEADER_TEXT_MAX)),
        _section(status_line),
        _fields(
            [
                ("Started by", mention(card.user_id) if card.user_id else "a script"),
                ("Started", slack_date(card.created_at)),
                ("Run", f"`{card.run_id}`"),
            ]
        ),
        ContextBlock(elements=[_md(_progress(card), 2000)]),
    ]
    text = f"{title}: {label.split(' ', 1)[1]}"
    return clip(text, MESSAGE_TEXT_MAX), _finish(blocks)


def completion_note(run: WorkflowRunOutput) -> str:
    summary = clip(format_value(run.content), 2500) if run.content is not None else "(no output)"
    done = sum(1 for s in run.step_results if not s.skipped)
    skipped = sum(1 for s in run.step_results if s.skipped)
    counts = f"{done} step{'s' if done != 1 else ''} run" + (
        f", {skipped} skipped" if skipped else ""
    )
    return f":white_check_mark: Completed ({counts}). Result:\n```{summary}```"


# -- modals ------------------------------------------------------------------------------------
def field_block_id(name: str) -> str:
    return f"field:{name}"


def _input_element(spec: UserInputField) -> Any:
    initial = spec.value
    if spec.allowed_values:
        options = [
            Option(
                text=_plain(format_value(v), OPTION_TEXT_MAX),
                value=clip(format_value(v), OPTION_VALUE_MAX),
            )
            for v in spec.allowed_values[:SELECT_OPTIONS_MAX]
        ]
        return StaticSelectElement(
            action_id=VALUE_ACTION, options=options, placeholder=_plain("Choose…", 150)
        )
    if spec.field_type == "bool":
        option = Option(text=_plain("Yes", OPTION_TEXT_MAX), value="true")
        return CheckboxesElement(
            action_id=VALUE_ACTION,
            options=[option],
            initial_options=[option] if initial is True else None,
        )
    if spec.field_type in ("int", "float"):
        return NumberInputElement(
            action_id=VALUE_ACTION,
            is_decimal_allowed=spec.field_type == "float",
            initial_value=None if initial is None else str(initial),
        )
    return PlainTextInputElement(
        action_id=VALUE_ACTION, initial_value=None if initial is None else str(initial)
    )


def input_modal(ctx: PauseContext) -> View:
    """A modal built from the step's ``user_input_schema``; with confirmation, one modal."""
    req = ctx.requirement
    blocks: list[Block] = []
    messages = [m for m in (req.confirmation_message, req.user_input_message) if m]
    intro = "\n".join(mrkdwn_escape(m) for m in messages) or "Provide the values below."
    blocks.append(
        _section(f"*{mrkdwn_escape(ctx.workflow_name)} › {mrkdwn_escape(req.step_name)}*\n{intro}")
    )
    for spec in req.user_input_schema:
        label = spec.name.replace("_", " ") + f" ({spec.field_type})"
        blocks.append(
            InputBlock(
                block_id=field_block_id(spec.name),
                label=_plain(label, 2000),
                element=_input_element(spec),
                hint=_plain(spec.description, 2000) if spec.description else None,
                # A checkbox left empty means false, so a bool never blocks submission.
                optional=(not spec.required) or spec.field_type == "bool",
            )
        )
    if not req.user_input_schema:
        blocks.append(
            InputBlock(
                block_id=field_block_id("input"),
                label=_plain("Input", 2000),
                element=PlainTextInputElement(action_id=VALUE_ACTION, multiline=True),
            )
        )
    submit = "Approve" if req.requires_confirmation else "Submit"
    view = View(
        type="modal",
        callback_id=VIEW_INPUT,
        private_metadata=ctx.token,
        notify_on_close=True,
        title=_plain("Signoff", MODAL_TITLE_MAX),
        submit=_plain(submit, MODAL_TITLE_MAX),
        close=_plain("Cancel", MODAL_TITLE_MAX),
        blocks=blocks[:MODAL_MAX_BLOCKS],
    )
    view.validate_json()
    return view


def reject_modal(ctx: PauseContext) -> View:
    req = ctx.requirement
    then = (
        "The run will be cancelled."
        if req.on_reject.value == "cancel"
        else "The step will be skipped."
    )
    view = View(
        type="modal",
        callback_id=VIEW_REJECT,
        private_metadata=ctx.token,
        notify_on_close=True,
        title=_plain("Reject step", MODAL_TITLE_MAX),
        submit=_plain("Reject", MODAL_TITLE_MAX),
        close=_plain("Back", MODAL_TITLE_MAX),
        blocks=[
            _section(
                f"Reject *{mrkdwn_escape(req.step_name)}* of "
                f"*{mrkdwn_escape(ctx.workflow_name)}*? {then}"
            ),
            InputBlock(
                block_id=REASON_BLOCK,
                label=_plain("Reason", 2000),
                optional=True,
                element=PlainTextInputElement(
                    action_id=VALUE_ACTION, multiline=True, max_length=2000
                ),
            ),
        ],
    )
    view.validate_json()
    return view


def parse_modal_values(
    state_values: Mapping[str, Any], schema: Sequence[UserInputField]
) -> dict[str, Any]:
    """Turn a view_submission's ``state.values`` into raw values for the engine to validate.

    Only the schema's blocks are read; anything else in the payload is ignored.
    """
    if not isinstance(state_values, Mapping):
        raise ValueError("view state is not an object")
    values: dict[str, Any] = {}
    names = [f.name for f in schema] or ["input"]
    for name in names:
        block = state_values.get(field_block_id(name))
        element = block.get(VALUE_ACTION) if isinstance(block, Mapping) else None
        if not isinstance(element, Mapping):
            continue
        kind = element.get("type")
        if kind == "checkboxes":
            selected = element.get("selected_options") or []
            values[name] = bool(selected)
        elif kind == "static_select":
            option = element.get("selected_option")
            values[name] = option.get("value") if isinstance(option, Mapping) else None
        else:
            raw = element.get("value")
            values[name] = raw if isinstance(raw, str) or raw is None else str(raw)
    return values


def reject_reason(state_values: Mapping[str, Any]) -> str | None:
    block = state_values.get(REASON_BLOCK) if isinstance(state_values, Mapping) else None
    element = block.get(VALUE_ACTION) if isinstance(block, Mapping) else None
    value = element.get("value") if isinstance(element, Mapping) else None
    return value.strip() if isinstance(value, str) and value.strip() else None


def errors_for_modal(errors: Mapping[str, str], schema: Sequence[UserInputField]) -> dict[str, str]:
    """Engine validation errors keyed by the modal's input blocks."""
    known = {f.name for f in schema} or {"input"}
    out: dict[str, str] = {}
    for name, why in errors.items():
        target = name if name in known else next(iter(known))
        out[field_block_id(target)] = clip(why, 2000)
    return out


# -- slash command replies ------------------------------------------------------------
HELP_TEXT = (
    "*Signoff* — human sign-off for workflow steps.\n"
    "• `/signoff run <workflow> [input]` — start a run\n"
    "• `/signoff list` — workflows you can run\n"
    "• `/signoff status <run_id>` — where a run is\n"
    "• `/signoff pending` — what waits for your decision\n"
    "• `/signoff help` — this text"
)


def help_blocks(problem: str | None = None) -> tuple[str, list[dict[str, Any]]]:
    blocks: list[Block] = []
    if problem:
        blocks.append(_section(f":warning: {mrkdwn_escape(problem)}"))
    blocks.append(_section(HELP_TEXT))
    return (problem + "\n" if problem else "") + HELP_TEXT, _finish(blocks)


def list_blocks(
    workflows: Sequence[tuple[str, str | None, Sequence[str]]],
) -> tuple[str, list[dict[str, Any]]]:
    if not workflows:
        return "No workflows are configured.", _finish([_section("No workflows are configured.")])
    blocks: list[Block] = [HeaderBlock(text=_plain("Workflows", HEADER_TEXT_MAX))]
    for name, description, steps in workflows:
        line = f"*{mrkdwn_escape(name)}*"
        if description:
            line += f" — {mrkdwn_escape(description)}"
        line += "\n" + " → ".join(mrkdwn_escape(s) for s in steps)
        blocks.append(_section(line))
    return f"{len(workflows)} workflows", _finish(blocks)


def status_blocks(
    run: WorkflowRunOutput, decisions: Sequence[Decision]
) -> tuple[str, list[dict[str, Any]]]:
    label = _STATUS_LABEL[run.status]
    blocks: list[Block] = [
        HeaderBlock(text=_plain(f"Run {run.run_id}", HEADER_TEXT_MAX)),
        _section(
            f"*{mrkdwn_escape(run.workflow_name or '?')}*: {label}"
            + (f" at *{mrkdwn_escape(run.paused_step_name or '')}*" if run.is_paused else "")
        ),
    ]
    for result in run.step_results:
        mark = "skipped" if result.skipped else ("done" if result.success else "failed")
        blocks.append(
            ContextBlock(elements=[_md(f"{mrkdwn_escape(result.step_name or '?')}: {mark}")])
        )
    for decision in decisions:
        blocks.append(ContextBlock(elements=[_md(mrkdwn_escape(decision.describe()))]))
    if run.content is not None and run.status.is_final:
        blocks.append(_section(f"```{clip(format_value(run.content), 2500)}```"))
    return f"Run {run.run_id}: {run.status.value}", _finish(blocks)


def pending_blocks(
    items: Sequence[tuple[str, str, str, datetime | None, str | None]],
) -> tuple[str, list[dict[str, Any]]]:
    """items: (workflow, step, run_id, deadline, permalink)."""
    if not items:
        return "Nothing waits for you.", _finish([_section("Nothing waits for your decision.")])
    blocks: list[Block] = [
        HeaderBlock(text=_plain(f"{len(items)} waiting for you", HEADER_TEXT_MAX))
    ]
    for workflow, step, run_id, deadline, link in items[: MESSAGE_MAX_BLOCKS - 2]:
        where = f" — <{link}|open>" if link else ""
        due = f", due {slack_date(deadline)}" if deadline else ""
        blocks.append(
            _section(
                f"*{mrkdwn_escape(workflow)} › {mrkdwn_escape(step)}* (`{run_id}`{due}){where}"
            )
        )
    return f"{len(items)} waiting for you", _finish(blocks)
