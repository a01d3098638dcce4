"""The executions waiting to be recorded in their sessions while the sessions
service is away, kept across a restart of the orchestrator.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ctl_session_backlog",
        sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
        sa.Column("execution_id", sa.String(255), nullable=False, unique=True),
        sa.Column("execution", sa.LargeBinary, nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("roles", sa.JSON, nullable=True),
        sa.Column("via", sa.String(255), nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("time", TZ, nullable=False),
    )
    op.create_index("ix_ctl_session_backlog_owner", "ctl_session_backlog", ["owner", "id"])


def downgrade() -> None:
    op.drop_table("ctl_session_backlog")
