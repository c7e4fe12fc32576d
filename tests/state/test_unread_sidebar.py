"""The sidebar's unread news through the real event processor: the summary a tab starts
from, the rooms' activity and a user's reads, and the handlers that move a position.

As in test_room_messages.py, feeds emit through `room_fixtures.FakeSocketServer`, so what a
tab "received" is what its socket was sent, in order, state deltas and broadcasts alike.
"""

from __future__ import annotations

from typing import Any

from stream_chat import chat, mentions, unread
from stream_chat.models import Room, User
from stream_chat.state.messages import MessagesState
from stream_chat.state.rooms import RoomsState
from stream_chat.state.unread_feeds import UNREAD_VAR

from . import room_fixtures
from .room_fixtures import RoomApp, Tab, insert_messages, make_room, make_user
from .test_room_messages import stored_state

migrated_template = room_fixtures.migrated_template
room_db = room_fixtures.room_db
room_broker = room_fixtures.room_broker
room_app = room_fixtures.room_app


async def open_page(app: RoomApp, user: User, path: str) -> Tab:
    tab = app.tab(user)
    await tab.connect(path)
    return tab


def summaries(tab: Tab, since: int = 0) -> list[dict[str, Any]]:
    return [news for news in tab.unread_news(since) if news["kind"] == "summary"]


def of_kind(tab: Tab, kind: str, since: int = 0) -> list[dict[str, Any]]:
    return [news for news in tab.unread_news(since) if news["kind"] == kind]


def room_in(summary: dict[str, Any], room: Room) -> dict[str, Any]:
    [found] = [entry for entry in summary["rooms"] if entry["room_id"] == room.id]
    return found


async def test_a_tab_starts_from_the_users_summary_on_either_page(room_app: RoomApp) -> None:
    ann, bob = make_user("Ann"), make_user("Bob")
    here, there = make_room("here"), make_room("there")
    first, _ = insert_messages([(there, bob, "one"), (there, bob, "two")])
    for path in (f"/rooms/{here.id}", "/rooms"):
        tab = await open_page(room_app, ann, path)
        [summary] = summaries(tab)
        assert summary["user_id"] == ann.id
        assert room_in(summary, there) == unread.check_room_unread(ann.id, there.id).as_json()
        assert (room_in(summary, there)["unread"], room_in(summary, there)["first_unread"]) == (
            2,
            first,
        )
        assert room_in(summary, here)["unread"] == 0


async def test_a_new_message_is_one_broadcast_that_reaches_every_sidebar(
    room_app: RoomApp,
) -> None:
    ann, bob = make_user("Ann"), make_user("Bob")
    here, there = make_room("here"), make_room("there")
    tabs = [
        await open_page(room_app, ann, f"/rooms/{here.id}"),
        await open_page(room_app, ann, "/rooms"),
        await open_page(room_app, bob, f"/rooms/{there.id}"),
    ]
    marks = [tab.mark() for tab in tabs]
    emits = len(room_app.sio.emits)
    text = f"look {mentions.mention_text(ann.id, 'Ann')}"
    message = chat.create_message(there.id, bob.id, text)  # type: ignore[arg-type]
    await room_app.quiet()
    for tab, mark in zip(tabs, marks, strict=True):
        [posted] = of_kind(tab, "posted", mark)
        assert (posted["room_id"], posted["message_id"], posted["sender_id"]) == (
            there.id,
            message.id,
            bob.id,
        )
        # The snippet is for a notification's plain text: the mention reads as a name.
        assert (posted["mentioned"], posted["snippet"]) == ([ann.id], "look @Ann")
    # One emit for the sidebars (to the worker's activity room), one for the room's own feed
    # (and the room's awareness: Bob is a new poster there).
    to_rooms = room_app.sio.emits_to_rooms(emits)
    news_key = f"{UNREAD_VAR}_rx_state_"
    sidebar_emits = [
        e for e in to_rooms if news_key in e.wire["delta"].get(RoomsState.get_full_name(), {})
    ]
    assert len(sidebar_emits) == 1
    assert sidebar_emits[0].recipients == {tab.sid for tab in tabs}


async def test_reading_in_one_tab_reaches_that_users_other_tabs_only(room_app: RoomApp) -> None:
    ann, bob = make_user("Ann"), make_user("Bob")
    here, there = make_room("here"), make_room("there")
    ids = insert_messages([(there, bob, "one"), (there, bob, "two"), (there, bob, "three")])
    reading = await open_page(room_app, ann, f"/rooms/{there.id}")
    elsewhere = await open_page(room_app, ann, f"/rooms/{here.id}")
    index = await open_page(room_app, ann, "/rooms")
    bobs = await open_page(room_app, bob, f"/rooms/{there.id}")
    marks = {tab.sid: tab.mark() for tab in (reading, elsewhere, index, bobs)}

    await reading.send(MessagesState.mark_read, message_id=ids[1])

    expected = {"kind": "read", "room": unread.check_room_unread(ann.id, there.id).as_json()}
    assert expected["room"]["last_read"] == ids[1]
    assert expected["room"]["unread"] == 1
    for tab in (reading, elsewhere, index):
        assert [
            {k: v for k, v in news.items() if k != "seq"}
            for news in of_kind(tab, "read", marks[tab.sid])
        ] == [expected]
    assert bobs.unread_news(marks[bobs.sid]) == []
    # Backwards: nothing moves, nobody hears anything.
    marks = {tab.sid: tab.mark() for tab in (reading, elsewhere)}
    await elsewhere.send(RoomsState.refresh_unread)
    await reading.send(MessagesState.mark_read, message_id=ids[0])
    assert unread.check_last_read(ann.id, there.id) == ids[1]
    assert of_kind(reading, "read", marks[reading.sid]) == []
    # The refresh went to the tab that asked, and only to it.
    assert len(summaries(elsewhere, marks[elsewhere.sid])) == 1
    assert summaries(reading, marks[reading.sid]) == []


async def test_marking_read_another_rooms_message_is_refused(room_app: RoomApp) -> None:
    ann, bob = make_user("Ann"), make_user("Bob")
    here, there = make_room("here"), make_room("there")
    [mine_here, theirs] = insert_messages([(here, bob, "here"), (there, bob, "there")])
    tab = await open_page(room_app, ann, f"/rooms/{here.id}")
    mark = tab.mark()
    for crafted in (theirs, theirs + 1000, 0, -5):
        await tab.send(MessagesState.mark_read, message_id=crafted)
    assert unread.check_last_read(ann.id, here.id) == 0
    assert unread.check_last_read(ann.id, there.id) == 0
    assert tab.unread_news(mark) == []
    await tab.send(MessagesState.mark_read, message_id=mine_here)
    assert unread.check_last_read(ann.id, here.id) == mine_here


async def test_the_divider_and_mark_as_read(room_app: RoomApp) -> None:
    ann, bob = make_user("Ann"), make_user("Bob")
    room, other = make_room("room"), make_room("other")
    ids = insert_messages([(room, bob, f"line {n}") for n in range(6)])
    unread.do_mark_read(ann.id, room.id, ids[2])  # type: ignore[arg-type]
    tab = await open_page(room_app, ann, f"/rooms/{room.id}")
    other_tab = await open_page(room_app, ann, f"/rooms/{other.id}")
    assert tab.var("first_unread_id") == ids[3]
    mark = other_tab.mark()

    await tab.send(MessagesState.mark_room_read)

    assert tab.var("first_unread_id") is None
    assert unread.check_last_read(ann.id, room.id) == ids[-1]
    [read] = of_kind(other_tab, "read", mark)
    assert (read["room"]["room_id"], read["room"]["unread"]) == (room.id, 0)
    # Reopened with nothing unread: no divider.
    again = await open_page(room_app, ann, f"/rooms/{room.id}")
    assert again.var("first_unread_id") is None


async def test_the_tabs_state_does_not_grow_with_the_news(room_app: RoomApp) -> None:
    ann, bob = make_user("Ann"), make_user("Bob")
    here, there = make_room("here"), make_room("there")
    tab = await open_page(room_app, ann, f"/rooms/{here.id}")
    for n in range(30):
        chat.create_message(there.id, bob.id, f"busy {n}")  # type: ignore[arg-type]
    await room_app.quiet()
    assert len(of_kind(tab, "posted")) == 30
    state = await stored_state(room_app, tab)
    # The news went to the browser only.
    assert state.unread_news == {}


async def test_a_room_opens_at_the_first_unread_message_when_it_is_older_than_the_last_page(
    room_app: RoomApp,
) -> None:
    ann, bob = make_user("Ann"), make_user("Bob")
    room = make_room("room")
    ids = insert_messages([(room, bob, f"line {n}") for n in range(100)])
    unread.do_mark_read(ann.id, room.id, ids[29])  # type: ignore[arg-type]
    tab = await open_page(room_app, ann, f"/rooms/{room.id}")
    # The page around the first unread message, not the live end: the divider is in it.
    assert tab.var("first_unread_id") == ids[30]
    assert ids[30] in tab.shown_ids
    assert ids[-1] not in tab.shown_ids
    assert tab.var("at_end") is False
    # Reading down to the live end and opening the room again: the latest page, no divider.
    await tab.send(MessagesState.mark_room_read)
    again = await open_page(room_app, ann, f"/rooms/{room.id}")
    assert again.var("first_unread_id") is None
    assert again.shown_ids[-1] == ids[-1]


async def test_unread_within_the_last_page_opens_at_the_live_end(room_app: RoomApp) -> None:
    ann, bob = make_user("Ann"), make_user("Bob")
    room = make_room("room")
    ids = insert_messages([(room, bob, f"line {n}") for n in range(100)])
    unread.do_mark_read(ann.id, room.id, ids[-5])  # type: ignore[arg-type]
    tab = await open_page(room_app, ann, f"/rooms/{room.id}")
    assert tab.var("first_unread_id") == ids[-4]
    assert tab.shown_ids[-1] == ids[-1]
    assert tab.var("at_end") is True


async def test_a_room_never_read_opens_at_its_live_end(room_app: RoomApp) -> None:
    ann, bob = make_user("Ann"), make_user("Bob")
    room = make_room("room")
    ids = insert_messages([(room, bob, f"line {n}") for n in range(100)])
    tab = await open_page(room_app, ann, f"/rooms/{room.id}")
    # Everything is unread, from the room's first message: not where it opens.
    assert tab.var("first_unread_id") == ids[0]
    assert tab.shown_ids[-1] == ids[-1]
    assert tab.var("at_end") is True
