"""The Slack app manifest (``signoff manifest [--url https://…]``).

The manifest ships inside the package (``bot/slack-app.yaml``, a copy of
``manifests/slack-app.yaml`` that a test keeps identical), so an installed ``signoff`` prints
it without the repository at hand. Filling in the URL is a plain text replacement of the
placeholder: no YAML library needed at run time.
"""

from __future__ import annotations

import re
from importlib.resources import files
from urllib.parse import urlsplit

MANIFEST_RESOURCE = "slack-app.yaml"
PLACEHOLDER_BASE = "https://YOUR-HOST"
EVENTS_PATH = "/slack/events"
PLACEHOLDER_URL = PLACEHOLDER_BASE + EVENTS_PATH
# What may appear in the URL unquoted in YAML and unescaped in a URL.
_URL_CHARS = re.compile(r"^[A-Za-z0-9._~:/@%+=!$&'()*,;-]+$")


def manifest_template() -> str:
    """The manifest as shipped, with ``https://YOUR-HOST/slack/events`` placeholders."""
    return files("bot").joinpath(MANIFEST_RESOURCE).read_text(encoding="utf-8")


def request_url(base_url: str) -> str:
    """``https://host[/prefix]`` → ``https://host[/prefix]/slack/events``.

    Raises ValueError with one clear line when the URL cannot be Slack's request URL.
    """
    url = base_url.strip()
    if not url:
        raise ValueError(
            "--url is empty; give the bot's public base URL, e.g. https://signoff.example.com"
        )
    if "?" in url or "#" in url:
        raise ValueError(f"--url {base_url!r} must not have a query or fragment")
    if not _URL_CHARS.match(url):
        raise ValueError(f"--url {base_url!r} has characters that do not belong in a URL")
    parts = urlsplit(url)
    if parts.scheme != "https":
        raise ValueError(
            f"--url {base_url!r} must start with https:// (Slack calls only HTTPS URLs)"
        )
    if not parts.hostname:
        raise ValueError(f"--url {base_url!r} has no host")
    if parts.username or parts.password:
        raise ValueError(f"--url {base_url!r} must not contain credentials")
    path = parts.path.rstrip("/")
    if path.endswith(EVENTS_PATH):  # given the full request URL: take it as meant
        path = path[: -len(EVENTS_PATH)]
    return f"https://{parts.netloc}{path}{EVENTS_PATH}"


def render_manifest(url: str | None) -> str:
    """The manifest with its request URLs set to ``{url}/slack/events``; without a URL, the
    template as is."""
    template = manifest_template()
    if url is None:
        return template
    return template.replace(PLACEHOLDER_URL, request_url(url))
