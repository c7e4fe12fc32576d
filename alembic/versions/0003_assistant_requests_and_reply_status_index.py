"""assistant requests log, index on a room's reply statuses

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 09:06:57.372105
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "assistant_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("reply_id", sa.Integer(), nullable=True),
        sa.Column("requested_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["reply_id"], ["messages.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("assistant_requests", schema=None) as batch_op:
        batch_op.create_index(
            "ix_assistant_requests_user_id_requested_at", ["user_id", "requested_at"]
        )
    # The replies asked for so far were each one request, when they were created.
    op.execute(
        "INSERT INTO assistant_requests (user_id, reply_id, requested_at) "
        "SELECT requested_by_id, id, inserted_at FROM messages "
        "WHERE requested_by_id IS NOT NULL"
    )

    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index("ix_messages_room_id_status", ["room_id", "status"])


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_room_id_status")

    with op.batch_alter_table("assistant_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_assistant_requests_user_id_requested_at")

    op.drop_table("assistant_requests")
