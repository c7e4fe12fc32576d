"""Presence, the members panel and the typing line, with two or three people in Chromium."""

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from stream_chat import accounts, chat, repo
from tests.browser.conftest import screenshot
from tests.browser.test_room_chat import open_as
from tests.support.servers import AppServer

pytestmark = pytest.mark.browser

ROOM = "awareness"


@pytest.fixture(scope="module")
def room_path(app_server: AppServer) -> str:
    """A room of its own, where Grace and Alan have posted (so their dots show on rows)."""
    repo.configure(app_server.database_url)
    room = chat.create_room(ROOM, "Who is here, who is typing.")
    for email, text in (
        ("grace@streamchat.io", "Grace was here"),
        ("alan@streamchat.io", "Alan too"),
    ):
        user = accounts.get_user_by_email(email)
        chat.create_message(room.id, user.id, text)  # type: ignore[arg-type, union-attr]
    return f"/rooms/{room.id}"


def user_id(email: str) -> int:
    return accounts.get_user_by_email(email).id  # type: ignore[return-value, union-attr]


# Whether the dot (the avatar slot's ::after) of the user's first message row is drawn.
DOT_SHOWN = (
    "([id, shown]) => (getComputedStyle(document.querySelector("
    "`#message-list .avatar-slot[data-user-id=\"${id}\"]`), '::after').display !== 'none')"
    " === shown"
)


def wait_for_dot(page: Page, email: str, shown: bool) -> None:
    page.wait_for_function(DOT_SHOWN, arg=[user_id(email), shown])


def open_members(page: Page) -> None:
    page.locator("#members-toggle").click()
    expect(page.locator("#members-panel")).to_be_visible()


def members_here(page: Page) -> list[str]:
    return page.locator("#members-here li.member").all_inner_texts()


@pytest.fixture
def ada(browser: Browser, app_server: AppServer, room_path: str) -> Iterator[Page]:
    page = open_as(browser, app_server, "ada@streamchat.io", room_path)
    yield page
    page.context.close()


def test_presence_appears_and_disappears_when_a_context_closes(
    ada: Page, browser: Browser, app_server: AppServer, room_path: str
) -> None:
    open_members(ada)
    expect(ada.locator("#members-here")).to_contain_text("Ada Lovelace (you)")
    # Your own tab counts you as online (it asked for the pictures once it listened).
    expect(ada.locator("#members-here li", has_text="Ada Lovelace")).to_contain_text("online")
    expect(ada.locator("#members-others")).to_contain_text("Grace Hopper")
    expect(ada.locator("#members-others li", has_text="Grace Hopper")).to_contain_text("offline")
    wait_for_dot(ada, "grace@streamchat.io", False)

    grace = open_as(browser, app_server, "grace@streamchat.io", room_path)
    grace_row = ada.locator("#members-here li", has_text="Grace Hopper")
    expect(grace_row).to_contain_text("online")
    expect(ada.locator("#members-toggle")).to_have_text("2")
    expect(ada.locator("#members-others")).not_to_contain_text("Grace Hopper")
    wait_for_dot(ada, "grace@streamchat.io", True)
    screenshot(ada, "awareness-members-desktop")

    grace.context.close()
    expect(ada.locator("#members-here")).not_to_contain_text("Grace Hopper")
    expect(ada.locator("#members-others li", has_text="Grace Hopper")).to_contain_text("offline")
    expect(ada.locator("#members-toggle")).to_have_text("1")
    wait_for_dot(ada, "grace@streamchat.io", False)


def test_typing_shows_for_the_others_and_clears(
    ada: Page, browser: Browser, app_server: AppServer, room_path: str
) -> None:
    grace = open_as(browser, app_server, "grace@streamchat.io", room_path)
    alan = open_as(browser, app_server, "alan@streamchat.io", room_path)
    try:
        line = ada.locator("#typing-line")
        expect(line).to_have_text("")
        grace.locator("#composer").press_sequentially("hello every")
        expect(line).to_have_text("Grace Hopper is typing…")
        # Never your own.
        expect(grace.locator("#typing-line")).to_have_text("")

        alan.locator("#composer").press_sequentially("me too")
        expect(line).to_have_text("Grace Hopper and Alan Turing are typing…")
        expect(grace.locator("#typing-line")).to_have_text("Alan Turing is typing…")
        open_members(ada)
        screenshot(ada, "awareness-typing-desktop")

        # A cleared draft stops at once; a sent one too.
        grace.locator("#composer").fill("")
        expect(line).to_have_text("Alan Turing is typing…")
        alan.locator("#composer").press("Enter")
        expect(ada.locator("#message-list")).to_contain_text("me too")
        expect(line).to_have_text("")
    finally:
        grace.context.close()
        alan.context.close()


def test_an_idle_draft_stops_typing_by_itself(
    ada: Page, browser: Browser, app_server: AppServer, room_path: str
) -> None:
    grace = open_as(browser, app_server, "grace@streamchat.io", room_path)
    try:
        grace.locator("#composer").press_sequentially("thinking about it")
        line = ada.locator("#typing-line")
        expect(line).to_have_text("Grace Hopper is typing…")
        # Five seconds without a key: "stopped" goes out, the draft stays.
        expect(line).to_have_text("", timeout=12_000)
        expect(grace.locator("#composer")).to_have_value("thinking about it")
    finally:
        grace.context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_members_sheet_and_typing_line_on_a_phone(
    browser: Browser, app_server: AppServer, room_path: str, scheme: str
) -> None:
    phone = open_as(
        browser,
        app_server,
        "ada@streamchat.io",
        room_path,
        viewport={"width": 390, "height": 844},
        color_scheme=scheme,
        has_touch=True,
        is_mobile=True,
    )
    grace = open_as(browser, app_server, "grace@streamchat.io", room_path)
    try:
        grace.locator("#composer").press_sequentially("on my way")
        expect(phone.locator("#typing-line")).to_have_text("Grace Hopper is typing…")
        phone.locator("#members-toggle").click()
        panel = phone.locator("#members-panel")
        expect(panel).to_be_visible()
        expect(panel.locator("#members-here")).to_contain_text("Grace Hopper")
        box = panel.bounding_box()
        assert box is not None
        # A sheet over the bottom of the screen, the screen's width.
        assert box["width"] == 390
        assert abs(box["y"] + box["height"] - 844) < 2
        phone.screenshot(path=screenshot_path(f"awareness-phone-{scheme}"))
        panel.get_by_role("button", name="Close the members panel").click()
        expect(panel).to_be_hidden()
    finally:
        grace.context.close()
        phone.context.close()


def screenshot_path(name: str) -> str:
    from tests.browser.conftest import SCREENSHOTS

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return str(SCREENSHOTS / f"{name}.png")
