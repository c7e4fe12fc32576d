"""Unread counts, the "New messages" divider and mention notifications, as people see them:
several users, several tabs each, in headless Chromium against the production build."""

import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from stream_chat import accounts, chat, mentions, repo, unread
from tests.browser.conftest import screenshot
from tests.browser.test_room_chat import open_as, row_with, send
from tests.support.servers import AppServer

pytestmark = pytest.mark.browser

ADA, GRACE, ALAN = "ada@streamchat.io", "grace@streamchat.io", "alan@streamchat.io"

# Before the page's scripts: Notification is recorded instead of shown (its permission is
# the test's to set), and the page can be hidden and shown again (`window.__hidden` and a
# `visibilitychange` event), as a background tab is.
OBSERVE_NOTIFICATIONS = """
window.__notifications = [];
window.__permissionRequests = 0;
window.__permission = window.__initialPermission || "default";
class RecordedNotification {
  constructor(title, options) {
    window.__notifications.push({ title, body: options?.body ?? "", tag: options?.tag ?? "" });
  }
  static get permission() { return window.__permission; }
  static requestPermission() {
    window.__permissionRequests += 1;
    window.__permission = "granted";
    return Promise.resolve("granted");
  }
}
window.Notification = RecordedNotification;
Object.defineProperty(document, "visibilityState", {
  configurable: true, get: () => (window.__hidden ? "hidden" : "visible"),
});
Object.defineProperty(document, "hidden", { configurable: true, get: () => !!window.__hidden });
"""
NO_NOTIFICATIONS = "delete window.Notification;"


def say(page: Page, text: str) -> None:
    """Sends a message and waits until it is stored (the composer is cleared then), so the
    next one is not typed into a composer about to be cleared."""
    send(page, text)
    expect(page.locator("#composer")).to_have_value("")


def set_hidden(page: Page, hidden: bool) -> None:
    page.evaluate(
        "(hidden) => { window.__hidden = hidden; "
        "document.dispatchEvent(new Event('visibilitychange')); }",
        hidden,
    )


def user_id(email: str) -> int:
    user = accounts.get_user_by_email(email)
    assert user is not None and user.id is not None
    return user.id


def read_everything(*emails: str) -> None:
    """These users have read every room: what the test posts is all they have unread."""
    for email in emails:
        for room in chat.list_rooms():
            unread.do_mark_room_read(user_id(email), room.id)  # type: ignore[arg-type]


def new_rooms(app_server: AppServer, *names: str) -> list[Any]:
    repo.configure(app_server.database_url)
    stamp = time.monotonic_ns() % 1_000_000
    return [
        chat.create_room(f"{name}-{stamp}", f"The {name} room of the unread tests.")
        for name in names
    ]


def room_link(page: Page, room: Any):
    return (
        page.get_by_role("navigation", name="Rooms")
        .locator(f'a.room-link[href="/rooms/{room.id}"]')
        .first
    )


def badge(page: Page, room: Any):
    return room_link(page, room).locator(".unread-badge")


def mention_badge(page: Page, room: Any):
    return room_link(page, room).locator(".mention-badge")


def open_tab(page: Page, app_server: AppServer, path: str) -> Page:
    """Another tab of the same person (same browser context, same session cookie)."""
    tab = page.context.new_page()
    tab.goto(f"{app_server.base_url}{path}")
    expect(tab.get_by_role("navigation", name="Rooms").first).to_be_visible()
    return tab


def mention_of(email: str) -> str:
    user = accounts.get_user_by_email(email)
    assert user is not None and user.id is not None
    return mentions.mention_text(user.id, user.name)


@pytest.fixture
def contexts(browser: Browser) -> Iterator[list[Page]]:
    """The pages the test opened; their contexts close after it."""
    pages: list[Page] = []
    yield pages
    for page in pages:
        page.context.close()


def test_unread_counts_rise_live_and_clear_on_open_in_every_tab(
    browser: Browser, app_server: AppServer, contexts: list[Page]
) -> None:
    here, busy = new_rooms(app_server, "here", "busy")
    read_everything(ADA, GRACE, ALAN)
    ada = open_as(browser, app_server, ADA, f"/rooms/{here.id}")
    contexts.append(ada)
    ada_index = open_tab(ada, app_server, "/rooms")
    grace = open_as(browser, app_server, GRACE, f"/rooms/{busy.id}")
    alan = open_as(browser, app_server, ALAN, f"/rooms/{here.id}")
    contexts += [grace, alan]
    for tab in (ada, ada_index, alan):
        expect(badge(tab, busy)).to_have_count(0)

    for n in range(3):
        say(grace, f"busy line {n}")
    say(grace, f"{mention_of(ADA)} can you look?")

    for tab in (ada, ada_index, alan):
        expect(badge(tab, busy)).to_have_text("4 unread")
        expect(room_link(tab, busy)).to_have_attribute("data-unread", "true")
    expect(mention_badge(ada, busy)).to_have_text("@1 mentions")
    expect(mention_badge(ada_index, busy)).to_have_text("@1 mentions")
    # Alan was not mentioned; and Grace, who wrote them, has nothing unread.
    expect(mention_badge(alan, busy)).to_have_count(0)
    expect(badge(grace, busy)).to_have_count(0)
    expect(ada).to_have_title(f"(4) #{here.name} · StreamChat")
    expect(ada_index).to_have_title("(4) Rooms · StreamChat")
    screenshot(ada_index, "unread-sidebar-desktop")

    # Ada opens the room in one tab: the divider is above the first unread message, and the
    # count clears in her other tab too (the page saw the bottom), not in Alan's.
    room_link(ada, busy).click()
    divider = ada.locator("#unread-divider")
    expect(divider).to_be_visible()
    first_unread = row_with(ada, "busy line 0")
    expect(first_unread.locator("#unread-divider")).to_have_count(1)
    expect(badge(ada_index, busy)).to_have_count(0)
    expect(mention_badge(ada_index, busy)).to_have_count(0)
    expect(ada_index).to_have_title("Rooms · StreamChat")
    expect(ada).to_have_title(f"#{busy.name} · StreamChat")
    expect(badge(alan, busy)).to_have_text("4 unread")
    assert unread.check_last_read(user_id(ADA), busy.id) == max(
        m.id for m in chat.last_messages(busy.id)
    )
    screenshot(ada, "unread-divider-desktop")

    # A new message in the room she has open (visible, at the bottom) does not count.
    say(grace, "while Ada reads")
    expect(row_with(ada, "while Ada reads")).to_be_visible()
    expect(badge(alan, busy)).to_have_text("5 unread")
    ada.wait_for_timeout(1500)
    expect(badge(ada_index, busy)).to_have_count(0)
    expect(ada).to_have_title(f"#{busy.name} · StreamChat")


def test_mark_as_read_from_the_keyboard(
    browser: Browser, app_server: AppServer, contexts: list[Page]
) -> None:
    room, elsewhere = new_rooms(app_server, "divider", "elsewhere")
    read_everything(ADA, GRACE)
    grace_id = user_id(GRACE)
    for n in range(5):
        chat.create_message(room.id, grace_id, f"unread line {n}")
    ada = open_as(browser, app_server, ADA, f"/rooms/{elsewhere.id}")
    contexts.append(ada)
    ada.add_init_script(OBSERVE_NOTIFICATIONS)
    ada.reload()
    expect(badge(ada, room)).to_have_text("5 unread")
    before = unread.check_last_read(user_id(ADA), room.id)
    # A hidden tab has not seen the bottom of the room: only Mark as read moves it.
    set_hidden(ada, True)
    room_link(ada, room).click()
    mark = ada.get_by_role("button", name="Mark as read")
    expect(mark).to_be_visible()
    ada.wait_for_timeout(1500)
    assert unread.check_last_read(user_id(ADA), room.id) == before

    ada.locator("#composer").focus()
    for _ in range(8):
        ada.keyboard.press("Shift+Tab")
        if ada.evaluate("() => document.activeElement?.id") == "mark-as-read":
            break
    expect(mark).to_be_focused()
    ada.keyboard.press("Enter")
    expect(ada.locator("#unread-divider")).to_have_count(0)
    newest = max(m.id for m in chat.last_messages(room.id))
    assert before < newest
    deadline = time.monotonic() + 10
    while unread.check_last_read(user_id(ADA), room.id) != newest and time.monotonic() < deadline:
        time.sleep(0.1)
    assert unread.check_last_read(user_id(ADA), room.id) == newest


def test_a_room_opens_at_its_first_unread_message_older_than_the_last_page(
    browser: Browser, app_server: AppServer, contexts: list[Page]
) -> None:
    (room,) = new_rooms(app_server, "backlog")
    read_everything(ADA)
    grace_id = user_id(GRACE)
    ids = [chat.create_message(room.id, grace_id, f"backlog {n:02d}").id for n in range(60)]
    unread.do_mark_read(user_id(ADA), room.id, ids[9])  # type: ignore[arg-type]
    ada = open_as(browser, app_server, ADA, f"/rooms/{room.id}")
    contexts.append(ada)
    divider = ada.locator("#unread-divider")
    expect(divider).to_be_in_viewport()
    expect(row_with(ada, "backlog 10").locator("#unread-divider")).to_have_count(1)
    # Not the live end: the newest messages are not even in the page yet.
    expect(row_with(ada, "backlog 59")).to_have_count(0)
    top = ada.evaluate(
        "() => document.getElementById('unread-divider').getBoundingClientRect().top"
        " - document.getElementById('message-scroller').getBoundingClientRect().top"
    )
    assert 0 <= top < 60
    screenshot(ada, "unread-opened-at-divider")


def test_a_mention_notifies_a_hidden_tab_once_permission_was_given_by_a_click(
    browser: Browser, app_server: AppServer, contexts: list[Page]
) -> None:
    here, there = new_rooms(app_server, "quiet", "loud")
    read_everything(ADA, GRACE)
    ada = open_as(browser, app_server, ADA, f"/rooms/{here.id}")
    contexts.append(ada)
    ada.context.grant_permissions(["notifications"])
    ada.add_init_script(OBSERVE_NOTIFICATIONS)
    ada.reload()
    expect(ada.locator("#composer")).to_be_visible()
    grace = open_as(browser, app_server, GRACE, f"/rooms/{there.id}")
    contexts.append(grace)

    # Nothing is asked on load; the control asks once it is clicked.
    control = ada.locator("#enable-notifications").first
    expect(control).to_be_visible()
    assert ada.evaluate("window.__permissionRequests") == 0
    control.click()
    expect(ada.get_by_text("Mentions notify you while this tab is hidden.").first).to_be_visible()
    assert ada.evaluate("window.__permissionRequests") == 1

    # Visible: a mention shows in the sidebar, and no notification.
    say(grace, f"{mention_of(ADA)} while you look")
    expect(mention_badge(ada, there)).to_have_text("@1 mentions")
    set_hidden(ada, True)
    say(grace, "no mention here")
    say(grace, f"{mention_of(ADA)} are you there?")
    say(grace, f"{mention_of(ALAN)} only Alan")
    expect(badge(ada, there)).to_have_text("4 unread")
    ada.wait_for_function("window.__notifications.length >= 1")
    ada.wait_for_timeout(500)
    notifications = ada.evaluate("window.__notifications")
    assert notifications == [
        {
            "title": f"Grace Hopper mentioned you in #{there.name}",
            "body": "@Ada Lovelace are you there?",
            "tag": notifications[0]["tag"],
        }
    ]
    assert notifications[0]["tag"].startswith("streamchat-message-")
    # While hidden, messages in the room she has open are unread too.
    grace.get_by_role("navigation", name="Rooms").get_by_role("link", name=f"# {here.name}").click()
    expect(grace.locator("#composer")).to_be_focused()
    say(grace, "in the room Ada has open")
    expect(ada).to_have_title(f"(5) #{here.name} · StreamChat")
    set_hidden(ada, False)
    expect(ada).to_have_title(f"(4) #{here.name} · StreamChat")


def test_nothing_breaks_without_notifications(
    browser: Browser, app_server: AppServer, contexts: list[Page]
) -> None:
    (room,) = new_rooms(app_server, "plain")
    read_everything(ADA, GRACE)
    ada = open_as(browser, app_server, ADA, f"/rooms/{room.id}")
    contexts.append(ada)
    errors: list[str] = []
    ada.on("pageerror", lambda error: errors.append(str(error)))
    ada.add_init_script(NO_NOTIFICATIONS)
    ada.reload()
    expect(ada.locator("#composer")).to_be_visible()
    expect(ada.locator("#enable-notifications")).to_have_count(0)
    ada.evaluate("() => document.dispatchEvent(new Event('visibilitychange'))")
    grace = open_as(browser, app_server, GRACE, f"/rooms/{room.id}")
    contexts.append(grace)
    say(grace, f"{mention_of(ADA)} hello")
    expect(row_with(ada, "hello")).to_be_visible()
    expect(ada).to_have_title(f"#{room.name} · StreamChat")
    assert errors == []


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_screenshots_on_a_phone(
    browser: Browser, app_server: AppServer, contexts: list[Page], dark: bool
) -> None:
    room, other = new_rooms(app_server, "phone", "drawer")
    read_everything(ADA, GRACE)
    grace_id = user_id(GRACE)
    for n in range(4):
        chat.create_message(room.id, grace_id, f"phone line {n}")
    chat.create_message(other.id, grace_id, f"{mention_of(ADA)} on the phone")
    options: dict[str, Any] = {"viewport": {"width": 390, "height": 844}}
    if dark:
        options["color_scheme"] = "dark"
    ada = open_as(browser, app_server, ADA, f"/rooms/{room.id}", **options)
    contexts.append(ada)
    expect(ada.locator("#unread-divider")).to_be_visible()
    screenshot(ada, f"unread-divider-phone-{'dark' if dark else 'light'}")
    ada.get_by_role("button", name="Open the room list").click()
    drawer = ada.get_by_role("dialog")
    link = drawer.locator(f'a.room-link[href="/rooms/{other.id}"]')
    expect(link.locator(".mention-badge")).to_have_text("@1 mentions")
    expect(link.locator(".unread-badge")).to_have_text("1 unread")
    # However many rooms earlier tests left, the drawer scrolls down to its last control...
    control = drawer.locator(".notifications-control")
    control.scroll_into_view_if_needed()
    # The list's scrollbar may cover a pixel of the full-width control's edge.
    expect(control).to_be_in_viewport(ratio=0.95)
    # ...and the shot, once the drawer has slid all in, shows the room with its badges.
    link.scroll_into_view_if_needed()
    expect(link).to_be_in_viewport(ratio=1)
    ada.wait_for_timeout(500)
    screenshot(ada, f"unread-sidebar-phone-{'dark' if dark else 'light'}")
