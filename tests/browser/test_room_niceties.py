"""What a newcomer notices in a room: images that are links and never load on their own,
the tab's title, the composer's focus, toasts, day separators, the empty room and the
composer on a phone."""

import http.server
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from playwright.sync_api import Browser, Locator, Page, expect
from sqlalchemy import delete, update

from stream_chat import accounts, chat, repo
from stream_chat.models import Message, Room
from tests.browser.conftest import screenshot
from tests.browser.test_room_chat import open_as, row_with, send
from tests.browser.test_unread import read_everything
from tests.support.fake_openai import FakeOpenAI, Stream
from tests.support.servers import AppServer

pytestmark = pytest.mark.browser

ADA = "ada@streamchat.io"


class ImageServer(http.server.ThreadingHTTPServer):
    """A loopback server that records every request it gets: none may come."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        super().__init__(("127.0.0.1", 0), RecordingHandler)

    @property
    def origin(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class RecordingHandler(http.server.BaseHTTPRequestHandler):
    server: ImageServer

    def do_GET(self) -> None:
        self.server.paths.append(self.path)
        self.send_response(404)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def image_server() -> Iterator[ImageServer]:
    server = ImageServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def new_room(app_server: AppServer, name: str) -> int:
    repo.configure(app_server.database_url)
    return chat.create_room(f"{name}-{time.monotonic_ns()}", "A room of the niceties tests.").id  # type: ignore[return-value]


@pytest.fixture
def ada_in_new_room(browser: Browser, app_server: AppServer) -> Iterator[tuple[Page, int]]:
    room_id = new_room(app_server, "nice")
    page = open_as(browser, app_server, ADA, f"/rooms/{room_id}")
    yield page, room_id
    page.context.close()


def test_images_are_links_the_reader_opens_and_never_fetched(
    ada_in_new_room: tuple[Page, int], image_server: ImageServer, fake_model: FakeOpenAI
) -> None:
    page, _ = ada_in_new_room
    fake_model.reset()
    fake_model.script(Stream([f"Here: ![chart](http://{image_server.origin}/chart.png)"]))
    send(page, f"look ![a cat](http://{image_server.origin}/cat.png) @assistant and yours?")
    mine = row_with(page, "look").locator("a.image-link")
    expect(mine).to_have_text(f"image: a cat — {image_server.origin}")
    expect(mine).to_have_attribute("href", f"http://{image_server.origin}/cat.png")
    expect(mine).to_have_attribute("rel", "noopener noreferrer nofollow")
    expect(mine).to_have_attribute("target", "_blank")
    reply = row_with(page, "Here:").locator("a.image-link")
    expect(reply).to_have_text(f"image: chart — {image_server.origin}")
    page.wait_for_timeout(1000)
    assert page.locator("#message-list img").count() == 0
    assert image_server.paths == []


def test_the_tab_title_names_the_room_and_the_composer_has_the_focus(
    browser: Browser, app_server: AppServer
) -> None:
    first, second = new_room(app_server, "first"), new_room(app_server, "second")
    ada = accounts.get_user_by_email(ADA)
    assert ada is not None and ada.id is not None
    for n in range(3):
        chat.create_message(first, ada.id, f"mine {n}")
    # Other tests' messages would put Ada's unread count in front of the title.
    read_everything(ADA)
    page = open_as(browser, app_server, ADA, f"/rooms/{first}")
    try:
        first_name, second_name = chat.get_room(first).name, chat.get_room(second).name  # type: ignore[union-attr]
        expect(page).to_have_title(f"#{first_name} · StreamChat")
        expect(page.locator("#composer")).to_be_focused()
        # Back from the composer: the hidden Copy link, Edit and Delete are no Tab stops.
        page.keyboard.press("Shift+Tab")
        focused = page.evaluate("() => document.activeElement.getAttribute('aria-label')")
        assert focused not in ("Copy link", "Edit", "Delete")
        # The list is that one Tab stop: its newest message; the arrows move between
        # messages, Home goes to the room's first, and Tab from one reaches its Copy link,
        # then its own Edit, then Delete.
        rows = page.locator("#message-list li")
        expect(rows.last).to_be_focused()
        page.keyboard.press("ArrowUp")
        expect(rows.nth(1)).to_be_focused()
        page.keyboard.press("Home")
        expect(rows.first).to_be_focused()
        page.keyboard.press("Tab")
        expect(rows.first.get_by_role("button", name="Copy link")).to_be_focused()
        page.keyboard.press("Tab")
        expect(rows.first.get_by_role("button", name="Edit")).to_be_focused()
        page.keyboard.press("Tab")
        expect(rows.first.get_by_role("button", name="Delete")).to_be_focused()
        page.locator("a:visible", has_text=second_name).first.click()
        expect(page).to_have_title(f"#{second_name} · StreamChat")
        expect(page.locator("#composer")).to_be_focused()
    finally:
        page.context.close()


def test_a_repeated_error_shows_one_toast_clear_of_the_send_button(
    ada_in_new_room: tuple[Page, int], app_server: AppServer
) -> None:
    page, _ = ada_in_new_room
    send(page, "soon gone behind your back")
    row = row_with(page, "soon gone behind your back")
    expect(row).to_be_visible()
    # Removed without a broadcast: the row stays, and Edit finds no message.
    with repo.session() as db:
        db.exec(delete(Message).where(Message.content == "soon gone behind your back"))  # type: ignore[call-overload]
        db.commit()
    toasts = page.locator("[data-sonner-toast]")
    for _ in range(3):
        row.hover()
        row.get_by_role("button", name="Edit").click()
        expect(toasts.first).to_be_visible()
    page.wait_for_timeout(500)
    expect(toasts).to_have_count(1)
    toast, send_button = toasts.first.bounding_box(), page.get_by_role("button", name="Send")
    button = send_button.bounding_box()
    assert toast is not None and button is not None
    overlap_x = (
        toast["x"] < button["x"] + button["width"] and button["x"] < toast["x"] + toast["width"]
    )
    overlap_y = (
        toast["y"] < button["y"] + button["height"] and button["y"] < toast["y"] + toast["height"]
    )
    assert not (overlap_x and overlap_y), (toast, button)


def expected_day(moment: datetime, now: datetime) -> str:
    if moment.date() == now.date():
        return "Today"
    if moment.date() == (now - timedelta(days=1)).date():
        return "Yesterday"
    year = "" if moment.year == now.year else f" {moment.year}"
    return f"{moment:%A}, {moment.day} {moment:%B}{year}"


def day_of(row: Locator) -> str | None:
    return row.get_attribute("data-day")


def test_day_separators_follow_history_deletes_and_live_messages(
    browser: Browser, app_server: AppServer
) -> None:
    room_id = new_room(app_server, "days")
    ada = accounts.get_user_by_email(ADA)
    assert ada is not None and ada.id is not None
    # Local time, as the browser on this machine shows it.
    now = datetime.now().astimezone()
    # At noon: three messages a minute apart must not straddle a midnight.
    long_ago = (now - timedelta(days=40)).replace(hour=12, minute=0, second=0, microsecond=0)
    yesterday = now - timedelta(days=1)
    moments = [long_ago + timedelta(minutes=n) for n in range(3)]
    moments += [yesterday]
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    today = max(now - timedelta(minutes=30), midnight)
    moments += [today + timedelta(seconds=n) for n in range(chat.PAGE_SIZE + 1)]
    for n, moment in enumerate(moments):
        message = chat.create_message(room_id, ada.id, f"day message {n}")
        with repo.session() as db:
            db.exec(update(Message).where(Message.id == message.id).values(inserted_at=moment))  # type: ignore[call-overload]
            db.commit()

    # One sender's messages seconds apart are one group of compact rows: a short window,
    # so that the first page overflows it and the older ones wait for the scroll back.
    page = open_as(
        browser, app_server, ADA, f"/rooms/{room_id}", viewport={"width": 1100, "height": 420}
    )
    try:
        rows = page.locator("#message-list li")
        expect(rows).to_have_count(chat.PAGE_SIZE)
        assert day_of(rows.first) == "Today"
        assert [day_of(rows.nth(n)) for n in range(1, 4)] == [None, None, None]
        full = rows.first.locator(".sent-at")
        first_moment = moments[-chat.PAGE_SIZE]
        expect(full).to_have_attribute(
            "title", f"{first_moment:%A}, {first_moment.day} {first_moment:%B %Y, %H:%M:%S}"
        )

        page.eval_on_selector("#message-scroller", "s => { s.scrollTop = 0; }")
        expect(rows).to_have_count(len(moments))
        days = [day_of(rows.nth(n)) for n in range(6)]
        assert days == [
            expected_day(long_ago, now),
            None,
            None,
            "Yesterday",
            "Today",
            None,
        ]
        screenshot(page, "day-separators-desktop")

        # Deleting the first of a day's messages moves the separator to the next one.
        first_today = row_with(page, "day message 4")
        first_today.hover()
        first_today.get_by_role("button", name="Delete").click()
        page.get_by_role("alertdialog").get_by_role("button", name="Delete").click()
        expect(rows).to_have_count(len(moments) - 1)
        expect(rows.nth(3)).to_have_attribute("data-day", "Yesterday")
        expect(rows.nth(4)).to_have_attribute("data-day", "Today")
        assert day_of(rows.nth(5)) is None

        send(page, "live today")
        expect(row_with(page, "live today")).to_be_visible()
        assert day_of(row_with(page, "live today")) is None
    finally:
        page.context.close()


def test_an_empty_room_says_so_once(ada_in_new_room: tuple[Page, int]) -> None:
    page, _ = ada_in_new_room
    empty = page.locator("#empty-room")
    expect(empty).to_contain_text("This is the start of #nice-")
    expect(empty).to_contain_text("No messages yet")
    expect(page.locator("#start-of-room")).to_have_count(0)
    expect(page.get_by_text("This is the start of #")).to_have_count(1)


def test_the_copy_button_shows_on_hover_and_says_copied(
    ada_in_new_room: tuple[Page, int],
) -> None:
    page, _ = ada_in_new_room
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    send(page, "code:\n```\nprint('hi')\n```")
    block = row_with(page, "code:")
    copy = block.get_by_role("button", name="Copy code")
    expect(copy).to_have_css("opacity", "0")
    block.locator("pre").hover()
    expect(copy).to_have_css("opacity", "1")
    copy.click()
    expect(block.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()").strip() == "print('hi')"
    expect(block.get_by_role("button", name="Copy code")).to_be_visible(timeout=5000)


@pytest.mark.parametrize(
    ("name", "viewport", "scheme"),
    [
        ("desktop", {"width": 1200, "height": 800}, "light"),
        ("phone", {"width": 390, "height": 844}, "light"),
        ("dark", {"width": 1200, "height": 800}, "dark"),
    ],
)
def test_the_room_as_seen_on_desktop_phone_and_in_dark_mode(
    browser: Browser, app_server: AppServer, name: str, viewport: dict, scheme: str
) -> None:
    room_id = new_room(app_server, "looks")
    page = open_as(
        browser, app_server, ADA, f"/rooms/{room_id}", viewport=viewport, color_scheme=scheme
    )
    try:
        expect(page.locator("#empty-room")).to_be_visible()
        screenshot(page, f"empty-room-{name}")
        send(
            page,
            "A snippet:\n\n```python\nprint('hi')\n```\n\n![diagram](http://127.0.0.1:9/d.png)",
        )
        expect(page.locator(".copy-code")).to_be_visible()
        hints = page.locator("#composer-hints")
        if name == "phone":
            expect(hints).to_be_hidden()
        else:
            expect(hints).to_be_visible()
        screenshot(page, f"room-{name}")
    finally:
        page.context.close()


@pytest.fixture
def many_rooms(app_server: AppServer) -> Iterator[list[int]]:
    """Forty more rooms than fit a screen's sidebar; removed afterwards, so later tests'
    sidebars are as they were."""
    ids = [new_room(app_server, f"crowd-{n:02d}") for n in range(40)]
    yield ids
    with repo.engine().begin() as connection:
        connection.execute(delete(Room).where(Room.id.in_(ids)))  # type: ignore[attr-defined]


@pytest.mark.parametrize("phone", [False, True], ids=["desktop", "phone"])
def test_every_room_of_a_long_list_and_the_control_under_it_can_be_reached(
    browser: Browser, app_server: AppServer, many_rooms: list[int], phone: bool
) -> None:
    options = {"viewport": {"width": 390, "height": 700}} if phone else {}
    page = open_as(browser, app_server, ADA, f"/rooms/{many_rooms[0]}", **options)
    try:
        if phone:
            page.get_by_role("button", name="Open the room list").click()
            rooms = page.get_by_role("dialog")
        else:
            rooms = page.locator("nav[aria-label=Rooms]").first
        last = rooms.locator(f'a.room-link[href="/rooms/{many_rooms[-1]}"]')
        expect(last).to_be_attached()
        # Scrolled to, never cut off by the screen's edge.
        last.scroll_into_view_if_needed()
        expect(last).to_be_in_viewport(ratio=1)
        control = rooms.locator(".notifications-control")
        control.scroll_into_view_if_needed()
        # The list's scrollbar may cover a pixel of the full-width control's edge.
        expect(control).to_be_in_viewport(ratio=0.95)
        screenshot(page, f"long-room-list-{'phone' if phone else 'desktop'}")
    finally:
        page.context.close()
