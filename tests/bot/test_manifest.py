"""The Slack app manifest: valid, filled in by ``signoff manifest --url``, and asking for
exactly the scopes of the Web API methods the bot calls (found by reading the bot's source)."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from slack_sdk import WebClient

from bot.manifest import PLACEHOLDER_URL, manifest_template, render_manifest, request_url

ROOT = Path(__file__).resolve().parents[2]
BOT = ROOT / "bot"
MANIFEST = ROOT / "manifests" / "slack-app.yaml"

# Bot-token scopes of each Web API method (https://api.slack.com/methods/<method>, "Required
# scopes"). A method the bot starts calling must be added here, and its scope to the manifest.
METHOD_SCOPES: dict[str, frozenset[str]] = {
    "auth.test": frozenset(),
    "chat.delete": frozenset({"chat:write"}),
    "chat.getPermalink": frozenset(),
    "chat.postEphemeral": frozenset({"chat:write"}),
    "chat.postMessage": frozenset({"chat:write"}),
    "chat.update": frozenset({"chat:write"}),
    # History is read only to find a post whose answer was lost (by its metadata key), in
    # channels, private channels and the bot's own direct messages.
    "conversations.history": frozenset({"channels:history", "groups:history", "im:history"}),
    "conversations.list": frozenset({"channels:read"}),
    "conversations.open": frozenset({"im:write"}),
    "conversations.replies": frozenset({"channels:history", "groups:history", "im:history"}),
    "reactions.add": frozenset({"reactions:write"}),
    "usergroups.list": frozenset({"usergroups:read"}),
    "usergroups.users.list": frozenset({"usergroups:read"}),
    "users.info": frozenset({"users:read"}),
    "views.open": frozenset(),
    "views.push": frozenset(),
    "views.publish": frozenset(),
    "views.update": frozenset(),
}
# Bolt listener kinds and the scope each needs (actions and views need none: interactivity).
LISTENER_SCOPES: dict[str, frozenset[str]] = {
    "command": frozenset({"commands"}),
    "shortcut": frozenset({"commands"}),
    "action": frozenset(),
    "view": frozenset(),
    "view_closed": frozenset(),
    "view_submission": frozenset(),
}
EVENT_LISTENERS = {"event", "message"}  # need event_subscriptions in the manifest
# The bot scopes each event needs (https://api.slack.com/events/<event>, "Required scopes").
EVENT_SCOPES: dict[str, frozenset[str]] = {
    "app_home_opened": frozenset(),
    "subteam_members_changed": frozenset({"usergroups:read"}),
    "subteam_updated": frozenset({"usergroups:read"}),
}


def load(text: str) -> dict[str, Any]:
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    return data


def bot_sources() -> list[Path]:
    """The bot's own code: not the sandbox, which plays Slack rather than calling it."""
    return sorted(p for p in BOT.rglob("*.py") if "sandbox" not in p.relative_to(BOT).parts)


def web_api_names() -> dict[str, str]:
    """WebClient's Python method names → the Web API method each calls."""
    names = {}
    for name, member in vars(WebClient).items():
        if name.startswith("_") or not callable(member):
            continue
        match = re.search(r'api_call\(\s*"([a-zA-Z.]+)"', inspect.getsource(member))
        if match:
            names[name] = match.group(1)
    return names


def module_of(path: Path) -> Any:
    return importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))


def constant(node: ast.expr, path: Path) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return getattr(module_of(path), node.id)
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return getattr(getattr(module_of(path), node.value.id), node.attr)
    raise AssertionError(f"{path}:{node.lineno}: cannot resolve {ast.unparse(node)}")


def scan_bot() -> tuple[dict[str, list[str]], dict[str, list[Any]]]:
    """(Web API methods called → where, Bolt listener kinds → their ids/names)."""
    api_names = web_api_names()
    calls: dict[str, list[str]] = {}
    listeners: dict[str, list[Any]] = {}
    for path in bot_sources():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            func = node.func
            if isinstance(func, ast.Name) and func.id == "say":  # Bolt's say() posts a message
                calls.setdefault("chat.postMessage", []).append(where)
            if not isinstance(func, ast.Attribute):
                continue
            if func.attr in api_names:
                calls.setdefault(api_names[func.attr], []).append(where)
            elif func.attr in ("api_call", "apiCall") and node.args:
                calls.setdefault(str(constant(node.args[0], path)), []).append(where)
            elif (
                isinstance(func.value, ast.Name)
                and func.value.id == "app"
                and func.attr in {*LISTENER_SCOPES, *EVENT_LISTENERS}
            ):
                ident = constant(node.args[0], path) if node.args else None
                listeners.setdefault(func.attr, []).append(ident)
    return calls, listeners


def required_scopes() -> set[str]:
    calls, listeners = scan_bot()
    unknown = {m: w for m, w in calls.items() if m not in METHOD_SCOPES}
    assert not unknown, f"add these Web API methods to METHOD_SCOPES (and the manifest): {unknown}"
    scopes: set[str] = set()
    for method in calls:
        scopes |= METHOD_SCOPES[method]
    for kind, idents in listeners.items():
        scopes |= LISTENER_SCOPES.get(kind, frozenset())
        if kind in EVENT_LISTENERS:
            unknown_events = [e for e in idents if e not in EVENT_SCOPES]
            assert not unknown_events, f"add these events to EVENT_SCOPES: {unknown_events}"
            for event in idents:
                scopes |= EVENT_SCOPES[event]
    return scopes


# -- the scan itself finds what the bot is known to do --------------------------------------
def test_scan_finds_the_web_api_calls_the_bot_makes() -> None:
    calls, listeners = scan_bot()
    # The outbox posts and updates, actions open modals, approvers may be user groups.
    for method in ("chat.postMessage", "chat.update", "views.open", "usergroups.users.list"):
        assert method in calls, f"scan missed {method}: {sorted(calls)}"
    assert "command" in listeners and "action" in listeners and "view" in listeners
    # Direct messages to approvers and their App Home.
    assert "conversations.open" in calls and "views.publish" in calls
    assert "message" not in listeners, "message events would need a history scope per kind"


def test_manifest_subscribes_to_exactly_the_events_the_bot_listens_to() -> None:
    manifest = load(MANIFEST.read_text(encoding="utf-8"))
    _, listeners = scan_bot()
    events = manifest["settings"]["event_subscriptions"]
    assert events["request_url"] == PLACEHOLDER_URL
    assert sorted(events["bot_events"]) == sorted(listeners.get("event", []))
    assert "user_events" not in events, "a bot token only"
    # The Home tab the bot publishes is enabled; the bot reads no messages sent to it.
    assert manifest["features"]["app_home"] == {
        "home_tab_enabled": True,
        "messages_tab_enabled": True,
        "messages_tab_read_only_enabled": True,
    }
    assert {"subteam_members_changed", "subteam_updated"} <= set(listeners["event"])


def test_manifest_scopes_are_exactly_those_the_bot_uses() -> None:
    manifest = load(MANIFEST.read_text(encoding="utf-8"))
    scopes = manifest["oauth_config"]["scopes"]
    assert set(scopes) == {"bot"}, "a bot token only: no user scopes"
    declared = scopes["bot"]
    assert len(declared) == len(set(declared)), "a scope is listed twice"
    needed = required_scopes()
    assert set(declared) - needed == set(), "the manifest asks for scopes the bot never uses"
    assert needed - set(declared) == set(), "the bot calls methods whose scope is missing"


def test_manifest_command_is_the_one_the_bot_registers() -> None:
    manifest = load(MANIFEST.read_text(encoding="utf-8"))
    _, listeners = scan_bot()
    commands = manifest["features"]["slash_commands"]
    assert sorted(c["command"] for c in commands) == sorted(listeners["command"]) == ["/signoff"]


# -- the manifest is a valid Slack app manifest ---------------------------------------------
def test_manifest_is_a_valid_slack_app_manifest() -> None:
    manifest = load(MANIFEST.read_text(encoding="utf-8"))
    assert set(manifest) <= {
        "_metadata",
        "display_information",
        "features",
        "oauth_config",
        "settings",
    }
    assert manifest["_metadata"]["major_version"] == 1
    info = manifest["display_information"]
    assert 1 <= len(info["name"]) <= 35
    assert len(info.get("description", "")) <= 140
    assert re.fullmatch(r"#[0-9a-fA-F]{6}", info["background_color"])

    features = manifest["features"]
    bot_user = features["bot_user"]
    assert 1 <= len(bot_user["display_name"]) <= 80
    assert isinstance(bot_user["always_online"], bool)
    (command,) = features["slash_commands"]
    assert re.fullmatch(r"/[a-z0-9_-]{1,31}", command["command"])
    assert command["url"] == PLACEHOLDER_URL
    assert 0 < len(command["description"]) <= 140
    assert "run <workflow>" in command["usage_hint"] and "status <run_id>" in command["usage_hint"]
    assert command["should_escape"] is False

    settings = manifest["settings"]
    assert settings["interactivity"] == {"is_enabled": True, "request_url": PLACEHOLDER_URL}
    assert settings["org_deploy_enabled"] is False
    assert settings["socket_mode_enabled"] is False
    assert settings["token_rotation_enabled"] is False
    assert set(settings["event_subscriptions"]) == {"request_url", "bot_events"}


def test_request_path_is_the_one_the_server_serves() -> None:
    source = (BOT / "server.py").read_text(encoding="utf-8")
    assert 'Route("/slack/events", slack_events, methods=["POST"])' in source
    assert PLACEHOLDER_URL.endswith("/slack/events")


def test_packaged_manifest_is_the_one_in_manifests() -> None:
    assert manifest_template() == MANIFEST.read_text(encoding="utf-8")
    assert render_manifest(None) == manifest_template()


# -- signoff manifest --url -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://signoff.example.com", "https://signoff.example.com/slack/events"),
        ("https://signoff.example.com/", "https://signoff.example.com/slack/events"),
        (
            "https://example.com:8443/bots/signoff/",
            "https://example.com:8443/bots/signoff/slack/events",
        ),
        ("https://signoff.example.com/slack/events", "https://signoff.example.com/slack/events"),
    ],
)
def test_url_is_filled_in(given: str, expected: str) -> None:
    text = render_manifest(given)
    assert "YOUR-HOST/" not in text
    manifest = load(text)
    assert manifest["features"]["slash_commands"][0]["url"] == expected
    assert manifest["settings"]["interactivity"]["request_url"] == expected
    assert manifest["settings"]["event_subscriptions"]["request_url"] == expected
    # Everything but the URLs is unchanged.
    template = load(manifest_template())
    template["features"]["slash_commands"][0]["url"] = expected
    template["settings"]["interactivity"]["request_url"] = expected
    template["settings"]["event_subscriptions"]["request_url"] = expected
    assert manifest == template


@pytest.mark.parametrize(
    ("given", "complaint"),
    [
        ("http://signoff.example.com", "https://"),
        ("signoff.example.com", "https://"),
        ("https://", "no host"),
        ("https://example.com/?a=1", "query"),
        ("https://example.com/#top", "query or fragment"),
        ("https://user:pw@example.com", "credentials"),
        ("https://exa mple.com", "characters"),
        ('https://example.com/"x', "characters"),
        ("", "empty"),
    ],
)
def test_bad_urls_are_refused_with_one_clear_line(given: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=re.escape(complaint)) as info:
        request_url(given)
    assert "\n" not in str(info.value)
