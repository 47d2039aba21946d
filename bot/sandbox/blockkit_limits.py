"""Block Kit validation against Slack's documented limits.

Slack refuses payloads that break these limits, so a fake that accepts them would let bugs ship.
Each problem is reported the way Slack words it in ``response_metadata.messages``:
``"must be less than 3001 characters [json-pointer:/blocks/0/text/text]"``.
Only the limits this project can plausibly hit are checked; unknown *block* types are rejected
because Slack rejects them too, while rarely used element details are left alone.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Surface = Literal["message", "modal", "home"]

# Counts.
MESSAGE_BLOCKS_MAX = 50
VIEW_BLOCKS_MAX = 100
SECTION_FIELDS_MAX = 10
CONTEXT_ELEMENTS_MAX = 10
ACTIONS_ELEMENTS_MAX = 25
SELECT_OPTIONS_MAX = 100
CHECKBOX_OPTIONS_MAX = 10
RADIO_OPTIONS_MAX = 10
OVERFLOW_OPTIONS_MIN = 2
OVERFLOW_OPTIONS_MAX = 5
# Lengths (characters).
MESSAGE_TEXT_MAX = 40000
SECTION_TEXT_MAX = 3000
SECTION_FIELD_TEXT_MAX = 2000
HEADER_TEXT_MAX = 150
BUTTON_TEXT_MAX = 75
BUTTON_VALUE_MAX = 2000
URL_MAX = 3000
ACTION_ID_MAX = 255
BLOCK_ID_MAX = 255
CONFIRM_TITLE_MAX = 100
CONFIRM_TEXT_MAX = 300
CONFIRM_BUTTON_MAX = 30
VIEW_TITLE_MAX = 24
VIEW_BUTTON_MAX = 24
PRIVATE_METADATA_MAX = 3000
CALLBACK_ID_MAX = 255
EXTERNAL_ID_MAX = 255
INPUT_LABEL_MAX = 2000
INPUT_HINT_MAX = 2000
PLACEHOLDER_MAX = 150
OPTION_TEXT_MAX = 75
OPTION_VALUE_MAX = 150
OPTION_DESCRIPTION_MAX = 75
IMAGE_ALT_TEXT_MAX = 2000
PLAIN_TEXT_INPUT_MAX = 3000

KNOWN_BLOCK_TYPES = frozenset(
    {
        "actions",
        "call",
        "context",
        "divider",
        "file",
        "header",
        "image",
        "input",
        "markdown",
        "rich_text",
        "section",
        "table",
        "video",
    }
)

_SELECT_MENUS = frozenset(
    {
        "static_select",
        "external_select",
        "users_select",
        "conversations_select",
        "channels_select",
        "multi_static_select",
        "multi_external_select",
        "multi_users_select",
        "multi_conversations_select",
        "multi_channels_select",
    }
)
_INPUT_ONLY_ELEMENTS = frozenset(
    {
        "plain_text_input",
        "number_input",
        "email_text_input",
        "url_text_input",
        "rich_text_input",
        "file_input",
    }
)
_COMMON_INTERACTIVE = frozenset(
    {
        "button",
        "checkboxes",
        "datepicker",
        "datetimepicker",
        "overflow",
        "radio_buttons",
        "timepicker",
        "workflow_button",
    }
)
ACTIONS_ELEMENT_TYPES = _COMMON_INTERACTIVE | _SELECT_MENUS | {"rich_text_input"}
SECTION_ACCESSORY_TYPES = _COMMON_INTERACTIVE | _SELECT_MENUS | {"image"}
INPUT_ELEMENT_TYPES = (
    _INPUT_ONLY_ELEMENTS
    | _SELECT_MENUS
    | (_COMMON_INTERACTIVE - {"button", "overflow", "workflow_button"})
)


@dataclass(frozen=True)
class Violation:
    """One refused detail: Slack's wording plus a JSON pointer into the payload."""

    message: str
    pointer: str

    def __str__(self) -> str:
        return f"{self.message} [json-pointer:{self.pointer}]"


class _Checker:
    """Walks one payload and collects violations; one instance per message or view."""

    def __init__(self) -> None:
        self.violations: list[Violation] = []

    def add(self, message: str, pointer: str) -> None:
        self.violations.append(Violation(message, pointer))

    # -- primitives ---------------------------------------------------------------------------

    def max_len(self, value: Any, limit: int, pointer: str) -> None:
        if isinstance(value, str) and len(value) > limit:
            self.add(f"must be less than {limit + 1} characters", pointer)

    def string(self, value: Any, pointer: str, *, limit: int, required: bool = False) -> None:
        if value is None:
            if required:
                self.add("missing required field", pointer)
            return
        if not isinstance(value, str):
            self.add("must be a string", pointer)
            return
        self.max_len(value, limit, pointer)

    def max_items(self, items: Sequence[Any], limit: int, pointer: str) -> None:
        if len(items) > limit:
            self.add(f"no more than {limit} items allowed", pointer)

    def array(self, value: Any, pointer: str, *, required: bool = True) -> list[Any]:
        if value is None:
            if required:
                self.add("missing required field", pointer)
            return []
        if not isinstance(value, list):
            self.add("must be an array", pointer)
            return []
        return value

    def text_object(
        self,
        value: Any,
        pointer: str,
        *,
        limit: int,
        plain_only: bool = False,
        required: bool = True,
    ) -> None:
        if value is None:
            if required:
                self.add("missing required field", pointer)
            return
        if not isinstance(value, Mapping):
            self.add("must be an object", pointer)
            return
        kind = value.get("type")
        allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
        if kind not in allowed:
            self.add(f"must be one of: {', '.join(allowed)}", f"{pointer}/type")
        text = value.get("text")
        if not isinstance(text, str):
            self.add("missing required field", f"{pointer}/text")
        elif text == "":
            self.add("must be more than 0 characters", f"{pointer}/text")
        else:
            self.max_len(text, limit, f"{pointer}/text")

    def confirm(self, value: Any, pointer: str) -> None:
        if value is None:
            return
        if not isinstance(value, Mapping):
            self.add("must be an object", pointer)
            return
        self.text_object(
            value.get("title"), f"{pointer}/title", limit=CONFIRM_TITLE_MAX, plain_only=True
        )
        self.text_object(value.get("text"), f"{pointer}/text", limit=CONFIRM_TEXT_MAX)
        self.text_object(
            value.get("confirm"), f"{pointer}/confirm", limit=CONFIRM_BUTTON_MAX, plain_only=True
        )
        self.text_object(
            value.get("deny"), f"{pointer}/deny", limit=CONFIRM_BUTTON_MAX, plain_only=True
        )

    def option(self, value: Any, pointer: str, *, plain_only: bool) -> None:
        if not isinstance(value, Mapping):
            self.add("must be an object", pointer)
            return
        self.text_object(
            value.get("text"), f"{pointer}/text", limit=OPTION_TEXT_MAX, plain_only=plain_only
        )
        self.string(value.get("value"), f"{pointer}/value", limit=OPTION_VALUE_MAX, required=True)
        self.text_object(
            value.get("description"),
            f"{pointer}/description",
            limit=OPTION_DESCRIPTION_MAX,
            plain_only=plain_only,
            required=False,
        )

    def options(
        self, value: Any, pointer: str, *, limit: int, plain_only: bool, minimum: int = 1
    ) -> None:
        items = self.array(value, pointer)
        if value is not None and len(items) < minimum:
            self.add(f"must provide at least {minimum} items", pointer)
        self.max_items(items, limit, pointer)
        for i, item in enumerate(items):
            self.option(item, f"{pointer}/{i}", plain_only=plain_only)

    # -- elements -----------------------------------------------------------------------------

    # One branch per element type, each checking that type's limits from Slack's reference.
    def element(self, element: Any, pointer: str, allowed: Collection[str]) -> None:  # noqa: PLR0912
        if not isinstance(element, Mapping):
            self.add("must be an object", pointer)
            return
        kind = element.get("type")
        if kind not in allowed:
            self.add(f"unsupported type: {kind}", f"{pointer}/type")
            return
        self.string(element.get("action_id"), f"{pointer}/action_id", limit=ACTION_ID_MAX)
        self.confirm(element.get("confirm"), f"{pointer}/confirm")
        if "placeholder" in element:
            self.text_object(
                element["placeholder"],
                f"{pointer}/placeholder",
                limit=PLACEHOLDER_MAX,
                plain_only=True,
            )
        if kind == "button":
            self.text_object(
                element.get("text"), f"{pointer}/text", limit=BUTTON_TEXT_MAX, plain_only=True
            )
            self.string(element.get("value"), f"{pointer}/value", limit=BUTTON_VALUE_MAX)
            self.string(element.get("url"), f"{pointer}/url", limit=URL_MAX)
            style = element.get("style")
            if style is not None and style not in ("primary", "danger"):
                self.add("must be one of: primary, danger", f"{pointer}/style")
        elif kind in ("static_select", "multi_static_select"):
            if "option_groups" in element:
                groups = self.array(element["option_groups"], f"{pointer}/option_groups")
                self.max_items(groups, SELECT_OPTIONS_MAX, f"{pointer}/option_groups")
                for g, group in enumerate(groups):
                    opts = group.get("options") if isinstance(group, Mapping) else None
                    self.options(
                        opts,
                        f"{pointer}/option_groups/{g}/options",
                        limit=SELECT_OPTIONS_MAX,
                        plain_only=True,
                    )
            else:
                self.options(
                    element.get("options"),
                    f"{pointer}/options",
                    limit=SELECT_OPTIONS_MAX,
                    plain_only=True,
                )
        elif kind == "checkboxes":
            self.options(
                element.get("options"),
                f"{pointer}/options",
                limit=CHECKBOX_OPTIONS_MAX,
                plain_only=False,
            )
        elif kind == "radio_buttons":
            self.options(
                element.get("options"),
                f"{pointer}/options",
                limit=RADIO_OPTIONS_MAX,
                plain_only=False,
            )
        elif kind == "overflow":
            self.options(
                element.get("options"),
                f"{pointer}/options",
                limit=OVERFLOW_OPTIONS_MAX,
                plain_only=True,
                minimum=OVERFLOW_OPTIONS_MIN,
            )
        elif kind == "plain_text_input":
            max_length = element.get("max_length")
            if isinstance(max_length, int) and max_length > PLAIN_TEXT_INPUT_MAX:
                self.add(f"must be less than {PLAIN_TEXT_INPUT_MAX + 1}", f"{pointer}/max_length")
        elif kind == "image":
            self.string(
                element.get("alt_text"),
                f"{pointer}/alt_text",
                limit=IMAGE_ALT_TEXT_MAX,
                required=True,
            )

    def duplicate_action_ids(self, elements: Sequence[Any], pointer: str) -> None:
        seen: set[str] = set()
        for i, element in enumerate(elements):
            action_id = element.get("action_id") if isinstance(element, Mapping) else None
            if not isinstance(action_id, str):
                continue
            if action_id in seen:
                self.add(f"duplicate action_id: {action_id}", f"{pointer}/{i}/action_id")
            seen.add(action_id)

    # -- blocks -------------------------------------------------------------------------------

    def blocks(self, value: Any, pointer: str, *, surface: Surface) -> None:
        items = self.array(value, pointer)
        limit = MESSAGE_BLOCKS_MAX if surface == "message" else VIEW_BLOCKS_MAX
        self.max_items(items, limit, pointer)
        seen_block_ids: set[str] = set()
        for i, block in enumerate(items):
            block_pointer = f"{pointer}/{i}"
            if not isinstance(block, Mapping):
                self.add("must be an object", block_pointer)
                continue
            block_id = block.get("block_id")
            if block_id is not None:
                self.string(block_id, f"{block_pointer}/block_id", limit=BLOCK_ID_MAX)
                if isinstance(block_id, str):
                    if block_id in seen_block_ids:
                        self.add(f"duplicate block_id: {block_id}", f"{block_pointer}/block_id")
                    seen_block_ids.add(block_id)
            self.block(block, block_pointer)

    # One branch per block type, each checking that type's limits from Slack's reference.
    def block(self, block: Mapping[str, Any], pointer: str) -> None:  # noqa: PLR0912
        kind = block.get("type")
        if kind not in KNOWN_BLOCK_TYPES:
            self.add(f"unsupported type: {kind}", f"{pointer}/type")
            return
        if kind == "section":
            text, fields = block.get("text"), block.get("fields")
            if text is None and fields is None:
                self.add("must provide text or fields", pointer)
            if text is not None:
                self.text_object(text, f"{pointer}/text", limit=SECTION_TEXT_MAX)
            if fields is not None:
                items = self.array(fields, f"{pointer}/fields")
                self.max_items(items, SECTION_FIELDS_MAX, f"{pointer}/fields")
                for i, field in enumerate(items):
                    self.text_object(field, f"{pointer}/fields/{i}", limit=SECTION_FIELD_TEXT_MAX)
            if block.get("accessory") is not None:
                self.element(block["accessory"], f"{pointer}/accessory", SECTION_ACCESSORY_TYPES)
        elif kind == "header":
            self.text_object(
                block.get("text"), f"{pointer}/text", limit=HEADER_TEXT_MAX, plain_only=True
            )
        elif kind == "context":
            elements = self.array(block.get("elements"), f"{pointer}/elements")
            if block.get("elements") is not None and not elements:
                self.add("must provide at least 1 items", f"{pointer}/elements")
            self.max_items(elements, CONTEXT_ELEMENTS_MAX, f"{pointer}/elements")
            for i, element in enumerate(elements):
                element_pointer = f"{pointer}/elements/{i}"
                if isinstance(element, Mapping) and element.get("type") == "image":
                    self.element(element, element_pointer, {"image"})
                else:
                    self.text_object(element, element_pointer, limit=SECTION_TEXT_MAX)
        elif kind == "actions":
            elements = self.array(block.get("elements"), f"{pointer}/elements")
            if block.get("elements") is not None and not elements:
                self.add("must provide at least 1 items", f"{pointer}/elements")
            self.max_items(elements, ACTIONS_ELEMENTS_MAX, f"{pointer}/elements")
            for i, element in enumerate(elements):
                self.element(element, f"{pointer}/elements/{i}", ACTIONS_ELEMENT_TYPES)
            self.duplicate_action_ids(elements, f"{pointer}/elements")
        elif kind == "input":
            self.text_object(
                block.get("label"), f"{pointer}/label", limit=INPUT_LABEL_MAX, plain_only=True
            )
            self.text_object(
                block.get("hint"),
                f"{pointer}/hint",
                limit=INPUT_HINT_MAX,
                plain_only=True,
                required=False,
            )
            if block.get("element") is None:
                self.add("missing required field", f"{pointer}/element")
            else:
                self.element(block["element"], f"{pointer}/element", INPUT_ELEMENT_TYPES)
        elif kind == "image":
            self.string(block.get("image_url"), f"{pointer}/image_url", limit=URL_MAX)
            self.string(
                block.get("alt_text"),
                f"{pointer}/alt_text",
                limit=IMAGE_ALT_TEXT_MAX,
                required=True,
            )


def validate_blocks(
    blocks: Any, *, surface: Surface = "message", pointer: str = "/blocks"
) -> list[Violation]:
    """Check a ``blocks`` array for a message (50 blocks) or a view (100 blocks)."""
    checker = _Checker()
    checker.blocks(blocks, pointer, surface=surface)
    return checker.violations


def validate_view(view: Any, *, pointer: str = "/view") -> list[Violation]:
    """Check a modal or home-tab view object, including its blocks."""
    checker = _Checker()
    if not isinstance(view, Mapping):
        checker.add("must be an object", pointer)
        return checker.violations
    kind = view.get("type")
    if kind not in ("modal", "home"):
        checker.add("must be one of: modal, home", f"{pointer}/type")
        return checker.violations
    if kind == "modal":
        checker.text_object(
            view.get("title"), f"{pointer}/title", limit=VIEW_TITLE_MAX, plain_only=True
        )
        for key in ("submit", "close"):
            checker.text_object(
                view.get(key),
                f"{pointer}/{key}",
                limit=VIEW_BUTTON_MAX,
                plain_only=True,
                required=False,
            )
        blocks = view.get("blocks")
        has_input = isinstance(blocks, list) and any(
            isinstance(b, Mapping) and b.get("type") == "input" for b in blocks
        )
        # Slack cannot submit a modal without a submit button, so it refuses such views.
        if has_input and view.get("submit") is None:
            checker.add("must provide submit when the view has input blocks", f"{pointer}/submit")
    checker.string(
        view.get("private_metadata"), f"{pointer}/private_metadata", limit=PRIVATE_METADATA_MAX
    )
    checker.string(view.get("callback_id"), f"{pointer}/callback_id", limit=CALLBACK_ID_MAX)
    checker.string(view.get("external_id"), f"{pointer}/external_id", limit=EXTERNAL_ID_MAX)
    checker.blocks(view.get("blocks"), f"{pointer}/blocks", surface=kind)
    return checker.violations


def validate_message_text(text: Any) -> bool:
    """True when ``text`` fits; Slack answers ``msg_too_long`` otherwise."""
    return not (isinstance(text, str) and len(text) > MESSAGE_TEXT_MAX)
