"""The store id: a random name for this database, which scopes its Redis keys.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from alembic import op

from baton_core import create_store_meta

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_store_meta("ctl_meta")


def downgrade() -> None:
    op.drop_table("ctl_meta")
