"""SQLAlchemy Core tables; migrations/versions must create the same schema."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

methods = Table(
    "registry_methods", metadata,
    Column("name", String(255), primary_key=True),
    Column("version", String(64), nullable=False),
    Column("description", Text, nullable=False),
    Column("domain", String(255), nullable=False, index=True),
    Column("input_schema", JSON, nullable=False),
    Column("output_schema", JSON, nullable=False),
    Column("default_timeout", Float, nullable=False),
    Column("retry_policy", JSON, nullable=False),
    Column("idempotent", Boolean, nullable=False),
    Column("create_time", DateTime(timezone=True), nullable=False),
    Column("update_time", DateTime(timezone=True), nullable=False),
)

# Tags live in their own table so ListMethods can filter and page in SQL.
method_tags = Table(
    "registry_method_tags", metadata,
    Column("method_name", String(255),
           ForeignKey("registry_methods.name", ondelete="CASCADE"), primary_key=True),
    Column("tag", String(255), primary_key=True),
    Column("position", Integer, nullable=False),
    Index("ix_registry_method_tags_tag", "tag"),
)

endpoints = Table(
    "registry_endpoints", metadata,
    Column("method_name", String(255),
           ForeignKey("registry_methods.name", ondelete="CASCADE"), primary_key=True),
    Column("worker_id", String(255), primary_key=True),
    Column("address", String(255), nullable=False),
    Column("state", String(16), nullable=False),
    Column("lease_expire_time", DateTime(timezone=True), nullable=False),
    Index("ix_registry_endpoints_worker_id", "worker_id"),
    Index("ix_registry_endpoints_state_lease", "state", "lease_expire_time"),
)

# No foreign key to methods: deleting a method leaves its tools in place.
tools = Table(
    "registry_tools", metadata,
    Column("name", String(255), primary_key=True),
    Column("method_name", String(255), nullable=False, index=True),
    Column("description", Text, nullable=False),
    Column("parameters_schema", JSON, nullable=False),
    Column("parameter_mapping", JSON, nullable=False),
    Column("create_time", DateTime(timezone=True), nullable=False),
)

# The outbox WatchMethods tails. AUTOINCREMENT keeps SQLite from reusing ids
# after pruning, which would make a watch skip events.
events = Table(
    "registry_events", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("type", String(16), nullable=False),
    Column("method_name", String(255), nullable=False),
    Column("payload", JSON, nullable=True),
    Column("create_time", DateTime(timezone=True), nullable=False, index=True),
    sqlite_autoincrement=True,
)
