"""SQL tables of the sessions service (the system of record).

The migrations in `migrations/versions` create exactly these; a test checks
that the two agree.
"""

from __future__ import annotations

import sqlalchemy as sa

from baton_core import store_meta_table

metadata = sa.MetaData()

# SQLite only auto-increments an INTEGER PRIMARY KEY.
_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TIME = sa.DateTime(timezone=True)

sessions = sa.Table(
    "sessions_sessions", metadata,
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
    sa.Column("create_time", _TIME, nullable=False),
    sa.Column("last_activity_time", _TIME, nullable=False),
    sa.Column("end_time", _TIME, nullable=True),
    # At most one active session per (user, casefile): what makes
    # FindOrCreateSession atomic across replicas.
    sa.Index("uq_sessions_sessions_active_pair", "user_id", "casefile_id", unique=True,
             sqlite_where=sa.text("status = 'ACTIVE'"),
             postgresql_where=sa.text("status = 'ACTIVE'")),
    sa.Index("uq_sessions_sessions_request_id", "request_id", unique=True,
             sqlite_where=sa.text("request_id IS NOT NULL"),
             postgresql_where=sa.text("request_id IS NOT NULL")),
    sa.Index("ix_sessions_sessions_user", "user_id", "session_id"),
    sa.Index("ix_sessions_sessions_casefile", "casefile_id", "session_id"),
    sa.Index("ix_sessions_sessions_idle", "status", "last_activity_time"),
)

executions = sa.Table(
    "sessions_executions", metadata,
    sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
    sa.Column("session_id", sa.String(64),
              sa.ForeignKey("sessions_sessions.session_id", ondelete="CASCADE"), nullable=False),
    sa.Column("execution_id", sa.String(256), nullable=False),
    sa.Column("operation", sa.String(256), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("duration_ns", sa.BigInteger, nullable=False),
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("run_id", sa.String(256), nullable=False),
    sa.Column("step_id", sa.String(256), nullable=False),
    sa.Column("actor", sa.String(256), nullable=False),
    sa.Column("create_time", _TIME, nullable=False),
    sa.Column("result", sa.JSON, nullable=False),
    sa.UniqueConstraint("session_id", "execution_id", name="uq_sessions_executions_id"),
    sa.Index("ix_sessions_executions_session", "session_id", "seq"),
)

events = sa.Table(
    "sessions_events", metadata,
    sa.Column("id", _SEQ, primary_key=True, autoincrement=True),
    sa.Column("session_id", sa.String(64),
              sa.ForeignKey("sessions_sessions.session_id", ondelete="CASCADE"), nullable=False),
    sa.Column("sequence", sa.BigInteger, nullable=False),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Column("create_time", _TIME, nullable=False),
    sa.UniqueConstraint("session_id", "sequence", name="uq_sessions_events_sequence"),
)

# One row, ("store_id", a random hex name made by the migration that creates
# the table): the namespace of this database's keys in Redis (see _keys).
meta = store_meta_table("sessions_meta", metadata)
