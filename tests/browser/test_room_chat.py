"""The room chat as two people use it, each in their own browser context."""

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from stream_chat import accounts, chat, repo
from tests.browser.conftest import screenshot
from tests.browser.test_accounts_and_rooms import landed_on
from tests.support.servers import AppServer

pytestmark = pytest.mark.browser

PASSWORD = "streamchat-demo"
HISTORY_ROOM = "long-history"
HISTORY_SIZE = 200


@pytest.fixture(scope="module")
def long_room(app_server: AppServer) -> int:
    """A room with 200 messages from two senders, created through the Chat context."""
    repo.configure(app_server.database_url)
    room = chat.create_room(HISTORY_ROOM, "Two hundred messages to scroll back through.")
    senders = [
        accounts.get_user_by_email(email) for email in ("grace@streamchat.io", "alan@streamchat.io")
    ]
    for n in range(HISTORY_SIZE):
        chat.create_message(room.id, senders[n % 2].id, f"history message {n:03d}")
    return room.id


def open_as(
    browser: Browser, server: AppServer, email: str, path: str, **context_options: Any
) -> Page:
    context = browser.new_context(**{"viewport": {"width": 1100, "height": 700}, **context_options})
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.goto(f"{server.base_url}/login?next={path}")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(landed_on(server.base_url, path))
    expect(page.locator("#message-list li, #empty-room").first).to_be_visible()
    return page


@pytest.fixture
def ada_and_grace(browser: Browser, app_server: AppServer) -> Iterator[tuple[Page, Page]]:
    ada = open_as(browser, app_server, "ada@streamchat.io", "/rooms/1")
    grace = open_as(browser, app_server, "grace@streamchat.io", "/rooms/1")
    yield ada, grace
    ada.context.close()
    grace.context.close()


def send(page: Page, text: str) -> None:
    page.locator("#composer").fill(text)
    page.locator("#composer").press("Enter")


def row_with(page: Page, text: str):
    return page.locator("#message-list li", has_text=text)


def scroller_offset_from_bottom(page: Page) -> float:
    return page.eval_on_selector(
        "#message-scroller", "s => s.scrollHeight - s.scrollTop - s.clientHeight"
    )


def test_send_edit_and_delete_reach_the_other_member_live(ada_and_grace) -> None:
    ada, grace = ada_and_grace
    send(ada, "Lunch at **noon**?")
    expect(row_with(grace, "Lunch at noon?")).to_be_visible()
    expect(row_with(ada, "Lunch at noon?")).to_have_attribute("data-mine", "true")
    expect(row_with(grace, "Lunch at noon?")).to_have_attribute("data-mine", "false")
    expect(ada.locator("#composer")).to_have_value("")

    mine = row_with(ada, "Lunch at noon?")
    mine.hover()
    mine.get_by_role("button", name="Edit").click()
    editor = ada.get_by_role("dialog")
    editor.get_by_label("Message text").fill("Lunch at one instead?")
    editor.get_by_role("button", name="Save").click()
    expect(row_with(grace, "Lunch at one instead?")).to_be_visible()
    expect(row_with(grace, "Lunch at one instead?").locator(".edited")).to_have_text("(edited)")
    expect(row_with(grace, "Lunch at noon?")).to_have_count(0)
    screenshot(grace, "room-edited-seen-by-grace")

    # Grace gets no Edit or Delete on Ada's message.
    expect(row_with(grace, "Lunch at one instead?").get_by_role("button")).to_have_count(0)

    mine = row_with(ada, "Lunch at one instead?")
    mine.hover()
    mine.get_by_role("button", name="Delete").click()
    ada.get_by_role("alertdialog").get_by_role("button", name="Delete").click()
    expect(row_with(grace, "Lunch at one instead?")).to_have_count(0)
    expect(row_with(ada, "Lunch at one instead?")).to_have_count(0)


def test_markup_in_messages_is_inert(ada_and_grace) -> None:
    ada, grace = ada_and_grace
    send(ada, 'hi <img src=x onerror="window.__pwned=1"> <script>window.__pwned=2</script>')
    row = row_with(grace, "hi")
    expect(row.last).to_contain_text("<script>")
    assert grace.locator("#message-list img").count() == 0
    assert grace.evaluate("() => window.__pwned") is None


def test_shift_enter_adds_a_line_and_bad_input_keeps_the_draft(ada_and_grace) -> None:
    ada, _ = ada_and_grace
    composer = ada.locator("#composer")
    composer.fill("first line")
    composer.press("Shift+Enter")
    composer.type("second line")
    expect(composer).to_have_value("first line\nsecond line")
    rows_before = ada.locator("#message-list li").count()

    composer.fill("   ")
    composer.press("Enter")
    ada.wait_for_timeout(500)
    assert ada.locator("#message-list li").count() == rows_before

    too_long = "x" * 4001
    composer.fill(too_long)
    composer.press("Enter")
    expect(ada.locator("#composer-count")).to_contain_text("at most 4,000 characters")
    expect(composer).to_have_value(too_long)


def test_arrow_up_in_an_empty_composer_edits_my_last_message(ada_and_grace) -> None:
    ada, grace = ada_and_grace
    send(ada, "typo in this mesage")
    expect(row_with(ada, "typo in this mesage")).to_be_visible()
    ada.locator("#composer").press("ArrowUp")
    editor = ada.get_by_role("dialog")
    expect(editor.get_by_label("Message text")).to_have_value("typo in this mesage")
    editor.get_by_label("Message text").fill("no typo in this message")
    editor.get_by_role("button", name="Save").click()
    expect(row_with(grace, "no typo in this message")).to_be_visible()


def test_scroll_back_through_the_whole_history_to_the_start(
    browser: Browser, app_server: AppServer, long_room: int
) -> None:
    page = open_as(browser, app_server, "ada@streamchat.io", f"/rooms/{long_room}")
    try:
        assert scroller_offset_from_bottom(page) < 5, "a room opens at the bottom"
        expect(page.locator("#message-list li")).to_have_count(20)
        for _ in range(HISTORY_SIZE // 20 + 2):
            if page.locator("#start-of-room").is_visible():
                break
            first = page.locator("#message-list li").first.get_attribute("id")
            page.eval_on_selector("#message-scroller", "s => { s.scrollTop = 0 }")
            page.wait_for_function(
                "id => document.querySelector('#message-list li').id !== id"
                " || document.getElementById('start-of-room')",
                arg=first,
            )
        expect(page.locator("#start-of-room")).to_have_text(f"This is the start of #{HISTORY_ROOM}")
        # The window holds the room's first three pages, not the whole history.
        texts = page.locator("#message-list li .message-body").all_inner_texts()
        assert texts == [f"history message {n:03d}" for n in range(60)]
        screenshot(page, "room-start-of-history")
    finally:
        page.context.close()


def test_older_messages_do_not_move_the_message_being_read(
    browser: Browser, app_server: AppServer, long_room: int
) -> None:
    page = open_as(browser, app_server, "ada@streamchat.io", f"/rooms/{long_room}")
    try:
        reading = page.locator("#message-list li").nth(2)
        reading_text = reading.inner_text()
        top_before = reading.bounding_box()["y"]
        page.eval_on_selector("#message-scroller", "s => { s.scrollTop = 0 }")
        expect(page.locator("#message-list li")).to_have_count(40)
        moved = row_with(page, reading_text.splitlines()[-1]).bounding_box()["y"]
        # Scrolling to the top moved it down by the scroll distance; the prepend did not.
        assert page.eval_on_selector("#message-scroller", "s => s.scrollTop") > 0
        assert moved >= top_before - 2
    finally:
        page.context.close()


def test_new_messages_pill_when_scrolled_up_and_own_messages_always_scroll(
    browser: Browser, app_server: AppServer, long_room: int
) -> None:
    reader = open_as(browser, app_server, "grace@streamchat.io", f"/rooms/{long_room}")
    writer = open_as(browser, app_server, "alan@streamchat.io", f"/rooms/{long_room}")
    try:
        reader.eval_on_selector("#message-scroller", "s => { s.scrollTop = 40 }")
        reader.wait_for_timeout(300)
        send(writer, "did everyone see the deploy note?")
        expect(row_with(reader, "did everyone see the deploy note?")).to_have_count(1)
        pill = reader.locator("#new-messages-pill")
        expect(pill).to_be_visible()
        assert scroller_offset_from_bottom(reader) > 100, "the reader was not pulled down"
        screenshot(reader, "room-new-messages-pill")
        pill.click()
        expect(pill).to_be_hidden()
        reader.wait_for_function(
            "() => { const s = document.getElementById('message-scroller');"
            " return s.scrollHeight - s.scrollTop - s.clientHeight < 5 }"
        )

        # At the bottom, a new message scrolls into view with no pill.
        send(writer, "yes, all good")
        expect(row_with(reader, "yes, all good")).to_be_in_viewport()
        expect(pill).to_be_hidden()

        # Scrolled up, the reader's own message still scrolls into view.
        reader.eval_on_selector("#message-scroller", "s => { s.scrollTop = 40 }")
        reader.wait_for_timeout(300)
        send(reader, "my own reply")
        expect(row_with(reader, "my own reply")).to_be_in_viewport()
    finally:
        reader.context.close()
        writer.context.close()


def test_switching_rooms_stops_the_previous_rooms_messages(ada_and_grace) -> None:
    ada, grace = ada_and_grace
    grace.get_by_role("navigation", name="Rooms").get_by_role("link", name="# random").click()
    expect(grace.get_by_role("heading", name="# random")).to_be_visible()
    expect(grace).to_have_url(re.compile(r"/rooms/5$"))
    send(ada, "only for weekend-plans")
    expect(row_with(ada, "only for weekend-plans")).to_be_visible()
    grace.wait_for_timeout(1000)
    expect(row_with(grace, "only for weekend-plans")).to_have_count(0)


def _eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
    return False


def subscribers(lab: Page, room_id: int) -> int:
    lab.fill("#subscribers-room", str(room_id))
    lab.get_by_role("button", name="Count subscribers").click()
    lab.wait_for_timeout(300)
    return int(lab.inner_text("#room-subscribers"))


def test_leaving_the_page_ends_the_subscription(browser: Browser, app_server: AppServer) -> None:
    repo.configure(app_server.database_url)
    room = chat.create_room("quiet-corner", "A room nobody else opens.")
    lab_context = browser.new_context()
    lab = lab_context.new_page()
    lab.goto(f"{app_server.base_url}/_stream_lab")
    expect(lab.locator("#empty-flag")).to_be_visible()
    reader = open_as(browser, app_server, "ada@streamchat.io", f"/rooms/{room.id}")
    try:
        assert _eventually(lambda: subscribers(lab, room.id) == 1)
        # Another page of the app: the room's follower is cancelled with the page.
        reader.get_by_role("navigation", name="Rooms").get_by_role("link", name="# random").click()
        expect(reader.get_by_role("heading", name="# random")).to_be_visible()
        assert _eventually(lambda: subscribers(lab, room.id) == 0)
        # Back, then the tab closes.
        reader.goto(f"{app_server.base_url}/rooms/{room.id}")
        assert _eventually(lambda: subscribers(lab, room.id) == 1)
        reader.close()
        assert _eventually(lambda: subscribers(lab, room.id) == 0)
    finally:
        reader.context.close()
        lab_context.close()


def test_a_reconnect_re_streams_without_losing_or_doubling(ada_and_grace) -> None:
    ada, grace = ada_and_grace
    grace.context.set_offline(True)
    grace.wait_for_timeout(500)
    for text in ("sent while grace was away 1", "sent while grace was away 2"):
        send(ada, text)
        expect(row_with(ada, text)).to_be_visible()
    grace.context.set_offline(False)
    for text in ("sent while grace was away 1", "sent while grace was away 2"):
        expect(row_with(grace, text)).to_have_count(1, timeout=30_000)
    ids = grace.eval_on_selector_all("#message-list li", "rows => rows.map(r => r.id)")
    assert len(ids) == len(set(ids))
