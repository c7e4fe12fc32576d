"""The room's bounded, two-way window and links to a message, through the real event processor.

The state keeps only the window's cursors (`oldest_id`, `newest_id`) and whether they are the
room's ends (`at_start`, `at_end`); the browser holds at most `WINDOW` messages. What a tab
shows is a `ClientStream` (the reference model of streams.js) fed every batch it received,
its own and the room's, so each test checks what the reader would see: a contiguous slice of
the room, never more than the bound, the cursors naming its ends, and the stream tailing the
room's channel exactly when the window reaches the live end.
"""

from __future__ import annotations

import uuid

import pytest

from stream_chat import chat
from stream_chat.models import Room, User
from stream_chat.state.messages import (
    LINK_ELSEWHERE,
    LINK_MISSING,
    PAGE,
    WINDOW,
    MessagesState,
)
from stream_chat.streams.client_model import BatchOutcome

from . import room_fixtures
from .room_fixtures import RoomApp, Tab, insert_messages, make_room, make_user, stored_messages

migrated_template = room_fixtures.migrated_template
room_db = room_fixtures.room_db
room_broker = room_fixtures.room_broker
room_app = room_fixtures.room_app


def seed(room: Room, user: User, count: int, *, other: Room | None = None) -> list[int]:
    """`count` messages in `room` (with `other`, one of that room after each, so the two
    rooms' ids interleave); the room's ids, oldest first."""
    rows = []
    for n in range(count):
        rows.append((room, user, f"#{n}"))
        if other is not None:
            rows.append((other, user, f"elsewhere #{n}"))
    ids = insert_messages(rows)
    return [i for i, (r, _, _) in zip(ids, rows, strict=True) if r is room]


def room_ids(room: Room) -> list[int]:
    return [m[0] for m in stored_messages(room.id)]


def cursors(tab: Tab) -> tuple[int | None, int | None, bool, bool]:
    return (tab.var("oldest_id"), tab.var("newest_id"), tab.var("at_start"), tab.var("at_end"))


def assert_window(tab: Tab, room: Room) -> list[int]:
    """What the tab shows is one contiguous run of the room's messages, at most WINDOW long,
    and the state's cursors say exactly where it starts and ends; the stream tails the
    room's channel if and only if the window reaches the live end."""
    shown = tab.shown_ids
    ids = room_ids(room)
    assert len(shown) <= WINDOW
    assert len(set(shown)) == len(shown), "a message is shown twice"
    if not shown:
        assert cursors(tab) == (None, None, True, True)
        return shown
    first = ids.index(shown[0])
    assert shown == ids[first : first + len(shown)], "a message is missing from the window"
    oldest, newest, at_start, at_end = cursors(tab)
    assert (oldest, at_start) == (shown[0], shown[0] == ids[0])
    assert at_end is (shown[-1] == ids[-1])
    if not at_end:
        assert newest == shown[-1]
    assert tab.stream.tail is at_end
    assert tab.stream.channel == f"room:{room.id}"
    assert BatchOutcome.GAP not in tab.outcomes
    return shown


async def open_room(app: RoomApp, user: User, room: Room, query: str = "") -> Tab:
    tab = app.tab(user)
    await tab.connect(f"/rooms/{room.id}{query}")
    return tab


async def reconnect(app: RoomApp, tab: Tab, path: str) -> None:
    """The socket drops and the page connects again (a new socket id, the same state):
    Reflex runs the page's on_load again."""
    await tab.disconnect()
    tab.sid = f"sio-{uuid.uuid4().hex[:16]}"
    app.sio.connect(tab)
    await tab.connect(path)


# --------------------------------------------------------------------------------------------
# Both cursors at every edge
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (0, lambda ids: (None, None, True, True)),
        (1, lambda ids: (ids[0], ids[0], True, True)),
        # Exactly one page: the extra row read says there is nothing older.
        (PAGE, lambda ids: (ids[0], ids[-1], True, True)),
        (PAGE + 1, lambda ids: (ids[1], ids[-1], False, True)),
    ],
    ids=["empty room", "one message", "exactly one page", "one page and one"],
)
async def test_entering_shows_the_last_page_with_both_cursors(
    room_app: RoomApp, count: int, expected: object
) -> None:
    ann = make_user("Ann")
    room, other = make_room("general"), make_room("random")
    ids = seed(room, ann, count, other=other)
    tab = await open_room(room_app, ann, room)
    assert cursors(tab) == expected(ids)  # type: ignore[operator]
    assert tab.shown_ids == ids[-PAGE:]
    assert_window(tab, room)
    # At both ends already: nothing to load either way, nothing is sent.
    if count <= PAGE:
        mark = tab.mark()
        for handler in (MessagesState.load_older, MessagesState.load_newer):
            await tab.send(handler)
        assert tab.deltas[mark:] == []


@pytest.mark.parametrize("count", [PAGE * 2 + 5, WINDOW, WINDOW + 1, 2 * WINDOW + 7])
async def test_scrolling_back_to_the_start_and_forward_to_the_present(
    room_app: RoomApp, count: int
) -> None:
    ann = make_user("Ann")
    room, other = make_room("general"), make_room("random")
    ids = seed(room, ann, count, other=other)
    tab = await open_room(room_app, ann, room)
    assert_window(tab, room)

    while not tab.var("at_start"):
        before = tab.shown_ids
        await tab.send(MessagesState.load_older)
        shown = assert_window(tab, room)
        # The page before the old top is on top now; the bottom gives way past the bound.
        added = ids.index(before[0]) - ids.index(shown[0])
        assert added == min(PAGE, ids.index(before[0]))
        assert shown == (ids[ids.index(shown[0]) : ids.index(before[0])] + before)[:WINDOW]
    assert tab.shown_ids[0] == ids[0]
    # The room is longer than the window: the live end was left on the way.
    assert tab.var("at_end") is (count <= WINDOW)

    while not tab.var("at_end"):
        await tab.send(MessagesState.load_newer)
        assert_window(tab, room)
    assert tab.shown_ids[-1] == ids[-1]
    # Back at the live end by scrolling: the last WINDOW messages, joined and tailing again.
    assert tab.shown_ids == ids[-WINDOW:]
    assert_window(tab, room)
    mark = tab.mark()
    created = chat.create_message(room.id, ann.id, "live again")  # type: ignore[arg-type]
    await room_app.quiet()
    assert tab.shown_ids[-1] == created.id
    assert tab.outcomes[-1] is BatchOutcome.APPLIED
    assert tab.channel_batches(mark)


async def test_scrolling_back_trims_the_bottom_and_forward_trims_the_top(
    room_app: RoomApp,
) -> None:
    ann = make_user("Ann")
    room = make_room("general")
    ids = seed(room, ann, 200)
    tab = await open_room(room_app, ann, room)
    for _ in range(2):
        await tab.send(MessagesState.load_older)
    assert tab.shown_ids == ids[-WINDOW:]
    assert tab.var("at_end") is True

    # A fourth page: the window is full, so the newest page goes, and so does the live end.
    mark = tab.mark()
    await tab.send(MessagesState.load_older)
    [batch] = tab.own_batches(mark)
    assert [op[:3] for op in batch["ops"]] == [["insert", 0, WINDOW], ["tail", False]]
    assert tab.shown_ids == ids[-WINDOW - PAGE : -PAGE]
    assert cursors(tab) == (ids[-WINDOW - PAGE], ids[-PAGE - 1], False, False)

    mark = tab.mark()
    await tab.send(MessagesState.load_older)
    assert tab.shown_ids == ids[-WINDOW - 2 * PAGE : -2 * PAGE]
    assert [op[0] for op in tab.own_batches(mark)[0]["ops"]] == ["insert"]

    mark = tab.mark()
    await tab.send(MessagesState.load_newer)
    [batch] = tab.own_batches(mark)
    assert [op[:3] for op in batch["ops"]] == [["insert", -1, -WINDOW]]
    assert tab.shown_ids == ids[-WINDOW - PAGE : -PAGE]
    assert cursors(tab) == (ids[-WINDOW - PAGE], ids[-PAGE - 1], False, False)


async def test_home_shows_the_rooms_first_window_and_end_the_present(room_app: RoomApp) -> None:
    ann = make_user("Ann")
    room, other = make_room("general"), make_room("random")
    ids = seed(room, ann, 150, other=other)
    tab = await open_room(room_app, ann, room)

    await tab.send(MessagesState.jump_to_start)
    assert tab.shown_ids == ids[:WINDOW]
    assert cursors(tab) == (ids[0], ids[WINDOW - 1], True, False)
    assert_window(tab, room)
    # Already there: nothing read, nothing sent.
    mark = tab.mark()
    await tab.send(MessagesState.jump_to_start)
    await tab.send(MessagesState.load_older)
    assert tab.deltas[mark:] == []

    await tab.send(MessagesState.load_newer)
    assert tab.shown_ids == ids[PAGE : WINDOW + PAGE]
    await tab.send(MessagesState.jump_to_present)
    assert tab.shown_ids == ids[-PAGE:]
    assert_window(tab, room)
    mark = tab.mark()
    await tab.send(MessagesState.jump_to_present)
    assert tab.deltas[mark:] == []


async def test_home_in_a_room_that_fits_in_the_window_stays_at_the_live_end(
    room_app: RoomApp,
) -> None:
    ann = make_user("Ann")
    room = make_room("general")
    ids = seed(room, ann, WINDOW - 5)
    tab = await open_room(room_app, ann, room)
    await tab.send(MessagesState.jump_to_start)
    assert tab.shown_ids == ids
    assert cursors(tab)[2:] == (True, True)
    assert_window(tab, room)


# --------------------------------------------------------------------------------------------
# Live changes inside and outside the window
# --------------------------------------------------------------------------------------------


async def test_away_from_the_live_end_changes_inside_show_and_new_messages_are_counted(
    room_app: RoomApp,
) -> None:
    ann, bob = make_user("Ann"), make_user("Bob")
    room = make_room("general")
    ids = seed(room, bob, 150)
    tab = await open_room(room_app, ann, room)
    for _ in range(4):
        await tab.send(MessagesState.load_older)
    window = assert_window(tab, room)
    assert tab.var("at_end") is False
    inside, outside = window[5], ids[-3]

    new = [chat.create_message(room.id, bob.id, f"while away #{n}") for n in range(3)]  # type: ignore[arg-type]
    chat.update_message(inside, bob.id, "edited inside", room_id=room.id)  # type: ignore[arg-type]
    chat.update_message(outside, bob.id, "edited outside", room_id=room.id)  # type: ignore[arg-type]
    chat.delete_message(window[6], bob.id, room_id=room.id)  # type: ignore[arg-type]
    await room_app.quiet()

    # The window does not move nor grow; the edit inside shows, the delete applies.
    assert tab.shown_ids == [i for i in window if i != window[6]]
    contents = {item["id"]: item["content"] for item in tab.stream.items}
    assert contents[inside] == "edited inside"
    assert outside not in contents
    assert tab.stream.unseen == 3
    assert all(outcome is BatchOutcome.APPLIED for outcome in tab.outcomes)

    # Scrolling forward reaches the edit outside as the database has it, then the present.
    while not tab.var("at_end"):
        await tab.send(MessagesState.load_newer)
        assert_window(tab, room)
    contents = {item["id"]: item["content"] for item in tab.stream.items}
    assert contents[outside] == "edited outside"
    assert tab.shown_ids[-3:] == [m.id for m in new]
    assert tab.stream.unseen == 0


async def test_jump_to_present_shows_what_arrived_while_away_and_tails_again(
    room_app: RoomApp,
) -> None:
    ann, bob = make_user("Ann"), make_user("Bob")
    room = make_room("general")
    seed(room, bob, 100)
    tab = await open_room(room_app, ann, room)
    await tab.send(MessagesState.jump_to_start)
    created = chat.create_message(room.id, bob.id, "while away")  # type: ignore[arg-type]
    await room_app.quiet()
    assert created.id not in tab.shown_ids
    assert tab.stream.unseen == 1

    await tab.send(MessagesState.jump_to_present)
    assert tab.shown_ids[-1] == created.id
    assert tab.stream.unseen == 0
    assert_window(tab, room)
    after = chat.create_message(room.id, bob.id, "at the live end")  # type: ignore[arg-type]
    await room_app.quiet()
    assert tab.shown_ids[-2:] == [created.id, after.id]


async def test_a_message_arriving_as_the_window_leaves_the_live_end_is_not_lost(
    room_app: RoomApp,
) -> None:
    # The page before is read while the window still reaches the live end: it is inserted
    # without a limit, so a message that reached the browser just before is not trimmed.
    ann, bob = make_user("Ann"), make_user("Bob")
    room = make_room("general")
    seed(room, bob, 45)
    tab = await open_room(room_app, ann, room)
    created = chat.create_message(room.id, bob.id, "just now")  # type: ignore[arg-type]
    await room_app.quiet()
    await tab.send(MessagesState.load_older)
    assert tab.var("at_end") is True
    assert tab.shown_ids[-1] == created.id
    assert_window(tab, room)


# --------------------------------------------------------------------------------------------
# Links to a message
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("position", "at_start", "at_end"),
    [(75, False, False), (3, True, False), (146, False, True)],
    ids=["middle", "near the start", "near the live end"],
)
async def test_a_link_opens_the_room_centred_on_the_message(
    room_app: RoomApp, position: int, at_start: bool, at_end: bool
) -> None:
    ann, bob = make_user("Ann"), make_user("Bob")
    room, other = make_room("general"), make_room("random")
    ids = seed(room, bob, 150, other=other)
    target = ids[position]
    tab = await open_room(room_app, ann, room, f"?m={target}")

    assert tab.shown_ids == ids[max(0, position - PAGE) : position + PAGE + 1]
    assert cursors(tab)[2:] == (at_start, at_end)
    assert tab.var("highlight_id") == target
    assert tab.var("link_opened") == 1
    assert tab.var("link_notice") == ""
    assert_window(tab, room)

    # History loads both ways from there.
    await tab.send(MessagesState.load_older)
    assert_window(tab, room)
    await tab.send(MessagesState.load_newer)
    assert_window(tab, room)

    # Away from the live end, a new message is counted, not shown; at it, it is shown.
    created = chat.create_message(room.id, bob.id, "new")  # type: ignore[arg-type]
    await room_app.quiet()
    assert (created.id in tab.shown_ids) is tab.var("at_end")
    assert tab.stream.unseen == (0 if tab.var("at_end") else 1)


async def test_the_same_link_followed_again_centres_again(room_app: RoomApp) -> None:
    ann = make_user("Ann")
    room = make_room("general")
    ids = seed(room, ann, 150)
    tab = await open_room(room_app, ann, room, f"?m={ids[50]}")
    await tab.send(MessagesState.jump_to_present)
    await tab.navigate(f"/rooms/{room.id}?m={ids[50]}")
    assert ids[50] in tab.shown_ids
    assert tab.var("link_opened") == 2


@pytest.mark.parametrize(
    "link",
    ["deleted", "never existed", "abc", "-4", "2.5", "", "99999999999999999999", "\u0661"],
)
async def test_a_link_to_a_missing_message_says_so_and_opens_the_present(
    room_app: RoomApp, link: str
) -> None:
    ann = make_user("Ann")
    room = make_room("general")
    ids = seed(room, ann, 100)
    if link == "deleted":
        chat.delete_message(ids[40], ann.id, room_id=room.id)  # type: ignore[arg-type]
        link = str(ids[40])
    elif link == "never existed":
        link = str(ids[-1] + 1000)
    tab = await open_room(room_app, ann, room, f"?m={link}")

    assert tab.shown_ids == room_ids(room)[-PAGE:]
    assert tab.var("link_notice") == (LINK_MISSING if link else "")
    assert tab.var("highlight_id") is None
    assert room_app.errors == []
    assert_window(tab, room)


async def test_a_link_to_another_rooms_message_says_where_it_is(room_app: RoomApp) -> None:
    ann = make_user("Ann")
    room, other = make_room("general"), make_room("random")
    seed(room, ann, 30)
    [elsewhere] = seed(other, ann, 1)
    tab = await open_room(room_app, ann, room, f"?m={elsewhere}")

    assert tab.var("link_notice") == LINK_ELSEWHERE
    assert tab.var("link_elsewhere") == f"/rooms/{other.id}?m={elsewhere}"
    assert tab.shown_ids == room_ids(room)[-PAGE:]
    assert elsewhere not in tab.shown_ids
    assert_window(tab, room)

    await tab.send(MessagesState.dismiss_link_notice)
    assert (tab.var("link_notice"), tab.var("link_elsewhere")) == ("", "")


async def test_a_reconnect_keeps_the_reader_where_they_were(room_app: RoomApp) -> None:
    ann, bob = make_user("Ann"), make_user("Bob")
    room = make_room("general")
    ids = seed(room, bob, 200)
    tab = await open_room(room_app, ann, room, f"?m={ids[60]}")
    # The reader moves on from the linked message; the page has dropped `m` from the address.
    await tab.send(MessagesState.load_newer)
    await tab.send(MessagesState.load_newer)
    where = tab.shown_ids
    assert ids[60] not in where

    await reconnect(room_app, tab, f"/rooms/{room.id}")
    assert tab.shown_ids == where
    assert tab.var("highlight_id") is None
    assert tab.var("link_opened") == 1
    assert_window(tab, room)
    # Still following the room, still not tailing it.
    created = chat.create_message(room.id, bob.id, "after the reconnect")  # type: ignore[arg-type]
    await room_app.quiet()
    assert tab.stream.unseen == 1
    assert created.id not in tab.shown_ids

    # At the live end a reconnect shows the latest page, as before.
    await tab.send(MessagesState.jump_to_present)
    await reconnect(room_app, tab, f"/rooms/{room.id}")
    assert tab.shown_ids == room_ids(room)[-PAGE:]


async def test_another_room_then_back_opens_the_present(room_app: RoomApp) -> None:
    ann = make_user("Ann")
    room, other = make_room("general"), make_room("random")
    ids = seed(room, ann, 150)
    seed(other, ann, 5)
    tab = await open_room(room_app, ann, room)
    await tab.send(MessagesState.jump_to_start)
    await tab.navigate(f"/rooms/{other.id}")
    await tab.navigate(f"/rooms/{room.id}")
    assert tab.shown_ids == ids[-PAGE:]
    assert_window(tab, room)


async def test_a_resync_away_from_the_live_end_keeps_the_window(room_app: RoomApp) -> None:
    ann = make_user("Ann")
    room = make_room("general")
    seed(room, ann, 150)
    tab = await open_room(room_app, ann, room)
    await tab.send(MessagesState.jump_to_start)
    await tab.send(MessagesState.load_newer)
    where = tab.shown_ids
    await tab.send(MessagesState.resync_stream, name="messages")
    assert tab.shown_ids == where
    assert_window(tab, room)


@pytest.mark.parametrize(
    "handler",
    [
        MessagesState.load_older,
        MessagesState.load_newer,
        MessagesState.jump_to_present,
        MessagesState.jump_to_start,
    ],
    ids=lambda handler: handler.fn.__name__,
)
async def test_the_window_handlers_send_nothing_to_a_revoked_session(
    room_app: RoomApp, handler: object
) -> None:
    from stream_chat import accounts

    ann = make_user("Ann")
    room = make_room("general")
    seed(room, ann, 150)
    tab = await open_room(room_app, ann, room, "?m=" + str(room_ids(room)[70]))
    accounts.delete_session_token(tab.session_token)
    mark = tab.mark()
    events = await tab.send(handler)
    # Nothing of the room; the tab is sent to log in again.
    assert tab.own_batches(mark) == []
    redirects = [e["payload"]["path"] for e in events if e["name"] == "_redirect"]
    assert f"/login?next=/rooms/{room.id}" in redirects


async def test_sending_away_from_the_live_end_goes_back_to_it(room_app: RoomApp) -> None:
    # The sender's own message always shows, as it always scrolls into view at the live end.
    ann, bob = make_user("Ann"), make_user("Bob")
    room = make_room("general")
    seed(room, bob, 150)
    tab = await open_room(room_app, ann, room)
    await tab.send(MessagesState.jump_to_start)
    await tab.send(MessagesState.send, form={"content": "back to the present"})
    ids = room_ids(room)
    assert tab.shown_ids == ids[-PAGE:]
    assert tab.stream.items[-1]["content"] == "back to the present"
    assert_window(tab, room)
    later = chat.create_message(room.id, bob.id, "and the room goes on")  # type: ignore[arg-type]
    await room_app.quiet()
    assert tab.shown_ids[-1] == later.id
