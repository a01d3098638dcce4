"""The store id: a random name for this database, which scopes its Redis keys.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    meta = op.create_table(
        "ctl_meta",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(256), nullable=False),
    )
    op.bulk_insert(meta, [{"name": "store_id", "value": uuid.uuid4().hex[:16]}])


def downgrade() -> None:
    op.drop_table("ctl_meta")
