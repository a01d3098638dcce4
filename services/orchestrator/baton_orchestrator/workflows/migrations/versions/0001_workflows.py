"""Workflow engine schema: definitions and their versions, runs, run steps, run events.

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


def upgrade() -> None:
    op.create_table(
        "wf_workflows",
        sa.Column("workflow_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("latest_version", sa.Integer, nullable=False),
        sa.Column("etag", sa.String(32), nullable=False),
        sa.Column("request_id", sa.String(255), nullable=True, unique=True),
        sa.Column("create_time", TZ, nullable=False),
        sa.Column("update_time", TZ, nullable=False),
        sa.Column("delete_time", TZ, nullable=True),
    )
    op.create_index("ix_wf_workflows_name", "wf_workflows", ["name"])
    op.create_table(
        "wf_workflow_versions",
        sa.Column("workflow_id", sa.String(64), sa.ForeignKey("wf_workflows.workflow_id"),
                  primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("definition", JSON, nullable=False),
        sa.Column("create_time", TZ, nullable=False),
    )
    op.create_table(
        "wf_runs",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("workflow_id", sa.String(64), nullable=True),
        sa.Column("workflow_version", sa.Integer, nullable=False),
        sa.Column("workflow_name", sa.String(255), nullable=False),
        sa.Column("definition", JSON, nullable=False),
        sa.Column("input", JSON, nullable=False),
        sa.Column("session_id", sa.String(128), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("request_id", sa.String(255), nullable=True, unique=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", JSON, nullable=True),
        sa.Column("retry_count", sa.Integer, nullable=False),
        sa.Column("create_time", TZ, nullable=False),
        sa.Column("start_time", TZ, nullable=True),
        sa.Column("end_time", TZ, nullable=True),
        sa.Column("update_time", TZ, nullable=False),
        sa.Column("deadline", sa.Float, nullable=True),
        sa.Column("owner", sa.String(64), nullable=True),
        sa.Column("lease_expires_at", sa.Float, nullable=True),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
    )
    op.create_index("ix_wf_runs_workflow_id", "wf_runs", ["workflow_id"])
    op.create_index("ix_wf_runs_status", "wf_runs", ["status"])
    op.create_index("ix_wf_runs_create_time", "wf_runs", ["create_time"])
    op.create_table(
        "wf_run_steps",
        sa.Column("run_id", sa.String(64), sa.ForeignKey("wf_runs.run_id"), primary_key=True),
        sa.Column("step_id", sa.String(64), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("method", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("first_attempt", sa.Integer, nullable=False),
        sa.Column("input", JSON, nullable=True),
        sa.Column("output", JSON, nullable=True),
        sa.Column("error", JSON, nullable=True),
        sa.Column("start_time", TZ, nullable=True),
        sa.Column("end_time", TZ, nullable=True),
    )
    op.create_table(
        "wf_run_events",
        sa.Column("event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("step_id", sa.String(64), nullable=False),
        sa.Column("run_status", sa.String(16), nullable=True),
        sa.Column("step_status", sa.String(16), nullable=True),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("error", JSON, nullable=True),
        sa.Column("replica", sa.String(64), nullable=False),
        sa.Column("create_time", TZ, nullable=False),
        sa.UniqueConstraint("run_id", "seq", name="uq_wf_run_events_run_seq"),
    )


def downgrade() -> None:
    op.drop_table("wf_run_events")
    op.drop_table("wf_run_steps")
    op.drop_table("wf_runs")
    op.drop_table("wf_workflow_versions")
    op.drop_table("wf_workflows")
