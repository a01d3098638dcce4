"""Initial registry schema: methods, tags, endpoints, tools and the event outbox.

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


def upgrade() -> None:
    op.create_table(
        "registry_methods",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("domain", sa.String(255), nullable=False),
        sa.Column("input_schema", sa.JSON, nullable=False),
        sa.Column("output_schema", sa.JSON, nullable=False),
        sa.Column("default_timeout", sa.Float, nullable=False),
        sa.Column("retry_policy", sa.JSON, nullable=False),
        sa.Column("idempotent", sa.Boolean, nullable=False),
        sa.Column("create_time", TZ, nullable=False),
        sa.Column("update_time", TZ, nullable=False),
    )
    op.create_index("ix_registry_methods_domain", "registry_methods", ["domain"])
    op.create_table(
        "registry_method_tags",
        sa.Column("method_name", sa.String(255),
                  sa.ForeignKey("registry_methods.name", ondelete="CASCADE"), primary_key=True),
        sa.Column("tag", sa.String(255), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
    )
    op.create_index("ix_registry_method_tags_tag", "registry_method_tags", ["tag"])
    op.create_table(
        "registry_endpoints",
        sa.Column("method_name", sa.String(255),
                  sa.ForeignKey("registry_methods.name", ondelete="CASCADE"), primary_key=True),
        sa.Column("worker_id", sa.String(255), primary_key=True),
        sa.Column("address", sa.String(255), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("lease_expire_time", TZ, nullable=False),
    )
    op.create_index("ix_registry_endpoints_worker_id", "registry_endpoints", ["worker_id"])
    op.create_index("ix_registry_endpoints_state_lease", "registry_endpoints",
                    ["state", "lease_expire_time"])
    op.create_table(
        "registry_tools",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("method_name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("parameters_schema", sa.JSON, nullable=False),
        sa.Column("parameter_mapping", sa.JSON, nullable=False),
        sa.Column("create_time", TZ, nullable=False),
    )
    op.create_index("ix_registry_tools_method_name", "registry_tools", ["method_name"])
    op.create_table(
        "registry_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("method_name", sa.String(255), nullable=False),
        sa.Column("payload", sa.JSON, nullable=True),
        sa.Column("create_time", TZ, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_registry_events_create_time", "registry_events", ["create_time"])


def downgrade() -> None:
    op.drop_table("registry_events")
    op.drop_table("registry_tools")
    op.drop_table("registry_endpoints")
    op.drop_table("registry_method_tags")
    op.drop_table("registry_methods")
