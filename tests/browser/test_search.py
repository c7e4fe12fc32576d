"""Searching messages from the header: the shortcuts, highlighted snippets built as text,
paging, the scope, what an unsearchable query says, and opening a result at its permalink."""

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from stream_chat import accounts, chat, repo
from tests.browser.conftest import screenshot
from tests.browser.test_room_chat import open_as, send
from tests.support.servers import AppServer

pytestmark = pytest.mark.browser

ADA = "ada@streamchat.io"
MORE = 25  # matching messages in the room: more than one page


@dataclass
class Rooms:
    here: int
    there: int
    there_name: str
    # A word only this test module's messages have (the app's database is shared).
    word: str
    html_id: int
    there_id: int


@pytest.fixture(scope="module")
def rooms(app_server: AppServer) -> Rooms:
    repo.configure(app_server.database_url)
    tag = time.monotonic_ns()
    word = f"zephyr{tag % 100_000}"
    here = chat.create_room(f"search-here-{tag}", "Where the search starts.")
    there = chat.create_room(f"search-there-{tag}", "Another room.")
    grace = accounts.get_user_by_email("grace@streamchat.io")
    alan = accounts.get_user_by_email("alan@streamchat.io")
    for n in range(MORE - 1):
        chat.create_message(here.id, grace.id, f"status {word} number {n:02d}")  # type: ignore[arg-type,union-attr]
    html = chat.create_message(
        here.id,  # type: ignore[arg-type]
        alan.id,  # type: ignore[union-attr]
        f'<b>bold</b> <img src=x onerror="window.pwned=1"> {word} & more',
    )
    elsewhere = chat.create_message(there.id, grace.id, f"{word} lives elsewhere too")  # type: ignore[arg-type,union-attr]
    return Rooms(here.id, there.id, there.name, word, html.id, elsewhere.id)  # type: ignore[arg-type]


@pytest.fixture
def ada_here(browser: Browser, app_server: AppServer, rooms: Rooms) -> Iterator[Page]:
    page = open_as(browser, app_server, ADA, f"/rooms/{rooms.here}")
    yield page
    page.context.close()


def dialog(page: Page) -> Locator:
    return page.get_by_role("dialog", name="Search messages")


def field(page: Page) -> Locator:
    return page.get_by_role("combobox", name="Search for")


def options(page: Page) -> Locator:
    return page.locator("#search-results [role=option]")


def addresses_of(page: Page) -> list[str]:
    """Every address the page goes to from now on, client navigations included (the room
    drops `?m=` from its address once the linked message is shown)."""
    addresses: list[str] = []
    page.on("framenavigated", lambda frame: addresses.append(frame.url))
    return addresses


def went_to(addresses: list[str], pattern: str) -> bool:
    return any(re.search(pattern, address) for address in addresses)


def open_with_ctrl_k(page: Page) -> None:
    page.keyboard.press("Control+k")
    expect(dialog(page)).to_be_visible()
    expect(field(page)).to_be_focused()


def test_the_shortcuts_open_the_search_and_esc_gives_the_focus_back(ada_here: Page) -> None:
    page = ada_here
    composer = page.locator("#composer")
    expect(composer).to_be_focused()

    # Ctrl+K from the composer, and the composer has the focus again after Esc.
    open_with_ctrl_k(page)
    page.keyboard.press("Escape")
    expect(dialog(page)).to_be_hidden()
    expect(composer).to_be_focused()

    # `/` in a text field is a character, not a shortcut.
    page.keyboard.type("/")
    expect(composer).to_have_value("/")
    expect(dialog(page)).to_be_hidden()

    composer.fill("")
    page.locator("h1").click()
    page.keyboard.press("/")
    expect(dialog(page)).to_be_visible()
    expect(field(page)).to_be_focused()
    expect(field(page)).to_have_value("")
    page.keyboard.press("Escape")

    # The button, with its accessible name.
    page.get_by_role("button", name="Search messages").click()
    expect(field(page)).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.get_by_role("button", name="Search messages")).to_be_focused()


def test_another_dialog_keeps_its_keys(ada_here: Page) -> None:
    page = ada_here
    send(page, "a message of mine to edit")
    mine = page.locator("#message-list li", has_text="a message of mine to edit")
    mine.hover()
    mine.get_by_role("button", name="Edit").click()
    editor = page.get_by_role("dialog")
    expect(editor.get_by_label("Message text")).to_be_focused()
    page.keyboard.press("Control+k")
    page.locator("#edit-draft").blur()
    page.keyboard.press("/")
    expect(dialog(page)).to_have_count(0)
    expect(editor).to_have_count(1)


def test_snippets_mark_the_words_as_text_and_more_results_pages(
    ada_here: Page, rooms: Rooms
) -> None:
    page = ada_here
    open_with_ctrl_k(page)
    expect(dialog(page).get_by_role("radio", name="This room")).to_be_checked()
    # A prefix of the word, typed: searched after the pause.
    field(page).press_sequentially(rooms.word[:-2], delay=20)

    expect(options(page)).to_have_count(20)
    # Newest first: the message with HTML in it was the room's last.
    first = options(page).first
    expect(first).to_have_attribute("aria-selected", "true")
    expect(first.locator("mark")).to_have_text([rooms.word])
    expect(first).to_contain_text(f'<b>bold</b> <img src=x onerror="window.pwned=1"> {rooms.word}')
    assert first.locator("b, img").count() == 0
    assert page.evaluate("window.pwned") is None
    expect(first).to_contain_text("Alan Turing")
    marks = page.locator("#search-results mark")
    assert set(marks.all_inner_texts()) == {rooms.word}
    expect(options(page).nth(1)).to_contain_text(f"status {rooms.word} number 23")
    screenshot(page, "search-results-desktop")

    page.get_by_role("button", name="More results").click()
    expect(options(page)).to_have_count(MORE)
    expect(page.get_by_role("button", name="More results")).to_be_hidden()
    expect(options(page).last).to_contain_text(f"status {rooms.word} number 00")


def test_all_rooms_finds_another_rooms_message_and_enter_opens_it(
    ada_here: Page, rooms: Rooms
) -> None:
    page = ada_here
    addresses = addresses_of(page)
    open_with_ctrl_k(page)
    field(page).fill(f"{rooms.word} elsewhere")
    field(page).press("Enter")
    expect(page.locator("#search-nothing")).to_have_text(
        f"No messages match “{rooms.word} elsewhere”."
    )

    dialog(page).get_by_role("radio", name="All rooms").click()
    expect(options(page)).to_have_count(1)
    expect(options(page).first).to_contain_text(f"# {rooms.there_name}")
    field(page).focus()
    field(page).press("Enter")

    # The room opens at the message, highlighted for a moment (the permalink's own work).
    linked = page.locator(f"#messages-{rooms.there_id}")
    expect(linked).to_have_attribute("data-highlighted", "true")
    expect(dialog(page)).to_be_hidden()
    # The room's link to it (`?m=`) then leaves the address.
    expect(page).to_have_url(re.compile(rf"/rooms/{rooms.there}/?$"))
    expect(page.locator("h1")).to_have_text(f"# {rooms.there_name}")
    expect(linked).to_be_in_viewport()
    assert went_to(addresses, rf"/rooms/{rooms.there}/?\?m={rooms.there_id}$")


def test_arrows_move_the_selection_and_enter_opens_it(ada_here: Page, rooms: Rooms) -> None:
    page = ada_here
    addresses = addresses_of(page)
    open_with_ctrl_k(page)
    field(page).fill(rooms.word)
    expect(options(page)).to_have_count(20)
    field(page).press("ArrowDown")
    field(page).press("ArrowDown")
    field(page).press("ArrowUp")
    expect(options(page).nth(1)).to_have_attribute("aria-selected", "true")
    expect(field(page)).to_have_attribute("aria-activedescendant", "search-result-1")
    expect(options(page).first).to_have_attribute("aria-selected", "false")

    field(page).press("Enter")

    # The second newest, "number 23", in the room already open.
    linked = page.locator(f"#messages-{rooms.html_id - 1}")
    expect(linked).to_have_attribute("data-highlighted", "true")
    expect(linked).to_contain_text(f"status {rooms.word} number 23")
    expect(dialog(page)).to_be_hidden()
    assert went_to(addresses, rf"/rooms/{rooms.here}/?\?m={rooms.html_id - 1}$")


def test_a_click_opens_a_result(ada_here: Page, rooms: Rooms) -> None:
    page = ada_here
    page.get_by_role("button", name="Search messages").click()
    field(page).fill(rooms.word)
    options(page).nth(2).click()

    linked = page.locator(f"#messages-{rooms.html_id - 2}")
    expect(linked).to_have_attribute("data-highlighted", "true")
    expect(linked).to_contain_text(f"status {rooms.word} number 22")
    expect(dialog(page)).to_be_hidden()


def test_a_query_that_cannot_be_searched_says_what_to_change(ada_here: Page) -> None:
    page = ada_here
    open_with_ctrl_k(page)
    field(page).press("Enter")
    expect(page.locator("#search-error")).to_have_text("Type the words to search for.")
    field(page).fill("-- ** :")
    expect(page.locator("#search-error")).to_have_text(
        "Search for words or numbers: this search has none."
    )
    expect(page.locator("[data-sonner-toast]")).to_have_count(0)
    screenshot(page, "search-unsearchable-desktop")


@pytest.mark.parametrize(
    ("name", "viewport", "scheme"),
    [
        ("desktop", {"width": 1200, "height": 800}, "light"),
        ("phone", {"width": 390, "height": 844}, "light"),
        ("dark", {"width": 1200, "height": 800}, "dark"),
    ],
)
def test_the_search_as_seen_on_desktop_phone_and_in_dark_mode(
    browser: Browser, app_server: AppServer, rooms: Rooms, name: str, viewport: dict, scheme: str
) -> None:
    page = open_as(
        browser, app_server, ADA, f"/rooms/{rooms.here}", viewport=viewport, color_scheme=scheme
    )
    try:
        button = page.get_by_role("button", name="Search messages")
        expect(button).to_be_visible()
        # The header's buttons fit the screen, the room's long name cut short instead.
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        screenshot(page, f"search-button-{name}")
        button.click()
        field(page).fill(rooms.word)
        expect(options(page)).to_have_count(20)
        box = dialog(page).bounding_box()
        assert box is not None
        if name == "phone":
            assert box["x"] == 0 and box["width"] == viewport["width"]
        mark = page.locator("#search-results mark").first
        colours = mark.evaluate(
            "m => [getComputedStyle(m).color, getComputedStyle(m).backgroundColor]"
        )
        assert colours[0] != colours[1]
        screenshot(page, f"search-{name}")
    finally:
        page.context.close()


def test_on_a_mac_the_shortcut_is_cmd_k(
    browser: Browser, app_server: AppServer, rooms: Rooms
) -> None:
    page = open_as(browser, app_server, ADA, f"/rooms/{rooms.here}")
    try:
        page.context.add_init_script(
            "Object.defineProperty(navigator, 'platform', {get: () => 'MacIntel'})"
        )
        page.reload()
        expect(page.locator("#search-shortcut-hint")).to_have_text("⌘K")
        page.keyboard.press("Meta+k")
        expect(dialog(page)).to_be_visible()
        expect(field(page)).to_be_focused()
    finally:
        page.context.close()
