"""Every Slack message and modal Signoff sends, built from slack_sdk's Block Kit objects.

Nothing else in the bot writes Block Kit by hand. Text is clipped to the limits the
slack_sdk classes declare, so whatever a step produces, a message stays valid; and every
piece of content we did not write goes through ``bot.text`` (escaped, fences made inert).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import unescape
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
    OverflowMenuElement,
    PlainTextInputElement,
    PlainTextObject,
    RadioButtonsElement,
    SectionBlock,
    StaticMultiSelectElement,
    StaticSelectElement,
    UserSelectElement,
)
from slack_sdk.models.views import View

# escape and clip are re-exported: listeners and the outbox reach them as blocks.escape/clip.
from bot.audit import AuditEntry
from bot.text import as_text, code, code_block, escape_clipped, one_line
from bot.text import clip as clip
from bot.text import escape as escape
from engine import (
    TIMEOUT_ACTOR,
    Decision,
    OnReject,
    Outcome,
    RequirementKind,
    RunStatus,
    StepRequirement,
    UserInputField,
    WorkflowRunOutput,
)

# Action and view ids: the bot's listeners match on these.
ACTION_APPROVE = "signoff_approve"
ACTION_REJECT = "signoff_reject"
ACTION_REJECT_WITH_REASON = "signoff_reject_with_reason"
ACTION_PROVIDE_INPUT = "signoff_provide_input"
ACTION_ROUTE_CHOICE = "signoff_route_choice"  # the choice element of a Router's message
ACTION_CHOOSE_ROUTE = "signoff_choose_route"  # its Approve: sends the selection
ACTION_VIEW_OUTPUT = "signoff_view_output"
ACTION_EDIT_OUTPUT = "signoff_edit_output"
ACTION_RETRY = "signoff_retry"
ACTION_SKIP = "signoff_skip"
VIEW_INPUT = "signoff_input"
VIEW_REJECT = "signoff_reject"
VIEW_EDIT_OUTPUT = "signoff_edit_output"
VIEW_OUTPUT = "signoff_output"
VIEW_CLOSED = "signoff_closed"  # a form whose pause was decided or timed out meanwhile
REASON_BLOCK = "reason"
OUTPUT_BLOCK = "output"
ROUTE_BLOCK = "route"
VALUE_ACTION = "value"
ACTION_DELEGATE = "signoff_delegate"  # the pause message's overflow menu: "Delegate…"
VIEW_DELEGATE = "signoff_delegate"
DELEGATE_BLOCK = "delegate"

# Limits slack_sdk declares as class attributes; the ones it does not declare are Slack's
# documented message limits (chat.postMessage: 50 blocks, 40,000 characters of text).
MESSAGE_MAX_BLOCKS = 50
MESSAGE_TEXT_MAX = 40_000
MODAL_MAX_BLOCKS = View.blocks_max_length
SECTION_TEXT_MAX = SectionBlock.text_max_length
HEADER_TEXT_MAX = HeaderBlock.text_max_length
BUTTON_TEXT_MAX = ButtonElement.text_max_length
MODAL_TITLE_MAX = View.title_max_length
MODAL_BUTTON_MAX = View.submit_max_length
LABEL_MAX = InputBlock.label_max_length
HINT_MAX = InputBlock.hint_max_length
PLACEHOLDER_MAX = PlainTextInputElement.placeholder_max_length
CONTEXT_MAX_ELEMENTS = ContextBlock.elements_max_length
SELECT_OPTIONS_MAX = StaticSelectElement.options_max_length
MULTI_SELECT_OPTIONS_MAX = StaticMultiSelectElement.options_max_length
SECTION_FIELDS_MAX = SectionBlock.fields_max_length
# Not declared by slack_sdk: Slack's documented maximum of options in radio buttons and
# checkboxes, and of a plain_text_input's value.
CHOICE_OPTIONS_MAX = 10
TEXT_INPUT_MAX = 3000
OPTION_TEXT_MAX = Option.label_max_length
OPTION_VALUE_MAX = Option.value_max_length
CONFIRM_TITLE_MAX = ConfirmObject.title_max_length
CONFIRM_TEXT_MAX = ConfirmObject.text_max_length
CONFIRM_BUTTON_MAX = ConfirmObject.confirm_max_length
# Our own choices, well inside the limits above: a message is read in two seconds.
OUTPUT_PREVIEW_MAX = 1200
INPUT_PREVIEW_MAX = 80
NOTE_CONTENT_MAX = 2500
SHORT_RUN_ID = 8
RADIO_CHOICES_MAX = 5  # more choices than this: a select menu, easier to scan
ERROR_PREVIEW_MAX = 1500
TOOL_ARG_MAX = 500

_STATUS_LABEL = {
    RunStatus.pending: ":hourglass: Pending",
    RunStatus.running: ":arrows_counterclockwise: Running",
    RunStatus.paused: ":double_vertical_bar: Waiting for a decision",
    RunStatus.completed: ":white_check_mark: Completed",
    RunStatus.cancelled: ":no_entry_sign: Cancelled",
    RunStatus.error: ":x: Failed",
}
_VERB = {
    Outcome.confirmed: "approved",
    Outcome.rejected: "rejected",
    Outcome.submitted: "answered",
    Outcome.timed_out: "timed out",
}


def mrkdwn_escape(text: str) -> str:
    """Kept for callers of the old name: the one escaping function is ``bot.text.escape``."""
    return escape(text)


def format_value(value: Any) -> str:
    """A value as a person reads it (``bot.text.as_text``), unescaped."""
    return as_text(value)


def slack_date(when: datetime | None) -> str:
    """A date Slack renders in each reader's time zone, with a UTC fallback."""
    if when is None:
        return "—"
    return f"<!date^{int(when.timestamp())}^{{date_short_pretty}} {{time}}|{plain_date(when)}>"


def plain_date(when: datetime | None) -> str:
    """A date where Slack renders no markup (modal errors, plain_text): UTC, to the minute."""
    return "—" if when is None else when.strftime("%Y-%m-%d %H:%M UTC")


def short_run_id(run_id: str) -> str:
    """The first characters of a run id, enough to tell runs apart in a message."""
    return run_id[:SHORT_RUN_ID]


def mention(who: str | None) -> str:
    """A mention of a Slack ID we were configured with or given by Slack; anything else is
    content, escaped."""
    if not who:
        return "someone"
    if who == TIMEOUT_ACTOR:
        return "the deadline"
    if re.fullmatch(r"S[A-Z0-9]+", who):
        return f"<!subteam^{who}>"
    if re.fullmatch(r"[UW][A-Z0-9]+", who):
        return f"<@{who}>"
    return escape(who)


_MARKUP = re.compile(
    r"<(!date\^[^|>]*\|([^>]*)|@([UW][A-Z0-9]+)|!subteam\^(S[A-Z0-9]+)"
    r"|#([CG][A-Z0-9]+)(?:\|([^>]*))?)>"
)


def mrkdwn_to_plain(text: str) -> str:
    """Our own mrkdwn as plain text, for places Slack renders none (modal errors): dates as
    their UTC fallback, mentions as ``@ID``, bold and code marks dropped, entities decoded."""

    def plain(match: re.Match[str]) -> str:
        date, user, group, channel, channel_name = match.group(2, 3, 4, 5, 6)
        if date is not None:
            return date
        if user or group:
            return f"@{user or group}"
        return f"#{channel_name or channel}"

    return unescape(_MARKUP.sub(plain, text).replace("*", "").replace("`", ""))


def channel_mention(channel: str) -> str:
    """``<#C…>`` for a channel id (Slack shows its name), the name itself otherwise."""
    if re.fullmatch(r"[CG][A-Z0-9]+", channel):
        return f"<#{channel}>"
    return escape(channel)


def describe_decision(decision: Decision, *, plain: bool = False) -> str:
    """ "approved by @alice at <date>" — mrkdwn, or plain text for modal errors."""
    when = plain_date(decision.decided_at) if plain else slack_date(decision.decided_at)
    if decision.outcome is Outcome.timed_out:
        return f"the deadline passed ({when})"
    who = decision.decided_by or "someone"
    who_text = f"@{who}" if plain else mention(who)
    return f"{_VERB[decision.outcome]} by {who_text} at {when}"


def _md(text: str, limit: int = SECTION_TEXT_MAX) -> MarkdownTextObject:
    return MarkdownTextObject(text=clip(text, limit))


def _plain(text: str, limit: int) -> PlainTextObject:
    # Slack refuses an empty plain_text; a name made only of spaces still needs a label.
    return PlainTextObject(text=clip(one_line(text) or "…", limit), emoji=True)


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=_md(text))


def _context(parts: Iterable[str]) -> ContextBlock:
    """One context line, its parts joined by a middle dot."""
    return ContextBlock(elements=[_md("  ·  ".join(p for p in parts if p))])


def _finish(blocks: list[Block], limit: int = MESSAGE_MAX_BLOCKS) -> list[dict[str, Any]]:
    """Validate each block (slack_sdk raises on a limit) and cap the count."""
    if len(blocks) > limit:
        blocks = [*blocks[: limit - 1], ContextBlock(elements=[_md("_(more omitted)_")])]
    return [b.to_dict() for b in blocks]


def _fallback(text: str) -> str:
    """A message's notification ``text`` (Slack parses it as mrkdwn): built from escaped
    parts, clipped to the message limit."""
    return clip(text, MESSAGE_TEXT_MAX)


# -- pause messages ------------------------------------------------------------------------
@dataclass(frozen=True)
class PauseContext:
    """What a pause message shows, gathered by the bot from the run and its route."""

    token: str  # opaque: looked up in the database, never trusted
    workflow_name: str
    run: WorkflowRunOutput
    requirement: StepRequirement
    approvers: Sequence[str] = ()
    root_link: str | None = None  # permalink of the run's root message, when known
    plan: Plan | None = None  # a group's confirmation: what runs if approved
    # Every requirement of a pause with several (a Parallel's), answered or not, in order.
    siblings: Sequence[StepRequirement] = ()
    # A route's groups with counts: (group, count, who counts for it) each.
    groups: Sequence[tuple[str, int, Sequence[str]]] = ()
    delegation: bool = False  # the route lets an approver hand the decision to someone else
    notes: Sequence[str] = ()  # our own mrkdwn about its policy: escalated to…, delegated to…


@dataclass(frozen=True)
class Plan:
    """What a group runs if its confirmation is approved (names of its members)."""

    kind: str  # "Steps", "Loop", "Condition", "Router", "Parallel"
    steps: Sequence[str]
    else_steps: Sequence[str] = ()
    iterations: int | None = None  # a Loop's max_iterations
    choose_one: bool = False  # a Router: its selector picks among the steps


def _names(names: Sequence[str]) -> str:
    return " → ".join(f"*{escape(n)}*" for n in names) or "nothing"


def plan_text(plan: Plan) -> str:
    """The group's plan in one or two lines of mrkdwn."""
    if plan.kind == "Condition":
        text = f"If approved, the condition chooses: {_names(plan.steps)}"
        return text + (f"; otherwise {_names(plan.else_steps)}" if plan.else_steps else "")
    if plan.choose_one:
        return "If approved, the router runs one of: " + ", ".join(
            f"*{escape(n)}*" for n in plan.steps
        )
    if plan.kind == "Parallel":
        return "If approved, these run in parallel: " + ", ".join(
            f"*{escape(n)}*" for n in plan.steps
        )
    rounds = f" (up to {plan.iterations} rounds)" if plan.iterations else ""
    return f"If approved, runs{rounds}: {_names(plan.steps)}"


def _previous_output(run: WorkflowRunOutput, req: StepRequirement) -> Any | None:
    """The output of the last step run before the pause (not whatever ran after it)."""
    before = run.step_results[: req.step_index]
    executed = [s for s in before if not s.skipped and s.content is not None]
    return executed[-1].content if executed else None


def _title(ctx: PauseContext) -> str:
    """Workflow and step, plain text (headers and modal titles render no markup)."""
    return f"{ctx.workflow_name} › {ctx.requirement.step_name}"


def _run_link(run_id: str, link: str | None) -> str:
    short = short_run_id(run_id)
    return f"<{link}|run {short}>" if link else f"run `{short}`"


_ON_DEADLINE = {
    "approve": "approved",
    "cancel": "cancel",
    "else": "the else branch",
    "skip": "skip",
    "retry": "skip",
}


def deadline_then(req: StepRequirement) -> str:
    """What the deadline does, in a word or two (on_timeout, else on_reject)."""
    return _ON_DEADLINE.get(req.reject_action_on_timeout().value, "skip")


def _context_line(ctx: PauseContext) -> ContextBlock:
    """Who started the run and when, its input, the deadline if any, who may decide, and a
    link to the run's root message: one line."""
    run, req = ctx.run, ctx.requirement
    parts = [
        f"Started by {mention(run.user_id) if run.user_id else 'a script'} "
        f"{slack_date(run.created_at)}",
    ]
    if run.input not in (None, ""):
        parts.append(f"input {code(one_line(as_text(run.input)), INPUT_PREVIEW_MAX)}")
    if req.expires_at is not None:
        parts.append(f"due {slack_date(req.expires_at)} (then {deadline_then(req)})")
    if ctx.approvers:
        parts.append("decided by " + ", ".join(mention(a) for a in ctx.approvers))
    parts.append(_run_link(run.run_id, ctx.root_link))
    return _context(parts)


_REVIEW_KINDS = (RequirementKind.output_review, RequirementKind.iteration_review)


def _reviewed_output(req: StepRequirement) -> Any | None:
    return req.step_output.content if req.step_output is not None else None


def _is_clipped(value: Any, limit: int = OUTPUT_PREVIEW_MAX) -> bool:
    # code_block keeps limit - 6 characters of the content (the fences take the rest).
    return len(as_text(value)) > limit - 6


def attempt_text(req: StepRequirement) -> str | None:
    """ "attempt 2 of 3" for a step that may be re-run, None when it runs once."""
    if req.max_retries is None or req.on_reject is not OnReject.retry:
        return None
    return f"attempt {req.retry_count + 1} of {req.max_retries + 1}"


def _then(req: StepRequirement) -> str:
    """What a rejection does, in words."""
    if req.on_reject is OnReject.cancel:
        return "the run will be cancelled"
    if req.on_reject is OnReject.retry and req.max_retries is not None:
        if req.retry_count < req.max_retries:
            return (
                f"the step will re-run with the feedback, attempt {req.retry_count + 2} "
                f"of {req.max_retries + 1}"
            )
        return "no attempts are left: it will be skipped"
    if req.on_reject is OnReject.else_branch:
        return "the else branch will run"
    if req.kind is RequirementKind.iteration_review:
        return "the loop will stop here, keeping what it made"
    return "it will be skipped"


def _kind_body(req: StepRequirement, run: WorkflowRunOutput) -> list[Block]:
    """The part of a pause message that shows what this kind of pause is about."""
    if req.kind in _REVIEW_KINDS:
        output = _reviewed_output(req)
        if req.kind is RequirementKind.iteration_review:
            label = f"*Iteration {req.iteration or 1} output*"
        else:
            label = "*Output*"
        attempt = attempt_text(req)
        if attempt:
            label += f" ({attempt})"
        return [_section(f"{label}\n{code_block(output, OUTPUT_PREVIEW_MAX)}")]
    if req.kind is RequirementKind.error:
        kind = f" ({escape(req.error_type)})" if req.error_type else ""
        head = f":x: *{escape(req.step_name)}* failed{kind} on attempt {req.retry_count + 1}"
        return [_section(f"{head}\n{code_block(req.error_message or '', ERROR_PREVIEW_MAX)}")]
    if req.kind is RequirementKind.executor:
        out: list[Block] = []
        agent = f" of *{escape(req.executor_name)}*" if req.executor_name else ""
        for tool in req.executor_requirements or ():
            args = list((tool.tool_args or {}).items())
            fields = [
                _md(f"*{escape(k)}*\n{code(as_text(v), TOOL_ARG_MAX)}", TOOL_ARG_MAX + 200)
                for k, v in args[:SECTION_FIELDS_MAX]
            ]
            text = f":hammer_and_wrench: Tool call{agent}: {code(tool.tool_name or '?', 200)}"
            if len(args) > SECTION_FIELDS_MAX:
                text += f" _({len(args) - SECTION_FIELDS_MAX} more arguments not shown)_"
            out.append(SectionBlock(text=_md(text), fields=fields or None))
        return out
    previous = _previous_output(run, req)
    if previous is None:
        return []
    return [_section("*Previous step output*\n" + code_block(previous, OUTPUT_PREVIEW_MAX))]


def _route_choices_text(req: StepRequirement) -> str:
    """What to choose from; the choices listed with their descriptions only where the
    element cannot show them (a select menu)."""
    descriptions = req.choice_descriptions or {}
    how = "Choose one or more routes" if req.allow_multiple_selections else "Choose a route"
    element = route_choice_element(req)
    if isinstance(element, (RadioButtonsElement, CheckboxesElement)):
        return f"{how}:"
    lines = []
    for name in req.available_choices or ():
        about = descriptions.get(name)
        lines.append(f"• *{escape(name)}*" + (f" — {escape(about)}" if about else ""))
    return f"{how}:\n" + "\n".join(lines)


def _pause_body(ctx: PauseContext) -> list[Block]:
    req, run = ctx.requirement, ctx.run
    blocks: list[Block] = [HeaderBlock(text=_plain(_title(ctx), HEADER_TEXT_MAX))]
    messages = [
        m
        for m in (req.confirmation_message, req.user_input_message, req.output_review_message)
        if m
    ]
    lines = [escape(m) for m in messages]
    if ctx.plan is not None:
        lines.append(plan_text(ctx.plan))
    if req.kind is RequirementKind.route_selection:
        lines.append(_route_choices_text(req))
    if lines:
        blocks.append(_section("\n".join(lines)))
    blocks.append(_context_line(ctx))
    blocks.extend(_kind_body(req, run))
    return blocks


def _button(
    label: str, action_id: str, token: str, style: str | None = None, confirm: Any = None
) -> ButtonElement:
    return ButtonElement(
        text=_plain(label, BUTTON_TEXT_MAX),
        action_id=action_id,
        value=token,
        style=style,
        confirm=confirm,
    )


def _confirm(title: str, text: str, button: str) -> ConfirmObject:
    return ConfirmObject(
        title=_plain(title, CONFIRM_TITLE_MAX),
        text=_md(text, CONFIRM_TEXT_MAX),
        confirm=_plain(button, CONFIRM_BUTTON_MAX),
        deny=_plain("Back", CONFIRM_BUTTON_MAX),
        style="danger",
    )


def _choice_option(name: str, description: str | None, *, with_description: bool) -> Option:
    return Option(
        text=_plain(name, OPTION_TEXT_MAX),
        value=clip(name, OPTION_VALUE_MAX),
        description=(
            _plain(description, OPTION_TEXT_MAX) if with_description and description else None
        ),
    )


def route_choice_element(req: StepRequirement) -> Any:
    """Radio buttons for a few choices, a select menu for more; checkboxes (or a
    multi-select) when several may be chosen. Descriptions shown where Slack can."""
    names = list(req.available_choices or ())
    descriptions = req.choice_descriptions or {}
    placeholder = _plain("Choose a route…", PLACEHOLDER_MAX)
    if req.allow_multiple_selections:
        if len(names) <= CHOICE_OPTIONS_MAX:
            return CheckboxesElement(
                action_id=ACTION_ROUTE_CHOICE,
                options=[
                    _choice_option(n, descriptions.get(n), with_description=True) for n in names
                ],
            )
        return StaticMultiSelectElement(
            action_id=ACTION_ROUTE_CHOICE,
            placeholder=placeholder,
            options=[
                _choice_option(n, None, with_description=False)
                for n in names[:MULTI_SELECT_OPTIONS_MAX]
            ],
        )
    if len(names) <= RADIO_CHOICES_MAX:
        return RadioButtonsElement(
            action_id=ACTION_ROUTE_CHOICE,
            options=[_choice_option(n, descriptions.get(n), with_description=True) for n in names],
        )
    return StaticSelectElement(
        action_id=ACTION_ROUTE_CHOICE,
        placeholder=placeholder,
        options=[
            _choice_option(n, None, with_description=False) for n in names[:SELECT_OPTIONS_MAX]
        ],
    )


def _decision_buttons(ctx: PauseContext) -> list[Block]:
    req, token = ctx.requirement, ctx.token
    name = escape(req.step_name)
    reject = _button(
        "Reject",
        ACTION_REJECT,
        token,
        "danger",
        _confirm("Reject this step?", f"*{name}* will be rejected; {_then(req)}.", "Reject"),
    )
    reason = _button("Reject with reason…", ACTION_REJECT_WITH_REASON, token)
    if req.kind is RequirementKind.route_selection:
        return [
            ActionsBlock(block_id=ROUTE_BLOCK, elements=[route_choice_element(req)]),
            ActionsBlock(
                block_id="decision",
                elements=[
                    _button("Approve", ACTION_CHOOSE_ROUTE, token, "primary"),
                    reject,
                    reason,
                ],
            ),
        ]
    if req.kind in _REVIEW_KINDS:
        elements = [
            _button("Approve", ACTION_APPROVE, token, "primary"),
            _button("Edit output…", ACTION_EDIT_OUTPUT, token),
        ]
        if req.kind is RequirementKind.iteration_review:
            stop = _confirm("Stop the loop?", f"*{name}*: {_then(req)}.", "Stop")
            elements.append(_button("Stop here", ACTION_REJECT, token, "danger", stop))
        else:
            elements.append(
                _button("Reject with feedback…", ACTION_REJECT_WITH_REASON, token, "danger")
            )
        if _is_clipped(_reviewed_output(req)):
            elements.append(_button("View full output", ACTION_VIEW_OUTPUT, token))
        return [ActionsBlock(block_id="decision", elements=elements)]
    if req.kind is RequirementKind.error:
        skip = _button(
            "Skip",
            ACTION_SKIP,
            token,
            "danger",
            _confirm(
                "Skip this step?", f"*{name}* will be recorded as failed; the run goes on.", "Skip"
            ),
        )
        return [
            ActionsBlock(
                block_id="decision",
                elements=[_button("Retry", ACTION_RETRY, token, "primary"), skip],
            )
        ]
    if req.kind is RequirementKind.executor:
        return [
            ActionsBlock(
                block_id="decision",
                elements=[_button("Approve", ACTION_APPROVE, token, "primary"), reject, reason],
            )
        ]
    if req.requires_user_input:
        go = _button("Provide input…", ACTION_PROVIDE_INPUT, token, "primary")
    else:
        go = _button("Approve", ACTION_APPROVE, token, "primary")
    elements = [go, reject, reason]
    previous = _previous_output(ctx.run, req)
    if previous is not None and _is_clipped(previous):
        elements.append(_button("View full output", ACTION_VIEW_OUTPUT, token))
    return [ActionsBlock(block_id="decision", elements=elements)]


_NEEDS = {
    RequirementKind.confirmation: "approval",
    RequirementKind.route_selection: "a route",
    RequirementKind.output_review: "review",
    RequirementKind.iteration_review: "review",
    RequirementKind.error: "a retry or skip",
    RequirementKind.executor: "approval of a tool call",
}


def _answered_line(req: StepRequirement) -> str:
    """An answer on a requirement (recorded or in the audit trail), who and when."""
    when = slack_date(req.decided_at)
    who = mention(req.decided_by)
    if req.timed_out:
        return f":hourglass_flowing_sand: timed out at {when}"
    if req.is_rejected:
        return f":no_entry: *Rejected* by {who} at {when} ({_rejected_then(req)})"
    if req.selected_choices:
        chosen = ", ".join(f"*{escape(c)}*" for c in req.selected_choices)
        return f":twisted_rightwards_arrows: *Route chosen:* {chosen} by {who} at {when}"
    return f":white_check_mark: *Approved* by {who} at {when}"


def _sibling_ctx(ctx: PauseContext, req: StepRequirement) -> PauseContext:
    return PauseContext(
        token=req.requirement_id,
        workflow_name=ctx.workflow_name,
        run=ctx.run,
        requirement=req,
        approvers=ctx.approvers,
        root_link=ctx.root_link,
    )


def _several(ctx: PauseContext, *, resolved: bool) -> list[Block]:
    """One message for a pause with several requirements: a section per requirement, each
    with its own buttons until it is answered, then who answered it."""
    siblings = list(ctx.siblings)
    title = f"{ctx.workflow_name} › {len(siblings)} steps waiting"
    blocks: list[Block] = [HeaderBlock(text=_plain(title, HEADER_TEXT_MAX))]
    blocks.append(_context_line(ctx))
    per = max(1, (MESSAGE_MAX_BLOCKS - 4) // max(len(siblings), 1))
    for index, req in enumerate(siblings):
        blocks.append(DividerBlock())
        part = _sibling_ctx(ctx, req)
        body = [b for b in _pause_body(part) if not isinstance(b, (HeaderBlock, ContextBlock))]
        heading = f"*{escape(req.step_name)}*"
        if body and isinstance(body[0], SectionBlock) and body[0].text is not None:
            first = body[0].text.text
            body[0] = _section(f"{heading}\n{first}")
        else:
            body.insert(0, _section(heading))
        if resolved or not req.unresolved_reasons():
            body.append(_section(_answered_line(req)))
        else:
            body.extend(approval_progress_blocks(part))
            for action in _decision_buttons(part):
                if isinstance(action, ActionsBlock):
                    action.block_id = f"{action.block_id}:{index}"
                body.append(action)
        blocks.extend(body[:per])
    return blocks


def pause_message(ctx: PauseContext) -> tuple[str, list[dict[str, Any]]]:
    """The interactive message of a paused step, its form chosen by the kind of pause."""
    req = ctx.requirement
    if len(ctx.siblings) > 1:
        names = ", ".join(escape(r.step_name) for r in ctx.siblings)
        text = f"Needs decisions: {escape(ctx.workflow_name)} › {names}"
        return _fallback(text), _finish(_several(ctx, resolved=False))
    needs = "input" if req.requires_user_input else _NEEDS[req.kind]
    blocks = _pause_body(ctx)
    blocks.extend(approval_progress_blocks(ctx))
    blocks.extend(with_delegate_menu(_decision_buttons(ctx), ctx))
    text = f"Needs {needs}: {escape(ctx.workflow_name)} › {escape(req.step_name)}"
    return _fallback(text), _finish(blocks)


# One return per outcome kind reads as the table it is.
def _outcome_line(req: StepRequirement, decision: Decision) -> str:  # noqa: PLR0911
    outcome = decision.outcome
    when = slack_date(decision.decided_at)
    who = mention(decision.decided_by)
    values = decision.values or {}
    if outcome is Outcome.timed_out:
        then = "cancelled" if req.on_reject is OnReject.cancel else "skipped"
        return f":hourglass_flowing_sand: *Timed out — {then}* at {when}"
    if req.kind is RequirementKind.error:
        if outcome is Outcome.rejected:
            return f":fast_forward: *Skipped* by {who} at {when}"
        return f":repeat: *Retry* requested by {who} at {when}"
    if outcome is Outcome.rejected:
        return f":no_entry: *Rejected* by {who} at {when} ({_rejected_then(req)})"
    if "selected_choices" in values:
        chosen = ", ".join(f"*{escape(c)}*" for c in values["selected_choices"] or ())
        return f":twisted_rightwards_arrows: *Route chosen:* {chosen} by {who} at {when}"
    if "edited_output" in values:
        return f":pencil2: *Edited and approved* by {who} at {when}"
    if req.kind is RequirementKind.executor:
        tools = values.get("executor_requirements") or []
        if tools and not all(t.get("confirmed") for t in tools if isinstance(t, dict)):
            return f":no_entry: *Rejected* by {who} at {when} (the agent is told)"
        return f":white_check_mark: *Approved* by {who} at {when}"
    label = "Approved" if outcome is Outcome.confirmed else "Input given"
    return f":white_check_mark: *{label}* by {who} at {when}"


def _rejected_then(req: StepRequirement) -> str:
    if req.on_reject is OnReject.cancel:
        return "run cancelled"
    if req.on_reject is OnReject.retry and req.max_retries is not None:
        if req.retry_count < req.max_retries:
            return f"re-running, attempt {req.retry_count + 2} of {req.max_retries + 1}"
        return "no attempts left, step skipped"
    if req.on_reject is OnReject.else_branch:
        return "else branch runs"
    if req.kind is RequirementKind.iteration_review:
        return "loop stopped"
    return "step skipped"


def _decision_details(decision: Decision) -> list[Block]:
    """The values a decision carried, as people read them."""
    out: list[Block] = []
    values = dict(decision.values or {})
    values.pop("selected_choices", None)
    values.pop("executor_requirements", None)
    if "edited_output" in values:
        edited = values.pop("edited_output")
        out.append(_section("*Edited output*\n" + code_block(edited, OUTPUT_PREVIEW_MAX)))
    if values:
        given = "\n".join(f"• *{escape(k)}*: {escape_clipped(v, 500)}" for k, v in values.items())
        out.append(_section(f"*Values*\n{given}"))
    if decision.comment:
        label = "Reason" if decision.outcome in (Outcome.rejected, Outcome.timed_out) else "Comment"
        out.append(_section(f"*{label}:* {escape_clipped(decision.comment, 2000)}"))
    return out


def resolved_message(ctx: PauseContext, decision: Decision) -> tuple[str, list[dict[str, Any]]]:
    """The same message after its decision: buttons gone, the outcome in their place."""
    req = ctx.requirement
    outcome = decision.outcome
    if len(ctx.siblings) > 1:
        names = ", ".join(escape(r.step_name) for r in ctx.siblings)
        text = f"{escape(ctx.workflow_name)} › {names}: decided"
        return _fallback(text), _finish(_several(ctx, resolved=True))
    blocks = _pause_body(ctx)
    blocks.append(DividerBlock())
    blocks.append(_section(_outcome_line(req, decision)))
    blocks.extend(_decision_details(decision))
    text = (
        f"{escape(ctx.workflow_name)} › {escape(req.step_name)}: {outcome.value.replace('_', ' ')}"
    )
    return _fallback(text), _finish(blocks)


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
        marks.append(f"{mark} {escape(name)}")
    return "  ".join(marks)


def run_root_message(card: RunCard) -> tuple[str, list[dict[str, Any]]]:
    """The run's root message in its channel: status, who started it and when, and the input."""
    label = _STATUS_LABEL[card.status]
    run = card.run
    status_line = f"*{label}*"
    if run is not None and run.is_paused and run.paused_step_name:
        status_line += f" at *{escape(run.paused_step_name)}* (see thread)"
    if run is not None and card.status in (RunStatus.cancelled, RunStatus.error) and run.content:
        status_line += f"\n{escape_clipped(run.content, 1500)}"
    started = [
        f"Started by {mention(card.user_id) if card.user_id else 'a script'} "
        f"{slack_date(card.created_at)}"
    ]
    if run is not None and run.input not in (None, ""):
        started.append(f"input {code(one_line(as_text(run.input)), INPUT_PREVIEW_MAX)}")
    started.append(f"run `{card.run_id}`")
    blocks: list[Block] = [
        HeaderBlock(text=_plain(card.workflow_name, HEADER_TEXT_MAX)),
        _section(status_line),
        _context(started),
        ContextBlock(elements=[_md(_progress(card), 2000)]),
    ]
    text = f"{escape(card.workflow_name)}: {label.split(' ', 1)[1]}"
    return _fallback(text), _finish(blocks)


# -- notes in a run's thread (one per event) -----------------------------------------------
def completion_note(run: WorkflowRunOutput) -> str:
    """The thread note of a completed run: how many steps ran or were skipped, and its output."""
    summary = code_block(run.content, NOTE_CONTENT_MAX) if run.content is not None else ""
    done = sum(1 for s in run.step_results if not s.skipped)
    skipped = sum(1 for s in run.step_results if s.skipped)
    counts = f"{done} step{'s' if done != 1 else ''} run" + (
        f", {skipped} skipped" if skipped else ""
    )
    if not summary:
        return f":white_check_mark: Completed ({counts}), no output."
    return f":white_check_mark: Completed ({counts}). Result:\n{summary}"


def timeout_note(req: StepRequirement) -> str:
    """The one notice of a deadline passing (when it cancels the run, no second note follows)."""
    when = slack_date(req.decided_at or req.expires_at)
    if req.on_reject is OnReject.cancel:
        return f":no_entry_sign: *{escape(req.step_name)}* timed out at {when} — run cancelled."
    return f":hourglass_flowing_sand: *{escape(req.step_name)}* timed out at {when} — step skipped."


def cancelled_note(*, step_name: str | None, cancelled_by: str | None, reason: str | None) -> str:
    """The thread note of a cancelled run: who rejected which step, or the reason."""
    if cancelled_by and step_name:
        return (
            f":no_entry_sign: Cancelled: *{escape(step_name)}* was rejected by "
            f"{mention(cancelled_by)}."
        )
    return f":no_entry_sign: {escape_clipped(reason, NOTE_CONTENT_MAX) if reason else 'Cancelled.'}"


def failed_note(error: str) -> str:
    """The thread note of a run that failed, with its error."""
    return f":x: Failed: {escape_clipped(error, NOTE_CONTENT_MAX)}"


def reminder_note(req: StepRequirement, approvers: Sequence[str]) -> str:
    """The reminder in a pause's thread: its approvers, its deadline and what happens then."""
    who = " ".join(mention(a) for a in approvers) or "Reminder"
    then = deadline_then(req)
    return (
        f"{who}: *{escape(req.step_name)}* still waits for a decision; due "
        f"{slack_date(req.expires_at)} (then {then})."
    )


# -- modals ------------------------------------------------------------------------------------
def field_block_id(name: str) -> str:
    """The block id of one user input field in the input modal."""
    return f"field:{name}"


def field_label(spec: UserInputField) -> str:
    """A person's label for a field: its name in words, no Python type names."""
    words = spec.name.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


_PLACEHOLDER = {"int": "A whole number", "float": "A number", "str": "Text"}


def _input_element(spec: UserInputField) -> Any:
    initial = spec.value
    if spec.allowed_values:
        options = [
            Option(
                text=_plain(as_text(v), OPTION_TEXT_MAX),
                value=clip(as_text(v), OPTION_VALUE_MAX),
            )
            for v in spec.allowed_values[:SELECT_OPTIONS_MAX]
        ]
        return StaticSelectElement(
            action_id=VALUE_ACTION, options=options, placeholder=_plain("Choose…", PLACEHOLDER_MAX)
        )
    if spec.field_type == "bool":
        option = Option(text=_plain("Yes", OPTION_TEXT_MAX), value="true")
        return CheckboxesElement(
            action_id=VALUE_ACTION,
            options=[option],
            initial_options=[option] if initial is True else None,
        )
    placeholder = _plain(_PLACEHOLDER.get(spec.field_type, "Text"), PLACEHOLDER_MAX)
    if spec.field_type in ("int", "float"):
        return NumberInputElement(
            action_id=VALUE_ACTION,
            is_decimal_allowed=spec.field_type == "float",
            initial_value=None if initial is None else str(initial),
            placeholder=placeholder,
        )
    return PlainTextInputElement(
        action_id=VALUE_ACTION,
        initial_value=None if initial is None else str(initial),
        placeholder=placeholder,
    )


def input_modal(ctx: PauseContext) -> View:
    """A modal built from the step's ``user_input_schema``; with confirmation, one modal."""
    req = ctx.requirement
    blocks: list[Block] = []
    messages = [m for m in (req.confirmation_message, req.user_input_message) if m]
    intro = "\n".join(escape(m) for m in messages) or "Provide the values below."
    blocks.append(_section(intro))
    blocks.append(_context([f"{escape(ctx.workflow_name)} › *{escape(req.step_name)}*"]))
    for spec in req.user_input_schema:
        blocks.append(
            InputBlock(
                block_id=field_block_id(spec.name),
                label=_plain(field_label(spec), LABEL_MAX),
                element=_input_element(spec),
                hint=_plain(spec.description, HINT_MAX) if spec.description else None,
                # A checkbox left empty means false, so a bool never blocks submission.
                optional=(not spec.required) or spec.field_type == "bool",
            )
        )
    if not req.user_input_schema:
        blocks.append(
            InputBlock(
                block_id=field_block_id("input"),
                label=_plain("Input", LABEL_MAX),
                element=PlainTextInputElement(action_id=VALUE_ACTION, multiline=True),
            )
        )
    submit = "Approve" if req.requires_confirmation else "Submit"
    return _modal(
        VIEW_INPUT, req.step_name.replace("_", " "), blocks, token=ctx.token, submit=submit
    )


def reject_modal(ctx: PauseContext) -> View:
    """Reject with a reason; for an output review the reason is feedback for the step."""
    req = ctx.requirement
    review = req.kind in _REVIEW_KINDS
    return _modal(
        VIEW_REJECT,
        f"Reject {req.step_name.replace('_', ' ')}",
        [
            _section(
                f"Reject *{escape(req.step_name)}* of *{escape(ctx.workflow_name)}*? "
                f"{_then(req)[:1].upper()}{_then(req)[1:]}."
            ),
            InputBlock(
                block_id=REASON_BLOCK,
                label=_plain("Feedback" if review else "Reason", LABEL_MAX),
                hint=(
                    _plain("What should change? The next attempt gets this.", HINT_MAX)
                    if review and req.on_reject is OnReject.retry
                    else None
                ),
                optional=True,
                element=PlainTextInputElement(
                    action_id=VALUE_ACTION, multiline=True, max_length=2000
                ),
            ),
        ],
        token=ctx.token,
        submit="Reject",
        close="Back",
    )


def _chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _shown_output(ctx: PauseContext) -> Any:
    req = ctx.requirement
    if req.kind in _REVIEW_KINDS:
        return _reviewed_output(req)
    return _previous_output(ctx.run, req)


def output_modal(ctx: PauseContext) -> View:
    """The whole output (as much as a modal holds), in code blocks."""
    req = ctx.requirement
    text = as_text(_shown_output(ctx))
    # Escaping can lengthen a chunk: leave room for entities and the fences.
    pieces = _chunks(text, (SECTION_TEXT_MAX - 6) // 2)
    room = MODAL_MAX_BLOCKS - 1
    body: list[Block] = [_section(code_block(p, SECTION_TEXT_MAX)) for p in pieces[:room]]
    if len(pieces) > room:
        body.append(_context(["_The rest of the output does not fit in a modal._"]))
    return _modal(VIEW_OUTPUT, f"Output of {req.step_name.replace('_', ' ')}", body, close="Close")


def edit_output_modal(ctx: PauseContext) -> View:
    """The reviewed output, editable; what is submitted is what the next step gets."""
    req = ctx.requirement
    current = as_text(_reviewed_output(req) if _reviewed_output(req) is not None else "")
    intro = f"Edit the output of *{escape(req.step_name)}*; the next step gets your text."
    if len(current) > TEXT_INPUT_MAX:
        intro += (
            f"\n:warning: The output is longer than {TEXT_INPUT_MAX} characters: only its "
            "beginning is shown, and what you submit replaces all of it."
        )
    return _modal(
        VIEW_EDIT_OUTPUT,
        f"Edit {req.step_name.replace('_', ' ')}",
        [
            _section(intro),
            InputBlock(
                block_id=OUTPUT_BLOCK,
                label=_plain("Output", LABEL_MAX),
                element=PlainTextInputElement(
                    action_id=VALUE_ACTION,
                    multiline=True,
                    initial_value=current[:TEXT_INPUT_MAX],
                    max_length=TEXT_INPUT_MAX,
                ),
            ),
        ],
        token=ctx.token,
        submit="Approve edited",
    )


def closed_modal(title: str, message: str) -> View:
    """What an open form becomes when its pause was decided elsewhere or timed out."""
    return _modal(VIEW_CLOSED, title, [_section(message)], close="Close")


def _modal(
    callback_id: str,
    title: str,
    body: Sequence[Block],
    *,
    token: str | None = None,
    submit: str | None = None,
    close: str = "Cancel",
) -> View:
    """A modal, validated. With ``token`` (the pause it answers) Slack tells us when it is
    closed; with ``submit`` it can be submitted."""
    view = View(
        type="modal",
        callback_id=callback_id,
        private_metadata=token,
        notify_on_close=True if token is not None else None,
        title=_plain(title, MODAL_TITLE_MAX),
        submit=_plain(submit, MODAL_BUTTON_MAX) if submit is not None else None,
        close=_plain(close, MODAL_BUTTON_MAX),
        blocks=list(body[:MODAL_MAX_BLOCKS]),
    )
    view.validate_json()
    return view


def edited_output(state_values: Mapping[str, Any]) -> str | None:
    """The text submitted in the edit-output modal, or None if the field is missing."""
    block = state_values.get(OUTPUT_BLOCK) if isinstance(state_values, Mapping) else None
    element = block.get(VALUE_ACTION) if isinstance(block, Mapping) else None
    value = element.get("value") if isinstance(element, Mapping) else None
    return value if isinstance(value, str) else None


def route_block_for(clicked_block_id: Any) -> str:
    """The choice block next to the Approve clicked (``decision:2`` → ``route:2`` in a
    message with several requirements)."""
    if isinstance(clicked_block_id, str) and clicked_block_id.startswith("decision:"):
        return f"{ROUTE_BLOCK}:{clicked_block_id.removeprefix('decision:')}"
    return ROUTE_BLOCK


def route_selection(state_values: Any, block_id: str = ROUTE_BLOCK) -> list[str] | None:
    """The route(s) picked in a Router's message (its ``state.values``), or None."""
    block = state_values.get(block_id) if isinstance(state_values, Mapping) else None
    element = block.get(ACTION_ROUTE_CHOICE) if isinstance(block, Mapping) else None
    if not isinstance(element, Mapping):
        return None
    picked = element.get("selected_options")
    if picked is None:
        one = element.get("selected_option")
        picked = [one] if one is not None else []
    if not isinstance(picked, list):
        return None
    names = [o.get("value") for o in picked if isinstance(o, Mapping)]
    return [n for n in names if isinstance(n, str)]


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
    """The reason typed into the reject modal, or None if left empty."""
    block = state_values.get(REASON_BLOCK) if isinstance(state_values, Mapping) else None
    element = block.get(VALUE_ACTION) if isinstance(block, Mapping) else None
    value = element.get("value") if isinstance(element, Mapping) else None
    return value.strip() if isinstance(value, str) and value.strip() else None


def errors_for_modal(errors: Mapping[str, str], schema: Sequence[UserInputField]) -> dict[str, str]:
    """Engine validation errors keyed by the modal's input blocks: every field's error at
    once, as plain text (a modal error renders no markup)."""
    known = {f.name for f in schema} or {"input"}
    out: dict[str, str] = {}
    for name, why in errors.items():
        target = field_block_id(name if name in known else next(iter(known)))
        message = clip(mrkdwn_to_plain(why), HINT_MAX)
        out[target] = f"{out[target]}; {message}" if target in out else message
    return out


def modal_error(message: str) -> str:
    """A bot reply shown as a modal field error: plain text, dates formatted."""
    return clip(mrkdwn_to_plain(message), HINT_MAX)


# -- slash command replies ------------------------------------------------------------
HELP_TEXT = (
    "*Signoff* — human sign-off for workflow steps.\n"
    "• `/signoff run &lt;workflow&gt; [input]` — start a run\n"
    "• `/signoff list` — workflows you can run\n"
    "• `/signoff status &lt;run_id&gt;` — where a run is\n"
    "• `/signoff pending` — what waits for your decision\n"
    "• `/signoff audit &lt;run_id&gt;` — every approval, rejection, escalation and delegation\n"
    "• `/signoff help` — this text"
)


def help_blocks(problem: str | None = None) -> tuple[str, list[dict[str, Any]]]:
    """Help, after ``problem`` if there is one (mrkdwn written by the bot: content in it
    was escaped where it was put in)."""
    blocks: list[Block] = []
    if problem:
        blocks.append(_section(f":warning: {problem}"))
    blocks.append(_section(HELP_TEXT))
    return _fallback((problem + "\n" if problem else "") + HELP_TEXT), _finish(blocks)


def problem_blocks(problem: str) -> tuple[str, list[dict[str, Any]]]:
    """A short answer to a command that could not be done, without the whole help."""
    return _fallback(problem), _finish([_section(f":warning: {problem}")])


def started_text(workflow_name: str, run_id: str, *, channel: str, link: str | None) -> str:
    """The reply to ``/signoff run``: where to follow the run (its root message once posted)."""
    where = f"<{link}|follow it here>" if link else f"follow it in {channel_mention(channel)}"
    return f"Started *{escape(workflow_name)}* (run `{run_id}`); {where}."


def list_blocks(
    workflows: Sequence[tuple[str, str | None, Sequence[str]]],
) -> tuple[str, list[dict[str, Any]]]:
    """``/signoff list``: each workflow the person may start, with its description and steps."""
    if not workflows:
        return "No workflows are configured.", _finish([_section("No workflows are configured.")])
    blocks: list[Block] = [HeaderBlock(text=_plain("Workflows", HEADER_TEXT_MAX))]
    for name, description, steps in workflows:
        line = f"*{escape(name)}*"
        if description:
            line += f" — {escape(description)}"
        line += "\n" + " → ".join(escape(s) for s in steps)
        blocks.append(_section(line))
    return f"{len(workflows)} workflows", _finish(blocks)


def status_blocks(
    run: WorkflowRunOutput, decisions: Sequence[Decision]
) -> tuple[str, list[dict[str, Any]]]:
    """``/signoff status``: the run's status, each step's result and the decisions taken."""
    label = _STATUS_LABEL[run.status]
    blocks: list[Block] = [
        HeaderBlock(text=_plain(f"{run.workflow_name or '?'} · run {run.run_id}", HEADER_TEXT_MAX)),
        _section(
            f"*{escape(run.workflow_name or '?')}*: {label}"
            + (f" at *{escape(run.paused_step_name or '')}*" if run.is_paused else "")
        ),
    ]
    for result in run.step_results:
        mark = "skipped" if result.skipped else ("done" if result.success else "failed")
        blocks.append(ContextBlock(elements=[_md(f"{escape(result.step_name or '?')}: {mark}")]))
    for decision in decisions:
        blocks.append(
            ContextBlock(
                elements=[_md(f"*{escape(decision.step_name)}* {describe_decision(decision)}")]
            )
        )
    if run.content is not None and run.status.is_final:
        blocks.append(_section(code_block(run.content, NOTE_CONTENT_MAX)))
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
        blocks.append(_section(f"*{escape(workflow)} › {escape(step)}* (`{run_id}`{due}){where}"))
    return f"{len(items)} waiting for you", _finish(blocks)


# -- direct messages and the App Home (bot/notify.py) -------------------------------------------
HOME_MAX_BLOCKS = View.blocks_max_length  # a Home tab holds as many blocks as a modal
HOME_PENDING_MAX = 20  # each pending item takes 3 blocks; the rest of the tab fits beside
HOME_LIST_MAX = 10


def dm_pause_message(ctx: PauseContext, *, channel: str | None) -> tuple[str, list[dict[str, Any]]]:
    """The direct-message copy of a pause message: the same message and buttons (the same
    action ids and token, so a click in any copy takes the same decide path), saying where
    the run is followed when it is posted in a channel too."""
    text, message_blocks = pause_message(ctx)
    if channel and len(message_blocks) < MESSAGE_MAX_BLOCKS:  # the buttons stay last
        note = _context(
            [f"Sent to you directly; the run is followed in {channel_mention(channel)}"]
        )
        message_blocks = [*message_blocks[:-1], note.to_dict(), message_blocks[-1]]
    return text, message_blocks


def dm_reminder_text(req: StepRequirement, workflow_name: str) -> str:
    """A reminder in a direct message, to the person it is sent to."""
    then = "cancel" if req.on_reject is OnReject.cancel else "skip"
    return clip(
        f":alarm_clock: *{escape(workflow_name)} › {escape(req.step_name)}* still waits for "
        f"your decision; due {slack_date(req.expires_at)} (then {then}).",
        MESSAGE_TEXT_MAX,
    )


def _home_decision_blocks(ctx: PauseContext) -> list[Block]:
    """The pause message's own decision blocks, for one entry of an App Home view: block ids
    made unique per pause (a view may list several). A route is chosen in its message (the
    choice is read from the message's state, which a Home view does not carry)."""
    if ctx.requirement.kind is RequirementKind.route_selection:
        return [_context(["Choose the route in its message (`/signoff pending` links it)."])]
    found = _decision_buttons(ctx)
    for block in found:
        block.block_id = f"{block.block_id or 'decision'}:{ctx.token}"
    return found


@dataclass(frozen=True)
class HomeDecision:
    """One decision someone made, for their Home tab."""

    workflow_name: str
    decision: Decision
    root_link: str | None = None


def home_view(
    *,
    pending: Sequence[PauseContext],
    started: Sequence[RunCard],
    decided: Sequence[HomeDecision],
    notice: str | None = None,
    pending_total: int | None = None,
) -> View:
    """A person's App Home: what waits for their decision (soonest deadline first, with the
    buttons of the pause message: they act in place), the runs they started, and their recent
    decisions. ``notice``: our own mrkdwn shown on top (the answer to a click here).
    ``pending_total``: how many wait in all, when ``pending`` holds only the first ones."""
    total = len(pending) if pending_total is None else max(pending_total, len(pending))
    view_blocks: list[Block] = []
    if notice:
        view_blocks.append(_context([notice]))
    view_blocks.append(
        HeaderBlock(text=_plain(f"Waiting for you ({total})", HEADER_TEXT_MAX))
    )
    if not pending:
        view_blocks.append(_section("Nothing waits for your decision."))
    for ctx in pending[:HOME_PENDING_MAX]:
        req = ctx.requirement
        line = f"*{escape(ctx.workflow_name)} › {escape(req.step_name)}*"
        messages = [m for m in (req.confirmation_message, req.user_input_message) if m]
        if messages:
            line += "\n" + " ".join(escape(one_line(m)) for m in messages)
        view_blocks.append(_section(line))
        view_blocks.append(_context_line(ctx))
        view_blocks.extend(_home_decision_blocks(ctx))
    if total > HOME_PENDING_MAX:
        more = total - HOME_PENDING_MAX
        view_blocks.append(_context([f"and {more} more: `/signoff pending` lists them all"]))
    view_blocks.append(DividerBlock())
    view_blocks.append(HeaderBlock(text=_plain("Runs you started", HEADER_TEXT_MAX)))
    if not started:
        view_blocks.append(_context(["None yet: `/signoff run &lt;workflow&gt;` starts one."]))
    for card in started[:HOME_LIST_MAX]:
        status = _STATUS_LABEL[card.status]
        where = ""
        if card.run is not None and card.run.is_paused and card.run.paused_step_name:
            where = f" at *{escape(card.run.paused_step_name)}*"
        view_blocks.append(
            _context(
                [
                    f"*{escape(card.workflow_name)}* {status}{where}",
                    f"started {slack_date(card.created_at)}",
                    f"run `{short_run_id(card.run_id)}`",
                ]
            )
        )
    view_blocks.append(DividerBlock())
    view_blocks.append(HeaderBlock(text=_plain("Your recent decisions", HEADER_TEXT_MAX)))
    if not decided:
        view_blocks.append(_context(["None yet."]))
    for item in decided[:HOME_LIST_MAX]:
        decision = item.decision
        view_blocks.append(
            _context(
                [
                    f"*{escape(item.workflow_name)} › {escape(decision.step_name)}* "
                    f"{_VERB[decision.outcome]} {slack_date(decision.decided_at)}",
                    _run_link(decision.run_id, item.root_link),
                ]
            )
        )
    return View(
        type="home", callback_id="signoff_home", blocks=_finish(view_blocks, HOME_MAX_BLOCKS)
    )


# -- approval policies (bot/policies.py) -----------------------------------------------------
def approval_progress(ctx: PauseContext) -> str | None:
    """The progress of a pause that needs several people, one mrkdwn line: "1 of 2
    approvals — @alice", each group's count when the route has groups, and rejections
    when it takes more than one; None before the first vote (or for a single decider)."""
    req = ctx.requirement
    if req.approvals_required <= 1 and req.reject_quorum <= 1:
        return None
    if not req.approved_by and not req.rejected_by:
        return None
    parts: list[str] = []
    if req.approvals_required > 1:
        who = ", ".join(mention(u) for u in req.approved_by)
        line = f"{len(req.approved_by)} of {req.approvals_required} approvals"
        parts.append(f":ballot_box_with_check: {line}" + (f" — {who}" if who else ""))
    for group, count, members in ctx.groups:
        names = ", ".join(mention(u) for u in members)
        line = f"{mention(group)}: {len(members)} of {count}"
        parts.append(line + (f" — {names}" if names else ""))
    if req.rejected_by:
        who = ", ".join(mention(u) for u in req.rejected_by)
        parts.append(f":no_entry: {len(req.rejected_by)} of {req.reject_quorum} rejections — {who}")
    return "\n".join(parts)


def approval_progress_blocks(ctx: PauseContext) -> list[Block]:
    """The progress line and the policy notes (escalated, delegated) as one context block;
    none before the first vote when there is nothing to note."""
    line = approval_progress(ctx)
    parts = ([line] if line else []) + list(ctx.notes)
    return [_context(["\n".join(parts)])] if parts else []


def vote_note(step_name: str, user_id: str, *, approved: bool, needed: int) -> str:
    """The thread note of one vote on a pause that stays open (``needed``: how many more
    approvals, or rejections, it takes)."""
    verb = "approved" if approved else "rejected"
    what = "approval" if approved else "rejection"
    more = f"{needed} more {what}{'s' if needed != 1 else ''} needed"
    return clip(
        f":ballot_box_with_check: {mention(user_id)} {verb} *{escape(step_name)}* ({more})",
        MESSAGE_TEXT_MAX,
    )


_UNITS = (("day", 24 * 60), ("hour", 60), ("minute", 1))


def _duration(after: timedelta) -> str:
    """A whole number of days, hours or minutes (the largest unit that divides it)."""
    minutes = max(1, int(after.total_seconds() // 60))
    for unit, size in _UNITS:
        if minutes % size == 0:
            count = minutes // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{minutes} minutes"


def escalation_note(step_name: str, to: Sequence[str], after: timedelta) -> str:
    """The thread note of an escalation: who is asked now, and that they may decide."""
    who = ", ".join(mention(w) for w in to)
    return clip(
        f":arrow_double_up: *{escape(step_name)}* still waits after {_duration(after)}: "
        f"escalated to {who}, who may decide it too.",
        MESSAGE_TEXT_MAX,
    )


_AUDIT_MARK = {
    "approved": ":white_check_mark:",
    "rejected": ":no_entry:",
    "answered": ":memo:",
    "timed out": ":hourglass_flowing_sand:",
    "escalated": ":arrow_double_up:",
    "delegated": ":handshake:",
}


def audit_line(entry: AuditEntry) -> str:
    """One audit entry in mrkdwn: when, step, what, who (content escaped)."""
    what = entry.kind + (" (one vote)" if entry.vote else "")
    mark = _AUDIT_MARK.get(entry.kind, "•")
    line = f"{mark} {slack_date(entry.at)} *{escape(entry.step_name)}* "
    to = ", ".join(mention(w) for w in entry.to)
    if entry.kind == "escalated":
        line += f"escalated to {to}"
    elif entry.kind == "delegated":
        line += f"delegated by {mention(entry.who)} to {to}"
    else:
        line += f"{what} by {mention(entry.who)}"
    if entry.detail:
        line += f" — {escape(one_line(entry.detail))}"
    return line


def audit_text(entries: Sequence[AuditEntry]) -> str:
    """The audit as one ephemeral text (the overflow menu's "Audit trail")."""
    lines = [audit_line(e) for e in entries] or ["Nothing decided yet."]
    return clip("*Audit trail*\n" + "\n".join(lines), MESSAGE_TEXT_MAX)


def audit_blocks(
    run: WorkflowRunOutput, entries: Sequence[AuditEntry]
) -> tuple[str, list[dict[str, Any]]]:
    """``/signoff audit``: one line per approval, rejection, escalation and delegation of
    the run, oldest first, with who and when (content escaped)."""
    title = f"Audit · {run.workflow_name or '?'} · run {short_run_id(run.run_id)}"
    view: list[Block] = [HeaderBlock(text=_plain(title, HEADER_TEXT_MAX))]
    if not entries:
        view.append(_section("Nothing decided yet."))
    shown = list(entries)[: MESSAGE_MAX_BLOCKS - 3]
    view.extend(_context([audit_line(entry)]) for entry in shown)
    if len(entries) > len(shown):
        more = len(entries) - len(shown)
        view.append(_context([f"and {more} more: `signoff runs {run.run_id}` shows them all"]))
    return _fallback(f"Audit of run {run.run_id}"), _finish(view)


def voted_copy_blocks(
    message_blocks: Sequence[dict[str, Any]], req: StepRequirement, user_id: str
) -> list[dict[str, Any]]:
    """A person's own DM copy after their vote on a pause still open: the buttons replaced
    by what they gave ("You approved; 1 more needed")."""
    approved = user_id in req.approved_by
    needed = req.approvals_needed if approved else req.rejections_needed
    what = "approval" if approved else "rejection"
    mark, verb = (":white_check_mark:", "approved") if approved else (":no_entry:", "rejected")
    line = f"{mark} *You {verb}* — {needed} more {what}{'s' if needed != 1 else ''} needed"
    kept = [b for b in message_blocks if b.get("type") != "actions"]
    return [*kept, _context([line]).to_dict()]


# -- delegation (bot/delegation.py) ---------------------------------------------------------
OVERFLOW_MAX_IN_ACTIONS = 25  # elements in one actions block (Slack's limit)
DELEGATE, AUDIT = "delegate", "audit"  # the overflow menu's options: "<what>:<token>"


def overflow_choice(value: Any) -> tuple[str, str] | None:
    """(what, token) of a picked overflow option; None for anything we did not write."""
    if not isinstance(value, str):
        return None
    what, _, token = value.partition(":")
    return (what, token) if what in (DELEGATE, AUDIT) and token else None


def with_delegate_menu(found: list[Block], ctx: PauseContext) -> list[Block]:
    """The decision blocks with an overflow menu "Delegate…" after the buttons, when the
    route allows delegation (the last actions block; unchanged otherwise)."""
    if not ctx.delegation or ctx.requirement.kind is RequirementKind.route_selection:
        return found
    actions = [b for b in found if isinstance(b, ActionsBlock)]
    if not actions or len(actions[-1].elements) >= OVERFLOW_MAX_IN_ACTIONS:
        return found
    menu = OverflowMenuElement(
        action_id=ACTION_DELEGATE,
        options=[  # Slack wants two options at least
            Option(text=_plain("Delegate…", OPTION_TEXT_MAX), value=f"{DELEGATE}:{ctx.token}"),
            Option(text=_plain("Audit trail", OPTION_TEXT_MAX), value=f"{AUDIT}:{ctx.token}"),
        ],
    )
    actions[-1].elements = [*actions[-1].elements, menu]
    return found


def delegate_modal(ctx: PauseContext) -> View:
    """Hand a pending decision to someone else: a user picker and an optional reason."""
    req = ctx.requirement
    view = View(
        type="modal",
        callback_id=VIEW_DELEGATE,
        private_metadata=ctx.token,
        title=_plain("Delegate", MODAL_TITLE_MAX),
        submit=_plain("Delegate", MODAL_BUTTON_MAX),
        close=_plain("Back", MODAL_BUTTON_MAX),
        blocks=[
            _section(
                f"Hand your decision on *{escape(req.step_name)}* of "
                f"*{escape(ctx.workflow_name)}* to someone else: they decide in your place."
            ),
            InputBlock(
                block_id=DELEGATE_BLOCK,
                label=_plain("Delegate to", LABEL_MAX),
                element=UserSelectElement(action_id=VALUE_ACTION),
            ),
            InputBlock(
                block_id=REASON_BLOCK,
                label=_plain("Reason", LABEL_MAX),
                optional=True,
                element=PlainTextInputElement(
                    action_id=VALUE_ACTION, multiline=True, max_length=2000
                ),
            ),
        ],
    )
    view.validate_json()
    return view


def delegate_choice(state_values: Mapping[str, Any]) -> str | None:
    """The user picked in the delegate modal, or None."""
    block = state_values.get(DELEGATE_BLOCK) if isinstance(state_values, Mapping) else None
    element = block.get(VALUE_ACTION) if isinstance(block, Mapping) else None
    user = element.get("selected_user") if isinstance(element, Mapping) else None
    return user if isinstance(user, str) and re.fullmatch(r"[UW][A-Z0-9]+", user) else None


def delegation_note(step_name: str, delegator: str, delegate: str, reason: str | None) -> str:
    """The thread note of a delegation."""
    text = (
        f":handshake: {mention(delegator)} delegated *{escape(step_name)}* to {mention(delegate)}"
    )
    if reason:
        text += f": {escape(one_line(reason))}"
    return clip(text, MESSAGE_TEXT_MAX)
