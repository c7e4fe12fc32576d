"""each reply knows its question; an index on reply statuses for the sweep of dead workers

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 21:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A reply asked before questions were recorded answers the newest person's message before it
# in its room: one by its requester that mentions the assistant, else anyone's that does (a
# retry may have changed the requester), else any. The same correlated subqueries run on
# SQLite and PostgreSQL.
_EARLIER_MESSAGE = (
    "SELECT q.id FROM messages AS q WHERE q.room_id = messages.room_id "
    "AND q.id < messages.id AND q.status IS NULL {extra} ORDER BY q.id DESC LIMIT 1"
)
BACKFILL = (
    "UPDATE messages SET question_id = COALESCE(("
    + _EARLIER_MESSAGE.format(
        extra="AND q.sender_id = messages.requested_by_id "
        "AND lower(q.content) LIKE '%@assistant%'"
    )
    + "), ("
    + _EARLIER_MESSAGE.format(extra="AND lower(q.content) LIKE '%@assistant%'")
    + "), ("
    + _EARLIER_MESSAGE.format(extra="")
    + ")) WHERE status IS NOT NULL"
)


def upgrade() -> None:
    # Plain ALTERs, not a batch: on SQLite a batch rebuilds `messages`, which would drop the
    # search triggers of 0004.
    op.add_column("messages", sa.Column("question_id", sa.Integer(), nullable=True))
    op.create_index("ix_messages_status", "messages", ["status"])
    op.execute(BACKFILL)


def downgrade() -> None:
    op.drop_index("ix_messages_status", table_name="messages")
    op.drop_column("messages", "question_id")
