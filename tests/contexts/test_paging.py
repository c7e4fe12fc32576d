"""Paging a room's history both ways (stream_chat/chat.py): last_messages, messages_before,
messages_after and messages_around, at every edge, on SQLite and PostgreSQL.

Two rooms share the id sequence (their messages interleave), so a page that strays over the
room filter, or a cursor taken as an offset, shows up as a wrong id."""

import random

import pytest

from stream_chat import chat
from stream_chat.chat import PAGE_SIZE, MessageNotFound, MessageNotInRoom


@pytest.fixture
def rooms(make_room, alice):
    """Rooms A (45 messages) and B (30), interleaved. Returns (a, b, a_ids, b_ids)."""
    a, b = make_room("alpha"), make_room("beta")
    order = ["a"] * 45 + ["b"] * 30
    random.Random(20261201).shuffle(order)
    ids: dict[str, list[int]] = {"a": [], "b": []}
    for n, which in enumerate(order):
        room = a if which == "a" else b
        ids[which].append(chat.create_message(room.id, alice.id, f"{which}{n}").id)
    assert any(ids["a"][0] < i < ids["a"][-1] for i in ids["b"])
    return a, b, ids["a"], ids["b"]


def _ids(messages):
    return [m.id for m in messages]


# messages_after


@pytest.mark.parametrize("page_size", [1, 7, 20, 45, 100])
def test_messages_after_walks_a_rooms_whole_history_forward(rooms, page_size):
    a, _b, a_ids, _b_ids = rooms
    # From before the first message (cursor 0) to the live end.
    walked, cursor = [], 0
    for _ in range(len(a_ids) + 1):
        page = chat.messages_after(a.id, cursor, limit=page_size)
        if not page:
            break
        assert _ids(page) == sorted(_ids(page)), "display order, oldest first"
        assert all(m.room_id == a.id for m in page)
        walked.extend(_ids(page))
        cursor = page[-1].id
    else:
        pytest.fail("paging forward does not terminate")
    assert walked == a_ids, "no duplicates, no gaps"


def test_messages_after_returns_the_n_just_after_the_cursor(rooms):
    a, _b, a_ids, _b_ids = rooms
    assert _ids(chat.messages_after(a.id, a_ids[10], limit=5)) == a_ids[11:16]


def test_messages_after_the_last_message_is_empty(rooms):
    a, b, a_ids, b_ids = rooms
    assert chat.messages_after(a.id, a_ids[-1]) == []
    assert chat.messages_after(b.id, b_ids[-1]) == []


def test_messages_after_near_the_live_end_is_a_short_page(rooms):
    a, _b, a_ids, _b_ids = rooms
    assert _ids(chat.messages_after(a.id, a_ids[-4])) == a_ids[-3:]


def test_messages_after_with_another_rooms_id_as_cursor(rooms):
    a, _b, a_ids, b_ids = rooms
    cursor = next(i for i in b_ids if i > a_ids[10])
    expected = [i for i in a_ids if i > cursor][:5]
    assert _ids(chat.messages_after(a.id, cursor, limit=5)) == expected


def test_messages_after_in_an_empty_or_unknown_room(rooms, make_room):
    empty = make_room("empty")
    assert chat.messages_after(empty.id, 0) == []
    assert chat.messages_after(empty.id + 1000, 0) == []


def test_a_room_of_exactly_one_page_both_ways(make_room, alice):
    room = make_room("one-page")
    ids = [chat.create_message(room.id, alice.id, f"m{n}").id for n in range(PAGE_SIZE)]
    assert _ids(chat.last_messages(room.id)) == ids
    assert chat.messages_before(room.id, ids[0]) == []
    assert _ids(chat.messages_after(room.id, 0)) == ids
    assert chat.messages_after(room.id, ids[-1]) == []


def test_a_page_is_bounded_whatever_limit_is_asked(make_room, alice):
    room = make_room("many")
    ids = [chat.create_message(room.id, alice.id, f"m{n}").id for n in range(5)]
    # SQLite would read LIMIT -1 as no limit at all.
    assert chat.messages_after(room.id, 0, limit=-1) == []
    assert chat.messages_before(room.id, ids[-1] + 1, limit=-1) == []
    assert chat.last_messages(room.id, limit=0) == []
    assert chat.MAX_PAGE_SIZE < 1000
    assert _ids(chat.messages_after(room.id, 0, limit=1000)) == ids


# messages_around


def test_messages_around_centres_the_page_on_the_message(rooms):
    a, _b, a_ids, _b_ids = rooms
    page = chat.messages_around(a.id, a_ids[20], before=10, after=10)
    assert _ids(page) == a_ids[10:31]
    assert page[10].id == a_ids[20]
    assert all(m.room_id == a.id for m in page)
    assert page[10].sender.name == "Alice", "the target's sender is loaded too"


def test_messages_around_the_default_page(rooms):
    a, _b, a_ids, _b_ids = rooms
    page = chat.messages_around(a.id, a_ids[20])
    assert _ids(page) == a_ids[20 - PAGE_SIZE // 2 : 21 + PAGE_SIZE // 2]


def test_messages_around_the_first_message(rooms):
    a, _b, a_ids, _b_ids = rooms
    assert _ids(chat.messages_around(a.id, a_ids[0], before=10, after=4)) == a_ids[:5]


def test_messages_around_the_last_message(rooms):
    a, _b, a_ids, _b_ids = rooms
    assert _ids(chat.messages_around(a.id, a_ids[-1], before=4, after=10)) == a_ids[-5:]


def test_messages_around_near_both_ends_of_a_short_room(make_room, alice):
    room = make_room("short")
    ids = [chat.create_message(room.id, alice.id, f"m{n}").id for n in range(3)]
    assert _ids(chat.messages_around(room.id, ids[1])) == ids
    only = make_room("only-one")
    single = chat.create_message(only.id, alice.id, "alone").id
    assert _ids(chat.messages_around(only.id, single)) == [single]


def test_messages_around_with_an_id_from_a_url(rooms):
    a, _b, a_ids, _b_ids = rooms
    assert _ids(chat.messages_around(a.id, str(a_ids[5]), before=1, after=1)) == a_ids[4:7]


def test_messages_around_a_message_of_another_room_is_refused(rooms):
    a, _b, _a_ids, b_ids = rooms
    with pytest.raises(MessageNotInRoom) as refused:
        chat.messages_around(a.id, b_ids[3])
    assert str(refused.value) == "That message is not in this room."
    # Callers that only care that the message is not here catch both.
    assert isinstance(refused.value, MessageNotFound)


def test_messages_around_a_deleted_message(rooms, alice):
    a, _b, a_ids, _b_ids = rooms
    chat.delete_message(a_ids[7], alice.id, room_id=a.id)
    with pytest.raises(MessageNotFound) as refused:
        chat.messages_around(a.id, a_ids[7])
    assert not isinstance(refused.value, MessageNotInRoom)
    assert str(refused.value) == "That message does not exist any more."


@pytest.mark.parametrize("raw", [None, "", "abc", "-3", "0", "1.5", 2**31, True, "١٢"])
def test_messages_around_a_malformed_id(rooms, raw):
    a, _b, _a_ids, _b_ids = rooms
    with pytest.raises(MessageNotFound):
        chat.messages_around(a.id, raw)


def test_messages_around_in_an_unknown_room(rooms):
    _a, _b, a_ids, _b_ids = rooms
    with pytest.raises(MessageNotInRoom):
        chat.messages_around(10_000, a_ids[0])


def test_messages_around_is_one_statement(rooms, count_statements):
    a, _b, a_ids, _b_ids = rooms
    with count_statements() as statements:
        page = chat.messages_around(a.id, a_ids[20], before=3, after=3)
        names = {m.sender.name for m in page}
    assert names == {"Alice"}
    assert len(page) == 7
    assert len(statements) == 1, statements


# window_ids: the room page's window finds its other end from one cursor


def test_window_ids_after_and_before_a_cursor_are_this_rooms_ids_only(rooms):
    a, b, a_ids, b_ids = rooms
    assert chat.window_ids(a.id, after_id=a_ids[10] - 1, limit=7) == a_ids[10:17]
    assert chat.window_ids(a.id, before_id=a_ids[30] + 1, limit=7) == a_ids[24:31]
    # Near either end: what there is, oldest first.
    assert chat.window_ids(a.id, after_id=a_ids[-3], limit=60) == a_ids[-2:]
    assert chat.window_ids(a.id, before_id=a_ids[2], limit=60) == a_ids[:2]
    assert chat.window_ids(b.id, after_id=0, limit=61) == b_ids
    # A cursor of another room is only a position.
    assert (
        chat.window_ids(a.id, after_id=b_ids[5], limit=3) == [i for i in a_ids if i > b_ids[5]][:3]
    )


def test_window_ids_reads_no_more_than_a_page_may_and_takes_one_cursor(rooms):
    a, _b, a_ids, _b_ids = rooms
    assert chat.window_ids(a.id, after_id=0, limit=-1) == []
    assert len(chat.window_ids(a.id, after_id=0, limit=10**6)) == len(a_ids)
    with pytest.raises(ValueError):
        chat.window_ids(a.id, limit=3)
    with pytest.raises(ValueError):
        chat.window_ids(a.id, after_id=1, before_id=5, limit=3)
