"""The room page's state (`stream_chat/state/messages.py`) through the real event processor.

Every test runs over the memory and the Redis state managers (`room_fixtures.room_app`), with
a fresh migrated SQLite database and an in-process broker. Tabs boot with the session cookie
and the page's router data; the app's on_load table (`require_user`, `enter_room`) starts the
`follow_room` background task, as in the running app. What a tab "shows" is a `ClientStream`
fed every `messages` batch it received, in order.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from stream_chat import chat, pubsub
from stream_chat.models import Room, User
from stream_chat.state.messages import MESSAGES, MessagesState
from stream_chat.state.session import SessionState
from stream_chat.stream_chat import app as chat_app
from stream_chat.streams.client_model import BatchOutcome, ClientStream

from . import room_fixtures
from .room_fixtures import (
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
    same changes in the same order whether a follower applied them one by one or drained
    several into one batch."""
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


async def open_room(app: RoomApp, user: User, room: Room) -> Tab:
    tab = app.tab(user)
    await tab.connect(f"/rooms/{room.id}")
    return tab


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
    assert project(first["ops"]) == ([["reset"], insert_op(shown)] if shown else [["reset"]])
    assert len(batches) == 1
    assert tab.outcomes == [BatchOutcome.APPLIED]
    assert tab.shown_ids == shown
    assert tab.var("room_missing") is False
    assert tab.var("current_room_id") == room.id
    assert tab.var("room_name") == "general"
    assert tab.var("oldest_id") == (shown[0] if shown else None)
    assert tab.var("at_start") is at_start
    # The live subscription is open: one follower, subscribed to this room only.
    assert len(room_app.follower_tasks(tab.token)) == 1
    assert room_app.subscriber_count(room.id) == 1
    assert room_app.subscriber_count(other.id) == 0


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
    # The insert reached the sender through its own follower (the room's broadcast), not
    # from the send handler: the handler only cleared the composer.
    assert ops_of(tab, mark) == [insert_op([new_id])]
    carrying = [
        tab.emitters[mark + n]
        for n, delta in enumerate(tab.deltas[mark:])
        if delta.get(MESSAGES_STATE, {}).get("stream_batches_rx_state_")
    ]
    assert carrying == ["follow_room"]
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
    assert room_app.subscriber_count(room.id) == 2

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

    # The same changes in the same order (a follower may drain several into one batch).
    seen_a, seen_b = entries_in(ops_of(a, mark_a)), entries_in(ops_of(b, mark_b))
    assert len(seen_a) == 10
    assert seen_a == seen_b
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
    # Reflex cancelled the first room's follower with the page's on_load chain.
    assert room_app.subscriber_count(first.id) == 1  # Bob's
    assert room_app.subscriber_count(second.id) == 1
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


@pytest.mark.parametrize("again_in", ["another room", "the same room"])
async def test_an_older_follower_that_wakes_up_stops_without_delivering(
    room_app: RoomApp, again_in: str
) -> None:
    # enter_room sent again without a page load (a crafted event, or a chain Reflex did not
    # cancel), so nothing cancels the first follower: it must notice it is stale on its next
    # event, and neither deliver another room's message nor deliver a message twice.
    ann, bob = make_user("Ann"), make_user("Bob")
    first, second = make_room("first"), make_room("second")
    first_ids = seed(first, [bob], 3)
    second_ids = seed(second, [bob], 2)
    a = await open_room(room_app, ann, first)
    now_in = second if again_in == "another room" else first

    a.path = f"/rooms/{now_in.id}"
    await a.send(MessagesState.enter_room)
    assert a.shown_ids == (second_ids if now_in is second else first_ids)
    assert len(room_app.follower_tasks(a.token)) == 2
    assert room_app.subscriber_count(first.id) == (1 if now_in is second else 2)

    mark = a.mark()
    old_room_message = chat.create_message(first.id, bob.id, "one for the first room")  # type: ignore[arg-type]
    await room_app.quiet()
    if now_in is second:
        assert ops_of(a, mark) == []
    else:
        assert ops_of(a, mark) == [insert_op([old_room_message.id])]  # type: ignore[list-item]
    assert room_app.subscriber_count(first.id) == (0 if now_in is second else 1)
    assert len(room_app.follower_tasks(a.token)) == 1

    mark = a.mark()
    created = chat.create_message(now_in.id, bob.id, "the current follower delivers this")  # type: ignore[arg-type]
    await room_app.quiet()
    assert ops_of(a, mark) == [insert_op([created.id])]  # type: ignore[list-item]


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
    assert room_app.subscriber_count(room.id) == 0
    assert room_app.follower_tasks() == []
    assert [t for t in room_app.processor._tasks.values() if not t.done()] == []

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
    [
        10**6,
        "abc",
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


async def test_a_logged_out_tab_gets_no_messages(room_app: RoomApp) -> None:
    ann, bob = make_user("Ann"), make_user("Bob")
    room = make_room("general")
    seed(room, [bob], 25)
    tab = await open_room(room_app, ann, room)

    await tab.send(SessionState.log_out)
    await tab.navigate("/login")
    assert room_app.follower_tasks(tab.token) == []
    mark = tab.mark()
    await tab.send(MessagesState.resync_stream, name=MESSAGES)
    await tab.send(MessagesState.load_older)

    assert message_ids_in(ops_of(tab, mark)) == []


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
    last = tab.batches()[-1][MESSAGES]
    mark = tab.mark()

    await tab.send(MessagesState.resync_stream, name=MESSAGES)

    [resync] = [b[MESSAGES] for b in tab.batches(mark)]
    assert (resync["seq"], resync["epoch"]) == (last["seq"] + 1, last["epoch"])
    shown = [*ids, *lost][-PAGE:]
    assert project(resync["ops"]) == [["reset"], insert_op(shown)]
    assert tab.shown_ids == shown
    assert tab.var("oldest_id") == shown[0]
    assert tab.var("at_start") is False

    # The cursor starts over: load_older pages back from the new oldest message again.
    mark = tab.mark()
    await tab.send(MessagesState.load_older)
    assert ops_of(tab, mark) == [insert_op([*ids, *lost][-2 * PAGE : -PAGE], at=0)]

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
    assert browser.apply_batch(resync) is BatchOutcome.APPLIED
    assert [item["id"] for item in browser.items] == [m[0] for m in stored_messages(room.id)]


async def test_a_broker_resync_makes_every_follower_restream(room_app: RoomApp) -> None:
    # What RedisBroker publishes to every subscriber after its listener reconnects.
    ann, bob = make_user("Ann"), make_user("Bob")
    room = make_room("general")
    seed(room, [bob], 2)
    a = await open_room(room_app, ann, room)
    b = await open_room(room_app, bob, room)
    lost = seed(room, [bob], 1)
    marks = {a.token: a.mark(), b.token: b.mark()}

    room_app.broker.publish_everywhere(pubsub.RESYNC)
    await room_app.quiet()

    expected = [m[0] for m in stored_messages(room.id)]
    assert lost[0] in expected
    for tab in (a, b):
        assert ops_of(tab, marks[tab.token]) == [["reset"], insert_op(expected)]
        assert tab.shown_ids == expected
