"""The Chat context: rooms, messages and their real-time broadcasts.

The only door to those tables and to the room topics. Plain Python, no Reflex: event
handlers call these functions, and so do the seeds, the tests and the benchmarks.

Every change is committed first and broadcast second, on the room's topic: a
`MessageEvent` (`{"kind": "created" | "updated" | "deleted", "message": MessageRow}`), or
for assistant replies an `AppendedEvent` (new text) or a `PatchedEvent` (new status).
"""

import contextlib
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from typing import Any, Literal, NamedTuple, NotRequired, TypedDict

from sqlalchemy import ColumnElement, Table, insert, union_all
from sqlalchemy.orm import joinedload
from sqlmodel import Session, col, func, select, update
from sqlmodel.sql.expression import SelectOfScalar

from stream_chat import mentions, pubsub, repo, throttle
from stream_chat.models import AssistantRequest, Message, Room, User, utcnow
from stream_chat.text import clean_text

MAX_MESSAGE_LENGTH = 4000
PAGE_SIZE = 20
# The most rows one page query returns, whatever the caller asks for.
MAX_PAGE_SIZE = 200

# The tables for the Core statements on the way to every delivery and every first token (a
# message's insert, a reply's guarded updates): no ORM unit of work to flush, no session
# state to keep in step.
_MESSAGES: Table = Message.__table__  # type: ignore[attr-defined]
_ASSISTANT_REQUESTS: Table = AssistantRequest.__table__  # type: ignore[attr-defined]


class ChatError(Exception):
    """A refusal whose message is fit to show to the user as it is."""


class RoomNotFound(ChatError):
    def __init__(self) -> None:
        super().__init__("That room does not exist.")


class MessageNotFound(ChatError):
    def __init__(self) -> None:
        super().__init__("That message does not exist any more.")


class MessageNotInRoom(MessageNotFound):
    """A message id of another room where this room's was expected (a pasted link)."""

    def __init__(self) -> None:
        ChatError.__init__(self, "That message is not in this room.")


class NotAuthorized(ChatError):
    pass


class InvalidMessage(ChatError):
    pass


class SendingTooFast(ChatError):
    def __init__(self, wait: float) -> None:
        super().__init__(f"You are sending messages too fast. {throttle.wait_note(wait)}")
        self.wait = wait


# Assistant reply statuses. A reply is "active" until it reaches a terminal status.
QUEUED, THINKING, STREAMING = "queued", "thinking", "streaming"
DONE, STOPPED, INTERRUPTED, FAILED = "done", "stopped", "interrupted", "error"
ACTIVE_STATUSES = (QUEUED, THINKING, STREAMING)


class MessageRow(TypedDict):
    """A message as pages render it and broadcasts carry it: JSON-ready, sender included."""

    id: int
    room_id: int
    sender_id: int
    sender_name: str
    content: str
    inserted_at: str
    edited: bool
    # Assistant replies; empty or None for people's messages.
    is_assistant: bool
    status: str
    generation_id: str
    error: str
    prompt_tokens: int | None
    completion_tokens: int | None
    # Who may stop or retry the reply (the server checks again); None for people's messages.
    requested_by_id: int | None


class MessageEvent(TypedDict):
    kind: Literal["created", "updated", "deleted"]
    message: MessageRow


class AppendedEvent(TypedDict):
    """Text added to a streaming reply. `offset` is the reply's length before it, so a member
    who read part of the reply from the database knows which part it already has.

    The first text also carries the reply's new status fields, as a `PatchedEvent` would:
    one broadcast instead of two on the way to the first token, which readers wait for."""

    kind: Literal["appended"]
    message_id: int
    generation_id: str
    offset: int
    text: str
    fields: NotRequired[dict[str, object]]


# The fields of a reply that change while its text streams (the text travels in appends).
ReplyField = Literal["status", "generation_id", "error", "prompt_tokens", "completion_tokens"]
REPLY_FIELDS: tuple[ReplyField, ...] = (
    "status",
    "generation_id",
    "error",
    "prompt_tokens",
    "completion_tokens",
)


class PatchedEvent(TypedDict):
    """A reply's status fields changed and its text did not. Members already have the text
    from the appends, so only these fields travel, not the whole reply again."""

    kind: Literal["patched"]
    message_id: int
    fields: dict[str, object]


def message_row(message: Message) -> MessageRow:
    return {
        "id": message.id,  # type: ignore[typeddict-item]
        "room_id": message.room_id,
        "sender_id": message.sender_id,
        "sender_name": message.sender.name if message.sender else "",
        "content": message.content,
        "inserted_at": message.inserted_at.isoformat(),
        "edited": message.edited_at is not None,
        "is_assistant": bool(message.sender and message.sender.is_assistant),
        "status": message.status or "",
        "generation_id": message.generation_id or "",
        "error": message.error or "",
        "prompt_tokens": message.prompt_tokens,
        "completion_tokens": message.completion_tokens,
        "requested_by_id": message.requested_by_id,
    }


def parse_id(raw: int | str | None) -> int | None:
    """An id from a URL or an event payload, or None when it is not a positive integer."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        # Same bound as for strings: a larger int raised instead of "not found".
        return raw if 0 < raw < 2**31 else None
    if isinstance(raw, str) and raw.isascii() and raw.isdigit():
        value = int(raw)
        # Larger ids overflow PostgreSQL's integer column and would raise instead of "not found".
        return value if 0 < value < 2**31 else None
    return None


def clean_content(content: str) -> str:
    """The content as it will be stored, or InvalidMessage saying what is wrong with it."""
    stripped = clean_text(content).strip() if isinstance(content, str) else ""
    if not stripped:
        raise InvalidMessage("A message cannot be empty.")
    if len(stripped) > MAX_MESSAGE_LENGTH:
        raise InvalidMessage(
            f"A message can be at most {MAX_MESSAGE_LENGTH:,} characters "
            f"(this one has {len(stripped):,})."
        )
    return stripped


# Rooms


def list_rooms() -> list[Room]:
    with repo.session() as db:
        return list(db.exec(select(Room).order_by(col(Room.name))).all())


def get_room(room_id: int | str | None) -> Room | None:
    """The room, or None for an unknown or malformed id."""
    parsed = parse_id(room_id)
    if parsed is None:
        return None
    with repo.session() as db:
        return db.get(Room, parsed)


def create_room(name: str, description: str = "") -> Room:
    room = Room(name=clean_text(name).strip(), description=clean_text(description).strip())
    with repo.session() as db:
        db.add(room)
        db.commit()
        db.refresh(room)
    return room


# Messages


def _messages_with_senders() -> SelectOfScalar[Message]:
    # One query with its senders joined: the template shows a name on every row.
    return select(Message).options(joinedload(Message.sender))  # type: ignore[arg-type]


def last_messages(room_id: int, limit: int = PAGE_SIZE) -> list[Message]:
    """The room's newest `limit` messages, oldest first (display order)."""
    with repo.session() as db:
        return _page_before(db, room_id, None, limit)


def messages_before(room_id: int, before_id: int, limit: int = PAGE_SIZE) -> list[Message]:
    """The `limit` messages of the room just before `before_id`, oldest first.

    Keyset pagination on (room_id, id): the cursor is a message id, and the room filter keeps
    other rooms' messages out even though ids are global. A cursor need not be a message of
    the room (nor any message): the page is whatever the room has below that id.
    """
    with repo.session() as db:
        return _page_before(db, room_id, before_id, limit)


def messages_after(room_id: int, after_id: int, limit: int = PAGE_SIZE) -> list[Message]:
    """The `limit` messages of the room just after `after_id`, oldest first: scrolling
    forward from a window that left the live end. A forward range scan of the same index."""
    with repo.session() as db:
        return _page_after(db, room_id, after_id, limit)


def messages_around(
    room_id: int,
    message_id: int | str | None,
    before: int = PAGE_SIZE // 2,
    after: int = PAGE_SIZE // 2,
) -> list[Message]:
    """The page centred on one message of the room (a permalink), oldest first: up to
    `before` messages before it, the message, up to `after` after it.

    The id comes from a URL: MessageNotFound when it is malformed or the message is gone,
    MessageNotInRoom when it belongs to another room.

    One statement when the message is there: the ids of both range scans of
    ix_messages_room_id_id (up to the message, and after it) in a union, their rows loaded
    with their senders (three statements cost PostgreSQL most of the 10 ms a page may take).
    """
    parsed = parse_id(message_id)
    if parsed is None:
        raise MessageNotFound()
    up_to_it = (
        select(col(Message.id))
        .where(Message.room_id == room_id, col(Message.id) <= parsed)
        .order_by(col(Message.id).desc())
        .limit(_bounded(before) + 1)
        .subquery()
    )
    after_it = (
        select(col(Message.id))
        .where(Message.room_id == room_id, col(Message.id) > parsed)
        .order_by(col(Message.id))
        .limit(_bounded(after))
        .subquery()
    )
    page_ids = union_all(select(up_to_it.c.id), select(after_it.c.id))
    query = _messages_with_senders().where(col(Message.id).in_(page_ids)).order_by(col(Message.id))
    with repo.session() as db:
        page = list(db.exec(query).all())
        if not any(message.id == parsed for message in page):
            raise MessageNotInRoom() if db.get(Message, parsed) else MessageNotFound()
    return page


def _bounded(limit: int) -> int:
    # SQLite reads LIMIT -1 as "no limit": a page is never more than MAX_PAGE_SIZE rows.
    return max(0, min(limit, MAX_PAGE_SIZE))


def _page_before(db: Session, room_id: int, before_id: int | None, limit: int) -> list[Message]:
    """The newest `limit` messages of the room below `before_id` (or of all), oldest first:
    a backward range scan of ix_messages_room_id_id."""
    query = _messages_with_senders().where(Message.room_id == room_id)
    if before_id is not None:
        query = query.where(col(Message.id) < before_id)
    newest_first = query.order_by(col(Message.id).desc()).limit(_bounded(limit))
    return list(reversed(db.exec(newest_first).all()))


def _page_after(db: Session, room_id: int, after_id: int, limit: int) -> list[Message]:
    """The oldest `limit` messages of the room above `after_id`, oldest first: a forward
    range scan of ix_messages_room_id_id."""
    query = (
        _messages_with_senders()
        .where(Message.room_id == room_id, col(Message.id) > after_id)
        .order_by(col(Message.id))
        .limit(_bounded(limit))
    )
    return list(db.exec(query).all())


def window_ids(
    room_id: int,
    *,
    after_id: int | None = None,
    before_id: int | None = None,
    limit: int = PAGE_SIZE,
) -> list[int]:
    """Ids only, oldest first: the first `limit` of the room's messages after `after_id`, or
    the last `limit` before `before_id`. How a window of the room page finds its other end
    from one cursor (the same index range scans as the pages, no rows loaded)."""
    if (after_id is None) == (before_id is None):
        raise ValueError("window_ids takes exactly one of after_id and before_id")
    ids = select(col(Message.id)).where(Message.room_id == room_id)
    if after_id is not None:
        ids = ids.where(col(Message.id) > after_id).order_by(col(Message.id))
    else:
        ids = ids.where(col(Message.id) < before_id).order_by(col(Message.id).desc())
    with repo.session() as db:
        found = list(db.exec(ids.limit(_bounded(limit))).all())
    return found if after_id is not None else found[::-1]


def get_message(message_id: int | str) -> Message | None:
    """The message, or None for an unknown or malformed id (event payloads are untrusted)."""
    parsed = parse_id(message_id)
    if parsed is None:
        return None
    with repo.session() as db:
        return _load_message(db, parsed)


def create_message(room_id: int, sender_id: int, content: str) -> Message:
    return _insert_message(room_id, sender_id, content=clean_content(content))


def post_message(room_id: int, sender_id: int, content: str) -> Message:
    """A message a user sends: checked, then counted against the sender's rate limit (a
    refused one costs nothing), then stored like `create_message`'s."""
    text = clean_content(content)
    if wait := throttle.message_wait(sender_id):
        raise SendingTooFast(wait)
    return _insert_message(room_id, sender_id, content=text)


def editable_message(message_id: int, editor_id: int, *, room_id: int) -> Message:
    """The editor's own message in the room the editor has open, or the reason it is not."""
    with repo.session() as db:
        return _owned_message(db, message_id, editor_id, room_id, "edit")


def update_message(message_id: int, editor_id: int, content: str, *, room_id: int) -> Message:
    """Edits the editor's own message of `room_id` (the room their page has open): a message
    of another room is refused even when it is theirs, as the page cannot be showing it."""
    text = clean_content(content)
    with repo.session() as db:
        message = _owned_message(db, message_id, editor_id, room_id, "edit")
        if message.content == text:
            return message
        message.content = text
        message.updated_at = message.edited_at = utcnow()
        db.add(message)
        db.commit()
        updated: Message = _load_message(db, message_id)  # type: ignore[assignment]
    _broadcast("updated", updated)
    return updated


def delete_message(message_id: int, actor_id: int, *, room_id: int) -> Message:
    """Deletes the actor's own message of `room_id` and returns it as it was, so that callers
    can say which one went."""
    with repo.session() as db:
        message = _owned_message(db, message_id, actor_id, room_id, "delete")
        db.delete(message)
        db.commit()
    _broadcast("deleted", message)
    return message


def last_message_by(room_id: int, sender_id: int) -> Message | None:
    """The sender's newest message in the room (ArrowUp in an empty composer edits it)."""
    query = (
        _messages_with_senders()
        .where(Message.room_id == room_id, Message.sender_id == sender_id)
        .order_by(col(Message.id).desc())
        .limit(1)
    )
    with repo.session() as db:
        return db.exec(query).first()


# Who is in a room (the members panel)

# How far back a room's posters are looked for: a bounded read however long the history.
POSTERS_LOOKBACK = 5000
MAX_POSTERS = 100


def recent_posters(room_id: int, limit: int = MAX_POSTERS) -> dict[int, str]:
    """The people (not the assistant) who posted among the room's newest
    `POSTERS_LOOKBACK` messages, the latest poster first: id -> name."""
    newest = (
        select(col(Message.sender_id), col(Message.id))
        .where(Message.room_id == room_id)
        .order_by(col(Message.id).desc())
        .limit(POSTERS_LOOKBACK)
        .subquery()
    )
    latest = func.max(newest.c.id)
    query = (
        select(col(User.id), col(User.name))
        .join(newest, newest.c.sender_id == User.id)
        .where(~col(User.is_assistant))
        .group_by(col(User.id), col(User.name))
        .order_by(latest.desc())
        .limit(min(limit, MAX_POSTERS))
    )
    with repo.session() as db:
        return {user_id: name for user_id, name in db.exec(query).all()}


def user_names(user_ids: Iterable[int]) -> dict[int, str]:
    """Display names of these users (one query); unknown ids are left out."""
    wanted = sorted(set(user_ids))
    if not wanted:
        return {}
    with repo.session() as db:
        rows = db.exec(select(col(User.id), col(User.name)).where(col(User.id).in_(wanted)))
        return {user_id: name for user_id, name in rows.all()}


# Real time


def room_topic(room_id: int) -> str:
    return f"room:{room_id}"


@contextlib.asynccontextmanager
async def subscribe(room_id: int) -> AsyncIterator[pubsub.Subscription]:
    """The room's `MessageEvent`s from now on, until the block exits."""
    async with pubsub.broker().subscribe(room_topic(room_id)) as subscription:
        yield subscription


# Every room's new messages, one small event each, for the sidebars of every tab (unread
# counts and mention notifications): one publish per message, whatever the number of users.
ACTIVITY_TOPIC = "activity"
# A mention's notification shows the start of the message.
SNIPPET_LENGTH = 140


class PostedEvent(TypedDict):
    kind: Literal["posted"]
    room_id: int
    message_id: int
    sender_id: int
    sender_name: str
    mentioned: list[int]
    # Only when someone is mentioned: what their notification says.
    snippet: NotRequired[str]


@contextlib.asynccontextmanager
async def subscribe_activity() -> AsyncIterator[pubsub.Subscription]:
    """Every room's `PostedEvent`s from now on, until the block exits."""
    async with pubsub.broker().subscribe(ACTIVITY_TOPIC) as subscription:
        yield subscription


def _announce(message: Message) -> None:
    mentioned = sorted(mentions.mentioned_user_ids(message.content))
    event: PostedEvent = {
        "kind": "posted",
        "room_id": message.room_id,
        "message_id": message.id,  # type: ignore[typeddict-item]
        "sender_id": message.sender_id,
        "sender_name": message.sender.name if message.sender else "",
        "mentioned": mentioned,
    }
    if mentioned:
        event["snippet"] = mentions.as_read(message.content)[:SNIPPET_LENGTH]
    pubsub.broker().publish(ACTIVITY_TOPIC, dict(event))


def current_seq(room_id: int) -> int:
    """The number of the room's latest broadcast (what a new member starts after)."""
    return pubsub.broker().current_seq(room_topic(room_id))


def subscriber_count(room_id: int) -> int:
    """Subscriptions open in this process (tests check that leaving a room closes them)."""
    return pubsub.broker().subscriber_count(room_topic(room_id))


# Assistant replies (the Assistant context drives them; these are their storage and signals)


def create_reply(
    room_id: int, assistant_id: int, requested_by_id: int, question_id: int | None = None
) -> Message:
    """A queued, empty reply from the assistant to the message `question_id`, shown at once
    to every member (None: see `claim_reply`); the request is logged for the rate limit in
    the same transaction."""
    return _insert_message(
        room_id,
        assistant_id,
        request_by=requested_by_id,
        content="",
        status=QUEUED,
        requested_by_id=requested_by_id,
        question_id=question_id,
    )


def _insert_message(
    room_id: int, sender_id: int, *, request_by: int | None = None, **columns: object
) -> Message:
    """Stores a new message, then tells the room. Two light statements, as this is on the
    way to every delivery: the room (or RoomNotFound) with the sender, whose name the row
    carries; then a Core insert. An unknown sender is left for the foreign key to refuse.
    With `request_by`, the message is a reply that user asked for (see `AssistantRequest`)."""
    room_and_sender = (
        select(Room.id, User).outerjoin(User, col(User.id) == sender_id).where(Room.id == room_id)
    )
    now = utcnow()
    values = {"room_id": room_id, "sender_id": sender_id, "inserted_at": now, "updated_at": now}
    values |= columns
    with repo.session() as db:
        found = db.exec(room_and_sender).first()
        if found is None:
            raise RoomNotFound()
        inserted = insert(_MESSAGES).values(**values).returning(_MESSAGES.c.id)
        message_id = db.execute(inserted).scalar_one()
        if request_by is not None:
            _log_request(db, request_by, message_id)
        db.commit()
    message = Message(id=message_id, **values)
    message.sender = found.User
    _broadcast("created", message)
    _announce(message)
    return message


def update_reply(reply_id: int, **fields: object) -> Message | None:
    """Sets the reply's fields (status, content, usage...) and tells every member: the whole
    row when its text is set, else only its status fields."""
    return _update_reply(reply_id, None, fields)


RETRYABLE_STATUSES = (STOPPED, INTERRUPTED, FAILED)


def requeue_reply(reply_id: int, requester_id: int) -> Message | None:
    """Queues a stopped, interrupted or failed reply again for `requester_id` (a retry): its
    text starts over, and the request is logged for the rate limit like a new one, in the
    same transaction. None when the reply is not in one of those statuses (by then): a
    finished reply is never rewritten."""
    fields: dict[str, object] = {
        "status": QUEUED,
        "content": "",
        "error": None,
        "generation_id": None,
        "requested_by_id": requester_id,
    }
    return _update_reply(reply_id, requester_id, fields, only_from=RETRYABLE_STATUSES)


def _update_reply(
    reply_id: int,
    request_by: int | None,
    fields: dict[str, object],
    only_from: tuple[str, ...] | None = None,
) -> Message | None:
    with repo.session() as db:
        reply = db.get(Message, reply_id)
        if reply is None or (only_from is not None and reply.status not in only_from):
            return None
        for name, value in fields.items():
            setattr(reply, name, value)
        reply.updated_at = utcnow()
        db.add(reply)
        if request_by is not None:
            _log_request(db, request_by, reply_id)
        db.commit()
        updated: Message = _load_message(db, reply_id)  # type: ignore[assignment]
    if "content" in fields:
        _broadcast("updated", updated)
    else:
        _broadcast_reply_fields(updated)
    return updated


# The claim is a Core statement: as an ORM statement around a shared aliased subquery it
# was compiled anew on every call, the slowest step before a reply's first token.
def _next_in_its_room() -> ColumnElement[bool]:
    """A queued reply with no reply of its room being written and none queued before it."""
    other = _MESSAGES.alias("other")
    ahead = (
        select(other.c.id)
        .where(
            other.c.room_id == _MESSAGES.c.room_id,
            other.c.id != _MESSAGES.c.id,
            other.c.status.in_((THINKING, STREAMING))
            | ((other.c.status == QUEUED) & (other.c.id < _MESSAGES.c.id)),
        )
        .exists()
    )
    return (_MESSAGES.c.status == QUEUED) & ~ahead


_NEXT_IN_ITS_ROOM = _next_in_its_room()


class Claim(NamedTuple):
    """A reply's attempt has started: where it is, and the last message its prompt reads."""

    room_id: int
    context_end: int


def claim_reply(reply_id: int, generation_id: str) -> Claim | None:
    """Starts an attempt at a queued reply whose turn it is: no reply in its room is being
    written, and none queued before it. One statement, so only one claim wins, whichever
    worker makes it; it also reads what the prompt needs to know. None when the reply is not
    queued or not next.

    The prompt ends at the reply's question. A reply without one (only a reply from before
    questions were recorded, with no message before it) reads up to itself.

    A queued reply has no text (a retry cleared it) and no usage yet, so the new status
    fields are all the room needs to hear."""
    fields: dict[str, object] = {
        "status": THINKING,
        "generation_id": generation_id,
        "error": None,
        "prompt_tokens": None,
        "completion_tokens": None,
    }
    claimed = _guarded_update(
        reply_id,
        _NEXT_IN_ITS_ROOM,
        {**fields, "content": ""},
        _MESSAGES.c.room_id,
        _MESSAGES.c.question_id,
    )
    if claimed is None:
        return None
    room_id, question_id = claimed
    _publish_reply_fields(room_id, reply_id, fields)
    return Claim(room_id, reply_id - 1 if question_id is None else question_id)


def finish_reply(reply_id: int, owner: str, **fields: object) -> bool:
    """Sets the reply's status fields while the attempt with generation id `owner` owns it
    (checked in the same statement). False when another attempt took it over."""
    room_id = _update_reply_if(reply_id, _MESSAGES.c.generation_id == owner, **fields)
    if room_id is None:
        return False
    _publish_reply_fields(room_id, reply_id, fields)
    return True


def start_reply_text(reply_id: int, generation_id: str, text: str) -> bool:
    """The reply's first text and its "streaming" status, in one write, while the attempt
    with `generation_id` owns it: the first token is what a reader waits for. The text and
    the status change go out in one broadcast. False when the attempt no longer owns it."""
    room_id = _update_reply_if(
        reply_id, _MESSAGES.c.generation_id == generation_id, status=STREAMING, content=text
    )
    if room_id is None:
        return False
    _publish_appended(room_id, reply_id, generation_id, 0, text, {"status": STREAMING})
    return True


def touch_reply(reply_id: int) -> None:
    """A heartbeat: the reply's worker is alive (waiting its turn, or streaming no text)."""
    with repo.session() as db:
        db.exec(update(Message).where(col(Message.id) == reply_id).values(updated_at=utcnow()))  # type: ignore[call-overload]
        db.commit()


def append_to_reply(reply_id: int, generation_id: str, offset: int, text: str) -> bool:
    """Stores the reply's text so far, then broadcasts the new part only.

    The write is guarded by the generation: an attempt that was stopped or replaced can no
    longer write. Returns False in that case, which tells the attempt to stop.
    """
    with repo.session() as db:
        reply = db.get(Message, reply_id)
        if reply is None or reply.generation_id != generation_id:
            return False
        reply.content = reply.content[:offset] + text
        reply.updated_at = utcnow()
        db.add(reply)
        db.commit()
        room_id = reply.room_id
    _publish_appended(room_id, reply_id, generation_id, offset, text)
    return True


def _publish_appended(
    room_id: int,
    reply_id: int,
    generation_id: str,
    offset: int,
    text: str,
    fields: dict[str, object] | None = None,
) -> None:
    event: AppendedEvent = {
        "kind": "appended",
        "message_id": reply_id,
        "generation_id": generation_id,
        "offset": offset,
        "text": text,
    }
    if fields:
        event["fields"] = fields
    pubsub.broker().publish(room_topic(room_id), dict(event))


def interrupt_silent_replies(
    silent_since: datetime, error: str, room_id: int | None = None
) -> list[int]:
    """Marks "interrupted" with `error` every unfinished reply, of the room or of every
    room, untouched since `silent_since`, and tells each its room. Usually a read finds
    none and nothing is written. The update checks again, so a reply touched meanwhile is
    left alone and workers sweeping at once interrupt each reply once. The ids interrupted."""
    silent = _MESSAGES.c.status.in_(ACTIVE_STATUSES) & (_MESSAGES.c.updated_at < silent_since)
    if room_id is not None:
        silent &= _MESSAGES.c.room_id == room_id
    fields: dict[str, object] = {"status": INTERRUPTED, "error": error, "generation_id": None}
    with repo.session() as db:
        if db.execute(select(_MESSAGES.c.id).where(silent).limit(1)).first() is None:
            return []
        interrupted = db.execute(
            update(_MESSAGES)
            .where(silent)
            .values(**fields, updated_at=utcnow())
            .returning(_MESSAGES.c.id, _MESSAGES.c.room_id)
        ).all()
        db.commit()
    for reply_id, reply_room_id in sorted(interrupted):
        _publish_reply_fields(reply_room_id, reply_id, fields)
    return [reply_id for reply_id, _ in sorted(interrupted)]


def active_replies(room_id: int) -> list[Message]:
    """The room's unfinished replies (queued, thinking, streaming), oldest first."""
    # Sorted here, not by the query: ORDER BY id made SQLite walk the whole room by
    # (room_id, id) instead of looking the few unfinished ones up by (room_id, status).
    query = select(Message).where(
        Message.room_id == room_id, col(Message.status).in_(ACTIVE_STATUSES)
    )
    with repo.session() as db:
        return sorted(db.exec(query).all(), key=lambda reply: reply.id or 0)


def count_assistant_requests_since(user_id: int, since: datetime) -> int:
    """New replies and retries `user_id` asked for since `since` (the rate limit's count)."""
    query = (
        select(func.count())
        .select_from(AssistantRequest)
        .where(AssistantRequest.user_id == user_id, col(AssistantRequest.requested_at) >= since)
    )
    with repo.session() as db:
        return db.exec(query).one()


def _log_request(db: Session, user_id: int, reply_id: int) -> None:
    # A Core insert, like the reply's own: it joins the reply's transaction on the way to
    # the first token without an ORM flush.
    log = insert(_ASSISTANT_REQUESTS).values(
        user_id=user_id, reply_id=reply_id, requested_at=utcnow()
    )
    db.execute(log)


class Said(NamedTuple):
    """A finished message as the assistant reads it: who said what."""

    sender_name: str
    sender_is_assistant: bool
    content: str


def recent_messages(room_id: int, limit: int, up_to: int) -> list[Said]:
    """The room's newest finished messages up to the message `up_to` included, oldest first
    (what the assistant reads to answer that message).

    Three columns, not whole rows: this read is on the way to every reply's first token, and
    building 40 ORM objects with their senders cost more than the query."""
    query = (
        select(User.name, User.is_assistant, Message.content)
        .join(User, col(Message.sender_id) == col(User.id))
        .where(
            Message.room_id == room_id,
            col(Message.id) <= up_to,
            col(Message.status).is_(None) | (col(Message.status) == DONE),
        )
        .order_by(col(Message.id).desc())
        .limit(limit)
    )
    with repo.session() as db:
        rows = db.exec(query).all()
    return [Said(*row) for row in reversed(rows)]


def reply_topic(reply_id: int) -> str:
    return f"reply:{reply_id}"


def requested_reply(reply_id: int, user_id: int, room_id: int, action: str) -> Message:
    """The assistant reply `user_id` asked for in `room_id`, or the reason they may not
    `action` it: only the person who asked stops or retries a reply."""
    with repo.session() as db:
        reply = _message_in_room(db, reply_id, room_id)
    if reply.status is None:
        raise MessageNotFound()
    if reply.requested_by_id != user_id:
        raise NotAuthorized(f"Only the person who asked for this reply can {action} it.")
    return reply


def request_stop(reply_id: int, user_id: int, room_id: int) -> None:
    """Asks whichever worker generates the reply to stop it, if `user_id` asked for it."""
    reply = requested_reply(reply_id, user_id, room_id, "stop")
    if reply.status not in ACTIVE_STATUSES:
        raise ChatError("This reply has already finished.")
    _signal_stop(reply_id)


def stop_own_current_reply(room_id: int, user_id: int) -> int | None:
    """Esc: stops the caller's reply being written in the room, else their oldest queued
    one. Another person's reply is theirs to stop. The stopped reply's id, or None."""
    mine = [reply for reply in active_replies(room_id) if reply.requested_by_id == user_id]
    writing = [reply for reply in mine if reply.status != QUEUED]
    for reply in (writing or mine)[:1]:
        _signal_stop(reply.id)  # type: ignore[arg-type]
        return reply.id
    return None


def _signal_stop(reply_id: int) -> None:
    pubsub.broker().publish(reply_topic(reply_id), {"kind": "stop"})


@contextlib.asynccontextmanager
async def subscribe_reply(reply_id: int) -> AsyncIterator[pubsub.Subscription]:
    async with pubsub.broker().subscribe(reply_topic(reply_id)) as subscription:
        yield subscription


def _broadcast(kind: Literal["created", "updated", "deleted"], message: Message) -> None:
    event: MessageEvent = {"kind": kind, "message": message_row(message)}
    pubsub.broker().publish(room_topic(message.room_id), dict(event))


def _broadcast_reply_fields(reply: Message) -> None:
    row = message_row(reply)
    _publish_reply_fields(reply.room_id, row["id"], {name: row[name] for name in REPLY_FIELDS})


def _publish_reply_fields(room_id: int, reply_id: int, fields: dict[str, object]) -> None:
    # A MessageRow says "" where the database has no error or generation id.
    as_row = {
        name: "" if value is None and name in ("error", "generation_id") else value
        for name, value in fields.items()
    }
    event: PatchedEvent = {"kind": "patched", "message_id": reply_id, "fields": as_row}
    pubsub.broker().publish(room_topic(room_id), dict(event))


def _update_reply_if(reply_id: int, condition: ColumnElement[bool], **values: object) -> int | None:
    """Sets the reply's columns in one statement when `condition` holds; the reply's room id,
    or None when it did not hold (another attempt owns the reply, or it is gone)."""
    updated = _guarded_update(reply_id, condition, values, _MESSAGES.c.room_id)
    return None if updated is None else updated[0]


def _guarded_update(
    reply_id: int,
    condition: ColumnElement[bool],
    values: dict[str, object],
    *returning: ColumnElement[object],
) -> tuple[Any, ...] | None:
    """`_update_reply_if`, returning the columns `returning` of the updated row."""
    statement = (
        update(_MESSAGES)
        .where(_MESSAGES.c.id == reply_id, condition)
        .values(**values, updated_at=utcnow())
        .returning(*returning)
    )
    with repo.session() as db:
        row = db.execute(statement).one_or_none()
        db.commit()
    return None if row is None else tuple(row)


def _load_message(db: Session, message_id: int) -> Message | None:
    query = _messages_with_senders().where(Message.id == message_id)
    return db.exec(query).first()


def _message_in_room(db: Session, message_id: int, room_id: int) -> Message:
    """The message, if it is one of `room_id`'s. Ids are global and sequential, so an id from
    another room is answered as if it did not exist."""
    parsed = parse_id(message_id)
    message = _load_message(db, parsed) if parsed is not None else None
    if message is None or message.room_id != room_id:
        raise MessageNotFound()
    return message


def _owned_message(
    db: Session, message_id: int, user_id: int, room_id: int, action: str
) -> Message:
    message = _message_in_room(db, message_id, room_id)
    if message.sender_id != user_id:
        raise NotAuthorized(f"You can only {action} your own messages.")
    return message
