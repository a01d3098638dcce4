"""Sessions, executions and the session event outbox.

Revision ID: 0001
Revises:
Create Date: 2025-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sessions_sessions",
        sa.Column("session_id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(256), nullable=False),
        sa.Column("casefile_id", sa.String(256), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("labels", sa.JSON, nullable=False),
        sa.Column("request_id", sa.String(256), nullable=True),
        sa.Column("context", sa.JSON, nullable=False),
        sa.Column("etag", sa.String(64), nullable=False),
        sa.Column("execution_count", sa.BigInteger, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("create_time", TIME, nullable=False),
        sa.Column("last_activity_time", TIME, nullable=False),
        sa.Column("end_time", TIME, nullable=True),
    )
    op.create_index("uq_sessions_sessions_active_pair", "sessions_sessions",
                    ["user_id", "casefile_id"], unique=True,
                    sqlite_where=sa.text("status = 'ACTIVE'"),
                    postgresql_where=sa.text("status = 'ACTIVE'"))
    op.create_index("uq_sessions_sessions_request_id", "sessions_sessions", ["request_id"],
                    unique=True,
                    sqlite_where=sa.text("request_id IS NOT NULL"),
                    postgresql_where=sa.text("request_id IS NOT NULL"))
    op.create_index("ix_sessions_sessions_user", "sessions_sessions", ["user_id", "session_id"])
    op.create_index("ix_sessions_sessions_casefile", "sessions_sessions",
                    ["casefile_id", "session_id"])
    op.create_index("ix_sessions_sessions_idle", "sessions_sessions",
                    ["status", "last_activity_time"])

    op.create_table(
        "sessions_executions",
        sa.Column("seq", SEQ, primary_key=True, autoincrement=True),
        sa.Column("session_id", sa.String(64),
                  sa.ForeignKey("sessions_sessions.session_id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("execution_id", sa.String(256), nullable=False),
        sa.Column("operation", sa.String(256), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("duration_ns", sa.BigInteger, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("run_id", sa.String(256), nullable=False),
        sa.Column("step_id", sa.String(256), nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("create_time", TIME, nullable=False),
        sa.Column("result", sa.JSON, nullable=False),
        sa.UniqueConstraint("session_id", "execution_id", name="uq_sessions_executions_id"),
    )
    op.create_index("ix_sessions_executions_session", "sessions_executions",
                    ["session_id", "seq"])

    op.create_table(
        "sessions_events",
        sa.Column("id", SEQ, primary_key=True, autoincrement=True),
        sa.Column("session_id", sa.String(64),
                  sa.ForeignKey("sessions_sessions.session_id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("sequence", sa.BigInteger, nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("create_time", TIME, nullable=False),
        sa.UniqueConstraint("session_id", "sequence", name="uq_sessions_events_sequence"),
    )


def downgrade() -> None:
    op.drop_table("sessions_events")
    op.drop_table("sessions_executions")
    op.drop_table("sessions_sessions")
