"""A local Slack: a Web API fake over real HTTP plus signed requests towards the bot.

One fake serves tests now and the local sandbox page later: ``WorkspaceState`` is the model
(with change listeners), ``SlackFakeServer`` serves it, ``SlackActor`` plays the human.
"""

from bot.http_thread import BackgroundServer

from .blockkit_limits import Violation, validate_blocks, validate_message_text, validate_view
from .payloads import (
    InvalidViewResponse,
    SlackActor,
    block_actions_payload,
    compute_signature,
    element_state,
    find_element,
    interactive_body,
    send_signed,
    signed_headers,
    slash_command_form,
    view_closed_payload,
    view_state_values,
    view_submission_payload,
)
from .server import SlackFakeServer
from .slack_api import ApiError, SlackWebApi, create_app
from .state import (
    DEFAULT_APP_ID,
    DEFAULT_BOT_ID,
    DEFAULT_BOT_TOKEN,
    DEFAULT_BOT_USER_ID,
    DEFAULT_CHANNEL_ID,
    DEFAULT_TEAM_ID,
    TRIGGER_TTL_SECONDS,
    ChangeEvent,
    Channel,
    ManualClock,
    Message,
    RecordedCall,
    ResponsePost,
    ResponseUrl,
    TokenInfo,
    Trigger,
    User,
    UserGroup,
    View,
    WorkspaceState,
)

__all__ = [
    "DEFAULT_APP_ID",
    "DEFAULT_BOT_ID",
    "DEFAULT_BOT_TOKEN",
    "DEFAULT_BOT_USER_ID",
    "DEFAULT_CHANNEL_ID",
    "DEFAULT_TEAM_ID",
    "TRIGGER_TTL_SECONDS",
    "ApiError",
    "BackgroundServer",
    "ChangeEvent",
    "Channel",
    "InvalidViewResponse",
    "ManualClock",
    "Message",
    "RecordedCall",
    "ResponsePost",
    "ResponseUrl",
    "SlackActor",
    "SlackFakeServer",
    "SlackWebApi",
    "TokenInfo",
    "Trigger",
    "User",
    "UserGroup",
    "View",
    "Violation",
    "WorkspaceState",
    "block_actions_payload",
    "compute_signature",
    "create_app",
    "element_state",
    "find_element",
    "interactive_body",
    "send_signed",
    "signed_headers",
    "slash_command_form",
    "validate_blocks",
    "validate_message_text",
    "validate_view",
    "view_closed_payload",
    "view_state_values",
    "view_submission_payload",
]
