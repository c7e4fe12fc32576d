"""How people look in a room, and mentions: avatars, messages grouped by sender (after live
inserts, deletes and scrolling back), and the `@` autocomplete, whose mention the other
member sees highlighted, and which stays a mention after an edit."""

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import update

from stream_chat import accounts, chat, repo
from stream_chat.models import Message
from tests.browser.conftest import screenshot
from tests.browser.test_room_chat import open_as, row_with, send
from tests.browser.test_room_niceties import new_room
from tests.support.servers import AppServer

pytestmark = pytest.mark.browser

ADA, GRACE = "ada@streamchat.io", "grace@streamchat.io"


def user_id(email: str) -> int:
    user = accounts.get_user_by_email(email)
    assert user is not None
    return user.id  # type: ignore[return-value]


def post_at(room_id: int, email: str, text: str, at: datetime) -> int:
    message = chat.create_message(room_id, user_id(email), text)
    with repo.session() as db:
        db.exec(update(Message).where(Message.id == message.id).values(inserted_at=at))  # type: ignore[call-overload]
        db.commit()
    return message.id  # type: ignore[return-value]


def quiet_hour_today() -> datetime:
    """Noon today, local time (a run just after midnight keeps each day whole), or 08:00 when
    the run is near noon: the live messages of a test must not fall within 5 minutes of it."""
    now = datetime.now().astimezone()
    hour = 8 if 11 <= now.hour <= 13 else 12
    return now.replace(hour=hour, minute=0, second=0, microsecond=0)


def groups(page: Page) -> list[str]:
    return page.eval_on_selector_all("#message-list > li", "rows => rows.map(r => r.dataset.group)")


@pytest.fixture
def two_in_a_room(browser: Browser, app_server: AppServer) -> Iterator[tuple[Page, Page, int]]:
    room_id = new_room(app_server, "mentions")
    ada = open_as(browser, app_server, ADA, f"/rooms/{room_id}")
    grace = open_as(browser, app_server, GRACE, f"/rooms/{room_id}")
    yield ada, grace, room_id
    ada.context.close()
    grace.context.close()


def test_rows_group_by_sender_within_five_minutes_and_a_new_day(
    browser: Browser, app_server: AppServer
) -> None:
    room_id = new_room(app_server, "groups")
    today = quiet_hour_today()
    yesterday = today - timedelta(days=1)
    post_at(room_id, ADA, "yesterday, late", yesterday)
    post_at(room_id, ADA, "today, first", today)
    post_at(room_id, ADA, "a minute on", today + timedelta(minutes=1))
    post_at(room_id, ADA, "four minutes on", today + timedelta(minutes=4, seconds=59))
    post_at(room_id, ADA, "six minutes on: a new group", today + timedelta(minutes=6))
    post_at(room_id, GRACE, "someone else", today + timedelta(minutes=6, seconds=10))
    post_at(room_id, ADA, "Ada again", today + timedelta(minutes=6, seconds=20))
    ada = open_as(browser, app_server, ADA, f"/rooms/{room_id}")
    try:
        expect(ada.locator("#message-list > li")).to_have_count(7)
        assert groups(ada) == [
            "start",  # yesterday
            "start",  # a new day starts a group
            "continued",
            "continued",
            "start",  # 6 minutes after the group's first message
            "start",
            "start",
        ]
        # The header is shown once: a continued row shows no avatar nor name.
        first = row_with(ada, "today, first")
        expect(first.locator(".avatar-slot")).to_be_visible()
        expect(first.locator(".sender")).to_be_visible()
        expect(first).to_have_attribute("data-day", "Today")
        continued = row_with(ada, "a minute on")
        expect(continued.locator(".avatar-slot")).to_be_hidden()
        # Its time shows on hover only.
        assert continued.locator(".sent-at").evaluate("e => getComputedStyle(e).opacity") == "0"
        continued.hover()
        expect(continued.locator(".sent-at")).to_have_css("opacity", "1")

        # Avatars: initials, a colour of the user's own, the same everywhere for that user.
        ada_avatar = first.locator(".avatar")
        expect(ada_avatar).to_have_text("AL")
        expect(first.locator(".avatar-slot")).to_have_attribute("data-user-id", str(user_id(ADA)))
        menu_avatar = ada.locator("header .user-avatar .avatar")
        expect(menu_avatar).to_have_text("AL")
        tone = ada_avatar.get_attribute("data-accent-color")
        assert tone and menu_avatar.get_attribute("data-accent-color") == tone
        grace_avatar = row_with(ada, "someone else").locator(".avatar")
        expect(grace_avatar).to_have_text("GH")
        assert grace_avatar.get_attribute("data-accent-color") != tone
        background = ada_avatar.evaluate("e => getComputedStyle(e).backgroundColor")
        assert background != grace_avatar.evaluate("e => getComputedStyle(e).backgroundColor")

        # An edit keeps the row where it was in its group.
        continued.hover()
        continued.get_by_role("button", name="Edit").click()
        ada.get_by_role("dialog").get_by_label("Message text").fill("a minute on, edited")
        ada.get_by_role("dialog").get_by_role("button", name="Save").click()
        edited = row_with(ada, "a minute on, edited")
        expect(edited.locator(".edited")).to_be_visible()
        expect(edited).to_have_attribute("data-group", "continued")
        assert groups(ada)[1:4] == ["start", "continued", "continued"]
        screenshot(ada, "looks-groups-desktop")

        # Live: Ada's next message continues her group, Grace's opens one; deleting the
        # group's first row makes the next one its start.
        send(ada, "live, continues")
        expect(ada.locator("#message-list > li")).to_have_count(8)
        expect(row_with(ada, "live, continues")).to_have_attribute("data-group", "start")
        send(ada, "live, second")
        expect(row_with(ada, "live, second")).to_have_attribute("data-group", "continued")
        first_row = row_with(ada, "live, continues")
        first_row.hover()
        first_row.get_by_role("button", name="Delete").click()
        ada.get_by_role("alertdialog").get_by_role("button", name="Delete").click()
        expect(row_with(ada, "live, continues")).to_have_count(0)
        expect(row_with(ada, "live, second")).to_have_attribute("data-group", "start")
    finally:
        ada.context.close()


def test_grouping_holds_when_older_messages_are_loaded_above(
    browser: Browser, app_server: AppServer
) -> None:
    room_id = new_room(app_server, "older")
    start = quiet_hour_today()
    # 30 messages by Ada, 5 s apart: one group, of which the first page shows the last 20.
    for i in range(30):
        post_at(room_id, ADA, f"burst {i:02}", start + timedelta(seconds=5 * i))
    ada = open_as(browser, app_server, ADA, f"/rooms/{room_id}")
    try:
        # The first page (the last 20) came first, "burst 10" at its top: a group's start
        # then. Scrolled back (the page may already have asked, its compact rows being short),
        # the older ten are above it, and it continues the group that starts there.
        expect(row_with(ada, "burst 29")).to_be_visible()
        ada.eval_on_selector("#message-scroller", "s => { s.scrollTop = 0; }")
        expect(ada.locator("#message-list > li")).to_have_count(30)
        expect(row_with(ada, "burst 10")).to_have_attribute("data-group", "continued")
        assert groups(ada) == ["start"] + ["continued"] * 29
    finally:
        ada.context.close()


def test_a_mention_by_keyboard_reaches_the_other_member_highlighted_and_survives_an_edit(
    two_in_a_room: tuple[Page, Page, int],
) -> None:
    ada, grace, _ = two_in_a_room
    composer = ada.locator("#composer")
    composer.click()
    composer.press_sequentially("Hi @gra")
    listbox = ada.get_by_role("listbox", name="People to mention")
    expect(listbox).to_be_visible()
    expect(composer).to_have_attribute("aria-expanded", "true")
    grace_option = listbox.get_by_role("option", name="Grace Hopper")
    expect(grace_option).to_be_visible()
    expect(grace_option).to_have_attribute("aria-selected", "true")
    expect(composer).to_have_attribute("aria-activedescendant", grace_option.get_attribute("id"))
    # Only the matches are offered; Ada herself never is.
    expect(listbox.get_by_role("option").filter(visible=True)).to_have_count(1)
    expect(listbox.get_by_role("option", name="Ada Lovelace")).to_have_count(0)
    screenshot(ada, "mentions-autocomplete-desktop")
    composer.press("Enter")
    expect(listbox).to_be_hidden()
    grace_id = user_id(GRACE)
    expect(composer).to_have_value(f"Hi @**Grace Hopper|{grace_id}** ")
    # Enter chose, it did not send; now it sends.
    composer.press_sequentially("can you review?")
    composer.press("Enter")

    row = row_with(grace, "can you review?")
    mention = row.locator(".mention")
    expect(mention).to_have_text("@Grace Hopper")
    expect(mention).to_have_attribute("data-user-id", str(grace_id))
    expect(mention).to_have_attribute("data-me", "true")
    # For Ada it is a mention, not one of her.
    own = row_with(ada, "can you review?").locator(".mention")
    expect(own).to_have_text("@Grace Hopper")
    expect(own).not_to_have_attribute("data-me", "true")
    # A mention of you stands out from a mention of someone else, and so does its row.
    assert mention.evaluate("e => getComputedStyle(e).backgroundColor") != own.evaluate(
        "e => getComputedStyle(e).backgroundColor"
    )
    assert row.evaluate("e => getComputedStyle(e).boxShadow") != "none"
    screenshot(grace, "mentions-of-you-desktop")

    # The edit box: the mention is text there, and the autocomplete works in it too (Tab).
    expect(composer).to_have_value("")
    composer.press("ArrowUp")
    draft = ada.locator("#edit-draft")
    expect(draft).to_have_value(f"Hi @**Grace Hopper|{grace_id}** can you review?")
    draft.press("End")
    draft.press_sequentially(" and @al")
    edit_list = ada.get_by_role("listbox", name="People to mention").filter(visible=True)
    expect(edit_list.get_by_role("option", name="Alan Turing")).to_have_attribute(
        "aria-selected", "true"
    )
    screenshot(ada, "mentions-edit-box-desktop")
    draft.press("Tab")
    alan_id = user_id("alan@streamchat.io")
    expect(draft).to_have_value(
        f"Hi @**Grace Hopper|{grace_id}** can you review? and @**Alan Turing|{alan_id}** "
    )
    # Esc closes the list, not the dialog, and keeps the draft.
    draft.press_sequentially("@k")
    expect(edit_list).to_be_visible()
    draft.press("Escape")
    expect(edit_list).to_have_count(0)
    expect(ada.get_by_role("dialog")).to_be_visible()
    draft.press("Backspace")
    draft.press("Backspace")
    ada.get_by_role("dialog").get_by_role("button", name="Save").click()
    expect(ada.get_by_role("dialog")).to_be_hidden()

    edited = row_with(grace, "and @Alan Turing")
    expect(edited.locator(".edited")).to_be_visible()
    expect(edited.locator(".mention[data-me=true]")).to_have_text("@Grace Hopper")
    expect(edited.locator(f".mention[data-user-id='{alan_id}']")).to_have_text("@Alan Turing")


def test_the_list_by_mouse_the_assistant_and_the_composer_keys_kept(
    two_in_a_room: tuple[Page, Page, int],
) -> None:
    ada, grace, _ = two_in_a_room
    composer = ada.locator("#composer")
    composer.click()
    composer.press_sequentially("@")
    listbox = ada.get_by_role("listbox", name="People to mention")
    # Everyone is offered on a bare @, the assistant first; the arrows move, and wrap.
    options = listbox.get_by_role("option").filter(visible=True)
    # The people arrive once asked for (on this first @): eight are shown at most.
    expect(options).to_have_count(8)
    expect(options.first).to_have_attribute("aria-selected", "true")
    expect(options.first).to_contain_text("assistant")
    composer.press("ArrowUp")
    expect(options.last).to_have_attribute("aria-selected", "true")
    composer.press("ArrowDown")
    expect(options.first).to_have_attribute("aria-selected", "true")
    # Esc closes the list and keeps the draft (it stops no reply either: there is none).
    composer.press("Escape")
    expect(listbox).to_be_hidden()
    expect(composer).to_have_value("@")
    # Typing on reopens it; a click chooses.
    composer.press_sequentially("kat")
    listbox.get_by_role("option", name="Katherine Johnson").click()
    katherine = user_id("katherine@streamchat.io")
    expect(composer).to_have_value(f"@**Katherine Johnson|{katherine}** ")
    expect(composer).to_be_focused()
    # Shift+Enter still adds a line, and `@assistant` is offered by name.
    composer.press("Shift+Enter")
    composer.press_sequentially("@ass")
    listbox.get_by_role("option", name="assistant").wait_for()
    composer.press("Tab")
    expect(composer).to_have_value(f"@**Katherine Johnson|{katherine}** \n@assistant ")
    # No list: Enter sends.
    composer.press_sequentially("hello")
    composer.press("Enter")
    row = row_with(grace, "hello")
    expect(row.locator(".mention[data-assistant=true]")).to_have_text("@assistant")
    expect(row.locator(f".mention[data-user-id='{katherine}']")).to_have_text("@Katherine Johnson")
    # A name is text, whatever it spells: no element comes out of it.
    grace_id = user_id(GRACE)
    send(
        ada,
        f"@**&lt;b&gt;bold&lt;/b&gt;|{grace_id}** or @**<img src=x onerror=alert(1)>|{grace_id}**",
    )
    hostile = row_with(grace, "or @")
    expect(hostile.locator(".mention")).to_have_text("@<b>bold</b>")
    expect(hostile.locator(".message-body b, .message-body img")).to_have_count(0)
    # A mention in code is code.
    send(ada, f"write `@**Grace Hopper|{user_id(GRACE)}**` to mention her")
    code_row = row_with(grace, "to mention her")
    expect(code_row.locator("code")).to_have_text(f"@**Grace Hopper|{user_id(GRACE)}**")
    expect(code_row.locator(".mention")).to_have_count(0)


@pytest.mark.parametrize("look", ["phone", "dark"])
def test_screenshots_on_a_phone_and_in_dark_mode(
    browser: Browser, app_server: AppServer, look: str
) -> None:
    room_id = new_room(app_server, look)
    today = quiet_hour_today()
    grace = user_id(GRACE)
    post_at(room_id, GRACE, "Morning! Deploy at ten?", today)
    post_at(room_id, GRACE, f"@**Ada Lovelace|{user_id(ADA)}** can you watch it?", today)
    post_at(room_id, ADA, f"Sure @**Grace Hopper|{grace}**, and @assistant will help", today)
    post_at(room_id, ADA, "`@**not|1**` is code", today + timedelta(minutes=1))
    options = (
        {"viewport": {"width": 390, "height": 780}, "is_mobile": True, "has_touch": True}
        if look == "phone"
        else {"color_scheme": "dark"}
    )
    ada = open_as(browser, app_server, ADA, f"/rooms/{room_id}", **options)
    try:
        expect(row_with(ada, "can you watch it?").locator(".mention[data-me=true]")).to_be_visible()
        composer = ada.locator("#composer")
        composer.click()
        composer.press_sequentially("@")
        expect(ada.get_by_role("listbox", name="People to mention")).to_be_visible()
        expect(ada.get_by_role("option", name="Grace Hopper")).to_be_visible()
        screenshot(ada, f"mentions-{look}")
    finally:
        ada.context.close()
