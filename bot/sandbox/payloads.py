"""The other direction: real, signed requests from "Slack" to the bot under test.

Payloads are built from the fake's stored state (the real message with its blocks, the real open
view), so a bot is exercised with what Slack would actually send it, including the trigger_id
and response_url the fake will later accept.  Signing follows Slack's v0 scheme exactly.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

import httpx

from .blockkit_limits import validate_view
from .server import SlackFakeServer
from .state import VERIFICATION_TOKEN, Message, View, WorkspaceState

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"

_MISSING = object()


# ------------------------------------------------------------------------------- signing ----


def compute_signature(signing_secret: str, timestamp: int | str, body: str | bytes) -> str:
    """``v0=`` + hex HMAC-SHA256 of ``v0:{timestamp}:{body}`` (Slack's request signing)."""
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    base = f"v0:{timestamp}:{text}".encode()
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(
    body: str | bytes,
    signing_secret: str,
    *,
    timestamp: int | None = None,
    signature: str | None = None,
    retry_num: int | None = None,
    retry_reason: str | None = None,
    content_type: str = FORM_CONTENT_TYPE,
) -> dict[str, str]:
    """Headers Slack sends; override ``timestamp``/``signature`` to test stale or forged ones."""
    ts = int(time.time()) if timestamp is None else timestamp
    headers = {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": signature or compute_signature(signing_secret, ts, body),
        "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
    }
    if retry_num is not None:
        headers["X-Slack-Retry-Num"] = str(retry_num)
        headers["X-Slack-Retry-Reason"] = retry_reason or "http_timeout"
    elif retry_reason is not None:
        headers["X-Slack-Retry-Reason"] = retry_reason
    return headers


def interactive_body(payload: Mapping[str, Any]) -> str:
    """Interactivity requests are form posts with one field, ``payload``, holding JSON."""
    return urlencode({"payload": json.dumps(payload, separators=(",", ":"))})


def send_signed(
    url: str,
    body: str,
    *,
    signing_secret: str,
    content_type: str = FORM_CONTENT_TYPE,
    timestamp: int | None = None,
    signature: str | None = None,
    retry_num: int | None = None,
    retry_reason: str | None = None,
    client: httpx.Client | None = None,
    timeout: float = 10.0,
) -> httpx.Response:
    """POST ``body`` to the bot with Slack's signature headers (or the ``signature``, ``timestamp``
    and retry headers given, to test refusals)."""
    headers = signed_headers(
        body,
        signing_secret,
        timestamp=timestamp,
        signature=signature,
        retry_num=retry_num,
        retry_reason=retry_reason,
        content_type=content_type,
    )
    if client is not None:
        return client.post(url, content=body.encode(), headers=headers, timeout=timeout)
    with httpx.Client() as one_off:
        return one_off.post(url, content=body.encode(), headers=headers, timeout=timeout)


# ------------------------------------------------------------------------------ payloads ----


def _user_json(state: WorkspaceState, user_id: str) -> dict[str, Any]:
    user = state.ensure_user(user_id)
    return {"id": user.id, "username": user.name, "name": user.name, "team_id": state.team_id}


def _team_json(state: WorkspaceState) -> dict[str, Any]:
    return {"id": state.team_id, "domain": state.team_domain}


def slash_command_form(
    state: WorkspaceState, *, command: str, text: str, user_id: str, channel_id: str
) -> dict[str, str]:
    """The form fields of a slash command; issues a fresh trigger_id and response_url."""
    user = state.ensure_user(user_id)
    channel = state.ensure_channel(channel_id)
    trigger = state.issue_trigger(user_id)
    response_url = state.issue_response_url(channel.id, user_id)
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": state.team_id,
        "team_domain": state.team_domain,
        "channel_id": channel.id,
        "channel_name": "directmessage" if channel.is_im else channel.name,
        "user_id": user.id,
        "user_name": user.name,
        "command": command,
        "text": text,
        "api_app_id": state.app_id,
        "is_enterprise_install": "false",
        "response_url": response_url.url,
        "trigger_id": trigger.id,
    }


def find_element(
    blocks: Sequence[Mapping[str, Any]], action_id: str, block_id: str | None = None
) -> tuple[str, dict[str, Any]]:
    """``(block_id, element)`` of the element with ``action_id``; LookupError if absent."""
    seen: list[str] = []
    for block in blocks:
        candidates: list[Any] = []
        if isinstance(block.get("elements"), list):
            candidates.extend(block["elements"])
        for key in ("accessory", "element"):
            if isinstance(block.get(key), dict):
                candidates.append(block[key])
        for element in candidates:
            if not isinstance(element, dict) or "action_id" not in element:
                continue
            seen.append(f"{block.get('block_id')}/{element['action_id']}")
            if element["action_id"] == action_id and block_id in (None, block.get("block_id")):
                return str(block.get("block_id")), element
    raise LookupError(f"no element with action_id={action_id!r} (available: {seen or 'none'})")


def _options(element: Mapping[str, Any]) -> list[dict[str, Any]]:
    options = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        options.extend(group.get("options") or [])
    return options


def _pick_option(element: Mapping[str, Any], value: Any) -> dict[str, Any]:
    for option in _options(element):
        if option.get("value") == value:
            return dict(option)
    available = [o.get("value") for o in _options(element)]
    raise ValueError(f"{element.get('action_id')}: no option with value {value!r} in {available}")


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


# One branch per element type, each in Slack's state shape for that type.
def element_state(element: Mapping[str, Any], provided: Any = _MISSING) -> dict[str, Any]:  # noqa: PLR0912
    """One ``state.values[block_id][action_id]`` entry, in Slack's shape for the element type.

    ``provided`` is what the user entered (option *values* for selects/checkboxes); when it is
    missing the element's initial value is what Slack reports.
    """
    kind = str(element.get("type"))
    given = provided is not _MISSING
    state: dict[str, Any] = {"type": kind}
    if kind in ("plain_text_input", "email_text_input", "url_text_input"):
        state["value"] = provided if given else element.get("initial_value")
    elif kind == "number_input":
        raw = provided if given else element.get("initial_value")
        state["value"] = None if raw is None else str(raw)  # Slack sends numbers as strings
    elif kind in ("static_select", "external_select", "radio_buttons"):
        if given:
            state["selected_option"] = None if provided is None else _pick_option(element, provided)
        else:
            state["selected_option"] = element.get("initial_option")
    elif kind in ("checkboxes", "multi_static_select", "multi_external_select"):
        if given:
            state["selected_options"] = [_pick_option(element, v) for v in _as_list(provided)]
        else:
            state["selected_options"] = list(element.get("initial_options") or [])
    elif kind in ("users_select", "conversations_select", "channels_select"):
        noun = kind.removesuffix("s_select")
        state[f"selected_{noun}"] = provided if given else element.get(f"initial_{noun}")
    elif kind in ("multi_users_select", "multi_conversations_select", "multi_channels_select"):
        noun = kind.removeprefix("multi_").removesuffix("_select")
        state[f"selected_{noun}"] = (
            _as_list(provided) if given else list(element.get(f"initial_{noun}") or [])
        )
    elif kind == "datepicker":
        state["selected_date"] = provided if given else element.get("initial_date")
    elif kind == "timepicker":
        state["selected_time"] = provided if given else element.get("initial_time")
    elif kind == "datetimepicker":
        state["selected_date_time"] = provided if given else element.get("initial_date_time")
    else:
        state["value"] = provided if given else element.get("initial_value")
    return state


def _is_empty(state: Mapping[str, Any]) -> bool:
    return all(v in (None, "", []) for k, v in state.items() if k != "type")


def view_state_values(
    view: View, values: Mapping[str, Any] | None = None, *, enforce_required: bool = False
) -> dict[str, dict[str, dict[str, Any]]]:
    """``view.state.values`` for a submission: every input block, filled from ``values``.

    ``values`` is keyed by block_id (value, or ``{action_id: value}``) or by action_id.  Unknown
    keys raise, so a typo in a test cannot silently submit an empty field.  With
    ``enforce_required`` an empty non-optional input raises, because Slack's client would not
    submit the form at all.
    """
    values = dict(values or {})
    inputs = [
        (str(block.get("block_id")), block)
        for block in view.blocks
        if block.get("type") == "input" and isinstance(block.get("element"), dict)
    ]
    known = {bid for bid, _ in inputs} | {str(b["element"].get("action_id")) for _, b in inputs}
    unknown = set(values) - known
    if unknown:
        raise KeyError(f"no input block or action_id named {sorted(unknown)} in view {view.id}")
    result: dict[str, dict[str, dict[str, Any]]] = {}
    for block_id, block in inputs:
        element = block["element"]
        action_id = str(element.get("action_id"))
        provided: Any = _MISSING
        if block_id in values:
            entry = values[block_id]
            provided = entry.get(action_id, _MISSING) if isinstance(entry, Mapping) else entry
        elif action_id in values:
            provided = values[action_id]
        entry_state = element_state(element, provided)
        if enforce_required and not block.get("optional") and _is_empty(entry_state):
            raise ValueError(
                f"input {block_id}/{action_id} is required; Slack would not submit the view"
            )
        result[block_id] = {action_id: entry_state}
    return result


def _action_entry(
    element: Mapping[str, Any], block_id: str, value: Any, action_ts: str
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "action_id": element.get("action_id"),
        "block_id": block_id,
        "type": element.get("type"),
        "action_ts": action_ts,
    }
    if element.get("type") == "button":
        entry["text"] = element.get("text")
        if "value" in element:  # Slack omits value when the button has none
            entry["value"] = element["value"]
        if "style" in element:
            entry["style"] = element["style"]
    elif element.get("type") == "overflow":
        entry["selected_option"] = _pick_option(element, value)
    else:
        entry.update(element_state(element, value if value is not None else _MISSING))
    return entry


# Elements whose value Slack's client keeps in a message (and sends as ``state.values``).
_STATEFUL = frozenset(
    {
        "static_select",
        "external_select",
        "multi_static_select",
        "multi_external_select",
        "radio_buttons",
        "checkboxes",
        "users_select",
        "conversations_select",
        "channels_select",
        "datepicker",
        "timepicker",
    }
)


def block_actions_payload(
    state: WorkspaceState,
    *,
    user_id: str,
    source: Message | View,
    action_id: str,
    block_id: str | None = None,
    value: Any = None,
    shown_blocks: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A ``block_actions`` payload for an element in a stored message or open view.

    Issues a trigger_id (and, for messages, a response_url bound to that message).
    ``shown_blocks``: the message's blocks as the person's client showed them when they
    clicked, which Slack sends even when the message has changed since (a confirm dialog left
    open while someone else decided); by default, the message as stored now.
    """
    action_ts = f"{time.time():.6f}"
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": _user_json(state, user_id),
        "api_app_id": state.app_id,
        "token": VERIFICATION_TOKEN,
        "team": _team_json(state),
        "enterprise": None,
        "is_enterprise_install": False,
    }
    if isinstance(source, View):
        found_block_id, element = find_element(source.blocks, action_id, block_id)
        trigger = state.issue_trigger(user_id, view_id=source.id)
        view_json = dict(source.payload)
        view_json["state"] = {"values": view_state_values(source)}
        payload.update(
            container={"type": "view", "view_id": source.id},
            trigger_id=trigger.id,
            view=view_json,
            actions=[_action_entry(element, found_block_id, value, action_ts)],
        )
        return payload
    shown = shown_blocks if shown_blocks is not None else source.blocks
    found_block_id, element = find_element(shown, action_id, block_id)
    entry = _action_entry(element, found_block_id, value, action_ts)
    if element.get("type") in _STATEFUL:
        state.remember_message_state(
            source.channel,
            source.ts,
            user_id=user_id,
            block_id=found_block_id,
            action_id=action_id,
            state={
                k: v for k, v in entry.items() if k not in ("action_id", "block_id", "action_ts")
            },
        )
    channel = state.channel(source.channel)
    trigger = state.issue_trigger(user_id)
    response_url = state.issue_response_url(source.channel, user_id, message_ts=source.ts)
    container: dict[str, Any] = {
        "type": "message",
        "message_ts": source.ts,
        "channel_id": source.channel,
        "is_ephemeral": source.is_ephemeral,
    }
    if source.thread_ts:
        container["thread_ts"] = source.thread_ts
    payload.update(
        container=container,
        trigger_id=trigger.id,
        channel={"id": source.channel, "name": channel.name if channel else source.channel},
        state={"values": state.message_state(source.channel, source.ts, user_id)},
        response_url=response_url.url,
        actions=[entry],
    )
    if not source.is_ephemeral:  # Slack sends no message body for ephemeral messages
        payload["message"] = {**state.message_json(source), "blocks": shown}
    return payload


def view_submission_payload(
    state: WorkspaceState,
    *,
    user_id: str,
    view: View,
    values: Mapping[str, Any] | None = None,
    enforce_required: bool = True,
) -> dict[str, Any]:
    """The ``view_submission`` payload Slack sends when ``user_id`` submits ``view``."""
    view_json = dict(view.payload)
    view_json["state"] = {
        "values": view_state_values(view, values, enforce_required=enforce_required)
    }
    return {
        "type": "view_submission",
        "team": _team_json(state),
        "user": _user_json(state, user_id),
        "api_app_id": state.app_id,
        "token": VERIFICATION_TOKEN,
        "trigger_id": state.issue_trigger(user_id, view_id=view.id).id,
        "view": view_json,
        "response_urls": [],
        "enterprise": None,
        "is_enterprise_install": False,
    }


def view_closed_payload(
    state: WorkspaceState, *, user_id: str, view: View, is_cleared: bool = False
) -> dict[str, Any]:
    """The ``view_closed`` payload Slack sends when ``user_id`` closes ``view``."""
    view_json = dict(view.payload)
    view_json["state"] = {"values": view_state_values(view)}
    return {
        "type": "view_closed",
        "team": _team_json(state),
        "user": _user_json(state, user_id),
        "api_app_id": state.app_id,
        "token": VERIFICATION_TOKEN,
        "view": view_json,
        "is_cleared": is_cleared,
        "enterprise": None,
        "is_enterprise_install": False,
    }


def event_callback_payload(state: WorkspaceState, event: Mapping[str, Any]) -> dict[str, Any]:
    """An Events API delivery (``event_callback``) wrapping ``event``, with a fresh event_id."""
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": state.team_id,
        "api_app_id": state.app_id,
        "event": dict(event),
        "type": "event_callback",
        "event_id": state.new_event_id(),
        "event_time": int(state.clock()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": state.team_id,
                "user_id": state.bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
    }


def app_home_opened_event(
    state: WorkspaceState, *, user_id: str, tab: str = "home"
) -> dict[str, Any]:
    """``app_home_opened`` as Slack sends it: the DM channel with the app, the tab, and the
    Home tab's current view once one has been published."""
    dm = state.open_dm(user_id)
    event: dict[str, Any] = {
        "type": "app_home_opened",
        "user": user_id,
        "channel": dm.id,
        "tab": tab,
        "event_ts": f"{state.clock():.6f}",
    }
    home = state.home_view(user_id)
    if tab == "home" and home is not None:
        event["view"] = home.payload
    return event


# --------------------------------------------------------------------------------- actor ----


class InvalidViewResponse(ValueError):
    """The bot answered a submission with a view Slack would refuse."""


class SlackActor:
    """A person in Slack: runs commands, clicks buttons, submits and closes modals.

    Every action sends a signed request to the bot and returns the bot's ``httpx.Response``.
    What Slack does with the bot's answer is applied to the fake (slash-command ack text becomes
    an ephemeral message; ``response_action`` updates/pushes/closes views or shows errors).
    """

    def __init__(
        self,
        *,
        bot_url: str,
        signing_secret: str,
        fake: SlackFakeServer | WorkspaceState,
        user_id: str,
        channel_id: str,
        commands_url: str | None = None,
        interactivity_url: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.state = fake.state if isinstance(fake, SlackFakeServer) else fake
        self.signing_secret = signing_secret
        self.user_id = user_id
        self.channel_id = channel_id
        self.commands_url = commands_url or bot_url
        self.interactivity_url = interactivity_url or bot_url
        self.timeout = timeout
        self.last_payload: dict[str, Any] | None = None
        self._client = httpx.Client(timeout=timeout)
        self.state.ensure_user(user_id)
        self.state.ensure_channel(channel_id)
        self.state.join_channel(channel_id, user_id)

    def close_client(self) -> None:
        """Close the HTTP client the actor sends with."""
        self._client.close()

    def __enter__(self) -> SlackActor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close_client()

    def _send(
        self,
        url: str,
        body: str,
        *,
        timestamp: int | None,
        signature: str | None,
        retry_num: int | None,
        retry_reason: str | None,
        content_type: str = FORM_CONTENT_TYPE,
    ) -> httpx.Response:
        return send_signed(
            url,
            body,
            signing_secret=self.signing_secret,
            content_type=content_type,
            timestamp=timestamp,
            signature=signature,
            retry_num=retry_num,
            retry_reason=retry_reason,
            client=self._client,
            timeout=self.timeout,
        )

    def slash(
        self,
        command: str,
        text: str = "",
        *,
        channel_id: str | None = None,
        timestamp: int | None = None,
        signature: str | None = None,
        retry_num: int | None = None,
        retry_reason: str | None = None,
    ) -> httpx.Response:
        """Run a slash command; the ack's text, if any, becomes an ephemeral message as in Slack."""
        form = slash_command_form(
            self.state,
            command=command,
            text=text,
            user_id=self.user_id,
            channel_id=channel_id or self.channel_id,
        )
        self.last_payload = dict(form)
        response = self._send(
            self.commands_url,
            urlencode(form),
            timestamp=timestamp,
            signature=signature,
            retry_num=retry_num,
            retry_reason=retry_reason,
        )
        self._apply_command_ack(response, form["channel_id"])
        return response

    def _apply_command_ack(self, response: httpx.Response, channel_id: str) -> None:
        # Slack shows a non-empty ack body to the user: ephemeral unless response_type says so.
        if response.status_code != HTTPStatus.OK or not response.content.strip():
            return
        try:
            body = response.json()
        except ValueError:
            body = {"text": response.text}
        if not isinstance(body, dict) or not (body.get("text") or body.get("blocks")):
            return
        in_channel = body.get("response_type") == "in_channel"
        self.state.post_message(
            channel_id,
            text=str(body.get("text", "")),
            blocks=body.get("blocks") or [],
            user=self.state.bot_user_id,
            bot_id=self.state.bot_id,
            ephemeral_for=None if in_channel else self.user_id,
        )

    def _current(self, target: Message | View | str) -> Message | View:
        # Re-read from the fake so the click uses what Slack shows *now*, not a stale copy.
        if isinstance(target, Message):
            current = self.state.message(target.channel, target.ts)
            if current is None:
                raise LookupError(f"message {target.channel}/{target.ts} no longer exists")
            if current.ephemeral_for not in (None, self.user_id):
                raise LookupError(f"message {current.ts} is ephemeral for another user")
            return current
        view = self.state.view(target if isinstance(target, str) else target.id)
        if view is None or not view.is_open:
            raise LookupError(f"view {target if isinstance(target, str) else target.id} is closed")
        return view

    def click(
        self,
        target: Message | View | str,
        *,
        action_id: str,
        block_id: str | None = None,
        value: Any = None,
        shown_blocks: list[dict[str, Any]] | None = None,
        timestamp: int | None = None,
        signature: str | None = None,
        retry_num: int | None = None,
        retry_reason: str | None = None,
    ) -> httpx.Response:
        """Click the element ``action_id`` in a stored message or open view (``value`` picks
        the option for selects/overflow menus; buttons always send their own value).
        ``shown_blocks``: what the client showed, if the message may have changed since."""
        payload = block_actions_payload(
            self.state,
            user_id=self.user_id,
            source=self._current(target),
            action_id=action_id,
            block_id=block_id,
            value=value,
            shown_blocks=shown_blocks,
        )
        self.last_payload = payload
        return self._send(
            self.interactivity_url,
            interactive_body(payload),
            timestamp=timestamp,
            signature=signature,
            retry_num=retry_num,
            retry_reason=retry_reason,
        )

    def select(
        self,
        target: Message | View | str,
        *,
        action_id: str,
        value: Any,
        block_id: str | None = None,
    ) -> httpx.Response:
        """Pick ``value`` in a select or other input element (a click that carries a value)."""
        return self.click(target, action_id=action_id, block_id=block_id, value=value)

    def submit(
        self,
        view: View | str,
        values: Mapping[str, Any] | None = None,
        *,
        enforce_required: bool = True,
        timestamp: int | None = None,
        signature: str | None = None,
        retry_num: int | None = None,
        retry_reason: str | None = None,
    ) -> httpx.Response:
        """Fill the view's inputs (keyed by block_id or action_id) and press Submit."""
        current = self._current(view)
        assert isinstance(current, View)
        payload = view_submission_payload(
            self.state,
            user_id=self.user_id,
            view=current,
            values=values,
            enforce_required=enforce_required,
        )
        self.last_payload = payload
        response = self._send(
            self.interactivity_url,
            interactive_body(payload),
            timestamp=timestamp,
            signature=signature,
            retry_num=retry_num,
            retry_reason=retry_reason,
        )
        self._apply_response_action(current, response)
        return response

    def _apply_response_action(self, view: View, response: httpx.Response) -> None:
        if response.status_code != HTTPStatus.OK:
            return  # Slack shows "We had some trouble connecting" and keeps the modal open
        body: Any = {}
        if response.content.strip():
            try:
                body = response.json()
            except ValueError:
                body = {}
        action = body.get("response_action") if isinstance(body, dict) else None
        if action == "errors":
            self.state.set_view_errors(view.id, body.get("errors") or {})
        elif action in ("update", "push"):
            new_view = body.get("view")
            violations = validate_view(new_view)
            if violations:
                raise InvalidViewResponse("; ".join(str(v) for v in violations))
            assert isinstance(new_view, dict)
            if action == "update":
                self.state.update_view(view.id, new_view)
            else:
                self.state.push_view_for(view.user_id, new_view)
        elif action == "clear":
            self.state.close_view(view.id, clear=True)
        else:
            self.state.close_view(view.id)

    def open_home(self, *, tab: str = "home", retry_num: int | None = None) -> httpx.Response:
        """Open the app's Home (its ``tab``): Slack sends ``app_home_opened``."""
        payload = event_callback_payload(
            self.state, app_home_opened_event(self.state, user_id=self.user_id, tab=tab)
        )
        self.last_payload = payload
        return self._send(
            self.interactivity_url,
            json.dumps(payload, separators=(",", ":")),
            timestamp=None,
            signature=None,
            retry_num=retry_num,
            retry_reason=None,
            content_type="application/json",
        )

    def close(
        self,
        view: View | str,
        *,
        timestamp: int | None = None,
        signature: str | None = None,
    ) -> httpx.Response | None:
        """Press the modal's Close button.

        Slack only tells the bot (``view_closed``) when the view set ``notify_on_close``; when it
        did not, nothing is sent and ``None`` is returned.
        """
        current = self._current(view)
        assert isinstance(current, View)
        cleared = bool(current.payload.get("clear_on_close"))
        self.state.close_view(current.id, clear=cleared)
        if not current.notify_on_close:
            return None
        payload = view_closed_payload(
            self.state, user_id=self.user_id, view=current, is_cleared=cleared
        )
        self.last_payload = payload
        return self._send(
            self.interactivity_url,
            interactive_body(payload),
            timestamp=timestamp,
            signature=signature,
            retry_num=None,
            retry_reason=None,
        )
