"""The README's static deploy as a user runs it: exported files on a static server with the
SPA fallback, the backend alone on another port, two users chatting through it."""

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.test_room_chat import open_as, row_with, send
from tests.support.servers import AppServer, prepared_database, start_static_deploy

pytestmark = pytest.mark.browser

ROOM = "/rooms/2"


@pytest.fixture(scope="module")
def deploy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    workdir = tmp_path_factory.mktemp("static")
    database_url = f"sqlite:///{workdir / 'static.db'}"
    prepared_database(database_url)
    backend, site = start_static_deploy(database_url, workdir / "backend.log")
    yield backend
    backend.stop()
    site.terminate()
    site.wait(timeout=10)


def test_deep_links_reload_and_messages_cross_from_the_static_site(
    deploy: AppServer, browser: Browser
) -> None:
    assert deploy.base_url != deploy.backend_url
    ada = open_as(browser, deploy, "ada@streamchat.io", ROOM)
    response = ada.reload()
    assert response is not None and response.status == 200
    expect(ada).to_have_url(f"{deploy.base_url}{ROOM}")
    expect(ada.locator("#message-list li").first).to_be_visible()

    grace = open_as(browser, deploy, "grace@streamchat.io", ROOM)
    send(ada, "sent through the static deploy")
    expect(row_with(grace, "sent through the static deploy")).to_be_visible()
    ada.context.close()
    grace.context.close()
