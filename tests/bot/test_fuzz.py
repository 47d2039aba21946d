"""Fuzzing: whatever a request carries (signed or not, any header, any bytes), never a 5xx and
never a state change; whatever values a form sends, a clear error or correctly typed values,
and nothing stored on error."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlencode

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import blocks
from bot.sandbox import signed_headers
from engine import OnReject, Step, StepOutput, UserInputField, UserInputValidationError, Workflow
from tests.bot.conftest import ALICE, SECRET, BotHarness
from tests.bot.test_approval_flow import _start

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
# Payloads shaped like Slack's, with every field possibly wrong.
slack_like = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(
            ["block_actions", "view_submission", "view_closed", "shortcut", "nonsense"]
        )
        | st.text(max_size=10),
        "user": st.fixed_dictionaries(
            {}, optional={"id": st.sampled_from([ALICE, "U0X"]) | json_values}
        )
        | json_values,
        "actions": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "action_id": st.sampled_from(
                        [blocks.ACTION_APPROVE, blocks.ACTION_REJECT, blocks.ACTION_PROVIDE_INPUT]
                    )
                    | json_values,
                    "value": json_values,
                    "action_ts": st.text(max_size=12),
                },
            ),
            max_size=3,
        )
        | json_values,
        "view": st.fixed_dictionaries(
            {},
            optional={
                "callback_id": st.sampled_from([blocks.VIEW_INPUT, blocks.VIEW_REJECT])
                | json_values,
                "private_metadata": json_values,
                "state": json_values,
                "id": json_values,
                "hash": json_values,
            },
        )
        | json_values,
        "trigger_id": json_values,
        "channel": json_values,
        "container": json_values,
    },
)


# What an HTTP client can put in a header value: no control characters, no edge whitespace.
header_values = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=80,
).map(lambda text: text.encode("latin-1")) | st.sampled_from(
    [b"0", b"-1", b"9" * 400, b"1e9", b"\xb2", b"v0=", b"v0=" + b"0" * 64, b"NaN", b"inf"]
)
content_types = st.sampled_from(
    [
        "application/x-www-form-urlencoded",
        "application/json",
        "text/plain",
        "multipart/form-data; boundary=x",
        "application/json; charset=utf-16",
    ]
) | st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=30)
raw_bodies = st.binary(max_size=300) | st.sampled_from(
    [b"\xff\xfe", b"{", b"[" * 2000, b"payload=" + b"%5B" * 2000, b"payload=%FF", b"\x00"]
)
slack_headers = st.fixed_dictionaries(
    {},
    optional={
        "X-Slack-Request-Timestamp": header_values,
        "X-Slack-Signature": header_values,
        "X-Slack-Retry-Num": header_values,
        "X-Slack-Retry-Reason": header_values,
        "X-Slack-Bolt-Lazy-Only": header_values,
        "X-Slack-Bolt-Lazy-Function-Name": header_values,
        "Content-Type": content_types.map(str.encode),
        "Content-Encoding": st.sampled_from([b"gzip", b"br", b"identity"]),
    },
)
_fuzz_settings = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _sign_bytes(body: bytes, timestamp: str) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(SECRET.encode(), base, hashlib.sha256).hexdigest()


def _paused_run(harness: BotHarness) -> str:
    if not harness.runtime.db.list_runs():
        _start(harness, "approve_me")
        harness.pause_message("ship")
    return harness.runtime.db.list_runs()[0].run_id


def _unchanged(harness: BotHarness, run_id: str) -> None:
    assert harness.runtime.db.get_run(run_id).is_paused
    assert harness.runtime.db.get_decisions(run_id) == []


@_fuzz_settings
@given(headers=slack_headers, body=raw_bodies, query=st.text(max_size=40))
def test_unsigned_requests_any_headers_and_bytes_are_refused(
    harness: BotHarness, headers: dict[str, bytes], body: bytes, query: str
) -> None:
    run_id = _paused_run(harness)
    response = httpx.post(harness.url, params={"q": query}, content=body, headers=headers)  # type: ignore[arg-type]
    # Nothing here is signed with the secret: refused, whatever it carries.
    assert response.status_code == 401, (response.status_code, response.text)
    _unchanged(harness, run_id)


@_fuzz_settings
@given(
    body=raw_bodies | json_values.map(lambda v: json.dumps(v).encode()),
    content_type=content_types,
    extra=st.fixed_dictionaries(
        {}, optional={"X-Slack-Retry-Num": header_values, "X-Slack-Retry-Reason": header_values}
    ),
)
def test_signed_requests_any_bytes_and_headers_never_5xx(
    harness: BotHarness, body: bytes, content_type: str, extra: dict[str, bytes]
) -> None:
    run_id = _paused_run(harness)
    timestamp = str(int(time.time()))
    headers: dict[str, str | bytes] = {
        **extra,
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": _sign_bytes(body, timestamp),
    }
    response = httpx.post(harness.url, content=body, headers=headers, timeout=10)  # type: ignore[arg-type]
    assert response.status_code < 500, (response.status_code, response.text)
    _unchanged(harness, run_id)


def _signed_post(harness: BotHarness, body: str) -> httpx.Response:
    headers = signed_headers(body, SECRET)
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    return httpx.post(harness.url, content=body, headers=headers, timeout=10)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(payload=slack_like | json_values)
def test_interaction_endpoint_never_5xx_and_changes_nothing(
    harness: BotHarness, payload: Any
) -> None:
    if not harness.runtime.db.list_runs():
        _start(harness, "approve_me")
        harness.pause_message("ship")
    run = harness.runtime.db.list_runs()[0]
    response = _signed_post(harness, urlencode({"payload": json.dumps(payload)}))
    assert response.status_code < 500, response.text
    assert harness.runtime.db.get_run(run.run_id).is_paused
    assert harness.runtime.db.get_decisions(run.run_id) == []


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    form=st.dictionaries(
        st.sampled_from(
            ["command", "text", "user_id", "channel_id", "trigger_id", "response_url", "x"]
        ),
        st.text(max_size=40),
        max_size=6,
    )
)
def test_command_endpoint_never_5xx(harness: BotHarness, form: dict[str, str]) -> None:
    response = _signed_post(harness, urlencode(form))
    assert response.status_code < 500, response.text


_workflow = Workflow(
    name="fuzz",
    steps=[
        Step(
            name="ask",
            executor=lambda si: StepOutput(content=si.additional_data["user_input"]),
            requires_user_input=True,
            on_reject=OnReject.skip,
            user_input_schema=[
                UserInputField(name="n", field_type="int"),
                UserInputField(name="x", field_type="float", required=False),
                UserInputField(name="flag", field_type="bool", required=False),
                UserInputField(
                    name="mode", field_type="str", allowed_values=["a", "b"], required=False
                ),
            ],
        )
    ],
)
_types = {"n": int, "x": float, "flag": bool, "mode": str}


@settings(max_examples=300, deadline=None)
@given(
    values=st.dictionaries(
        st.sampled_from(["n", "x", "flag", "mode", "other"]),
        json_values | st.sampled_from(["1", "0.5", "true", "no", "a"]),
        max_size=5,
    )
)
def test_set_user_input_types_or_clear_error(values: dict[str, Any]) -> None:
    run = _workflow.run("fuzz")
    req = run.step_requirements[0]
    try:
        stored = req.set_user_input(values)
    except UserInputValidationError as exc:
        assert exc.errors and set(exc.errors) <= set(values) | {"n"}
        assert req.user_input is None and req.confirmed is None  # nothing stored
        assert all(f.value is None for f in req.user_input_schema)
        return
    assert "n" in stored
    for name, value in stored.items():
        assert type(value) is _types[name], (name, value)
    assert req.user_input == stored
