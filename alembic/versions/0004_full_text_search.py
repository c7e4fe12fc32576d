"""full-text search over messages: SQLite FTS5 kept by triggers, PostgreSQL tsvector + GIN

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 22:00:00

The database keeps the index itself, so every write path (the contexts' ORM and Core
statements, the seeds' bulk insert, a cascade from a deleted room) is indexed the same way.
Only searchable messages are indexed: people's messages and finished assistant replies, not
replies still queued, thinking or streaming (their text changes every 50 ms and is not
final; the index takes them when they finish).

Words are runs of letters and digits, matched case- and accent-insensitively, with no
stemming and no stop words, on both databases alike (see stream_chat/search.py): SQLite's
`unicode61 remove_diacritics 2` tokenizer, and on PostgreSQL a `simple` configuration with
the `unaccent` dictionary over the content with its punctuation replaced by spaces (so that
e-mail addresses, URLs and `snake_case` are split into words as FTS5 splits them). Porter
stemming was left out: PostgreSQL's English stemmer does not stem as Porter does, stop words
("the", "a") would be dropped on one database only, and a stemmed index turns a prefix typed
so far ("deployi") into no results while the whole word finds them. The prefix match on the
last word covers most of what stemming would find ("deploy" finds "deployed").

On SQLite, a later migration that rebuilds `messages` (Alembic's batch mode copies the table
and drops the old one) drops these triggers with it and must create them again:
tests/contexts/test_migrations.py checks that they are there at head.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE_STATUSES = "('queued', 'thinking', 'streaming')"


def _searchable(row: str = "") -> str:
    status = f"{row}.status" if row else "status"
    return f"({status} IS NULL OR {status} NOT IN {ACTIVE_STATUSES})"


SQLITE_UPGRADE = (
    # External content: the text lives once, in messages; the index holds only the tokens.
    """
    CREATE VIRTUAL TABLE messages_search USING fts5(
        content, content='messages', content_rowid='id',
        tokenize='unicode61 remove_diacritics 2'
    )
    """,
    f"""
    CREATE TRIGGER messages_search_insert AFTER INSERT ON messages
    WHEN {_searchable("new")}
    BEGIN
        INSERT INTO messages_search (rowid, content) VALUES (new.id, new.content);
    END
    """,
    # An external-content index removes a row by its indexed text: exactly the text it was
    # given, hence the same condition on the old row as on the insert.
    f"""
    CREATE TRIGGER messages_search_delete AFTER DELETE ON messages
    WHEN {_searchable("old")}
    BEGIN
        INSERT INTO messages_search (messages_search, rowid, content)
        VALUES ('delete', old.id, old.content);
    END
    """,
    f"""
    CREATE TRIGGER messages_search_update AFTER UPDATE OF content, status ON messages
    BEGIN
        INSERT INTO messages_search (messages_search, rowid, content)
        SELECT 'delete', old.id, old.content WHERE {_searchable("old")};
        INSERT INTO messages_search (rowid, content)
        SELECT new.id, new.content WHERE {_searchable("new")};
    END
    """,
    # Not FTS5's 'rebuild', which would index the unfinished replies too.
    f"""
    INSERT INTO messages_search (rowid, content)
    SELECT id, content FROM messages WHERE {_searchable()}
    """,
)

SQLITE_DOWNGRADE = (
    "DROP TRIGGER messages_search_update",
    "DROP TRIGGER messages_search_delete",
    "DROP TRIGGER messages_search_insert",
    "DROP TABLE messages_search",
)

POSTGRES_UPGRADE = (
    # A trusted extension since PostgreSQL 13: a database owner may create it. It is left in
    # place on downgrade, as other objects may come to use it.
    "CREATE EXTENSION IF NOT EXISTS unaccent",
    "CREATE TEXT SEARCH CONFIGURATION stream_chat_search (COPY = simple)",
    """
    ALTER TEXT SEARCH CONFIGURATION stream_chat_search
    ALTER MAPPING FOR word, numword, hword, hword_part, hword_numpart, numhword
    WITH unaccent, simple
    """,
    # Generated, so every write keeps it in step; NULL (not indexed) while a reply is being
    # written. Adding it rewrites the table, which indexes the existing messages.
    f"""
    ALTER TABLE messages ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
        CASE WHEN {_searchable()} THEN to_tsvector(
            'stream_chat_search'::regconfig, regexp_replace(content, '[[:punct:]]+', ' ', 'g')
        ) END
    ) STORED
    """,
    "CREATE INDEX ix_messages_search_vector ON messages USING gin (search_vector)",
)

POSTGRES_DOWNGRADE = (
    "DROP INDEX ix_messages_search_vector",
    "ALTER TABLE messages DROP COLUMN search_vector",
    "DROP TEXT SEARCH CONFIGURATION stream_chat_search",
)


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in SQLITE_UPGRADE if sqlite else POSTGRES_UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in SQLITE_DOWNGRADE if sqlite else POSTGRES_DOWNGRADE:
        op.execute(statement)
