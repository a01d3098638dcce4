"""Run directives: the Directives a run was started with, and its idempotency key.

Revision ID: 0002
Revises: 0001
Create Date: 2026-02-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("wf_runs") as batch:
        batch.add_column(sa.Column("directives", sa.JSON(none_as_null=True), nullable=True))
        batch.add_column(sa.Column("idempotency_key", sa.String(255), nullable=True))
    # NULL keys never collide: runs without a key are not constrained.
    op.create_index("uq_wf_runs_actor_idempotency_key", "wf_runs",
                    ["actor", "idempotency_key"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_wf_runs_actor_idempotency_key", table_name="wf_runs")
    with op.batch_alter_table("wf_runs") as batch:
        batch.drop_column("idempotency_key")
        batch.drop_column("directives")
