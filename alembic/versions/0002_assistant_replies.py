"""assistant replies: status, generation, usage and requester on messages; assistant users

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 05:41:18.263135
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REQUESTER_FK = "fk_messages_requested_by_id_users"


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status", sqlmodel.AutoString(length=16), nullable=True))
        batch_op.add_column(
            sa.Column("generation_id", sqlmodel.AutoString(length=32), nullable=True)
        )
        batch_op.add_column(sa.Column("error", sqlmodel.AutoString(length=500), nullable=True))
        batch_op.add_column(sa.Column("prompt_tokens", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("completion_tokens", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("requested_by_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            REQUESTER_FK, "users", ["requested_by_id"], ["id"], ondelete="SET NULL"
        )

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("is_assistant", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("is_assistant")

    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_constraint(REQUESTER_FK, type_="foreignkey")
        batch_op.drop_column("requested_by_id")
        batch_op.drop_column("completion_tokens")
        batch_op.drop_column("prompt_tokens")
        batch_op.drop_column("error")
        batch_op.drop_column("generation_id")
        batch_op.drop_column("status")
