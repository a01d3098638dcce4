"""Run requests: the request_ids of CancelRun and RetryRun, with what each did.

Revision ID: 0003
Revises: 0002
Create Date: 2026-03-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wf_run_requests",
        sa.Column("request_id", sa.String(255), primary_key=True),
        sa.Column("run_id", sa.String(64), sa.ForeignKey("wf_runs.run_id"), nullable=False),
        sa.Column("operation", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_wf_run_requests_run_id", "wf_run_requests", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_wf_run_requests_run_id", table_name="wf_run_requests")
    op.drop_table("wf_run_requests")
