"""The length limit as a writer meets it: a counter near 4,000 characters, a draft over it
kept and not sent, and a pasted megabyte that never reaches the socket (socket.io closes
the connection, without a word, on a frame over 1 MB)."""

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import screenshot
from tests.browser.test_room_chat import open_as, row_with, send
from tests.support.servers import AppServer

pytestmark = pytest.mark.browser

MEGABYTE = "y" * 1_000_000


@pytest.fixture
def ada(browser: Browser, app_server: AppServer) -> Iterator[Page]:
    page = open_as(browser, app_server, "ada@streamchat.io", "/rooms/2")
    yield page
    page.context.close()


def test_the_composer_counts_near_the_limit_and_keeps_a_draft_over_it(ada: Page) -> None:
    composer, counter = ada.locator("#composer"), ada.locator("#composer-count")
    composer.fill("z" * 100)
    expect(counter).to_be_hidden()
    composer.fill("z" * 3700)
    expect(counter).to_have_text("3,700 / 4,000")
    composer.fill(MEGABYTE)
    composer.press("Enter")
    expect(counter).to_contain_text("a message can be at most 4,000 characters.")
    screenshot(ada, "composer-over-the-limit")
    assert len(composer.input_value()) == 8000  # what the text area holds at most
    # Nothing was sent, and the socket is still open: the next message goes through.
    send(ada, "after the megabyte")
    expect(row_with(ada, "after the megabyte")).to_be_visible()
    expect(counter).to_be_hidden()


def test_a_pasted_megabyte_in_the_edit_box_does_not_close_the_socket(ada: Page) -> None:
    send(ada, "to be edited")
    expect(row_with(ada, "to be edited")).to_be_visible()
    ada.locator("#composer").press("ArrowUp")
    draft = ada.locator("#edit-draft")
    expect(draft).to_have_value("to be edited")
    draft.fill(MEGABYTE)
    expect(ada.locator("#edit-draft-count")).to_have_text("8000 / 4,000")
    ada.get_by_role("button", name="Save").click()
    expect(ada.get_by_role("dialog").get_by_role("alert")).to_contain_text("4,000")
    ada.get_by_role("button", name="Cancel").click()
    send(ada, "still connected")
    expect(row_with(ada, "still connected")).to_be_visible()
