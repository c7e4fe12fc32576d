"""The Unread context (stream_chat/unread.py): positions, counts and their broadcasts."""

import asyncio

import pytest

from stream_chat import chat, mentions, pubsub, unread
from stream_chat.chat import MessageNotFound, MessageNotInRoom


@pytest.fixture
def broker():
    local = pubsub.LocalBroker()
    previous = pubsub.use_broker(local)
    yield local
    pubsub.use_broker(previous)


def post(room, user, content="hello"):
    return chat.create_message(room.id, user.id, content).id


def test_a_room_never_read_counts_every_message_of_the_others(room, alice, bob):
    ids = [post(room, bob, f"bob {n}") for n in range(3)]
    post(room, alice, "mine do not count")
    state = unread.check_room_unread(alice.id, room.id)
    assert (state.last_read, state.unread, state.mentions) == (0, 3, 0)
    assert state.first_unread == ids[0]
    assert state.newest == ids[-1] + 1


def test_marking_read_moves_the_position_and_counts_what_is_after_it(room, alice, bob):
    ids = [post(room, bob, f"bob {n}") for n in range(5)]
    state = unread.do_mark_read(alice.id, room.id, ids[1])
    assert state is not None
    assert (state.last_read, state.unread, state.first_unread, state.newest) == (
        ids[1],
        3,
        ids[2],
        ids[4],
    )
    assert unread.check_last_read(alice.id, room.id) == ids[1]
    # The same position as a string (an event payload) is the same position.
    assert unread.do_mark_read(alice.id, room.id, str(ids[1])) is None


def test_the_position_never_moves_back(room, alice, bob, fetch):
    ids = [post(room, bob) for _ in range(4)]
    unread.do_mark_read(alice.id, room.id, ids[3])
    stamped = fetch("SELECT updated_at FROM last_reads")
    # An older tab reporting late, or a crafted event: refused quietly, nothing written.
    assert unread.do_mark_read(alice.id, room.id, ids[0]) is None
    assert unread.do_mark_read(alice.id, room.id, ids[3]) is None
    assert fetch("SELECT last_read_message_id FROM last_reads") == [(ids[3],)]
    assert fetch("SELECT updated_at FROM last_reads") == stamped


def test_one_row_per_user_and_room(make_room, alice, bob, fetch):
    general, random = make_room("general"), make_room("random")
    for target in (general, random):
        for _ in range(2):
            message_id = post(target, bob)
            unread.do_mark_read(alice.id, target.id, message_id)
            unread.do_mark_read(bob.id, target.id, message_id)
    rows = fetch("SELECT user_id, room_id FROM last_reads ORDER BY user_id, room_id")
    assert rows == [
        (alice.id, general.id),
        (alice.id, random.id),
        (bob.id, general.id),
        (bob.id, random.id),
    ]


def test_another_rooms_message_is_refused(make_room, alice, bob, fetch):
    general, random = make_room("general"), make_room("random")
    post(general, bob)
    elsewhere = post(random, bob)
    with pytest.raises(MessageNotInRoom):
        unread.do_mark_read(alice.id, general.id, elsewhere)
    assert fetch("SELECT * FROM last_reads") == []


def test_another_rooms_message_is_refused_past_a_position(make_room, alice, bob, fetch):
    general, random = make_room("general"), make_room("random")
    unread.do_mark_read(alice.id, general.id, post(general, bob))
    # A higher id of another room would move Alice past messages she has not seen.
    with pytest.raises(MessageNotInRoom):
        unread.do_mark_read(alice.id, general.id, post(random, bob))
    assert fetch("SELECT last_read_message_id FROM last_reads") == [(1,)]


@pytest.mark.parametrize("raw", [0, -1, 2**31, "abc", "", None, True, 999])
def test_a_missing_or_malformed_message_is_refused(room, alice, bob, raw, fetch):
    post(room, bob)
    with pytest.raises(MessageNotFound):
        unread.do_mark_read(alice.id, room.id, raw)
    assert fetch("SELECT * FROM last_reads") == []


def test_counts_are_bounded(room, alice, bob, count_statements):
    ids = [post(room, bob, f"line {n}") for n in range(unread.UNREAD_SCAN + 30)]
    with count_statements() as statements:
        state = unread.check_room_unread(alice.id, room.id)
    assert state.unread == unread.UNREAD_SCAN
    assert unread.count_label(state.unread) == "99+"
    # The scan stopped after its limit: the newest it saw is not the room's newest.
    assert state.newest == ids[unread.UNREAD_SCAN - 1]
    # The position, then one bounded scan.
    assert len(statements) == 2


@pytest.mark.parametrize(
    ("count", "label"), [(0, ""), (1, "1"), (99, "99"), (100, "99+"), (5000, "99+")]
)
def test_count_labels(count, label):
    assert unread.count_label(count) == label


def test_mentions_are_counted_apart(room, alice, bob):
    post(room, bob, "no mention")
    first = post(room, bob, f"{mentions.mention_text(alice.id, 'Alice')} look at this")
    post(room, bob, f"{mentions.mention_text(bob.id, 'Bob')} talks to himself")
    post(room, bob, f"`{mentions.mention_text(alice.id, 'Alice')}` quoted as code")
    state = unread.check_room_unread(alice.id, room.id)
    assert (state.unread, state.mentions) == (4, 1)
    assert unread.do_mark_read(alice.id, room.id, first).mentions == 0


def test_the_summary_covers_every_room_asked_for(make_room, alice, bob):
    general, random, quiet = make_room("general"), make_room("random"), make_room("quiet")
    unread.do_mark_read(alice.id, general.id, post(general, bob))
    post(general, bob)
    post(random, bob)
    post(random, bob)
    summary = unread.check_unread_summary(alice.id, [general.id, random.id, quiet.id])
    assert [(s.room_id, s.unread) for s in summary] == [
        (general.id, 1),
        (random.id, 2),
        (quiet.id, 0),
    ]
    assert summary[2].first_unread is None


def test_mark_room_read_moves_to_the_newest_message(room, alice, bob):
    assert unread.do_mark_room_read(alice.id, room.id) is None
    ids = [post(room, bob) for _ in range(3)]
    state = unread.do_mark_room_read(alice.id, room.id)
    assert state is not None
    assert (state.last_read, state.unread) == (ids[-1], 0)
    assert unread.do_mark_room_read(alice.id, room.id) is None


async def test_a_move_is_published_to_the_users_tabs_only(room, alice, bob, broker):
    message_id = post(room, bob)
    async with unread.subscribe_reads(alice.id) as mine, unread.subscribe_reads(bob.id) as his:
        await asyncio.to_thread(unread.do_mark_read, alice.id, room.id, message_id)
        event = await asyncio.wait_for(mine.next(), 5)
        assert event["kind"] == "read"
        assert event["room"] == unread.check_room_unread(alice.id, room.id).as_json()
        # A move that did not happen says nothing.
        await asyncio.to_thread(unread.do_mark_read, alice.id, room.id, message_id)
        assert mine.drain() == []
        assert his.drain() == []


async def test_every_new_message_is_announced_once_with_its_mentions(room, alice, bob, broker):
    async with chat.subscribe_activity() as activity:
        await asyncio.to_thread(chat.create_message, room.id, bob.id, "plain")
        hello = f"hi {mentions.mention_text(alice.id, 'Alice')}"
        await asyncio.to_thread(chat.create_message, room.id, bob.id, hello)
        plain, mention = await activity.next(), await activity.next()
    assert plain["kind"] == "posted"
    assert (plain["room_id"], plain["sender_id"], plain["mentioned"]) == (room.id, bob.id, [])
    assert "snippet" not in plain
    assert (mention["mentioned"], mention["snippet"], mention["sender_name"]) == (
        [alice.id],
        "hi @Alice",
        "Bob",
    )


def test_a_message_costs_the_same_statements_whatever_the_number_of_users(
    room, make_user, count_statements
):
    """No count query per member per message: what a post sends to the database is the same
    with 2 users as with 40, every one of them having read the room."""

    def statements_of_a_post() -> list[str]:
        with count_statements() as statements:
            chat.post_message(room.id, sender.id, "another message")
        return statements

    sender = make_user("Sender")
    users = [make_user() for _ in range(2)]
    for user in users:
        unread.do_mark_read(user.id, room.id, post(room, sender))
    few = statements_of_a_post()
    users += [make_user() for _ in range(38)]
    for user in users:
        unread.do_mark_read(user.id, room.id, post(room, sender))
    many = statements_of_a_post()
    assert few == many
    assert not any("last_reads" in statement for statement in many)
