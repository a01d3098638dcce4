"""Control plane schema: policies, external hooks, breaker configs, audit records.

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
JSON = sa.JSON(none_as_null=True)
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ctl_policies",
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column("pattern", sa.String(255), nullable=False, unique=True),
        sa.Column("spec", JSON, nullable=False),
        sa.Column("etag", sa.String(32), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("create_time", TZ, nullable=False),
        sa.Column("update_time", TZ, nullable=False),
    )
    op.create_table(
        "ctl_hooks",
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column("spec", JSON, nullable=False),
        sa.Column("create_time", TZ, nullable=False),
        sa.Column("update_time", TZ, nullable=False),
    )
    op.create_table(
        "ctl_breaker_configs",
        sa.Column("endpoint", sa.String(255), primary_key=True),
        sa.Column("failure_threshold", sa.Integer, nullable=False),
        sa.Column("open_timeout", sa.Float, nullable=False),
        sa.Column("half_open_max_calls", sa.Integer, nullable=False),
        sa.Column("update_time", TZ, nullable=False),
    )
    op.create_table(
        "ctl_audit",
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
    )
    op.create_index("ix_ctl_audit_actor", "ctl_audit", ["actor", "id"])
    op.create_index("ix_ctl_audit_entity", "ctl_audit", ["entity_type", "entity", "id"])
    op.create_index("ix_ctl_audit_time", "ctl_audit", ["time"])


def downgrade() -> None:
    op.drop_table("ctl_audit")
    op.drop_table("ctl_breaker_configs")
    op.drop_table("ctl_hooks")
    op.drop_table("ctl_policies")
