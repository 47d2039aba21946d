"""The local sandbox in-process on free ports, and a real headless Chromium driven by Playwright.

The browser is Debian's ``chromium`` (``apt-get install chromium``), never one downloaded by
``playwright install``; ``SIGNOFF_CHROMIUM`` points elsewhere. Without it the tests skip.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from bot.config import Settings
from bot.sandbox.run import Sandbox

expect.set_options(timeout=15_000)  # the bot's work runs in the background; be patient

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def find_chromium() -> str | None:
    candidates = [
        os.environ.get("SIGNOFF_CHROMIUM"),
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ]
    return next((c for c in candidates if c and Path(c).is_file()), None)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = find_chromium()
    if path is None:
        pytest.skip("chromium not found (apt-get install chromium, or set SIGNOFF_CHROMIUM)")
    return path


@pytest.fixture(scope="session")
def browser(chromium_path: str) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    """The sandbox as ``signoff sandbox`` runs it, on free ports and a throwaway SQLite file."""
    import examples.pipelines

    monkeypatch.setattr(examples.pipelines, "OUTPUT_DIR", tmp_path / "output")
    # The example workflows are module-level objects and the bot gives a workflow without a
    # database its own: forget the previous test's database so each test gets its own.
    for workflow in examples.pipelines.workflows:
        monkeypatch.setattr(workflow, "_db", None)
    settings = Settings(SIGNOFF_DATABASE_URL=f"sqlite:///{tmp_path / 'signoff.db'}")
    with Sandbox(settings) as running:
        yield running


@pytest.fixture
def page(browser: Browser, sandbox: Sandbox) -> Iterator[Page]:
    """A fresh browser context (own localStorage) on the sandbox page; JS errors fail the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    opened.goto(sandbox.page_url)
    try:
        yield opened
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
