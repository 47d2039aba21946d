"""The Slack Web API fake: a Starlette app answering ``/api/<method>`` like slack.com does.

Answers follow Slack's conventions rather than HTTP's: errors are HTTP 200 with
``{"ok": false, "error": ...}``; only rate limiting (429) and an outage (503) change the status.
Every call is recorded in the state, successful or not, so tests can assert on what the bot sent.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.slack_http import (
    BodyTimeoutError,
    BodyTooLargeError,
    MalformedRequestError,
    parse_json,
    read_bounded_body,
)

from .blockkit_limits import (
    Violation,
    validate_blocks,
    validate_message_text,
    validate_view,
)
from .state import Channel, Message, RecordedCall, TokenInfo, WorkspaceState

# Params Slack accepts as JSON-encoded strings inside form posts.
_JSON_PARAMS = ("blocks", "view", "attachments", "metadata")


class ApiError(Exception):
    """An ``ok: false`` answer; ``extra`` holds fields Slack adds (errors, response_metadata)."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


@dataclass(frozen=True)
class ApiCall:
    """One Web API call as a handler sees it: method, parameters, and whose token made it."""

    method: str
    params: dict[str, Any]
    caller: TokenInfo
    base_url: str

    def get(self, key: str) -> Any:
        """A parameter as sent, or None."""
        return self.params.get(key)

    def str_param(self, key: str) -> str | None:
        """A parameter as a string; None when missing or empty, as Slack treats both."""
        value = self.params.get(key)
        if value is None or value == "":
            return None
        return str(value)


Handler = Callable[[ApiCall], dict[str, Any]]


def _blocks_error(violations: list[Violation]) -> ApiError:
    # chat.* wording: "invalid_blocks" with the human-readable list in "errors".
    return ApiError(
        "invalid_blocks",
        errors=[str(v) for v in violations],
        response_metadata={"messages": [f"[ERROR] {v}" for v in violations]},
    )


def _view_error(violations: list[Violation]) -> ApiError:
    # views.* wording: Slack answers "invalid_arguments" and lists the problems only in
    # response_metadata.messages (e.g. "[ERROR] must be less than 25 characters
    # [json-pointer:/view/title/text]"); "errors" is added for symmetry with chat.*.
    return ApiError(
        "invalid_arguments",
        errors=[str(v) for v in violations],
        response_metadata={"messages": [f"[ERROR] {v}" for v in violations]},
    )


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() in ("true", "1", "yes")
    return bool(value)


class SlackWebApi:
    """Method handlers over one ``WorkspaceState``."""

    def __init__(self, state: WorkspaceState) -> None:
        self.state = state
        self.methods: dict[str, Handler] = {
            "api.test": self.api_test,
            "auth.test": self.auth_test,
            "chat.postMessage": self.chat_post_message,
            "chat.update": self.chat_update,
            "chat.delete": self.chat_delete,
            "chat.postEphemeral": self.chat_post_ephemeral,
            "chat.getPermalink": self.chat_get_permalink,
            "views.open": self.views_open,
            "views.update": self.views_update,
            "views.push": self.views_push,
            "views.publish": self.views_publish,
            "users.info": self.users_info,
            "usergroups.users.list": self.usergroups_users_list,
            "conversations.info": self.conversations_info,
            "conversations.list": self.conversations_list,
            "conversations.members": self.conversations_members,
            "conversations.open": self.conversations_open,
            "conversations.history": self.conversations_history,
            "conversations.replies": self.conversations_replies,
        }

    # ----------------------------------------------------------------------------- plumbing ----

    async def handle(self, request: Request) -> Response:
        """Answer ``POST /api/{method}`` as Slack would, and record the call."""
        method = request.path_params["method"]
        params, parse_error = await _read_params(request)
        token = _bearer(request) or params.pop("token", None)
        params.pop("token", None)
        status, body, headers = self._answer(method, params, token, parse_error, request)
        delay = float(headers.pop("x-fake-delay", "0") or 0)
        if delay:
            await asyncio.sleep(delay)
        self.state.record_call(
            RecordedCall(
                method=method,
                params=params,
                token=token,
                status=status,
                ok=bool(body.get("ok")),
                error=body.get("error"),
                at=self.state.clock(),
            )
        )
        return JSONResponse(body, status_code=status, headers=headers)

    # Each refusal Slack makes (down, rate limit, token, payload, method) returns where it is
    # checked.
    def _answer(  # noqa: PLR0911
        self,
        method: str,
        params: dict[str, Any],
        token: str | None,
        parse_error: str | None,
        request: Request,
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        if self.state.is_down:
            return 503, {"ok": False, "error": "service_unavailable"}, {}
        handler = self.methods.get(method)
        if handler is None:
            return 200, {"ok": False, "error": "unknown_method"}, {}
        if parse_error:
            return 200, {"ok": False, "error": parse_error}, {}
        if not token:
            return 200, {"ok": False, "error": "not_authed"}, {}
        caller = self.state.token_info(token)
        if caller is None:
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        # Injected faults are consumed only by authenticated calls, so a test's bad-token call
        # cannot eat a fault meant for the bot.
        fault = self.state.take_fault(method)
        if fault is not None and fault.kind == "ratelimit":
            return (
                429,
                {"ok": False, "error": "ratelimited"},
                {"Retry-After": str(fault.retry_after)},
            )
        if fault is not None and fault.kind == "http":
            return fault.status, {"ok": False, "error": "internal_error"}, {}
        if fault is not None and fault.kind == "error":
            return 200, {"ok": False, "error": fault.error}, {}
        call = ApiCall(method=method, params=params, caller=caller, base_url=_base_url(request))
        try:
            result = handler(call)
        except ApiError as exc:
            return 200, {"ok": False, "error": exc.error, **exc.extra}, {}
        if fault is not None and fault.kind == "after":
            return fault.status, {"ok": False, "error": "internal_error"}, {}
        if fault is not None and fault.kind == "slow":
            return 200, {"ok": True, **result}, {"x-fake-delay": str(fault.delay)}
        return 200, {"ok": True, **result}, {}

    async def handle_response_url(self, request: Request) -> Response:
        """``POST /response/<id>``: what ``respond()`` and slash-command replies hit."""
        rid = request.path_params["rid"]
        params, parse_error = await _read_params(request)
        status, body = self._response_url_answer(rid, params, parse_error)
        self.state.record_call(
            RecordedCall(
                method="response_url",
                params={"response_url_id": rid, **params},
                token=None,
                status=status,
                ok=bool(body.get("ok")),
                error=body.get("error"),
                at=self.state.clock(),
            )
        )
        return JSONResponse(body, status_code=status)

    # Each refusal a response_url makes returns where it is checked, in Slack's order.
    def _response_url_answer(  # noqa: PLR0911
        self, rid: str, params: dict[str, Any], parse_error: str | None
    ) -> tuple[int, dict[str, Any]]:
        if self.state.is_down:
            return 503, {"ok": False, "error": "service_unavailable"}
        if parse_error:
            return 400, {"ok": False, "error": "invalid_payload"}
        if not validate_message_text(params.get("text")):
            return 400, {"ok": False, "error": "msg_too_long"}
        if params.get("blocks") is not None:
            violations = validate_blocks(params["blocks"])
            if violations:
                err = _blocks_error(violations)
                return 400, {"ok": False, "error": err.error, **err.extra}
        has_content = params.get("text") or params.get("blocks")
        if not has_content and not _truthy(params.get("delete_original")):
            return 400, {"ok": False, "error": "no_text"}
        _, error = self.state.post_to_response_url(rid, params)
        if error:
            return 404, {"ok": False, "error": error}
        return 200, {"ok": True}

    # ------------------------------------------------------------------------------ helpers ----

    def _channel_for_post(self, call: ApiCall, key: str = "channel") -> Channel:
        ref = call.str_param(key)
        if ref is None:
            raise ApiError("channel_not_found")
        channel = self.state.resolve_channel(ref)
        if channel is None and ref[:1] in ("U", "W") and self.state.user(ref) is not None:
            # Posting to a user id lands in the app's DM with that user.
            channel = self.state.open_dm(ref)
        if channel is None:
            raise ApiError("channel_not_found")
        if call.caller.user_id not in channel.members:
            # Private channels are invisible to non-members; public ones say "join first".
            raise ApiError("channel_not_found" if channel.is_private else "not_in_channel")
        return channel

    def _content(self, call: ApiCall, *, required: bool = True) -> tuple[str | None, Any]:
        text, blocks = call.get("text"), call.get("blocks")
        if text is not None and not isinstance(text, str):
            text = str(text)
        if isinstance(blocks, str):
            raise ApiError("invalid_blocks_format")
        if required and not text and not blocks and not call.get("attachments"):
            raise ApiError("no_text")
        if not validate_message_text(text):
            raise ApiError("msg_too_long")
        if blocks is not None:
            violations = validate_blocks(blocks, surface="message")
            if violations:
                raise _blocks_error(violations)
        return text, blocks

    def _own_message(self, call: ApiCall, ts_key: str, not_yours: str) -> Message:
        channel = self.state.channel(call.str_param("channel") or "")
        if channel is None:
            raise ApiError("channel_not_found")
        message = self.state.message(channel.id, call.str_param(ts_key) or "")
        if message is None or message.is_ephemeral:
            raise ApiError("message_not_found")
        if message.user != call.caller.user_id:
            raise ApiError(not_yours)
        return message

    def _view_param(self, call: ApiCall) -> dict[str, Any]:
        view = call.get("view")
        if not isinstance(view, dict):
            raise ApiError("invalid_arguments", response_metadata={"messages": ["invalid `view`"]})
        violations = validate_view(view)
        if violations:
            raise _view_error(violations)
        return view

    # ------------------------------------------------------------------------------ methods ----

    def api_test(self, call: ApiCall) -> dict[str, Any]:
        """``api.test``: echoes the arguments."""
        return {"args": call.params}

    def auth_test(self, call: ApiCall) -> dict[str, Any]:
        """``auth.test``: who the token belongs to."""
        user = self.state.user(call.caller.user_id)
        result: dict[str, Any] = {
            "url": f"https://{self.state.team_domain}.slack.com/",
            "team": self.state.team_domain,
            "user": user.name if user else call.caller.user_id,
            "team_id": self.state.team_id,
            "user_id": call.caller.user_id,
            "is_enterprise_install": False,
        }
        if call.caller.bot_id:
            result["bot_id"] = call.caller.bot_id
        return result

    def chat_post_message(self, call: ApiCall) -> dict[str, Any]:
        """``chat.postMessage``: post to a channel or thread, with blocks and metadata."""
        channel = self._channel_for_post(call)
        text, blocks = self._content(call)
        thread_ts = call.str_param("thread_ts")
        metadata = call.get("metadata")
        message = self.state.post_message(
            channel.id,
            text=text or "",
            blocks=blocks,
            user=call.caller.user_id,
            bot_id=call.caller.bot_id,
            thread_ts=thread_ts,
            metadata=metadata if isinstance(metadata, dict) else None,
        )
        return {
            "channel": channel.id,
            "ts": message.ts,
            "message": self.state.message_json(message),
        }

    def chat_update(self, call: ApiCall) -> dict[str, Any]:
        """``chat.update``: change a message the caller posted."""
        message = self._own_message(call, "ts", "cant_update_message")
        text, blocks = self._content(call, required=False)
        if text is None and blocks is None and not call.get("attachments"):
            raise ApiError("no_text")
        updated = self.state.update_message(message.channel, message.ts, text=text, blocks=blocks)
        if updated is None:  # deleted concurrently
            raise ApiError("message_not_found")
        return {
            "channel": updated.channel,
            "ts": updated.ts,
            "text": updated.text,
            "message": self.state.message_json(updated),
        }

    def chat_delete(self, call: ApiCall) -> dict[str, Any]:
        """``chat.delete``: delete a message the caller posted."""
        message = self._own_message(call, "ts", "cant_delete_message")
        self.state.delete_message(message.channel, message.ts)
        return {"channel": message.channel, "ts": message.ts}

    def chat_post_ephemeral(self, call: ApiCall) -> dict[str, Any]:
        """``chat.postEphemeral``: a message only ``user`` sees, who must be in the channel."""
        channel = self._channel_for_post(call)
        user_id = call.str_param("user")
        if user_id is None or self.state.user(user_id) is None:
            raise ApiError("user_not_found")
        if user_id not in channel.members:
            raise ApiError("user_not_in_channel")
        text, blocks = self._content(call)
        message = self.state.post_message(
            channel.id,
            text=text or "",
            blocks=blocks,
            user=call.caller.user_id,
            bot_id=call.caller.bot_id,
            thread_ts=call.str_param("thread_ts"),
            ephemeral_for=user_id,
        )
        return {"message_ts": message.ts}

    def chat_get_permalink(self, call: ApiCall) -> dict[str, Any]:
        """``chat.getPermalink``: a link into the sandbox page at the message."""
        channel = self.state.channel(call.str_param("channel") or "")
        if channel is None:
            raise ApiError("channel_not_found")
        message = self.state.message(channel.id, call.str_param("message_ts") or "")
        if message is None or message.is_ephemeral:
            raise ApiError("message_not_found")
        # Points at the sandbox itself so the future page can serve it.
        permalink = f"{call.base_url}/archives/{channel.id}/p{message.ts.replace('.', '')}"
        if message.is_reply:
            permalink += f"?thread_ts={message.thread_ts}&cid={channel.id}"
        return {"channel": channel.id, "permalink": permalink}

    def views_open(self, call: ApiCall) -> dict[str, Any]:
        """``views.open``: open a modal with an unexpired trigger."""
        trigger_id = call.str_param("trigger_id")
        if trigger_id is None:
            raise ApiError("invalid_arguments", response_metadata={"messages": ["no trigger_id"]})
        view = self._view_param(call)
        _, error = self.state.check_trigger(trigger_id)
        if error:
            raise ApiError(error)
        if view.get("external_id") and self.state.external_id_in_use(view["external_id"]):
            raise ApiError("duplicate_external_id")
        try:
            opened = self.state.open_view(trigger_id, view)
        except ValueError as exc:  # the trigger expired/was used between check and open
            raise ApiError(str(exc)) from exc
        return {"view": opened.payload}

    def views_push(self, call: ApiCall) -> dict[str, Any]:
        """``views.push``: push a modal onto the open stack."""
        trigger_id = call.str_param("trigger_id")
        if trigger_id is None:
            raise ApiError("invalid_arguments", response_metadata={"messages": ["no trigger_id"]})
        view = self._view_param(call)
        try:
            pushed = self.state.push_view(trigger_id, view)
        except ValueError as exc:
            raise ApiError(str(exc)) from exc
        return {"view": pushed.payload}

    def views_update(self, call: ApiCall) -> dict[str, Any]:
        """``views.update``: replace an open modal, by id or external id, checking ``hash``."""
        view_id, external_id = call.str_param("view_id"), call.str_param("external_id")
        if view_id:
            target = self.state.view(view_id)
        elif external_id:
            target = self.state.view_by_external_id(external_id)
        else:
            raise ApiError("not_found")
        if target is None or not target.is_open:
            raise ApiError("not_found")
        expected_hash = call.str_param("hash")
        if expected_hash is not None and expected_hash != target.hash:
            raise ApiError("hash_conflict")
        view = self._view_param(call)
        return {"view": self.state.update_view(target.id, view).payload}

    def views_publish(self, call: ApiCall) -> dict[str, Any]:
        """The user's Home tab (created on first publish, replaced after)."""
        user_id = call.str_param("user_id")
        if user_id is None or self.state.user(user_id) is None:
            raise ApiError(
                "invalid_arguments", response_metadata={"messages": ["invalid `user_id`"]}
            )
        view = self._view_param(call)
        if view.get("type") != "home":
            raise ApiError(
                "invalid_arguments",
                response_metadata={"messages": ["[ERROR] must be home [json-pointer:/view/type]"]},
            )
        try:
            published = self.state.publish_home(user_id, view, expected_hash=call.str_param("hash"))
        except ValueError as exc:
            raise ApiError(str(exc)) from exc
        return {"view": published.payload}

    def users_info(self, call: ApiCall) -> dict[str, Any]:
        """``users.info``: one user's profile."""
        user = self.state.user(call.str_param("user") or "")
        if user is None:
            raise ApiError("user_not_found")
        return {"user": user.to_api(team_id=self.state.team_id)}

    def usergroups_users_list(self, call: ApiCall) -> dict[str, Any]:
        """``usergroups.users.list``: the members of a user group."""
        group = self.state.usergroup(call.str_param("usergroup") or "")
        if group is None:
            raise ApiError("no_such_subteam")
        return {"users": list(group.users)}

    def conversations_info(self, call: ApiCall) -> dict[str, Any]:
        """``conversations.info``: one channel, as the caller may see it."""
        channel = self.state.channel(call.str_param("channel") or "")
        if channel is None or (channel.is_private and call.caller.user_id not in channel.members):
            raise ApiError("channel_not_found")
        return {"channel": channel.to_api(viewer_id=call.caller.user_id)}

    def conversations_list(self, call: ApiCall) -> dict[str, Any]:
        """Channels the caller can see, of the asked ``types``, with Slack's cursor paging."""
        types = set((call.str_param("types") or "public_channel").split(","))
        try:
            start = int(call.str_param("cursor") or 0)
            limit = min(max(int(call.str_param("limit") or 100), 1), 1000)
        except ValueError as exc:
            raise ApiError("invalid_cursor") from exc
        viewer = call.caller.user_id
        visible = []
        for channel in self.state.channels():
            if channel.is_im:
                kind = "im"
            elif channel.is_private:
                kind = "private_channel"
                if viewer not in channel.members:
                    continue
            else:
                kind = "public_channel"
            if kind in types:
                visible.append(channel)
        page = visible[start : start + limit]
        more = start + limit < len(visible)
        return {
            "channels": [c.to_api(viewer_id=viewer) for c in page],
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    def conversations_members(self, call: ApiCall) -> dict[str, Any]:
        """``conversations.members``: a channel's members, cursor-paged like Slack's."""
        channel = self.state.channel(call.str_param("channel") or "")
        if channel is None:
            raise ApiError("channel_not_found")
        # Cursor pagination like Slack's, so slack_sdk's paginating iterators work.
        try:
            start = int(call.str_param("cursor") or 0)
            limit = int(call.str_param("limit") or 100)
        except ValueError as exc:
            raise ApiError("invalid_cursor") from exc
        page = list(channel.members[start : start + limit])
        more = start + limit < len(channel.members)
        return {
            "members": page,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    def _readable_channel(self, call: ApiCall) -> Channel:
        channel = self.state.channel(call.str_param("channel") or "")
        if channel is None or (
            (channel.is_private or channel.is_im) and call.caller.user_id not in channel.members
        ):
            raise ApiError("channel_not_found")
        if call.caller.user_id not in channel.members:
            raise ApiError("not_in_channel")
        return channel

    def _message_page(self, call: ApiCall, messages: list[Message]) -> dict[str, Any]:
        """One page of ``messages`` with Slack's cursor paging; metadata only when asked
        with ``include_all_metadata``."""
        try:
            start = int(call.str_param("cursor") or 0)
            limit = min(max(int(call.str_param("limit") or 100), 1), 999)
        except ValueError as exc:
            raise ApiError("invalid_cursor") from exc
        with_metadata = _truthy(call.get("include_all_metadata"))
        page = messages[start : start + limit]
        more = start + limit < len(messages)
        found = []
        for message in page:
            data = message.to_api()
            if not with_metadata:
                data.pop("metadata", None)
            found.append(data)
        return {
            "messages": found,
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    def conversations_history(self, call: ApiCall) -> dict[str, Any]:
        """A channel's top-level messages, newest first."""
        channel = self._readable_channel(call)
        top = [
            m
            for m in reversed(self.state.messages(channel.id, include_ephemeral=False))
            if not m.is_reply
        ]
        return self._message_page(call, top)

    def conversations_replies(self, call: ApiCall) -> dict[str, Any]:
        """A thread: its parent message first, then the replies, oldest first."""
        channel = self._readable_channel(call)
        ts = call.str_param("ts")
        parent = self.state.message(channel.id, ts or "")
        if ts is None or parent is None or parent.is_ephemeral:
            raise ApiError("thread_not_found")
        thread = [m for m in self.state.thread(channel.id, parent.ts) if not m.is_ephemeral]
        return self._message_page(call, thread)

    def conversations_open(self, call: ApiCall) -> dict[str, Any]:
        """``conversations.open``: the direct message channel with one user."""
        users = [u for u in (call.str_param("users") or "").split(",") if u]
        if len(users) != 1:
            raise ApiError("invalid_arguments")
        if self.state.user(users[0]) is None:
            raise ApiError("user_not_found")
        channel = self.state.open_dm(users[0])
        return {"channel": {"id": channel.id}}


async def read_body(request: Request) -> bytes:
    """The body within the bot's own bounds (``bot.slack_http``): an oversized one is refused
    from its ``Content-Length``, or as soon as its stream passes the bound."""
    try:
        return await read_bounded_body(request.headers, request.stream())
    except BodyTooLargeError:
        raise HTTPException(413, "request too large", headers=_CLOSE) from None
    except BodyTimeoutError:
        raise HTTPException(408, "request body not received in time", headers=_CLOSE) from None
    except (MalformedRequestError, ClientDisconnect):
        raise HTTPException(400, "malformed request", headers=_CLOSE) from None


_CLOSE = {"Connection": "close"}


async def _read_params(request: Request) -> tuple[dict[str, Any], str | None]:
    """Query params plus a JSON or form body; JSON-string params (blocks, view) decoded."""
    params: dict[str, Any] = dict(request.query_params)
    raw = await read_body(request)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if raw:
        if content_type == "application/json":
            try:
                body = parse_json(raw)
            except ValueError:
                return params, "invalid_json"
            if not isinstance(body, dict):
                return params, "invalid_json"
            params.update(body)
        elif content_type in ("application/x-www-form-urlencoded", ""):
            try:
                params.update(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
            except UnicodeDecodeError:
                return params, "invalid_form_data"
        else:
            return params, "invalid_post_type"
    for key in _JSON_PARAMS:
        value = params.get(key)
        if isinstance(value, str) and value:
            # Undecodable values stay strings; the handler answers e.g. invalid_blocks_format.
            with contextlib.suppress(ValueError):
                params[key] = parse_json(value)
    return params, None


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def create_app(state: WorkspaceState) -> Starlette:
    """The ASGI app serving the Web API fake (``/api/<method>``) and response_urls."""
    api = SlackWebApi(state)

    async def not_found(request: Request) -> Response:
        return JSONResponse({"ok": False, "error": "unknown_method"})

    app = Starlette(
        routes=[
            Route("/api/{method}", api.handle, methods=["GET", "POST"]),
            Route("/api/", not_found, methods=["GET", "POST"]),
            Route("/response/{rid}", api.handle_response_url, methods=["POST"]),
        ]
    )
    app.state.slack_api = api
    return app
