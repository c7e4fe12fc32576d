"""The Chat context (stream_chat/chat.py) against a real, migrated database."""

import random
from datetime import timedelta

import pytest
from sqlalchemy.exc import IntegrityError

from stream_chat import chat
from stream_chat.chat import InvalidMessage, MessageNotFound, NotAuthorized, RoomNotFound
from stream_chat.models import utcnow

# Rooms


def test_list_rooms_is_empty_without_rooms(db):
    assert chat.list_rooms() == []


def test_list_rooms_is_ordered_by_name(make_room):
    for name in ["random", "general", "lounge", "announcements", "books"]:
        make_room(name)
    assert [room.name for room in chat.list_rooms()] == [
        "announcements",
        "books",
        "general",
        "lounge",
        "random",
    ]


def test_create_room_strips_and_stores(make_room):
    room = chat.create_room("  general  ", "  Anything goes.  ")
    assert room.id is not None
    assert (room.name, room.description) == ("general", "Anything goes.")
    stored = chat.get_room(room.id)
    assert stored is not None
    assert (stored.name, stored.description) == ("general", "Anything goes.")


def test_create_room_refuses_a_duplicate_name(make_room, fetch):
    make_room("general")
    with pytest.raises(IntegrityError):
        chat.create_room("general")
    with pytest.raises(IntegrityError):
        chat.create_room("  general ")  # The same name once stripped.
    assert fetch("SELECT name FROM rooms") == [("general",)]


def test_get_room_by_int_and_str_id(make_room):
    make_room("general")
    room = make_room("random")
    for raw in (room.id, str(room.id)):
        found = chat.get_room(raw)
        assert found is not None
        assert (found.id, found.name) == (room.id, "random")


def test_get_room_unknown_id(make_room):
    room = make_room("general")
    assert chat.get_room(room.id + 1) is None
    assert chat.get_room(str(room.id + 1000)) is None


@pytest.fixture
def twelve_rooms(make_room):
    """Rooms 1 to 12 exist, so that a malformed id misread as 1 or 12 would find one."""
    rooms = [make_room() for _ in range(12)]
    assert [room.id for room in rooms] == list(range(1, 13))
    return rooms


@pytest.mark.parametrize(
    "raw",
    [
        "abc",
        "",
        None,
        "-1",
        "0",
        "1.5",
        "١٢",  # Arabic-Indic digits: str.isdigit() is True and int() reads 12.
        "\uff11\uff12",  # Fullwidth digits one and two, likewise.
        " 1",
        "+1",
        "1e0",
        "99999999999999999999",
        "2147483648",  # One past PostgreSQL's integer.
        True,
        False,
        0,
        -1,
        1.0,
        99999999999999999999,
        2**31,
    ],
    ids=repr,
)
def test_get_room_malformed_id_is_none(twelve_rooms, raw):
    assert chat.get_room(raw) is None


def test_get_room_largest_valid_id_is_just_not_found(twelve_rooms):
    assert chat.get_room(2**31 - 1) is None
    assert chat.get_room(str(2**31 - 1)) is None


# Messages (the alice, bob and room fixtures are in conftest.py)


def _post(room, sender, count, prefix="m"):
    return [chat.create_message(room.id, sender.id, f"{prefix}{n}") for n in range(1, count + 1)]


# last_messages


def test_last_messages_are_the_newest_in_display_order(room, alice):
    posted = _post(room, alice, 25)
    messages = chat.last_messages(room.id)
    assert len(messages) == chat.PAGE_SIZE == 20
    assert [m.content for m in messages] == [f"m{n}" for n in range(6, 26)]
    assert [m.id for m in messages] == [m.id for m in posted[5:]]
    ids = [m.id for m in messages]
    assert ids == sorted(ids)


def test_last_messages_limit(room, alice):
    _post(room, alice, 8)
    assert [m.content for m in chat.last_messages(room.id, limit=3)] == ["m6", "m7", "m8"]
    assert [m.content for m in chat.last_messages(room.id, limit=50)] == [
        f"m{n}" for n in range(1, 9)
    ]


def test_last_messages_only_of_that_room(make_room, alice):
    general, random_room = make_room("general"), make_room("random")
    chat.create_message(general.id, alice.id, "in general")
    chat.create_message(random_room.id, alice.id, "in random")
    chat.create_message(general.id, alice.id, "general again")
    assert [m.content for m in chat.last_messages(general.id)] == ["in general", "general again"]
    assert [m.content for m in chat.last_messages(random_room.id)] == ["in random"]


def test_last_messages_of_an_empty_room(room, make_room, alice):
    other = make_room("other")
    _post(other, alice, 3)
    assert chat.last_messages(room.id) == []


def test_last_messages_of_an_unknown_room(room, alice):
    _post(room, alice, 3)
    assert chat.last_messages(room.id + 1000) == []


# messages_before


@pytest.fixture
def interleaved(make_room, alice, bob):
    """Rooms A and B whose messages were posted in a shuffled interleaving, so that the ids
    of one room have gaps filled by the other's. Returns (a, b, a_ids, b_ids)."""
    a, b = make_room("alpha"), make_room("beta")
    order = ["a"] * 47 + ["b"] * 33
    random.Random(20240607).shuffle(order)
    ids = {"a": [], "b": []}
    for n, which in enumerate(order):
        target = a if which == "a" else b
        sender = alice if n % 3 else bob
        ids[which].append(chat.create_message(target.id, sender.id, f"{which}{n}").id)
    # The interleaving really interleaves: some B id falls between A's first and last.
    assert any(ids["a"][0] < i < ids["a"][-1] for i in ids["b"])
    return a, b, ids["a"], ids["b"]


@pytest.mark.parametrize("page_size", [1, 7, 20, 47, 100])
def test_messages_before_walks_a_rooms_whole_history(interleaved, page_size):
    a, _b, a_ids, b_ids = interleaved
    page = chat.last_messages(a.id, limit=page_size)
    pages = [page]
    while page:
        page = chat.messages_before(a.id, page[0].id, limit=page_size)
        assert len(pages) <= len(a_ids) + 1, "pagination does not terminate"
        pages.append(page)

    assert pages[-1] == []
    for page in pages[:-1]:
        ids = [m.id for m in page]
        assert ids == sorted(ids), "each page is in display order (oldest first)"
        assert all(m.room_id == a.id for m in page)
        assert not set(ids) & set(b_ids), "another room's message leaked in"
    # Every page but the oldest is full.
    assert all(len(page) == page_size for page in pages[:-2])
    walked = [m.id for page in reversed(pages) for m in page]
    assert walked == a_ids, "no duplicates, no gaps, oldest first"


def test_messages_before_returns_the_n_just_before_the_cursor(interleaved):
    a, _b, a_ids, _b_ids = interleaved
    cursor = a_ids[30]
    messages = chat.messages_before(a.id, cursor, limit=10)
    assert [m.id for m in messages] == a_ids[20:30]
    assert all(m.content.startswith("a") for m in messages)


def test_messages_before_with_another_rooms_id_as_cursor(interleaved):
    a, _b, a_ids, b_ids = interleaved
    cursor = next(i for i in b_ids if i > a_ids[10])
    expected = [i for i in a_ids if i < cursor][-5:]
    assert [m.id for m in chat.messages_before(a.id, cursor, limit=5)] == expected


def test_messages_before_a_cursor_past_the_end(interleaved):
    a, _b, a_ids, _b_ids = interleaved
    messages = chat.messages_before(a.id, max(a_ids) + 1000, limit=6)
    assert [m.id for m in messages] == a_ids[-6:]


def test_messages_before_the_first_message_is_empty(interleaved):
    a, b, a_ids, b_ids = interleaved
    assert chat.messages_before(a.id, a_ids[0]) == []
    assert chat.messages_before(b.id, b_ids[0]) == []


def test_messages_before_in_an_empty_room(interleaved, make_room):
    _a, _b, a_ids, b_ids = interleaved
    empty = make_room("empty")
    assert chat.messages_before(empty.id, max(a_ids + b_ids) + 1) == []
    assert chat.messages_before(empty.id + 1000, max(a_ids + b_ids) + 1) == []


# Senders are preloaded


@pytest.fixture
def twenty_messages_from_ten_senders(room, make_user):
    senders = [make_user(f"Sender {n}") for n in range(10)]
    for n in range(20):
        chat.create_message(room.id, senders[n % 10].id, f"message {n}")
    return room


@pytest.mark.parametrize("limit", [5, 20])
def test_last_messages_loads_senders_in_the_same_query(
    twenty_messages_from_ten_senders, count_statements, limit
):
    room = twenty_messages_from_ten_senders
    with count_statements() as statements:
        messages = chat.last_messages(room.id, limit=limit)
        names = [m.sender.name for m in messages]
    assert len(messages) == limit
    assert names == [f"Sender {n % 10}" for n in range(20 - limit, 20)]
    assert len(statements) == 1, statements


@pytest.mark.parametrize("limit", [5, 19])
def test_messages_before_loads_senders_in_the_same_query(
    twenty_messages_from_ten_senders, count_statements, limit
):
    room = twenty_messages_from_ten_senders
    newest = chat.last_messages(room.id, limit=1)[0]
    with count_statements() as statements:
        messages = chat.messages_before(room.id, newest.id, limit=limit)
        names = [m.sender.name for m in messages]
    assert names == [f"Sender {n % 10}" for n in range(19 - limit, 19)]
    assert len(statements) == 1, statements


# get_message / create_message


def test_create_message_stores_and_returns_it_with_its_sender(room, alice, fetch):
    message = chat.create_message(room.id, alice.id, "  hello, world \n")
    assert message.id is not None
    assert (message.room_id, message.sender_id) == (room.id, alice.id)
    assert message.content == "hello, world"
    assert message.sender.name == "Alice"
    assert message.edited_at is None
    rows = fetch("SELECT id, room_id, sender_id, content, edited_at FROM messages")
    assert rows == [(message.id, room.id, alice.id, "hello, world", None)]
    stored = chat.get_message(message.id)
    assert stored is not None
    assert (stored.content, stored.sender.name) == ("hello, world", "Alice")


def test_get_message_unknown_id(room, alice):
    message = chat.create_message(room.id, alice.id, "hi")
    assert chat.get_message(message.id + 1) is None


@pytest.mark.parametrize("content", ["", " ", "   \n\t  ", "\u3000", None])
def test_create_message_refuses_empty_content(room, alice, count_rows, content):
    with pytest.raises(InvalidMessage, match="empty"):
        chat.create_message(room.id, alice.id, content)
    assert count_rows("messages") == 0


def test_create_message_accepts_exactly_the_maximum_length(room, alice, fetch):
    content = "x" * chat.MAX_MESSAGE_LENGTH
    assert chat.MAX_MESSAGE_LENGTH == 4000
    message = chat.create_message(room.id, alice.id, f"  {content}\n")
    assert message.content == content
    assert fetch("SELECT content FROM messages") == [(content,)]


def test_create_message_refuses_one_character_too_many(room, alice, count_rows):
    with pytest.raises(InvalidMessage) as refused:
        chat.create_message(room.id, alice.id, "x" * 4001)
    assert "4,000" in str(refused.value)
    assert "4,001" in str(refused.value)
    assert count_rows("messages") == 0


def test_create_message_in_an_unknown_room(room, alice, count_rows):
    with pytest.raises(RoomNotFound):
        chat.create_message(room.id + 1000, alice.id, "hello?")
    assert count_rows("messages") == 0


def test_create_message_from_an_unknown_sender_is_refused_by_the_database(room, alice, count_rows):
    # Foreign keys are enforced on SQLite too (repo turns them on for every connection).
    with pytest.raises(IntegrityError):
        chat.create_message(room.id, alice.id + 1000, "who am I?")
    assert count_rows("messages") == 0


def test_create_message_stores_html_verbatim(room, alice, fetch):
    html = "<script>alert('x')</script> &amp; <b>bold</b> \"quoted\""
    message = chat.create_message(room.id, alice.id, html)
    assert message.content == html
    assert fetch("SELECT content FROM messages") == [(html,)]
    assert [m.content for m in chat.last_messages(room.id)] == [html]


# update_message


def test_owner_can_edit_a_message(room, alice, fetch):
    message = chat.create_message(room.id, alice.id, "helo")
    before = utcnow()
    edited = chat.update_message(message.id, alice.id, "  hello  ", room_id=room.id)
    after = utcnow()

    assert (edited.id, edited.content) == (message.id, "hello")
    assert edited.sender.name == "Alice"
    assert edited.edited_at is not None
    assert before - timedelta(seconds=1) <= edited.edited_at <= after + timedelta(seconds=1)
    assert edited.updated_at >= message.updated_at
    assert edited.inserted_at == message.inserted_at
    [(content, edited_at)] = fetch("SELECT content, edited_at FROM messages")
    assert content == "hello"
    assert edited_at is not None
    stored = chat.get_message(message.id)
    assert stored.content == "hello"
    assert stored.edited_at == edited.edited_at


def test_an_edit_that_changes_nothing_does_not_mark_the_message_edited(room, alice):
    message = chat.create_message(room.id, alice.id, "hello")
    unchanged = chat.update_message(message.id, alice.id, " hello ", room_id=room.id)
    assert unchanged.content == "hello"
    assert unchanged.edited_at is None
    assert chat.get_message(message.id).edited_at is None


def test_others_cannot_edit_a_message(room, alice, bob, fetch):
    message = chat.create_message(room.id, alice.id, "mine")
    with pytest.raises(NotAuthorized, match="your own"):
        chat.update_message(message.id, bob.id, "yours now", room_id=room.id)
    assert fetch("SELECT content, edited_at FROM messages") == [("mine", None)]


def test_editing_an_unknown_message(room, alice):
    message = chat.create_message(room.id, alice.id, "hi")
    with pytest.raises(MessageNotFound):
        chat.update_message(message.id + 1, alice.id, "edited", room_id=room.id)
    assert chat.get_message(message.id).content == "hi"


@pytest.mark.parametrize("content", ["", "   ", "x" * 4001], ids=["empty", "blank", "4001"])
def test_editing_to_invalid_content_is_refused(room, alice, fetch, content):
    message = chat.create_message(room.id, alice.id, "keep me")
    with pytest.raises(InvalidMessage):
        chat.update_message(message.id, alice.id, content, room_id=room.id)
    assert fetch("SELECT content, edited_at FROM messages") == [("keep me", None)]


# delete_message


def test_owner_can_delete_a_message(room, alice, fetch):
    keep = chat.create_message(room.id, alice.id, "keep")
    gone = chat.create_message(room.id, alice.id, "delete me")
    deleted = chat.delete_message(gone.id, alice.id, room_id=room.id)
    assert (deleted.id, deleted.content) == (gone.id, "delete me")
    assert chat.get_message(gone.id) is None
    assert fetch("SELECT id FROM messages") == [(keep.id,)]


def test_others_cannot_delete_a_message(room, alice, bob, fetch):
    message = chat.create_message(room.id, alice.id, "mine")
    with pytest.raises(NotAuthorized, match="your own"):
        chat.delete_message(message.id, bob.id, room_id=room.id)
    assert fetch("SELECT id, content FROM messages") == [(message.id, "mine")]


def test_deleting_an_unknown_message(room, alice, count_rows):
    message = chat.create_message(room.id, alice.id, "hi")
    with pytest.raises(MessageNotFound):
        chat.delete_message(message.id + 1, alice.id, room_id=room.id)
    assert count_rows("messages") == 1


def test_a_message_of_another_room_is_refused_even_to_its_sender(room, alice, make_room, fetch):
    # Ids are global and sequential: the room the page has open is part of the request.
    other = make_room("random")
    message = chat.create_message(other.id, alice.id, "over there")
    with pytest.raises(MessageNotFound):
        chat.update_message(message.id, alice.id, "edited from elsewhere", room_id=room.id)
    with pytest.raises(MessageNotFound):
        chat.editable_message(message.id, alice.id, room_id=room.id)
    with pytest.raises(MessageNotFound):
        chat.delete_message(message.id, alice.id, room_id=room.id)
    assert fetch("SELECT content, edited_at FROM messages") == [("over there", None)]
    assert chat.editable_message(message.id, alice.id, room_id=other.id).id == message.id


def test_deleting_twice(room, alice):
    message = chat.create_message(room.id, alice.id, "once")
    chat.delete_message(message.id, alice.id, room_id=room.id)
    with pytest.raises(MessageNotFound):
        chat.delete_message(message.id, alice.id, room_id=room.id)


# Assistant replies: one generation per room, in the order asked


def test_claiming_a_reply_takes_turns_in_its_room(make_room, make_user):
    room, other_room = make_room("general"), make_room("random")
    bot, ann = make_user("Assistant"), make_user("Ann")
    first, second = (chat.create_reply(room.id, bot.id, ann.id) for _ in range(2))
    elsewhere = chat.create_reply(other_room.id, bot.id, ann.id)

    # A reply queued before it is ahead: the second waits even though nothing is written.
    assert chat.claim_reply(second.id, "g2") is None
    assert chat.claim_reply(first.id, "g1") == chat.Claim(room.id, first.id - 1)
    # Claimed once: a second run of the same reply cannot claim it again.
    assert chat.claim_reply(first.id, "g1-again") is None
    assert chat.get_message(first.id).generation_id == "g1"
    # The first is being written: the second still waits; another room does not.
    assert chat.claim_reply(second.id, "g2") is None
    assert chat.claim_reply(elsewhere.id, "g3") == chat.Claim(other_room.id, elsewhere.id - 1)

    assert chat.finish_reply(first.id, "g1", status=chat.DONE, generation_id=None)
    assert chat.claim_reply(second.id, "g2") == chat.Claim(room.id, second.id - 1)
    claimed = chat.get_message(second.id)
    assert (claimed.status, claimed.generation_id) == (chat.THINKING, "g2")


def test_a_retried_earlier_reply_waits_for_the_one_being_written(make_room, make_user):
    room = make_room("general")
    bot, ann = make_user("Assistant"), make_user("Ann")
    earlier, later = (chat.create_reply(room.id, bot.id, ann.id) for _ in range(2))
    assert chat.claim_reply(earlier.id, "g1")
    assert chat.finish_reply(earlier.id, "g1", status=chat.FAILED, generation_id=None)
    assert chat.claim_reply(later.id, "g2") == chat.Claim(room.id, later.id - 1)

    chat.update_reply(earlier.id, status=chat.QUEUED, content="", generation_id=None)

    assert chat.claim_reply(earlier.id, "g3") is None
    assert chat.get_message(earlier.id).status == chat.QUEUED
    assert chat.finish_reply(later.id, "g2", status=chat.DONE, generation_id=None)
    assert chat.claim_reply(earlier.id, "g3") == chat.Claim(room.id, earlier.id - 1)
