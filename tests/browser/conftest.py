"""One production-mode app and one headless Chromium for the browser tests."""

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.support.fake_openai import FakeOpenAI
from tests.support.servers import PROJECT_ROOT, AppServer, prepared_database, start_app

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = PROJECT_ROOT / "test-artifacts" / "screenshots"


@pytest.fixture(scope="session")
def fake_model() -> Iterator[FakeOpenAI]:
    """The model server the browser tests' app talks to (OpenAI-compatible, on loopback)."""
    with FakeOpenAI() as fake:
        yield fake


def model_env(fake: FakeOpenAI) -> dict[str, str]:
    """The environment that points an app's assistant at the fake model server."""
    return {
        "OPENAI_BASE_URL": fake.base_url,
        "OPENAI_API_KEY": "test-key",
        "ASSISTANT_IDLE_TIMEOUT": "3",
        "ASSISTANT_MAX_RETRIES": "1",
        "ASSISTANT_REQUESTS_PER_MINUTE": "100",
    }


@pytest.fixture(scope="session")
def app_server(
    tmp_path_factory: pytest.TempPathFactory, fake_model: FakeOpenAI
) -> Iterator[AppServer]:
    workdir = tmp_path_factory.mktemp("app")
    database_url = f"sqlite:///{workdir / 'browser.db'}"
    prepared_database(database_url)
    server = start_app(
        database_url,
        workdir / "app.log",
        extra_env={"STREAM_CHAT_TEST_PAGES": "1", **model_env(fake_model)},
    )
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    context.set_default_timeout(20_000)
    page = context.new_page()
    yield page
    context.close()


def landed_on(base: str, path: str) -> re.Pattern[str]:
    """`path` after a log in: the page loads anew from the backend's redirect, and the
    production server's static files add a trailing slash to a page's folder."""
    return re.compile(rf"^{re.escape(base + path)}/?$")


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=path, full_page=True)
    return path
