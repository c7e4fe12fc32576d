"""Database tables. Read and written only through the contexts (`chat`, `accounts`)."""

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlmodel import Field, Relationship, SQLModel


def utcnow() -> datetime:
    # SQLModel's UTCDateTime columns refuse naive datetimes and return aware UTC ones on
    # SQLite and PostgreSQL alike.
    return datetime.now(UTC)


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=160, sa_column_kwargs={"unique": True})
    name: str = Field(max_length=80)
    hashed_password: str = Field(max_length=255)
    is_assistant: bool = Field(default=False)
    inserted_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    messages: list["Message"] = Relationship(
        back_populates="sender",
        sa_relationship_kwargs={"foreign_keys": "[Message.sender_id]"},
    )
    tokens: list["UserToken"] = Relationship(
        back_populates="user", sa_relationship_kwargs={"cascade": "all, delete-orphan"}
    )


class UserToken(SQLModel, table=True):
    """A session token, stored only as its SHA-256 digest (phx.gen.auth's users_tokens)."""

    __tablename__ = "users_tokens"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    token_hash: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    context: str = Field(max_length=32)
    inserted_at: datetime = Field(default_factory=utcnow)

    user: User | None = Relationship(back_populates="tokens")


class Room(SQLModel, table=True):
    __tablename__ = "rooms"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=80, sa_column_kwargs={"unique": True})
    description: str = Field(default="", max_length=400)
    inserted_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    messages: list["Message"] = Relationship(
        back_populates="room", sa_relationship_kwargs={"cascade": "all, delete-orphan"}
    )


class Message(SQLModel, table=True):
    __tablename__ = "messages"
    # "Messages of room R before id X, newest first" is a backward range scan of this index.
    __table_args__ = (
        sa.Index("ix_messages_room_id_id", "room_id", "id"),
        # A room's unfinished replies (the assistant's queue), found without reading the
        # whole room: most rows have no status.
        sa.Index("ix_messages_room_id_status", "room_id", "status"),
        # Every room's unfinished replies, for the sweep that finds those of dead workers.
        sa.Index("ix_messages_status", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    content: str = Field(sa_type=sa.Text)
    room_id: int = Field(foreign_key="rooms.id", ondelete="CASCADE")
    sender_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    inserted_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    edited_at: datetime | None = Field(default=None)
    # Assistant replies only. `status` is queued, thinking, streaming, done, stopped,
    # interrupted or error; `generation_id` names the attempt that may still write to it.
    status: str | None = Field(default=None, max_length=16)
    generation_id: str | None = Field(default=None, max_length=32)
    error: str | None = Field(default=None, max_length=500)
    prompt_tokens: int | None = Field(default=None)
    completion_tokens: int | None = Field(default=None)
    requested_by_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    # The message the reply answers: its prompt ends there, however long it waited in the
    # queue and however often it is retried. Not a foreign key on purpose: when the question
    # is deleted, the reply still reads the room up to where it was.
    question_id: int | None = Field(default=None)

    room: Room | None = Relationship(back_populates="messages")
    sender: User | None = Relationship(
        back_populates="messages",
        sa_relationship_kwargs={"foreign_keys": "[Message.sender_id]"},
    )


# The full-text index of messages (migration 0004) is the database's own, outside these
# models: SQLite's FTS5 table `messages_search` with its shadow tables, PostgreSQL's generated
# `messages.search_vector` column with its GIN index. Schema comparisons skip them.
SEARCH_INDEX_TABLE = "messages_search"
SEARCH_VECTOR_COLUMN = "search_vector"
SEARCH_VECTOR_INDEX = "ix_messages_search_vector"


def is_model_schema(name: str | None, type_: str, _parents: object = None) -> bool:
    """False for the full-text index's objects: Alembic's `include_name` hook."""
    if type_ == "table":
        return not (name or "").startswith(SEARCH_INDEX_TABLE)
    if type_ == "column":
        return name != SEARCH_VECTOR_COLUMN
    if type_ == "index":
        return name != SEARCH_VECTOR_INDEX
    return True


class AssistantRequest(SQLModel, table=True):
    """Someone asked the assistant for a reply, or retried one: what the per-user rate limit
    counts. A retry reuses its reply's row, so the replies alone cannot tell."""

    __tablename__ = "assistant_requests"
    __table_args__ = (
        sa.Index("ix_assistant_requests_user_id_requested_at", "user_id", "requested_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE")
    reply_id: int | None = Field(default=None, foreign_key="messages.id", ondelete="SET NULL")
    requested_at: datetime = Field(default_factory=utcnow)


class LastRead(SQLModel, table=True):
    """How far one user has read one room: the newest message they have seen at the bottom
    of it, in any of their tabs. It only moves forward. Not a foreign key to the message on
    purpose: when that message is deleted, the position it marked still holds (ids are
    sequential, so every message above it is newer)."""

    __tablename__ = "last_reads"

    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", primary_key=True)
    room_id: int = Field(foreign_key="rooms.id", ondelete="CASCADE", primary_key=True)
    last_read_message_id: int
    updated_at: datetime = Field(default_factory=utcnow)
