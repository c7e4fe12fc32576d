"""The room's bounded window in Chromium: scrolling a 2,000-message room to its start and
back, the message being read staying put, "Jump to present", links to a message, and live
changes while the reader is away from the present."""

import contextlib
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
from playwright.sync_api import Browser, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from sqlalchemy import delete, insert, select

from stream_chat import accounts, chat, repo
from stream_chat.models import Message, Room, utcnow
from tests.browser.conftest import screenshot
from tests.browser.test_room_chat import PASSWORD, open_as, row_with, send
from tests.support.servers import AppServer

pytestmark = pytest.mark.browser

ADA, GRACE = "ada@streamchat.io", "grace@streamchat.io"
ROOM_SIZE = 2000
WINDOW = 3 * chat.PAGE_SIZE
CODE = "```python\ndef step(n):\n    return n + 1\n\nprint(step(41))\n```"


def content(n: int) -> str:
    """Rows of different heights: short lines, long paragraphs, code blocks, image links."""
    if n % 7 == 3:
        return f"m{n:04d} with code\n\n{CODE}"
    if n % 11 == 5:
        return f"m{n:04d} " + "a long paragraph that wraps over several lines " * 8
    if n % 13 == 6:
        return f"m{n:04d} a chart ![chart](https://example.com/chart-{n}.png)"
    return f"m{n:04d}"


@pytest.fixture(scope="module")
def big_room(app_server: AppServer) -> Iterator[tuple[int, list[int]]]:
    """A room of 2,000 messages from two senders (one multi-row insert), and their ids;
    deleted afterwards (its messages with it), so later modules' sidebars do not list it."""
    repo.configure(app_server.database_url)
    room = chat.create_room("two-thousand", "Two thousand messages of every height.")
    senders = [accounts.get_user_by_email(email).id for email in (GRACE, "alan@streamchat.io")]  # type: ignore[union-attr]
    start = utcnow() - timedelta(hours=3)
    rows = [
        {
            "room_id": room.id,
            "sender_id": senders[n % 2],
            "content": content(n),
            "inserted_at": start + timedelta(seconds=n),
            "updated_at": start + timedelta(seconds=n),
        }
        for n in range(ROOM_SIZE)
    ]
    with repo.engine().begin() as connection:
        connection.execute(insert(Message), rows)
    yield room.id, room_ids(room.id)  # type: ignore[arg-type, misc]
    with repo.engine().begin() as connection:
        connection.execute(delete(Room).where(Room.id == room.id))  # type: ignore[arg-type]


def room_ids(room_id: int) -> list[int]:
    with repo.session() as db:
        query = select(Message.id).where(Message.room_id == room_id).order_by(Message.id)  # type: ignore[arg-type]
        return list(db.exec(query).scalars())  # type: ignore[call-overload]


@pytest.fixture
def ada(browser: Browser, app_server: AppServer, big_room: tuple[int, list[int]]) -> Iterator[Page]:
    page = open_as(browser, app_server, ADA, f"/rooms/{big_room[0]}")
    yield page
    page.context.close()


def open_link(
    browser: Browser, server: AppServer, email: str, room_id: int, message: object, **options: Any
) -> Page:
    """Logs in with a link to a message as the page to return to; once the message is shown
    the address no longer names it."""
    context = browser.new_context(**{"viewport": {"width": 1100, "height": 700}, **options})
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.goto(f"{server.base_url}/login?next=" + quote(f"/rooms/{room_id}?m={message}", safe=""))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    # The redirect after logging in lands on the link (the page may drop `m` at once).
    expect(page).to_have_url(re.compile(rf"^{re.escape(server.base_url)}/rooms/{room_id}/?(\?|$)"))
    expect(page.locator("#message-list li").first).to_be_visible()
    return page


def shown(page: Page) -> list[int]:
    return page.eval_on_selector_all(
        "#message-list li.message-row", "rows => rows.map(r => Number(r.id.split('-')[1]))"
    )


def assert_window(page: Page, ids: list[int]) -> list[int]:
    """The DOM holds at most the bound, one contiguous run of the room, nothing twice."""
    held = shown(page)
    assert 0 < len(held) <= WINDOW, len(held)
    assert len(set(held)) == len(held), "a message is shown twice"
    first = ids.index(held[0])
    assert held == ids[first : first + len(held)], "a message is missing"
    return held


def y_of(page: Page, dom_id: str) -> float:
    return page.eval_on_selector(f"#{dom_id}", "row => row.getBoundingClientRect().top")


def scroll(page: Page, to: str) -> dict[str, Any]:
    """Scrolls to the top or the bottom and returns the message then at the top of the view,
    measured in the same task: no answer from the server can come in between."""
    return page.evaluate(
        """to => {
            const scroller = document.getElementById('message-scroller');
            scroller.scrollTop = to === 'top' ? 0 : scroller.scrollHeight;
            const top = scroller.getBoundingClientRect().top;
            for (const row of document.querySelectorAll('#message-list li.message-row')) {
                const box = row.getBoundingClientRect();
                if (box.bottom > top + 1) return {id: row.id, y: box.top};
            }
            return null;
        }""",
        to,
    )


def settle(page: Page) -> None:
    """Two animation frames: scroll events, observers and a paint have run."""
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def load(page: Page, direction: str, ids: list[int]) -> tuple[list[int], float]:
    """Scrolls to one end so that its sentinel asks for the next page, waits for it, and
    returns the window and how far the message being read moved on screen (px)."""
    before = shown(page)
    anchor = scroll(page, direction)
    page.wait_for_function(
        "([end, id]) => {"
        " const rows = document.querySelectorAll('#message-list li.message-row');"
        " const row = end === 'top' ? rows[0] : rows[rows.length - 1];"
        " return row && row.id !== id }",
        arg=[direction, f"messages-{before[0] if direction == 'top' else before[-1]}"],
    )
    settle(page)
    held = assert_window(page, ids)
    assert int(anchor["id"].split("-")[1]) in held, (anchor, direction, before, held)
    # A row above may still be growing in this frame (a code block being highlighted): the
    # page puts the anchor back before that frame is painted.
    with contextlib.suppress(PlaywrightTimeout):
        page.wait_for_function(
            "([id, y]) => Math.abs(document.getElementById(id).getBoundingClientRect().top - y)"
            " < 1.5",
            arg=[anchor["id"], anchor["y"]],
            timeout=3000,
        )
    return held, abs(y_of(page, anchor["id"]) - anchor["y"])


def at_bottom(page: Page) -> bool:
    return page.eval_on_selector(
        "#message-scroller", "s => s.scrollHeight - s.scrollTop - s.clientHeight < 5"
    )


def test_scroll_to_the_start_of_2000_messages_and_back(
    ada: Page, big_room: tuple[int, list[int]]
) -> None:
    _, ids = big_room
    assert shown(ada) == ids[-chat.PAGE_SIZE :]
    assert at_bottom(ada)
    steps = 0
    while not ada.locator("#start-of-room").is_visible():
        held, moved = load(ada, "top", ids)
        assert moved < 1.5, f"the message being read moved {moved:.1f} px at {held[0]}"
        steps += 1
        assert steps <= ROOM_SIZE // chat.PAGE_SIZE
    assert shown(ada) == ids[:WINDOW]
    expect(ada.locator("#start-of-room")).to_have_text("This is the start of #two-thousand")
    expect(ada.locator("#jump-to-present")).to_be_visible()
    expect(ada.locator("#assistant-announcement")).to_have_text(
        "This is the start of #two-thousand"
    )
    screenshot(ada, "history-start-marker")

    while ada.locator("#jump-to-present").is_visible():
        held, moved = load(ada, "bottom", ids)
        assert moved < 1.5, f"the message being read moved {moved:.1f} px at {held[-1]}"
    # Back at the present by scrolling: the last window, the bar gone, said so.
    assert shown(ada) == ids[-WINDOW:]
    expect(ada.locator("#assistant-announcement")).to_have_text("Showing the latest messages.")


def test_keys_home_end_and_page_up(ada: Page, big_room: tuple[int, list[int]]) -> None:
    _, ids = big_room
    ada.locator("#message-list li.message-row").last.focus()
    ada.keyboard.press("Home")
    expect(ada.locator("#start-of-room")).to_be_visible()
    expect(ada.locator(f"#messages-{ids[0]}")).to_be_focused()
    assert shown(ada) == ids[:WINDOW]
    ada.keyboard.press("PageDown")
    settle(ada)
    assert ada.eval_on_selector("#message-scroller", "s => s.scrollTop") > 200
    ada.keyboard.press("End")
    expect(ada.locator(f"#messages-{ids[-1]}")).to_be_in_viewport()
    expect(ada.locator("#jump-to-present")).to_be_hidden()
    assert shown(ada) == ids[-chat.PAGE_SIZE :]
    top = ada.eval_on_selector("#message-scroller", "s => s.scrollTop")
    ada.locator("#message-list li.message-row").last.focus()
    ada.keyboard.press("PageUp")
    settle(ada)
    assert ada.eval_on_selector("#message-scroller", "s => s.scrollTop") < top


def test_a_link_opens_the_message_centred_and_highlighted(
    browser: Browser, app_server: AppServer, big_room: tuple[int, list[int]]
) -> None:
    room_id, ids = big_room
    target = ids[1000]
    page = open_link(browser, app_server, ADA, room_id, target)
    try:
        row = page.locator(f"#messages-{target}")
        expect(row).to_have_attribute("data-highlighted", "true")
        assert_window(page, ids)
        assert shown(page) == ids[1000 - chat.PAGE_SIZE : 1000 + chat.PAGE_SIZE + 1]
        box = row.bounding_box()
        view = page.locator("#message-scroller").bounding_box()
        assert box is not None and view is not None
        assert abs((box["y"] + box["height"] / 2) - (view["y"] + view["height"] / 2)) < 30
        # The address no longer names the message: a reconnect does not bring the reader back.
        assert "m=" not in page.url
        screenshot(page, "history-permalink-highlighted")
        expect(row).not_to_have_attribute("data-highlighted", "true", timeout=5000)
        # History loads both ways from there.
        held, moved = load(page, "top", ids)
        assert held[0] < ids[1000 - chat.PAGE_SIZE] and moved < 1.5
        held, moved = load(page, "bottom", ids)
        assert held[-1] > ids[1000 + chat.PAGE_SIZE] and moved < 1.5
    finally:
        page.context.close()


def test_links_to_a_missing_or_another_rooms_message_say_so(
    browser: Browser, app_server: AppServer, big_room: tuple[int, list[int]]
) -> None:
    room_id, ids = big_room
    page = open_link(browser, app_server, ADA, room_id, ids[-1] + 10_000)
    try:
        expect(page.locator("#link-notice")).to_contain_text(
            "That message was deleted or never existed."
        )
        assert shown(page) == ids[-chat.PAGE_SIZE :]
        # Another room's message (#weekend-plans of the seeds): said so, with a way there.
        elsewhere = room_ids(1)[5]
        page.goto(f"{page.url.split('/rooms/')[0]}/rooms/{room_id}?m={elsewhere}")
        expect(page.locator("#link-notice")).to_contain_text("That message is in another room.")
        page.locator("#link-elsewhere").click()
        expect(page.locator(f"#messages-{elsewhere}")).to_have_attribute("data-highlighted", "true")
        # A malformed link is a missing one, never an error page.
        page.goto(f"{page.url.split('/rooms/')[0]}/rooms/{room_id}?m=%27%3Bdrop")
        expect(page.locator("#link-notice")).to_contain_text("deleted or never existed")
        assert shown(page) == ids[-chat.PAGE_SIZE :]
    finally:
        page.context.close()


def test_copy_link_copies_the_messages_address(
    ada: Page, app_server: AppServer, big_room: tuple[int, list[int]]
) -> None:
    room_id, ids = big_room
    ada.context.grant_permissions(["clipboard-read", "clipboard-write"])
    row = ada.locator(f"#messages-{ids[-2]}")
    row.hover()
    button = row.locator(".copy-link")
    button.click()
    expect(button).to_have_attribute("aria-label", "Link copied")
    copied = ada.evaluate("navigator.clipboard.readText()")
    assert copied == f"{app_server.base_url}/rooms/{room_id}?m={ids[-2]}"


@pytest.mark.parametrize(
    ("name", "options"),
    [
        (
            "phone",
            {"viewport": {"width": 390, "height": 780}, "is_mobile": True, "has_touch": True},
        ),
        ("dark", {"viewport": {"width": 1100, "height": 700}, "color_scheme": "dark"}),
    ],
)
def test_screenshots_of_the_away_bar_start_marker_and_highlight(
    browser: Browser,
    app_server: AppServer,
    big_room: tuple[int, list[int]],
    name: str,
    options: dict[str, Any],
) -> None:
    room_id, ids = big_room
    page = open_link(browser, app_server, ADA, room_id, ids[500], **options)
    try:
        expect(page.locator(f"#messages-{ids[500]}")).to_have_attribute("data-highlighted", "true")
        expect(page.locator("#jump-to-present")).to_be_visible()
        screenshot(page, f"history-permalink-{name}")
        page.locator(f"#messages-{ids[500]}").focus()
        page.keyboard.press("Home")
        expect(page.locator("#start-of-room")).to_be_visible()
        screenshot(page, f"history-start-marker-{name}")
    finally:
        page.context.close()


# Last in the module: it adds messages to the big room (one room for the whole module, so
# the other modules' sidebars stay short).
def test_away_from_the_present_new_messages_are_counted_and_edits_apply(
    browser: Browser, app_server: AppServer, big_room: tuple[int, list[int]]
) -> None:
    room_id, ids = big_room
    # Grace's (she sends the even ones), in the middle of the room.
    target = ids[1500]
    reader = open_link(browser, app_server, ADA, room_id, target)
    writer = open_link(browser, app_server, GRACE, room_id, target)
    try:
        expect(reader.locator("#jump-to-present")).to_have_text("Jump to present")
        # An edit of a message inside the reader's window shows at once.
        writer_row = writer.locator(f"#messages-{target}")
        writer_row.hover()
        writer_row.get_by_role("button", name="Edit").click()
        writer.locator("#edit-draft").fill("m1500, edited while Ada reads")
        writer.get_by_role("button", name="Save").click()
        expect(reader.locator(f"#messages-{target}")).to_contain_text("edited while Ada reads")

        # New messages are counted, not shown.
        writer.locator("#jump-to-present").click()
        expect(writer.locator("#jump-to-present")).to_be_hidden()
        before = shown(reader)
        for text in ("first while away", "second while away", "third while away"):
            send(writer, text)
            expect(row_with(writer, text)).to_be_visible()
        expect(reader.locator("#jump-to-present")).to_have_text("Jump to present · 3 new messages")
        assert shown(reader) == before
        expect(row_with(reader, "third while away")).to_have_count(0)
        screenshot(reader, "history-away-bar-desktop")
        reader.locator("#jump-to-present").click()
        expect(row_with(reader, "third while away")).to_be_in_viewport()
        expect(reader.locator("#jump-to-present")).to_be_hidden()
        reader.wait_for_function(
            "() => { const s = document.getElementById('message-scroller');"
            " return s.scrollHeight - s.scrollTop - s.clientHeight < 5 }"
        )
        # At the live end again, everything behaves as before.
        send(writer, "back at the present")
        expect(row_with(reader, "back at the present")).to_be_in_viewport()
    finally:
        reader.context.close()
        writer.context.close()
