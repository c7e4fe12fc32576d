"""A newcomer's first minutes, in a real browser against the production build."""

import re
import uuid

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import landed_on, screenshot
from tests.support.servers import AppServer

pytestmark = pytest.mark.browser

DEMO_EMAIL = "ada@streamchat.io"
DEMO_PASSWORD = "streamchat-demo"


def log_in(page: Page, email: str = DEMO_EMAIL, password: str = DEMO_PASSWORD) -> None:
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def test_register_log_out_log_in_and_browse_rooms(page: Page, app_server: AppServer) -> None:
    base = app_server.base_url
    email = f"newcomer-{uuid.uuid4().hex[:8]}@example.com"

    page.goto(f"{base}/register")
    page.get_by_label("Name").fill("Newcomer Nel")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("short")
    page.get_by_role("button", name="Create account").click()
    # The browser's own validation lets a short password through; the server must refuse it.
    expect(page.get_by_text("Use at least 12 characters.")).to_be_visible()
    screenshot(page, "register-error")

    page.get_by_label("Password").fill("a perfectly long passphrase")
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(landed_on(base, "/rooms"))
    expect(page.get_by_text("Newcomer Nel")).to_be_visible()
    expect(page.get_by_role("heading", name="Pick a room")).to_be_visible()

    page.reload()
    expect(page.get_by_text("Newcomer Nel")).to_be_visible()

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login/?$"))
    page.goto(f"{base}/rooms")
    expect(page).to_have_url(f"{base}/login?next=/rooms")

    log_in(page, email, "a perfectly long passphrase")
    expect(page).to_have_url(landed_on(base, "/rooms"))

    page.get_by_role("navigation", name="Rooms").get_by_role("link", name="# sre-team").click()
    expect(page).to_have_url(re.compile(r"/rooms/\d+$"))
    current = page.locator("nav[aria-label=Rooms] a[aria-current=page]")
    expect(current).to_have_count(1)
    expect(current).to_have_text("# sre-team")
    expect(page.get_by_role("heading", name="# sre-team")).to_be_visible()
    expect(page.get_by_text("Pages, postmortems and the on-call rota.")).to_be_visible()
    screenshot(page, "room-highlighted")


def test_protected_pages_return_to_the_page_asked_for(page: Page, app_server: AppServer) -> None:
    base = app_server.base_url
    page.goto(f"{base}/rooms/2")
    expect(page).to_have_url(f"{base}/login?next=/rooms/2")

    log_in(page, DEMO_EMAIL, "not the right password")
    expect(page.get_by_role("alert")).to_contain_text("do not match")
    screenshot(page, "login-error")

    log_in(page)
    expect(page).to_have_url(landed_on(base, "/rooms/2"))
    expect(page.locator("nav[aria-label=Rooms] a[aria-current=page]")).to_have_count(1)


@pytest.mark.parametrize("bad_id", ["99999", "abc", "0", "99999999999999999999"])
def test_unknown_room_shows_a_friendly_page(page: Page, app_server: AppServer, bad_id: str) -> None:
    page.goto(f"{app_server.base_url}/login")
    log_in(page)
    expect(page).to_have_url(landed_on(app_server.base_url, "/rooms"))
    page.goto(f"{app_server.base_url}/rooms/{bad_id}")
    expect(page.get_by_role("heading", name="Room not found")).to_be_visible()
    expect(page.locator("nav[aria-label=Rooms] a[aria-current=page]")).to_have_count(0)
    if bad_id == "99999":
        screenshot(page, "room-not-found")


def test_open_redirects_are_refused(page: Page, app_server: AppServer) -> None:
    page.goto(f"{app_server.base_url}/login?next=//example.com/phish")
    log_in(page)
    expect(page).to_have_url(landed_on(app_server.base_url, "/rooms"))


def test_phone_width_folds_the_sidebar_into_a_drawer(page: Page, app_server: AppServer) -> None:
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(f"{app_server.base_url}/login?next=/rooms/1")
    log_in(page)
    expect(page).to_have_url(landed_on(app_server.base_url, "/rooms/1"))
    sidebar_links = page.locator("nav[aria-label=Rooms] a")
    expect(sidebar_links.first).to_be_hidden()
    page.get_by_role("button", name="Open the room list").click()
    drawer = page.get_by_role("dialog")
    expect(drawer.get_by_role("link", name="# sre-team")).to_be_in_viewport()
    page.wait_for_timeout(500)  # let the slide-in finish before the screenshot
    screenshot(page, "phone-drawer")
    drawer.get_by_role("link", name="# sre-team").click()
    expect(page.get_by_role("heading", name="# sre-team")).to_be_visible()


def test_dark_mode_toggle(page: Page, app_server: AppServer) -> None:
    page.emulate_media(color_scheme="dark")
    page.goto(f"{app_server.base_url}/login")
    html = page.locator("html")
    expect(html).to_have_class(re.compile(r"\bdark\b"))
    screenshot(page, "login-dark")
    page.get_by_role("button", name="Toggle dark mode").click()
    expect(html).not_to_have_class(re.compile(r"\bdark\b"))


def test_keyboard_only_log_in_and_room_switch(page: Page, app_server: AppServer) -> None:
    page.goto(f"{app_server.base_url}/login")
    page.get_by_label("Email").focus()
    page.keyboard.type(DEMO_EMAIL)
    page.keyboard.press("Tab")
    page.keyboard.type(DEMO_PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(landed_on(app_server.base_url, "/rooms"))

    # Tab through the page until the sidebar's link to #weekend-plans has focus, then open it.
    target = page.get_by_role("navigation", name="Rooms").get_by_role(
        "link", name="# weekend-plans"
    )
    for _ in range(20):
        page.keyboard.press("Tab")
        if target.evaluate("link => link === document.activeElement"):
            break
    else:
        raise AssertionError("the room link never received keyboard focus")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="# weekend-plans")).to_be_visible()
    expect(page.locator("nav[aria-label=Rooms] a[aria-current=page]")).to_have_text(
        "# weekend-plans"
    )


def test_a_form_submitted_before_hydration_keeps_the_password_out_of_the_url(
    browser: Browser, app_server: AppServer
) -> None:
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"{app_server.base_url}/login")
        page.fill("#email", DEMO_EMAIL)
        page.fill("#password", DEMO_PASSWORD)
        with page.expect_navigation():
            page.get_by_role("button", name="Log in").click()
        assert DEMO_PASSWORD not in page.url
        assert "password" not in page.url
    finally:
        context.close()


def test_the_session_cookie_is_httponly_and_log_out_cuts_off_every_tab(
    page: Page, app_server: AppServer
) -> None:
    base = app_server.base_url
    page.goto(f"{base}/login?next=/rooms/1")
    log_in(page)
    expect(page).to_have_url(landed_on(base, "/rooms/1"))
    [cookie] = [c for c in page.context.cookies() if c["name"] == "stream_chat_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == "/"
    assert "stream_chat_session" not in page.evaluate("document.cookie")

    other = page.context.new_page()  # another tab of the same browser: the same session
    other.goto(f"{base}/rooms/1")
    expect(other.get_by_role("heading", name=re.compile(r"^# "))).to_be_visible()
    composer = other.locator("#composer")
    composer.fill("from the second tab")
    composer.press("Enter")
    expect(other.get_by_text("from the second tab")).to_be_visible()

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login/?$"))
    # The other tab is sent to /login at once, without doing anything.
    expect(other).to_have_url(re.compile(r"/login/?$"), timeout=5_000)
    assert [c for c in page.context.cookies() if c["name"] == "stream_chat_session"] == []
    other.goto(f"{base}/rooms/1")
    expect(other).to_have_url(f"{base}/login?next=/rooms/1")
    screenshot(other, "logged-out-tab")
