"""The Unread context: how far each user has read each room, and what they have not read yet.

The only door to `last_reads` (one row per user and room) and to the users' read topics.
Plain Python, no Reflex. `check_*` functions only read and refuse; `do_*` functions write,
then publish.

A position moves when one of the user's tabs has shown the bottom of the room (the page
debounces that), only forward, and only to a message of that room. All of the user's tabs
hear it on the user's read topic (`reads:<user id>`), so reading a room in one tab clears its
count in the others.

What it costs. A new message costs this context nothing: no count is stored or updated per
member, so a message is O(1) work for the database whatever the number of users. A tab's
counts are computed when it loads (`check_unread_summary`: the user's positions in one
statement, then per room at most `UNREAD_SCAN` messages past the position, read from
ix_messages_room_id_id), then kept live in the browser from two topics: the rooms' activity
(`chat.ACTIVITY_TOPIC`, one small event per new message, heard by every sidebar) and the
user's read topic.
"""

import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Integer, Table, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from stream_chat import chat, mentions, pubsub, repo
from stream_chat.models import LastRead, Message, utcnow

# Messages counted past a position, per room: a count past it shows as "99+". The scan
# reads this many index entries and rows at most, however far behind the reader is.
UNREAD_SCAN = 100
COUNT_CAP = 99

_LAST_READS: Table = LastRead.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class RoomUnread:
    """One user's unread state in one room, as the page's sidebar receives it.

    `unread` and `mentions` count other people's messages after `last_read` (0: never read)
    among the next `UNREAD_SCAN`; `newest` is the newest message id that scan saw (or
    `last_read`), so a page can tell a new message it hears of from one already counted.
    `first_unread` is the first of them (None when there is none): where the divider goes.
    """

    room_id: int
    last_read: int
    unread: int
    mentions: int
    newest: int
    first_unread: int | None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def count_label(count: int) -> str:
    """What a badge shows: the count, or "99+" above 99; "" for none."""
    if count <= 0:
        return ""
    return f"{COUNT_CAP}+" if count > COUNT_CAP else str(count)


def reads_topic(user_id: int) -> str:
    return f"reads:{user_id}"


@contextlib.asynccontextmanager
async def subscribe_reads(user_id: int) -> AsyncIterator[pubsub.Subscription]:
    """The user's `{"kind": "read", "room": RoomUnread}` events from now on."""
    async with pubsub.broker().subscribe(reads_topic(user_id)) as subscription:
        yield subscription


# Reading


def check_last_read(user_id: int, room_id: int) -> int:
    """The user's position in the room: the id of the last message read, 0 for none."""
    with repo.session() as db:
        return _last_read(db, user_id, room_id)


def check_room_unread(user_id: int, room_id: int) -> RoomUnread:
    with repo.session() as db:
        return _room_unread(db, user_id, room_id, _last_read(db, user_id, room_id))


def check_unread_summary(user_id: int, room_ids: Iterable[int]) -> list[RoomUnread]:
    """The user's unread state in each of these rooms: what a sidebar starts from."""
    positions = select(_LAST_READS.c.room_id, _LAST_READS.c.last_read_message_id).where(
        _LAST_READS.c.user_id == user_id
    )
    with repo.session() as db:
        last_reads: dict[int, int] = {
            room_id: position for room_id, position in db.execute(positions)
        }
        return [
            _room_unread(db, user_id, room_id, last_reads.get(room_id, 0)) for room_id in room_ids
        ]


def _last_read(db: Session, user_id: int, room_id: int) -> int:
    query = select(_LAST_READS.c.last_read_message_id).where(
        _LAST_READS.c.user_id == user_id, _LAST_READS.c.room_id == room_id
    )
    return db.execute(query).scalar_one_or_none() or 0


def _room_unread(db: Session, user_id: int, room_id: int, last_read: int) -> RoomUnread:
    """A forward range scan of ix_messages_room_id_id from the position, `UNREAD_SCAN` rows
    at most; the sender and the text of each to leave out one's own and to find mentions."""
    past_it = (
        select(col(Message.id), col(Message.sender_id), col(Message.content))
        .where(Message.room_id == room_id, col(Message.id) > last_read)
        .order_by(col(Message.id))
        .limit(UNREAD_SCAN)
    )
    rows = db.execute(past_it).all()
    others = [
        (message_id, content) for message_id, sender_id, content in rows if sender_id != user_id
    ]
    return RoomUnread(
        room_id=room_id,
        last_read=last_read,
        unread=len(others),
        mentions=sum(1 for _, content in others if user_id in mentions.mentioned_user_ids(content)),
        newest=rows[-1][0] if rows else last_read,
        first_unread=others[0][0] if others else None,
    )


# Writing


def do_mark_read(user_id: int, room_id: int, message_id: int | str) -> RoomUnread | None:
    """Moves the user's position in the room forward to `message_id`, which must be a
    message of that room (`chat.MessageNotInRoom`, `chat.MessageNotFound` otherwise), and
    tells all of the user's tabs. None when the position was already there or past it: it
    never moves back, whichever tab reported last.

    One statement checks the room and moves the row (an insert from the message's own row,
    which finds nothing for another room's message; on conflict, an update only forward)."""
    parsed = chat.parse_id(message_id)
    if parsed is None:
        raise chat.MessageNotFound()
    with repo.session() as db:
        moved = db.execute(_move_forward(db, user_id, room_id, parsed)).scalar_one_or_none()
        db.commit()
        if moved is None:
            _check_message_in_room(db, room_id, parsed)
            return None
        state = _room_unread(db, user_id, room_id, moved)
    _publish_read(user_id, state)
    return state


def do_mark_room_read(user_id: int, room_id: int) -> RoomUnread | None:
    """ "Mark as read": the position moves to the room's newest message (None when the room
    has none, or the position is there already)."""
    newest = (
        select(col(Message.id))
        .where(Message.room_id == room_id)
        .order_by(col(Message.id).desc())
        .limit(1)
    )
    with repo.session() as db:
        newest_id = db.execute(newest).scalar_one_or_none()
    if newest_id is None:
        return None
    return do_mark_read(user_id, room_id, newest_id)


def _move_forward(db: Session, user_id: int, room_id: int, message_id: int) -> Any:
    dialect = postgresql if db.get_bind().dialect.name == "postgresql" else sqlite
    the_message = select(
        literal(user_id, type_=Integer),
        col(Message.room_id),
        col(Message.id),
        literal(utcnow(), type_=_LAST_READS.c.updated_at.type),
    ).where(col(Message.id) == message_id, Message.room_id == room_id)
    insert = dialect.insert(_LAST_READS).from_select(
        ["user_id", "room_id", "last_read_message_id", "updated_at"], the_message
    )
    return insert.on_conflict_do_update(
        index_elements=[_LAST_READS.c.user_id, _LAST_READS.c.room_id],
        set_={
            "last_read_message_id": insert.excluded.last_read_message_id,
            "updated_at": insert.excluded.updated_at,
        },
        where=_LAST_READS.c.last_read_message_id < insert.excluded.last_read_message_id,
    ).returning(_LAST_READS.c.last_read_message_id)


def _check_message_in_room(db: Session, room_id: int, message_id: int) -> None:
    found = db.execute(select(col(Message.room_id)).where(col(Message.id) == message_id))
    message_room = found.scalar_one_or_none()
    if message_room is None:
        raise chat.MessageNotFound()
    if message_room != room_id:
        raise chat.MessageNotInRoom()


def _publish_read(user_id: int, state: RoomUnread) -> None:
    pubsub.broker().publish(reads_topic(user_id), {"kind": "read", "room": state.as_json()})
