"""The control plane's tables (SQLAlchemy Core); control_migrations/ creates them."""

from __future__ import annotations

import sqlalchemy as sa

from baton_core import store_meta_table

metadata = sa.MetaData()
TZ = sa.DateTime(timezone=True)
JSON = sa.JSON(none_as_null=True)
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

policies = sa.Table(
    "ctl_policies", metadata,
    sa.Column("name", sa.String(63), primary_key=True),
    sa.Column("pattern", sa.String(255), nullable=False, unique=True),
    sa.Column("spec", JSON, nullable=False),
    sa.Column("etag", sa.String(32), nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("create_time", TZ, nullable=False),
    sa.Column("update_time", TZ, nullable=False),
)

hooks = sa.Table(
    "ctl_hooks", metadata,
    sa.Column("name", sa.String(63), primary_key=True),
    sa.Column("spec", JSON, nullable=False),
    sa.Column("create_time", TZ, nullable=False),
    sa.Column("update_time", TZ, nullable=False),
)

breaker_configs = sa.Table(
    "ctl_breaker_configs", metadata,
    sa.Column("endpoint", sa.String(255), primary_key=True),
    sa.Column("failure_threshold", sa.Integer, nullable=False),
    sa.Column("open_timeout", sa.Float, nullable=False),
    sa.Column("half_open_max_calls", sa.Integer, nullable=False),
    sa.Column("update_time", TZ, nullable=False),
)

audit = sa.Table(
    "ctl_audit", metadata,
    sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
    sa.Column("record_id", sa.String(64), nullable=False, unique=True),
    sa.Column("time", TZ, nullable=False),
    sa.Column("actor", sa.String(255), nullable=False),
    sa.Column("via", sa.String(255), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("entity_type", sa.String(32), nullable=False),
    sa.Column("entity", sa.String(255), nullable=False),
    sa.Column("changes", JSON, nullable=True),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("service", sa.String(32), nullable=False),
    sa.Column("roles", JSON, nullable=True),
    sa.Index("ix_ctl_audit_actor", "actor", "id"),
    sa.Index("ix_ctl_audit_entity", "entity_type", "entity", "id"),
    sa.Index("ix_ctl_audit_time", "time"),
)

# Executions that wait to be recorded in their sessions (the sessions service was
# away), oldest first: the serialized sessions.v1.Execution, whom it was made for,
# and the replica that holds it with the time it last renewed that claim.
session_backlog = sa.Table(
    "ctl_session_backlog", metadata,
    sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
    sa.Column("execution_id", sa.String(255), nullable=False, unique=True),
    sa.Column("execution", sa.LargeBinary, nullable=False),
    sa.Column("actor", sa.String(255), nullable=False),
    sa.Column("roles", JSON, nullable=True),
    sa.Column("via", sa.String(255), nullable=False),
    sa.Column("owner", sa.String(255), nullable=False),
    sa.Column("time", TZ, nullable=False),
    sa.Index("ix_ctl_session_backlog_owner", "owner", "id"),
)

# One row, ("store_id", a random hex name made by the migration that creates
# the table): the namespace of this database's keys in Redis (see _keys).
meta = store_meta_table("ctl_meta", metadata)
