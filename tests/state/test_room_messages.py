"""The room page's state (`stream_chat/state/messages.py`) through the real event processor.

Every test runs over the memory and the Redis state managers (`room_fixtures.room_app`), with
a fresh migrated SQLite database and an in-process broker. Tabs boot with the session cookie
and the page's router data; the app's on_load table (`require_user`, `enter_room`) starts the
`follow_room` background task, as in the running app. The follower sends the history (with a
`join` op binding the stream to the room's channel) and hands the tab to the room's
`RoomFeed` (`stream_chat/state/room_feed.py`), which broadcasts every change once to a
socket.io room: `room_fixtures.FakeSocketServer` stands in for the app's socket server. What
a tab "shows" is a `ClientStream` fed every `messages` batch it received (its own and the
room's channel batches), in order.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from stream_chat import accounts, chat, pubsub
from stream_chat.models import Room, User
from stream_chat.state import room_feed
from stream_chat.state.messages import MESSAGES, MessagesState
from stream_chat.state.session import SessionState
from stream_chat.stream_chat import app as chat_app
from stream_chat.streams.client_model import BatchOutcome, ClientStream

from . import room_fixtures
from .conftest import BATCHES_KEY
from .room_fixtures import (
    FEED_EMITTER,
    MESSAGES_STATE,
    RoomApp,
    Tab,
    insert_messages,
    make_room,
    make_user,
    stored_messages,
)

# The fixtures live in room_fixtures.py; pytest finds them as attributes of this module.
migrated_template = room_fixtures.migrated_template
room_db = room_fixtures.room_db
room_broker = room_fixtures.room_broker
room_app = room_fixtures.room_app

PAGE = chat.PAGE_SIZE

# Exactly a multiple of the page size: the code sets `at_start = len(page) < PAGE_SIZE`, so a
# full page that happens to begin with the room's first message leaves `at_start` False.


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def dom(message_id: int) -> str:
    return f"{MESSAGES}-{message_id}"


def channel(room: Room) -> str:
    return f"room:{room.id}"


def join_op(room: Room, cseq: int) -> list:
    """The op that binds a tab's stream to the room's channel from number `cseq` on."""
    return ["join", channel(room), cseq]


# The fields of a message row these tests hold the page to (rows may carry more).
ROW_FIELDS = ("id", "room_id", "sender_id", "sender_name", "content", "inserted_at", "edited")


def core(item: dict[str, Any]) -> dict[str, Any]:
    return {name: item.get(name, "<missing>") for name in ROW_FIELDS}


def row(message_id: int) -> dict[str, Any]:
    """The message as the Chat context renders it, from the database."""
    message = chat.get_message(message_id)
    assert message is not None
    return core(dict(chat.message_row(message)))


def insert_op(message_ids: list[int], *, at: int = -1, update_only: bool = False) -> list:
    """The insert op that must carry these messages (items reduced to ROW_FIELDS)."""
    return ["insert", at, None, update_only, [[dom(i), row(i)] for i in message_ids]]


def project(ops: list[list[Any]]) -> list[list[Any]]:
    """These ops with their insert items reduced to ROW_FIELDS."""
    return [
        [*op[:4], [[dom_id, core(item)] for dom_id, item in op[4]]] if op[0] == "insert" else op
        for op in ops
    ]


def ops_of(tab: Tab, since: int = 0) -> list[list[Any]]:
    """The tab's `messages` ops from `since`, insert items reduced to ROW_FIELDS."""
    return project(tab.ops(since))


def seed(room: Room, users: list[User], count: int, *, other: Room | None = None) -> list[int]:
    """`count` messages in `room` (senders taking turns); with `other`, one message of that
    room after each, so the two rooms' ids interleave. Returns the ids in `room`, oldest first."""
    rows = []
    for n in range(count):
        rows.append((room, users[n % len(users)], f"{room.name} #{n}"))
        if other is not None:
            rows.append((other, users[0], f"{other.name} #{n}"))
    ids = insert_messages(rows)
    return [i for i, (r, _, _) in zip(ids, rows, strict=True) if r is room]


def toasts(events: list[dict[str, Any]]) -> list[str]:
    return [e["payload"]["function"] for e in events if e["name"] == "_call_function"]


def clears_composer(events: list[dict[str, Any]]) -> bool:
    return any(
        e["name"] == "_set_value" and e["payload"] == {"ref": "ref_composer", "value": ""}
        for e in events
    )


def entries_in(ops: list[list[Any]]) -> list[tuple[str, bool, int, str]]:
    """(op, update_only, message id, content) for each message of these ops, in order: the
    same changes in the same order whether they came one per batch or several in one."""
    found = []
    for op in ops:
        if op[0] == "insert":
            found += [("insert", op[3], item["id"], item["content"]) for _, item in op[4]]
        else:
            found.append((op[0], False, int(op[1].removeprefix(f"{MESSAGES}-")), ""))
    return found


def message_ids_in(ops: list[list[Any]]) -> list[int]:
    """Ids of every message an op of these carries or deletes."""
    found = []
    for op in ops:
        if op[0] == "insert":
            found += [item["id"] for _, item in op[4]]
        elif op[0] == "delete":
            found.append(int(op[1].removeprefix(f"{MESSAGES}-")))
    return found


def channel_outcomes(tab: Tab) -> list[BatchOutcome]:
    """The browser's outcome for each channel batch the tab received, in order."""
    return [
        outcome
        for batch, outcome in zip(tab.batches(), tab.outcomes, strict=True)
        if "channel" in batch[MESSAGES]
    ]


async def open_room(app: RoomApp, user: User, room: Room) -> Tab:
    tab = app.tab(user)
    await tab.connect(f"/rooms/{room.id}")
    return tab


def assert_in_feed(app: RoomApp, room: Room, tabs: list[Tab]) -> None:
    """These tabs, and only these, get the room's broadcasts: one feed (one subscription)
    for the room, counting them as members, with their sockets in its socket.io room."""
    assert app.subscriber_count(room.id) == 1
    assert app.feed_members(room.id) == {tab.sid for tab in tabs}
    assert app.sio.participants(app.socket_room_of(room.id)) == {tab.sid for tab in tabs}


async def resync_after_gap(tab: Tab) -> None:
    """What streams.js does when a batch shows a gap: ask for a resync, once."""
    assert tab.outcomes[-1] is BatchOutcome.GAP
    await tab.send(MessagesState.resync_stream, name=MESSAGES)


async def assert_delivered_live(
    room_app: RoomApp, tab: Tab, room: Room, sender: Any, text: str
) -> Any:
    """A message posted now reaches the tab as exactly one insert of it; returns it."""
    mark = tab.mark()
    created = chat.create_message(room.id, sender.id, text)  # type: ignore[arg-type]
    await room_app.quiet()
    assert ops_of(tab, mark) == [insert_op([created.id])]  # type: ignore[list-item]
    return created


async def stored_state(app: RoomApp, tab: Tab) -> MessagesState:
    from reflex.istate.manager.token import BaseStateToken

    root = await app.state_manager.get_state(BaseStateToken(ident=tab.token, cls=MessagesState))
    return root.get_substate(MESSAGES_STATE.split("."))  # type: ignore[return-value]


async def tamper(app: RoomApp, tab: Tab, **values: Any) -> None:
    """Writes MessagesState vars directly in the stored state (no event can set them)."""
    from reflex.istate.manager.token import BaseStateToken

    async with app.state_manager.modify_state(
        BaseStateToken(ident=tab.token, cls=MessagesState)
    ) as root:
        state = root.get_substate(MESSAGES_STATE.split("."))
        for name, value in values.items():
            setattr(state, name, value)
        root._clean()


# --------------------------------------------------------------------------------------------
# 0. The route is the app's own
# --------------------------------------------------------------------------------------------


def test_the_room_route_runs_require_user_then_enter_room() -> None:
    names = [handler.fn.__qualname__ for handler in chat_app._load_events["rooms/[room_id]"]]
    assert names == ["SessionState.require_user", "MessagesState.enter_room"]


# --------------------------------------------------------------------------------------------
# 1. enter_room
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "at_start"),
    [
        (0, True),
        (7, True),
        (20, True),
        (21, False),
        (45, False),
    ],
)
async def test_enter_room_streams_the_last_page_with_a_reset(
    room_app: RoomApp, count: int, at_start: bool
) -> None:
    ann, bob = make_user("Ann"), make_user("Bob")
    room, other = make_room("general"), make_room("random")
    ids = seed(room, [ann, bob], count, other=other)

    tab = await open_room(room_app, ann, room)

    batches = tab.batches()
    first = batches[0][MESSAGES]
    assert first["seq"] == 1
    shown = ids[-PAGE:]
    # The history, then the binding to the room's channel: nothing was broadcast yet.
    history = [["reset"], insert_op(shown)] if shown else [["reset"]]
    assert project(first["ops"]) == [*history, join_op(room, 0)]
    assert len(batches) == 1
    assert tab.outcomes == [BatchOutcome.APPLIED]
    assert tab.shown_ids == shown
    assert (tab.stream.channel, tab.stream.channel_seq) == (channel(room), 0)
    assert tab.var("room_missing") is False
    assert tab.var("current_room_id") == room.id
    assert tab.var("room_name") == "general"
    assert tab.var("oldest_id") == (shown[0] if shown else None)
    assert tab.var("at_start") is at_start
    # The live subscription is open: one follower, and this room's feed (subscribed to this
    # room only) counts the tab's socket in.
    assert len(room_app.follower_tasks(tab.token)) == 1
    assert_in_feed(room_app, room, [tab])
    assert room_app.subscriber_count(other.id) == 0
    assert set(room_app.feeds()) == {room.id}


async def test_enter_room_joins_the_channel_at_the_rooms_current_number(
    room_app: RoomApp,
) -> None:
    # Broadcasts made while nobody listened still count: the history covers them, and the
    # join says so, so the next broadcast is the next number.
    ann, bob = make_user("Ann"), make_user("Bob")
    room = make_room("general")
    for n in range(3):
        chat.create_message(room.id, bob.id, f"before #{n}")  # type: ignore[arg-type]
    assert chat.current_seq(room.id) == 3  # type: ignore[arg-type]

    tab = await open_room(room_app, ann, room)

    [first] = [b[MESSAGES] for b in tab.batches()]
    assert first["ops"][-1] == join_op(room, 3)
    mark = tab.mark()
    created = chat.create_message(room.id, bob.id, "after")  # type: ignore[arg-type]
    await room_app.quiet()
    assert tab.channel_batches(mark) == [
        {"channel": channel(room), "cseq": 4, "ops": tab.ops(mark)}
    ]
    assert ops_of(tab, mark) == [insert_op([created.id])]  # type: ignore[list-item]
    assert tab.outcomes == [BatchOutcome.APPLIED, BatchOutcome.APPLIED]
    assert tab.shown_ids == [m[0] for m in stored_messages(room.id)]


@pytest.mark.parametrize(
    "raw_id", ["999", "abc", "0", "-3", "2.5", "99999999999999999999", "\u0661"]
)
async def test_enter_room_of_an_unknown_or_malformed_id_says_missing_and_follows_nothing(
    room_app: RoomApp, raw_id: str
) -> None:
    ann = make_user("Ann")
    room = make_room("general")
    seed(room, [ann], 3)
    tab = room_app.tab(ann)

    await tab.connect(f"/rooms/{raw_id}")

    assert tab.var("room_missing") is True
    assert tab.var("current_room_id") is None
    # The stream is emptied (a reset with nothing after it), so no stale room shows.
    assert [b[MESSAGES]["ops"] for b in tab.batches()] == [[["reset"]]]
    assert tab.shown_ids == []
    assert room_app.follower_tasks(tab.token) == []
    assert room_app.subscriber_count(room.id) == 0
    assert room_app.broker._subscriptions == {}
    assert room_app.feeds() == {}
    assert room_app.sio.rooms_of(tab.sid) == set()
    assert room_app.errors == []


async def test_enter_room_without_a_session_redirects_and_streams_nothing(
    room_app: RoomApp,
) -> None:
    ann = make_user("Ann")
    room = make_room("general")
    seed(room, [ann], 3)
    tab = room_app.tab(None)

    await tab.connect(f"/rooms/{room.id}")

    redirects = [e["payload"]["path"] for e in tab.frontend_events if e["name"] == "_redirect"]
    assert redirects == [f"/login?next=/rooms/{room.id}"]
    assert tab.batches() == []
    assert room_app.follower_tasks(tab.token) == []
    assert room_app.subscriber_count(room.id) == 0
    assert room_app.feeds() == {}


# --------------------------------------------------------------------------------------------
# 2. load_older
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "count",
    [45, 40],
)
async def test_load_older_walks_back_to_the_first_message_of_this_room_only(
    room_app: RoomApp, count: int
) -> None:
    ann, bob = make_user("Ann"), make_user("Bob")
    room, other = make_room("general"), make_room("random")
    ids = seed(room, [ann, bob], count, other=other)
    other_ids = {m[0] for m in stored_messages(other.id)}
    tab = await open_room(room_app, ann, room)
    assert tab.var("at_start") is False

    cursor = ids[-PAGE]
    while not tab.var("at_start"):
        before = [i for i in ids if i < cursor][-PAGE:]
        assert before, "the room's first message is shown, but at_start is still False"
        mark = tab.mark()
        await tab.send(MessagesState.load_older)
        # One insert at the top holding the page just before the cursor, oldest first.
        assert ops_of(tab, mark) == [insert_op(before, at=0)]
        cursor = before[0]
        assert tab.var("oldest_id") == cursor
        assert tab.shown_ids[: len(before)] == before

    # Every message of the room exactly once, in order, and none of the other room's.
    assert tab.shown_ids == ids
    assert not other_ids & set(tab.shown_ids)
    assert all(outcome is BatchOutcome.APPLIED for outcome in tab.outcomes)

    # At the start: further calls send nothing at all.
    mark = tab.mark()
    await tab.send(MessagesState.load_older)
    await tab.send(MessagesState.load_older)
    assert tab.deltas[mark:] == []


async def test_load_older_in_an_empty_room_emits_nothing(room_app: RoomApp) -> None:
    ann = make_user("Ann")
    room, other = make_room("empty"), make_room("busy")
    seed(other, [ann], 30)
    tab = await open_room(room_app, ann, room)
    assert tab.var("oldest_id") is None

    mark = tab.mark()
    await tab.send(MessagesState.load_older)
    assert tab.deltas[mark:] == []
    assert tab.shown_ids == []


# --------------------------------------------------------------------------------------------
# 3. send
# --------------------------------------------------------------------------------------------


async def test_send_stores_then_delivers_through_the_subscription(room_app: RoomApp) -> None:
    ann, bob = make_user("Ann"), make_user("Bob")
    room = make_room("general")
    ids = seed(room, [bob], 3)
    tab = await open_room(room_app, ann, room)
    mark = tab.mark()

    events = await tab.send(MessagesState.send, form={"content": "  hello there  "})

    stored = stored_messages(room.id)
    assert len(stored) == 4
    new_id, room_id, sender_id, content, edited = stored[-1]
    assert (room_id, sender_id, content, edited) == (room.id, ann.id, "hello there", False)
    # The insert reached the sender through the room's broadcast (the feed), like everyone
    # else's, not from the send handler: the handler only cleared the composer.
    assert ops_of(tab, mark) == [insert_op([new_id])]
    carrying = [
        tab.emitters[mark + n]
        for n, delta in enumerate(tab.deltas[mark:])
        if delta.get(MESSAGES_STATE, {}).get("stream_batches_rx_state_")
    ]
    assert carrying == [FEED_EMITTER]
    assert tab.channel_batches(mark) == [
        {"channel": channel(room), "cseq": 1, "ops": tab.ops(mark)}
    ]
    assert clears_composer(events)
    assert toasts(events) == []
    assert tab.shown_ids == [*ids, new_id]


@pytest.mark.parametrize("form", [{"content": ""}, {"content": "   \n\t  "}, {}])
async def test_send_of_nothing_stores_and_sends_nothing(
    room_app: RoomApp, form: dict[str, str]
) -> None:
    ann = make_user("Ann")
    room = make_room("general")
    seed(room, [ann], 2)
    tab = await open_room(room_app, ann, room)
    before = stored_messages()
    mark = tab.mark()

    events = await tab.send(MessagesState.send, form=form)

    assert stored_messages() == before
    assert ops_of(tab, mark) == []
    assert events == []
    assert tab.var("compose_error") == ""


async def test_send_over_the_limit_keeps_the_draft_and_says_the_limit(room_app: RoomApp) -> None:
    ann = make_user("Ann")
    room = make_room("general")
    tab = await open_room(room_app, ann, room)
    limit = chat.MAX_MESSAGE_LENGTH
    mark = tab.mark()

    events = await tab.send(MessagesState.send, form={"content": "x" * (limit + 1)})

    assert stored_messages() == []
    assert ops_of(tab, mark) == []
    error = tab.var("compose_error")
    assert f"{limit:,}" in error
    assert f"{limit + 1:,}" in error
    # The draft stays in the composer: the clearing event is not sent.
    assert not clears_composer(events)
    assert events == []

    # At the limit (once stripped) it goes through, and the error goes away.
    events = await tab.send(MessagesState.send, form={"content": " " + "y" * limit + "\n"})
    assert [m[3] for m in stored_messages()] == ["y" * limit]
    assert tab.var("compose_error") == ""
    assert clears_composer(events)


async def test_send_stores_html_verbatim(room_app: RoomApp) -> None:
    ann = make_user("Ann")
    room = make_room("general")
    tab = await open_room(room_app, ann, room)
    html = '<img src=x onerror="alert(1)"><b>bold</b> &amp; <script>steal()</script>'
    mark = tab.mark()

    await tab.send(MessagesState.send, form={"content": html})

    [(message_id, _, _, content, _)] = stored_messages()
    assert content == html
    assert ops_of(tab, mark) == [insert_op([message_id])]
    assert tab.stream.items[-1]["content"] == html


# --------------------------------------------------------------------------------------------
# 4. Live delivery between two tabs
# --------------------------------------------------------------------------------------------


async def test_send_edit_and_delete_reach_the_other_tab(room_app: RoomApp) -> None:
    ann, bob = make_user("Ann"), make_user("Bob")
    room = make_room("general")
    ids = seed(room, [ann, bob], 4)
    a = await open_room(room_app, ann, room)
    b = await open_room(room_app, bob, room)
    # One subscription for the room in this worker (its feed), whatever the number of tabs.
    assert_in_feed(room_app, room, [a, b])

    mark = b.mark()
    await a.send(MessagesState.send, form={"content": "from Ann"})
    [new_id] = [m[0] for m in stored_messages(room.id) if m[0] not in ids]
    assert ops_of(b, mark) == [insert_op([new_id])]
    assert b.shown_ids == [*ids, new_id]

    mark = b.mark()
    await a.send(MessagesState.start_edit, message_id=new_id)
    await a.send(MessagesState.set_edit_draft, text="from Ann, edited")
    await a.send(MessagesState.save_edit)
    assert ops_of(b, mark) == [insert_op([new_id], update_only=True)]
    [(_, item)] = ops_of(b, mark)[0][4]
    assert (item["content"], item["edited"]) == ("from Ann, edited", True)
    assert b.stream.items[-1]["content"] == "from Ann, edited"
    assert b.shown_ids == [*ids, new_id]
    editor = await stored_state(room_app, a)
    assert (editor.editing_id, editor.edit_draft, editor.edit_error) == (None, "", "")

    mark = b.mark()
    await a.send(MessagesState.ask_delete, message_id=new_id)
    await a.send(MessagesState.confirm_delete)
    assert ops_of(b, mark) == [["delete", dom(new_id)]]
    assert b.shown_ids == ids
    assert new_id not in [m[0] for m in stored_messages()]
    assert a.shown_ids == b.shown_ids


async def test_both_tabs_see_the_same_order(room_app: RoomApp) -> None:
    ann, bob = make_user("Ann"), make_user("Bob")
    room = make_room("general")
    seed(room, [ann, bob], 2)
    a = await open_room(room_app, ann, room)
    b = await open_room(room_app, bob, room)
    mark_a, mark_b = a.mark(), b.mark()

    for n in range(4):
        sender = a if n % 2 == 0 else b
        await sender.send(MessagesState.send, form={"content": f"turn {n}"})
    # Both at once: the two tabs' events run concurrently (different tokens).
    await asyncio.gather(
        *(
            tab.send(MessagesState.send, form={"content": f"burst {tab is a} {n}"})
            for n in range(3)
            for tab in (a, b)
        )
    )

    # The same changes in the same order (the room's feed numbers them: one batch each).
    seen_a, seen_b = entries_in(ops_of(a, mark_a)), entries_in(ops_of(b, mark_b))
    assert len(seen_a) == 10
    assert seen_a == seen_b
    numbers = [
        [batch["cseq"] for batch in tab.channel_batches(mark)]
        for tab, mark in ((a, mark_a), (b, mark_b))
    ]
    assert numbers == [list(range(1, 11))] * 2
    stored = [m[0] for m in stored_messages(room.id)]
    assert a.shown_ids == b.shown_ids == stored
    assert all(o is BatchOutcome.APPLIED for o in [*a.outcomes, *b.outcomes])


# --------------------------------------------------------------------------------------------
# 5. Switching rooms and leaving
# --------------------------------------------------------------------------------------------


async def test_navigating_to_another_room_stops_the_first_rooms_delivery(
    room_app: RoomApp,
) -> None:
    ann, bob = make_user("Ann"), make_user("Bob")
    first, second = make_room("first"), make_room("second")
    seed(first, [bob], 3)
    second_ids = seed(second, [bob], 2)
    a = await open_room(room_app, ann, first)
    b = await open_room(room_app, bob, first)

    await a.navigate(f"/rooms/{second.id}")

    assert a.shown_ids == second_ids
    assert a.var("current_room_id") == second.id
    assert a.stream.channel == channel(second)
    # Reflex cancelled the first room's follower with the page's on_load chain: Ann's tab
    # left the first room's feed (kept for Bob's) and is in the second room's.
    assert_in_feed(room_app, first, [b])
    assert_in_feed(room_app, second, [a])
    assert len(room_app.follower_tasks(a.token)) == 1

    mark_a, mark_b = a.mark(), b.mark()
    await b.send(MessagesState.send, form={"content": "only for the first room"})
    await b.send(MessagesState.send, form={"content": "again"})
    first_ids = {m[0] for m in stored_messages(first.id)}
    assert set(message_ids_in(ops_of(b, mark_b))) <= first_ids
    assert len(ops_of(b, mark_b)) == 2
    assert ops_of(a, mark_a) == []

    # The second room still arrives.
    await b.navigate(f"/rooms/{second.id}")
    mark_a = a.mark()
    await b.send(MessagesState.send, form={"content": "in the second room"})
    [new_id] = [m[0] for m in stored_messages(second.id) if m[0] not in second_ids]
    assert ops_of(a, mark_a) == [insert_op([new_id])]


async def _enter_room_again(app: RoomApp, again_in: str) -> tuple[Tab, Room, Room, User]:
    """Ann's tab follows `first`, then gets enter_room again without a page load (a crafted
    event, or a chain Reflex did not cancel): nothing cancels the first follower."""
    ann, bob = make_user("Ann"), make_user("Bob")
    first, second = make_room("first"), make_room("second")
    first_ids = seed(first, [bob], 3)
    second_ids = seed(second, [bob], 2)
    a = await open_room(app, ann, first)
    [older] = app.follower_tasks(a.token)
    now_in = second if again_in == "another room" else first

    a.path = f"/rooms/{now_in.id}"
    await a.send(MessagesState.enter_room)
    assert a.shown_ids == (second_ids if now_in is second else first_ids)
    assert a.stream.channel == channel(now_in)
    assert not older.cancelled()
    return a, first, now_in, bob


@pytest.mark.parametrize("again_in", ["another room", "the same room"])
async def test_after_a_second_enter_room_the_tab_shows_each_message_once_and_only_its_rooms(
    room_app: RoomApp, again_in: str
) -> None:
    # What the browser shows, whatever becomes of the older follower.
    a, first, now_in, bob = await _enter_room_again(room_app, again_in)

    old_room_message = chat.create_message(first.id, bob.id, "one for the first room")  # type: ignore[arg-type]
    await room_app.quiet()
    created = chat.create_message(now_in.id, bob.id, "the current follower delivers this")  # type: ignore[arg-type]
    await room_app.quiet()

    assert a.shown_ids == [m[0] for m in stored_messages(now_in.id)][-PAGE:]
    assert created.id in a.shown_ids
    assert (old_room_message.id in a.shown_ids) is (now_in is first)
    # Each message was applied once (an insert of a present id would also be harmless, but
    # the channel numbers make a second delivery a duplicate, not an application).
    applied = [
        item["id"]
        for batch, outcome in zip(a.channel_batches(), channel_outcomes(a), strict=True)
        if outcome is BatchOutcome.APPLIED
        for op in batch["ops"]
        if op[0] == "insert"
        for _, item in op[4]
    ]
    assert sorted(applied) == sorted({*applied})
    assert BatchOutcome.GAP not in a.outcomes
    # The room's feed counts the tab once, under its current follower.
    assert room_app.feed_members(now_in.id) == {a.sid}


@pytest.mark.parametrize("again_in", ["another room", "the same room"])
async def test_an_older_follower_that_wakes_up_stops_without_delivering(
    room_app: RoomApp, again_in: str
) -> None:
    # enter_room sent again without a page load (a crafted event, or a chain Reflex did not
    # cancel), so nothing cancels the first follower: it must notice it is stale (now: on
    # the next broadcast at the latest), and neither deliver another room's message nor
    # deliver a message twice.
    a, first, now_in, bob = await _enter_room_again(room_app, again_in)

    mark = a.mark()
    old_room_message = chat.create_message(first.id, bob.id, "one for the first room")  # type: ignore[arg-type]
    await room_app.quiet()
    if now_in is not first:
        # Not even sent to the tab (the browser would ignore it: another channel).
        assert ops_of(a, mark) == []
    else:
        assert ops_of(a, mark) == [insert_op([old_room_message.id])]  # type: ignore[list-item]
    # The stale follower has stopped, and left the first room's feed.
    assert len(room_app.follower_tasks(a.token)) == 1
    if now_in is not first:
        assert room_app.subscriber_count(first.id) == 0
        assert room_feed.room_feeds.get(first.id) is None
    else:
        assert_in_feed(room_app, first, [a])

    await assert_delivered_live(room_app, a, now_in, bob, "the current follower delivers this")


@pytest.mark.parametrize("leave", ["disconnect", "navigate"])
async def test_leaving_the_room_closes_the_subscription(room_app: RoomApp, leave: str) -> None:
    ann, bob = make_user("Ann"), make_user("Bob")
    room = make_room("general")
    seed(room, [bob], 3)
    a = await open_room(room_app, ann, room)
    assert room_app.subscriber_count(room.id) == 1
    [follower] = room_app.follower_tasks(a.token)

    if leave == "disconnect":
        await a.disconnect()
    else:
        await a.navigate("/rooms")

    assert follower.cancelled()
    # The last tab left: the feed stopped, and its room subscription with it.
    assert room_app.subscriber_count(room.id) == 0
    assert room_feed.room_feeds.get(room.id) is None
    assert room_app.feeds() == {}
    assert room_app.follower_tasks() == []
    # What runs on: /rooms's own follower, of the session only, when the tab went there.
    assert [t for t in room_app.processor._tasks.values() if not t.done()] == (
        room_app.follower_tasks(handler="follow_session")
    )
    assert len(room_app.follower_tasks(handler="follow_session")) == (leave == "navigate")

    mark = a.mark()
    chat.create_message(room.id, bob.id, "nobody is listening")  # type: ignore[arg-type]
    await room_app.quiet()
    assert ops_of(a, mark) == []


# --------------------------------------------------------------------------------------------
# 6. The server refuses what the page would not offer
# --------------------------------------------------------------------------------------------


async def _room_with_bobs_message(room_app: RoomApp) -> tuple[Tab, Tab, int, Room]:
    ann, bob = make_user("Ann"), make_user("Bob")
    room = make_room("general")
    seed(room, [ann], 2)
    [bobs] = seed(room, [bob], 1)
    a = await open_room(room_app, ann, room)
    b = await open_room(room_app, bob, room)
    return a, b, bobs, room


async def test_start_edit_of_someone_elses_message_is_refused(room_app: RoomApp) -> None:
    a, b, bobs, _ = await _room_with_bobs_message(room_app)
    before = stored_messages()
    mark_b = b.mark()

    events = await a.send(MessagesState.start_edit, message_id=bobs)

    assert len(toasts(events)) == 1
    assert "You can only edit your own messages." in toasts(events)[0]
    state = await stored_state(room_app, a)
    assert (state.editing_id, state.edit_draft) == (None, "")
    assert stored_messages() == before
    assert ops_of(b, mark_b) == []


async def test_editing_id_cannot_be_set_by_a_crafted_setvar(room_app: RoomApp) -> None:
    a, _, bobs, _ = await _room_with_bobs_message(room_app)

    with pytest.raises(AttributeError, match="set_editing_id"):
        await a.send(MessagesState.setvar, var_name="editing_id", value=bobs)
    room_app.errors.clear()

    assert (await stored_state(room_app, a)).editing_id is None


async def test_save_edit_of_someone_elses_message_is_refused(room_app: RoomApp) -> None:
    # No event sets editing_id to a message that is not yours (see the two tests above):
    # the state is written directly, to check save_edit's own server-side check.
    a, b, bobs, _ = await _room_with_bobs_message(room_app)
    await tamper(room_app, a, editing_id=bobs)
    await a.send(MessagesState.set_edit_draft, text="pwned")
    before = stored_messages()
    mark_b = b.mark()

    events = await a.send(MessagesState.save_edit)

    assert (await stored_state(room_app, a)).edit_error == "You can only edit your own messages."
    assert stored_messages() == before
    assert ops_of(b, mark_b) == []
    assert events == []


async def test_confirm_delete_of_someone_elses_message_is_refused(room_app: RoomApp) -> None:
    a, b, bobs, _ = await _room_with_bobs_message(room_app)
    before = stored_messages()
    mark_b = b.mark()

    await a.send(MessagesState.ask_delete, message_id=bobs)
    events = await a.send(MessagesState.confirm_delete)

    assert len(toasts(events)) == 1
    assert "You can only delete your own messages." in toasts(events)[0]
    assert (await stored_state(room_app, a)).deleting_id is None
    assert stored_messages() == before
    assert ops_of(b, mark_b) == []


@pytest.mark.parametrize(
    "message_id",
    # (A string id is refused before the handler runs: tests/state/test_wrong_input.py.)
    [
        10**6,
        2**63,
    ],
)
async def test_a_message_that_does_not_exist_gets_a_clear_error(
    room_app: RoomApp, message_id: Any
) -> None:
    a, _, _, _ = await _room_with_bobs_message(room_app)
    before = stored_messages()
    not_found = "That message does not exist any more."

    events = await a.send(MessagesState.start_edit, message_id=message_id)
    assert [not_found in t for t in toasts(events)] == [True]
    assert (await stored_state(room_app, a)).editing_id is None

    await a.send(MessagesState.ask_delete, message_id=message_id)
    events = await a.send(MessagesState.confirm_delete)
    assert [not_found in t for t in toasts(events)] == [True]
    assert stored_messages() == before


async def test_save_edit_of_a_message_deleted_meanwhile_says_so(room_app: RoomApp) -> None:
    ann = make_user("Ann")
    room = make_room("general")
    [mine] = seed(room, [ann], 1)
    editing = await open_room(room_app, ann, room)
    other_tab = await open_room(room_app, ann, room)

    await editing.send(MessagesState.start_edit, message_id=mine)
    await other_tab.send(MessagesState.ask_delete, message_id=mine)
    await other_tab.send(MessagesState.confirm_delete)
    await editing.send(MessagesState.set_edit_draft, text="too late")
    await editing.send(MessagesState.save_edit)

    state = await stored_state(room_app, editing)
    assert state.edit_error == "That message does not exist any more."
    assert stored_messages() == []


async def test_edit_last_message_picks_my_newest_in_this_room_or_nothing(
    room_app: RoomApp,
) -> None:
    ann, bob = make_user("Ann"), make_user("Bob")
    room, other = make_room("general"), make_room("random")
    seed(room, [bob], 3)
    seed(other, [ann], 2)  # Ann's, but in another room.
    a = await open_room(room_app, ann, room)
    mark = a.mark()

    await a.send(MessagesState.edit_last_message)

    state = await stored_state(room_app, a)
    assert (state.editing_id, state.edit_draft) == (None, "")
    assert a.messages_delta(mark) == []

    [older, newer] = seed(room, [ann], 2)
    seed(room, [bob], 1)
    await a.send(MessagesState.edit_last_message)
    state = await stored_state(room_app, a)
    assert older < newer
    assert (state.editing_id, state.edit_draft, state.edit_error) == (
        newer,
        f"{room.name} #1",
        "",
    )


async def test_send_in_a_missing_room_stores_nothing(room_app: RoomApp) -> None:
    ann = make_user("Ann")
    room = make_room("general")
    seed(room, [ann], 1)
    tab = room_app.tab(ann)
    await tab.connect("/rooms/999")
    assert tab.var("room_missing") is True
    before = stored_messages()
    mark = tab.mark()

    events = await tab.send(MessagesState.send, form={"content": "into the void"})

    assert stored_messages() == before
    assert events == []
    assert ops_of(tab, mark) == []


@pytest.mark.parametrize("others", ["alone", "with Bob in the room"])
async def test_a_logged_out_tab_gets_no_messages(room_app: RoomApp, others: str) -> None:
    ann, bob = make_user("Ann"), make_user("Bob")
    room = make_room("general")
    seed(room, [bob], 25)
    tab = await open_room(room_app, ann, room)
    # Bob's tab keeps the room's feed open: the logged-out tab must still not get back in.
    bobs = await open_room(room_app, bob, room) if others != "alone" else None

    await tab.send(SessionState.log_out)
    # What the page's POST to /api/session/end then does.
    accounts.delete_session_token(tab.session_token)
    await tab.navigate("/login")
    assert room_app.follower_tasks(tab.token) == []
    mark = tab.mark()
    await tab.send(MessagesState.resync_stream, name=MESSAGES)
    try:
        # A crafted event: the follow-up a resync returns, sent on its own.
        await tab.send(MessagesState.resume_feed, baseline=0)
    except TypeError:  # (refused for its arguments, if the handler takes others)
        room_app.errors.clear()
    await tab.send(MessagesState.load_older)
    chat.create_message(room.id, bob.id, "not for logged-out tabs")  # type: ignore[arg-type]
    await room_app.quiet()

    assert message_ids_in(ops_of(tab, mark)) == []
    assert tab.sid not in room_app.feed_members(room.id)
    assert room_app.sio.rooms_of(tab.sid) & room_app.live_socket_rooms() == set()
    if bobs is not None:
        assert_in_feed(room_app, room, [bobs])


# --------------------------------------------------------------------------------------------
# 7. Resync
# --------------------------------------------------------------------------------------------


async def test_resync_stream_restreams_the_database_with_a_reset(room_app: RoomApp) -> None:
    ann, bob = make_user("Ann"), make_user("Bob")
    room = make_room("general")
    ids = seed(room, [ann, bob], 45)
    tab = await open_room(room_app, ann, room)
    # Walk back to the start, then lose some changes: messages written without a broadcast.
    while not tab.var("at_start"):
        await tab.send(MessagesState.load_older)
    assert tab.shown_ids == ids
    lost = seed(room, [bob], 3)
    last = tab.own_batches()[-1]
    mark = tab.mark()

    await tab.send(MessagesState.resync_stream, name=MESSAGES)

    [resync] = [b[MESSAGES] for b in tab.batches(mark)]
    assert (resync["seq"], resync["epoch"]) == (last["seq"] + 1, last["epoch"])
    shown = [*ids, *lost][-PAGE:]
    assert project(resync["ops"]) == [["reset"], insert_op(shown), join_op(room, 0)]
    assert tab.shown_ids == shown
    assert tab.var("oldest_id") == shown[0]
    assert tab.var("at_start") is False

    # The tab is back in the room's feed: live messages arrive again.
    assert_in_feed(room_app, room, [tab])
    created = await assert_delivered_live(room_app, tab, room, bob, "after the resync")
    assert tab.outcomes[-1] is BatchOutcome.APPLIED
    ids.append(created.id)  # type: ignore[arg-type]

    # The cursor starts over: load_older pages back from the new oldest message again.
    mark = tab.mark()
    await tab.send(MessagesState.load_older)
    assert ops_of(tab, mark) == [insert_op([*ids[:-1], *lost][-2 * PAGE : -PAGE], at=0)]

    # A stream the state does not declare: nothing.
    mark = tab.mark()
    await tab.send(MessagesState.resync_stream, name="nope")
    assert tab.batches(mark) == []


async def test_a_browser_that_saw_a_gap_is_repaired_by_the_resync(room_app: RoomApp) -> None:
    ann, bob = make_user("Ann"), make_user("Bob")
    room = make_room("general")
    seed(room, [bob], 5)
    a = await open_room(room_app, ann, room)
    for n in range(3):
        await a.send(MessagesState.send, form={"content": f"live {n}"})
    browser = ClientStream()
    reset, first, lost, third = [b[MESSAGES] for b in a.batches()]
    assert browser.apply_batch(reset) is BatchOutcome.APPLIED
    assert browser.apply_batch(first) is BatchOutcome.APPLIED
    del lost  # never arrives
    assert browser.apply_batch(third) is BatchOutcome.GAP

    mark = a.mark()
    await a.send(MessagesState.resync_stream, name=MESSAGES)
    [resync] = [b[MESSAGES] for b in a.batches(mark)]
    assert resync["ops"][0] == ["reset"]
    assert resync["ops"][-1] == join_op(room, 3)
    assert browser.apply_batch(resync) is BatchOutcome.APPLIED
    assert [item["id"] for item in browser.items] == [m[0] for m in stored_messages(room.id)]

    # Bound to the channel again at the right number: the next broadcast applies.
    mark = a.mark()
    await a.send(MessagesState.send, form={"content": "after the repair"})
    [after] = a.channel_batches(mark)
    assert after["cseq"] == 4
    assert browser.apply_batch(after) is BatchOutcome.APPLIED
    assert [item["id"] for item in browser.items] == [m[0] for m in stored_messages(room.id)]


def lose_broadcasts(app: RoomApp, monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on the broker numbers what is published but delivers nothing: what a
    RedisBroker whose listener lost its connection does (the numbering is in Redis)."""
    monkeypatch.setattr(app.broker, "deliver", lambda topic, event: None)


async def answer_resync_requests(tab: Tab, since: int) -> int:
    """What the browser does with events the server sends: send them back. Returns how
    many resync requests the tab got since `since` (an index into its frontend events)."""
    requests = [e for e in tab.frontend_events[since:] if e["name"].endswith(".resync_stream")]
    for request in requests:
        await tab.send(MessagesState.resync_stream, **request["payload"])
    return len(requests)


async def test_after_a_broker_reconnect_every_tab_is_asked_to_resync_and_is_repaired(
    room_app: RoomApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What RedisBroker publishes to every subscriber after its listener reconnects: the
    # feed asks each of its tabs (one emit to the room) to re-read the room.
    ann, bob = make_user("Ann"), make_user("Bob")
    room = make_room("general")
    seed(room, [bob], 2)
    a = await open_room(room_app, ann, room)
    b = await open_room(room_app, bob, room)
    with monkeypatch.context() as m:
        lose_broadcasts(room_app, m)
        lost = chat.create_message(room.id, bob.id, "published while disconnected")  # type: ignore[arg-type]
    events_before = {a.token: len(a.frontend_events), b.token: len(b.frontend_events)}

    room_app.broker.publish_everywhere(pubsub.RESYNC)
    await room_app.quiet()
    expected = [m[0] for m in stored_messages(room.id)]
    assert lost.id in expected
    for tab in (a, b):
        assert await answer_resync_requests(tab, events_before[tab.token]) == 1
        await room_app.quiet()
        assert tab.shown_ids == expected

    after = chat.create_message(room.id, ann.id, "after the reconnect")  # type: ignore[arg-type]
    await room_app.quiet()
    for tab in (a, b):
        assert tab.outcomes[-1] is BatchOutcome.APPLIED
        assert after.id in tab.shown_ids
    assert_in_feed(room_app, room, [a, b])


# --------------------------------------------------------------------------------------------
# 8. The room feed: one broadcast per change, joins and resyncs without loss
# --------------------------------------------------------------------------------------------


def new_ids(room: Room, before: list[int]) -> list[int]:
    return [m[0] for m in stored_messages(room.id) if m[0] not in before]


def publish_at(
    monkeypatch: pytest.MonkeyPatch, where: str, publish: Any, *, times: int = 1
) -> list[Any]:
    """Calls `publish()` (the first `times` times) right before the history is read
    (`chat.last_messages`, after the room's number was read) or right before a tab is
    activated in a feed (`RoomFeed.activate`, after its history went out). Returns what
    it published."""
    published: list[Any] = []

    def first_publish() -> None:
        if len(published) < times:
            published.append(publish())

    if where == "before the history is read":
        original_read = chat.last_messages

        def last_messages(*args: Any, **kwargs: Any) -> Any:
            first_publish()
            return original_read(*args, **kwargs)

        monkeypatch.setattr(chat, "last_messages", last_messages)
    else:
        assert where == "before the tab is activated"
        original_activate = room_feed.RoomFeed.activate

        def activate(self: room_feed.RoomFeed, *args: Any, **kwargs: Any) -> None:
            first_publish()
            original_activate(self, *args, **kwargs)

        monkeypatch.setattr(room_feed.RoomFeed, "activate", activate)
    return published


async def test_one_send_is_one_broadcast_to_the_room_whatever_the_number_of_tabs(
    room_app: RoomApp,
) -> None:
    users = [make_user(f"User {n}") for n in range(4)]
    room, other = make_room("general"), make_room("random")
    ids = seed(room, users, 3)
    tabs = [await open_room(room_app, user, room) for user in users]
    elsewhere = await open_room(room_app, users[0], other)
    assert_in_feed(room_app, room, tabs)
    everyone = [*tabs, elsewhere]
    marks = {tab.token: tab.mark() for tab in everyone}
    emitted = len(room_app.sio.emits)

    await tabs[1].send(MessagesState.send, form={"content": "hello, all four of you"})

    [new_id] = new_ids(room, ids)
    # One emit, to the room's socket.io room, reaching every tab of the room once: not one
    # state update per tab. (And one to the sidebars of every tab, its unread news; and
    # the room's awareness, a new poster.)
    emits = room_app.sio.emits[emitted:]
    [emit] = [e for e in emits if e.batch is not None]
    [sidebars] = [e for e in emits if e.recipients == {tab.sid for tab in everyone}]
    assert MESSAGES_STATE not in sidebars.wire["delta"]
    assert (emit.event, emit.to, emit.room) == ("event", None, room_app.socket_room_of(room.id))
    assert emit.recipients == {tab.sid for tab in tabs}
    assert emit.batch is not None
    assert (emit.batch["channel"], emit.batch["cseq"]) == (channel(room), 1)
    assert project(emit.batch["ops"]) == [insert_op([new_id])]
    for tab in tabs:
        since = marks[tab.token]
        received = list(zip(tab.emitters[since:], tab.deltas[since:], strict=True))
        assert [delta for emitter, delta in received if emitter == FEED_EMITTER] == [
            emit.wire["delta"],
            sidebars.wire["delta"],
        ]
        # No tab got a state update for it; the sender's own event carried no batch (its
        # handler only cleared the composer).
        state_deltas = [delta for emitter, delta in received if emitter != FEED_EMITTER]
        assert not any(d.get(MESSAGES_STATE, {}).get(BATCHES_KEY) for d in state_deltas)
        if tab is not tabs[1]:
            assert state_deltas == []
        assert tab.channel_batches(since) == [emit.batch]
        assert tab.own_batches(since) == []
        assert tab.shown_ids == [*ids, new_id]
        assert tab.outcomes[-1] is BatchOutcome.APPLIED
    assert elsewhere.deltas[marks[elsewhere.token] :] == [sidebars.wire["delta"]]
    assert room_app.subscriber_count(room.id) == 1


@pytest.mark.parametrize("feed", ["already open", "opened by the joining tab"])
@pytest.mark.parametrize(("head_start", "pace"), [(0, 0), (5, 0), (0, 0.001), (3, 0.003)])
async def test_a_tab_joining_during_a_burst_shows_every_message_once(
    room_app: RoomApp, head_start: int, pace: float, feed: str
) -> None:
    # Messages keep coming while Ann's tab joins: published before, while and after it
    # reads the room's number and its history, and before and after it is activated (with
    # the Redis state manager the follower's lock waits are real I/O, hence the pace).
    ann, bob = make_user("Ann"), make_user("Bob")
    room = make_room("general")
    seed(room, [bob], 3)
    bobs = await open_room(room_app, bob, room) if feed == "already open" else None
    a = room_app.tab(ann)

    async def burst() -> None:
        for _ in range(head_start):
            await asyncio.sleep(0)
        for n in range(30):
            chat.create_message(room.id, bob.id, f"burst {n}")  # type: ignore[arg-type]
            await asyncio.sleep(pace if n % 2 else 0)

    sends = [bobs.send(MessagesState.send, form={"content": f"sent {n}"}) for n in range(3) if bobs]
    await asyncio.gather(a.connect(f"/rooms/{room.id}"), burst(), *sends)
    await room_app.quiet()

    # The history page, then every later message once, in order: a suffix of the room.
    stored = [m[0] for m in stored_messages(room.id)]
    shown = a.shown_ids
    assert len(shown) >= PAGE
    assert shown == stored[stored.index(shown[0]) :]
    assert BatchOutcome.GAP not in a.outcomes
    assert BatchOutcome.IGNORED not in a.outcomes
    # Caught up exactly: the tab's channel number is the room's.
    assert a.stream.channel_seq == chat.current_seq(room.id)  # type: ignore[arg-type]
    if bobs is not None:
        assert bobs.shown_ids[-len(shown) :] == shown
        assert_in_feed(room_app, room, [a, bobs])
    else:
        assert_in_feed(room_app, room, [a])

    # And from then on, live.
    await assert_delivered_live(room_app, a, room, bob, "after the burst")


@pytest.mark.parametrize("where", ["before the history is read", "before the tab is activated"])
@pytest.mark.parametrize("change", ["created", "updated", "deleted"])
async def test_a_change_made_while_a_tab_joins_is_shown_once(
    room_app: RoomApp, monkeypatch: pytest.MonkeyPatch, where: str, change: str
) -> None:
    # The exact windows of a join: after the room's number is read and before the history
    # is (the history has the change, and it is replayed too: applied idempotently), and
    # after the history went out and before the tab is added to the socket room (only the
    # replay has it).
    ann, bob = make_user("Ann"), make_user("Bob")
    room = make_room("general")
    ids = seed(room, [bob], 3)
    bobs = await open_room(room_app, bob, room)

    def publish() -> Any:
        if change == "created":
            return chat.create_message(room.id, bob.id, "while Ann joins")  # type: ignore[arg-type]
        if change == "updated":
            return chat.update_message(ids[-1], bob.id, "edited while Ann joins", room_id=room.id)  # type: ignore[arg-type]
        return chat.delete_message(ids[0], bob.id, room_id=room.id)  # type: ignore[arg-type]

    published = publish_at(monkeypatch, where, publish)
    a = await open_room(room_app, ann, room)

    assert len(published) == 1
    expected = [m[0] for m in stored_messages(room.id)]
    assert a.shown_ids == bobs.shown_ids == expected
    assert [item["content"] for item in a.stream.items] == [m[3] for m in stored_messages(room.id)]
    # The change, numbered 1, was replayed to Ann's socket alone, once.
    replayed = [e for e in room_app.sio.emits if e.to == a.sid and e.batch is not None]
    assert [e.batch["cseq"] for e in replayed] == [1]  # type: ignore[index]
    assert BatchOutcome.GAP not in a.outcomes
    assert a.stream.channel_seq == 1
    assert_in_feed(room_app, room, [a, bobs])


async def test_a_tab_joining_as_the_last_member_leaves_still_gets_the_rooms_messages(
    room_app: RoomApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    ann, bob = make_user("Ann"), make_user("Bob")
    room = make_room("general")
    seed(room, [bob], 3)
    bobs = await open_room(room_app, bob, room)
    [bobs_follower] = room_app.follower_tasks(bobs.token)
    original_join = room_feed.room_feeds.join

    async def join_while_bob_leaves(*args: Any, **kwargs: Any) -> room_feed.RoomFeed:
        feed = await original_join(*args, **kwargs)
        # Bob closes his tab while Ann's follower is between joining the feed and taking
        # its state lock (a real await: a lock wait, a Redis round trip).
        room_app.processor._on_disconnect(bobs.token)
        room_app.sio.disconnect(bobs.sid)
        await asyncio.wait([bobs_follower])
        return feed

    with monkeypatch.context() as patch:
        patch.setattr(room_feed.room_feeds, "join", join_while_bob_leaves)
        a = await open_room(room_app, ann, room)
    assert bobs_follower.cancelled()

    await assert_delivered_live(room_app, a, room, bob, "Ann is still in the room")
    assert_in_feed(room_app, room, [a])


@pytest.mark.parametrize("where", ["concurrently", "before the tab is activated"])
async def test_a_resync_pauses_only_that_tab_and_ends_with_the_right_list(
    room_app: RoomApp, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    ann, bob, cat = make_user("Ann"), make_user("Bob"), make_user("Cat")
    room = make_room("general")
    seed(room, [bob, cat], 4)
    a, b, c = [await open_room(room_app, user, room) for user in (ann, bob, cat)]
    log = len(room_app.sio.membership_log)
    marks = {tab.token: tab.mark() for tab in (a, b, c)}
    if where == "concurrently":
        # Bob and Cat keep sending while Ann's tab re-reads the room.
        await asyncio.gather(
            a.send(MessagesState.resync_stream, name=MESSAGES),
            *(b.send(MessagesState.send, form={"content": f"Bob {n}"}) for n in range(3)),
            *(c.send(MessagesState.send, form={"content": f"Cat {n}"}) for n in range(3)),
        )
    else:
        # Sent after Ann's history went out, while she is not in the socket room.
        published = publish_at(
            monkeypatch,
            where,
            lambda: chat.create_message(room.id, bob.id, "while Ann is paused"),  # type: ignore[arg-type]
        )
        await a.send(MessagesState.resync_stream, name=MESSAGES)
        assert len(published) == 1
    await room_app.quiet()

    stored = [m[0] for m in stored_messages(room.id)]
    for tab in (a, b, c):
        assert tab.shown_ids == stored
        assert BatchOutcome.GAP not in tab.outcomes
        assert tab.stream.channel_seq == chat.current_seq(room.id)  # type: ignore[arg-type]
    # Only Ann's socket left the room and came back; Bob's and Cat's got every broadcast,
    # in order, and no batch of their own.
    membership = room_app.sio.membership_log[log:]
    assert [(op, sid) for op, sid, _ in membership] == [("leave", a.sid), ("enter", a.sid)]
    for tab in (b, c):
        cseqs = [batch["cseq"] for batch in tab.channel_batches(marks[tab.token])]
        assert cseqs == list(range(1, chat.current_seq(room.id) + 1))  # type: ignore[arg-type]
        assert tab.own_batches(marks[tab.token]) == []
    # Ann got one batch of her own: the latest page, bound to the room's channel.
    [resync] = a.own_batches(marks[a.token])
    assert resync["ops"][0] == ["reset"]
    assert resync["ops"][-1][:2] == ["join", channel(room)]
    assert_in_feed(room_app, room, [a, b, c])


@pytest.mark.parametrize("reply_started", ["while the feed listened", "before the feed opened"])
async def test_a_stale_generations_text_is_an_empty_channel_batch(
    room_app: RoomApp, reply_started: str
) -> None:
    # A stopped or replaced attempt's late chunk (published after the new attempt claimed
    # the reply): the feed uses its number, so nobody sees a gap, and shows nothing.
    ann = make_user("Ann")
    assistant = accounts.assistant_user()
    room = make_room("general")
    seed(room, [ann], 2)

    def start_reply() -> int:
        reply = chat.create_reply(room.id, assistant.id, ann.id)  # type: ignore[arg-type]
        assert chat.claim_reply(reply.id, "gen-1")  # type: ignore[arg-type]
        assert chat.append_to_reply(reply.id, "gen-1", 0, "Hel")  # type: ignore[arg-type]
        # Stopped and retried: a second attempt owns the reply.
        chat.update_reply(reply.id, status=chat.QUEUED, content="")  # type: ignore[arg-type]
        assert chat.claim_reply(reply.id, "gen-2")  # type: ignore[arg-type]
        return reply.id  # type: ignore[return-value]

    if reply_started == "before the feed opened":
        # The feed never saw the reply's events: it reads the generation from the database.
        reply_id = start_reply()
        a = await open_room(room_app, ann, room)
    else:
        a = await open_room(room_app, ann, room)
        reply_id = start_reply()
        await room_app.quiet()
    assert a.stream.items[-1]["id"] == reply_id
    assert a.stream.items[-1]["content"] == ""
    mark, emitted = a.mark(), len(room_app.sio.emits)

    pubsub.broker().publish(
        chat.room_topic(room.id),  # type: ignore[arg-type]
        {
            "kind": "appended",
            "message_id": reply_id,
            "generation_id": "gen-1",
            "offset": 3,
            "text": "lo from the stopped attempt",
        },
    )
    await room_app.quiet()
    stale_cseq = chat.current_seq(room.id)  # type: ignore[arg-type]
    assert a.channel_batches(mark) == [{"channel": channel(room), "cseq": stale_cseq, "ops": []}]
    [emit] = room_app.sio.emits[emitted:]
    assert emit.room == room_app.socket_room_of(room.id)
    assert a.outcomes[-1] is BatchOutcome.APPLIED
    assert a.stream.channel_seq == stale_cseq
    assert a.stream.items[-1]["content"] == ""

    # The current attempt's text follows without a gap.
    mark = a.mark()
    assert chat.append_to_reply(reply_id, "gen-2", 0, "New text")
    await room_app.quiet()
    [batch] = a.channel_batches(mark)
    assert batch["cseq"] == stale_cseq + 1
    assert batch["ops"] == [["append", dom(reply_id), "content", "New text", 0]]
    assert a.outcomes[-1] is BatchOutcome.APPLIED
    assert a.stream.items[-1]["content"] == "New text"
    assert chat.get_message(reply_id).content == "New text"  # type: ignore[union-attr]


async def test_a_replys_status_changes_are_patches_without_its_text(room_app: RoomApp) -> None:
    # The text reaches the tabs in appends; the streaming and final rows must not carry it
    # again (that doubled the bytes of every reply), yet every tab ends with the whole reply.
    ann = make_user("Ann")
    assistant = accounts.assistant_user()
    room = make_room("general")
    seed(room, [ann], 2)
    a = await open_room(room_app, ann, room)
    reply = chat.create_reply(room.id, assistant.id, ann.id)  # type: ignore[arg-type]
    assert chat.claim_reply(reply.id, "gen-1")  # type: ignore[arg-type]
    await room_app.quiet()
    mark = a.mark()

    assert chat.start_reply_text(reply.id, "gen-1", "Hello")  # type: ignore[arg-type]
    assert chat.append_to_reply(reply.id, "gen-1", 5, " world")  # type: ignore[arg-type]
    chat.finish_reply(
        reply.id,  # type: ignore[arg-type]
        "gen-1",
        status=chat.DONE,
        prompt_tokens=12,
        completion_tokens=2,
        generation_id=None,
    )
    # A chunk of the finished attempt that arrives late shows nothing.
    pubsub.broker().publish(
        chat.room_topic(room.id),  # type: ignore[arg-type]
        {
            "kind": "appended",
            "message_id": reply.id,
            "generation_id": "gen-1",
            "offset": 11,
            "text": " late",
        },
    )
    await room_app.quiet()

    batches = a.channel_batches(mark)
    # The first text and the "streaming" status travel together: one message, not two.
    assert batches[0]["ops"] == [
        ["patch", dom(reply.id), {"status": chat.STREAMING}],
        ["append", dom(reply.id), "content", "Hello", 0],
    ]
    ops = [op for batch in batches for op in batch["ops"]]
    patches = [op for op in ops if op[0] == "patch"]
    assert [p[2]["status"] for p in patches] == [chat.STREAMING, chat.DONE]
    assert all("content" not in p[2] for p in patches)
    assert patches[-1][2]["usage"] == "12 + 2 tokens"
    assert [op for op in ops if op[0] == "insert"] == []
    item = a.stream.items[-1]
    assert (item["id"], item["content"], item["status"]) == (reply.id, "Hello world", chat.DONE)
    assert (item["generation_id"], item["usage"]) == ("", "12 + 2 tokens")
    assert item["sender_name"] == assistant.name  # the fields a patch leaves alone
    assert chat.get_message(reply.id).content == "Hello world"  # type: ignore[union-attr]


async def test_a_resync_racing_a_room_switch_leaves_the_old_room(room_app: RoomApp) -> None:
    # The browser asks for a resync (it saw a gap) just as the user opens another room:
    # the resync's follow-up (`resume_feed`) runs after the switch's page load started,
    # once the old room's follower has left. The tab must end in the new room only.
    ann, bob = make_user("Ann"), make_user("Bob")
    first, second = make_room("first"), make_room("second")
    seed(first, [bob], 3)
    second_ids = seed(second, [bob], 2)
    a = await open_room(room_app, ann, first)
    b = await open_room(room_app, bob, first)

    await asyncio.gather(
        a.send(MessagesState.resync_stream, name=MESSAGES),
        a.navigate(f"/rooms/{second.id}"),
    )
    await room_app.quiet()

    assert a.shown_ids == second_ids
    assert a.stream.channel == channel(second)
    assert_in_feed(room_app, second, [a])
    assert_in_feed(room_app, first, [b])
    mark = a.mark()
    chat.create_message(first.id, bob.id, "not for Ann's tab any more")  # type: ignore[arg-type]
    await room_app.quiet()
    # Only her sidebar hears of it (its unread count), not her message list.
    assert a.messages_delta(mark) == []
    assert [news["kind"] for news in a.unread_news(mark)] == ["posted"]
    # Once Bob leaves too, nobody is left in the first room: its feed closes.
    await b.navigate("/rooms")
    assert room_app.subscriber_count(first.id) == 0
    assert room_feed.room_feeds.get(first.id) is None


async def test_esc_stops_the_reply_being_written_not_an_earlier_one_queued_again(
    room_app: RoomApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A retried reply is queued again in its old place (its id comes first), while a later
    # reply is being written: Esc is for the one being written.
    ann = make_user("Ann")
    assistant = accounts.assistant_user()
    room = make_room("general")
    seed(room, [ann], 2)
    earlier = chat.create_reply(room.id, assistant.id, ann.id)  # type: ignore[arg-type]
    assert chat.claim_reply(earlier.id, "gen-1")  # type: ignore[arg-type]
    assert chat.finish_reply(earlier.id, "gen-1", status=chat.FAILED, generation_id=None)  # type: ignore[arg-type]
    later = chat.create_reply(room.id, assistant.id, ann.id)  # type: ignore[arg-type]
    assert chat.claim_reply(later.id, "gen-2")  # type: ignore[arg-type]
    chat.requeue_reply(earlier.id, ann.id)  # type: ignore[arg-type]
    a = await open_room(room_app, ann, room)
    stopped: list[int] = []
    monkeypatch.setattr(chat, "_signal_stop", stopped.append)

    await a.send(MessagesState.stop_current_reply)

    assert stopped == [later.id]


async def test_esc_stops_only_the_callers_own_reply(
    room_app: RoomApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Bob's reply is being written; Ann's waits behind it. Ann's Esc is for hers, Cy's
    # (who asked for nothing) stops nothing.
    ann, bob, cy = make_user("Ann"), make_user("Bob"), make_user("Cy")
    assistant = accounts.assistant_user()
    room = make_room("general")
    seed(room, [ann], 2)
    bobs = chat.create_reply(room.id, assistant.id, bob.id)  # type: ignore[arg-type]
    assert chat.claim_reply(bobs.id, "gen-1")  # type: ignore[arg-type]
    anns = chat.create_reply(room.id, assistant.id, ann.id)  # type: ignore[arg-type]
    a = await open_room(room_app, ann, room)
    c = await open_room(room_app, cy, room)
    stopped: list[int] = []
    monkeypatch.setattr(chat, "_signal_stop", stopped.append)

    await c.send(MessagesState.stop_current_reply)
    assert stopped == []
    await a.send(MessagesState.stop_current_reply)
    assert stopped == [anns.id]
