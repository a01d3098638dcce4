"""The workflow engine's tables (SQLAlchemy Core); migrations/ creates them."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()
TZ = sa.DateTime(timezone=True)
JSON = sa.JSON(none_as_null=True)
EVENT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

workflows = sa.Table(
    "wf_workflows", metadata,
    sa.Column("workflow_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(255), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("latest_version", sa.Integer, nullable=False),
    sa.Column("etag", sa.String(32), nullable=False),
    sa.Column("request_id", sa.String(255), nullable=True, unique=True),
    sa.Column("create_time", TZ, nullable=False),
    sa.Column("update_time", TZ, nullable=False),
    sa.Column("delete_time", TZ, nullable=True),
)

workflow_versions = sa.Table(
    "wf_workflow_versions", metadata,
    sa.Column("workflow_id", sa.String(64), sa.ForeignKey("wf_workflows.workflow_id"),
              primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("definition", JSON, nullable=False),
    sa.Column("create_time", TZ, nullable=False),
)

runs = sa.Table(
    "wf_runs", metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("workflow_id", sa.String(64), nullable=True, index=True),
    sa.Column("workflow_version", sa.Integer, nullable=False),
    sa.Column("workflow_name", sa.String(255), nullable=False),
    sa.Column("definition", JSON, nullable=False),
    sa.Column("input", JSON, nullable=False),
    sa.Column("session_id", sa.String(128), nullable=False),
    sa.Column("actor", sa.String(255), nullable=False),
    sa.Column("request_id", sa.String(255), nullable=True, unique=True),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("error", JSON, nullable=True),
    sa.Column("retry_count", sa.Integer, nullable=False),
    sa.Column("create_time", TZ, nullable=False, index=True),
    sa.Column("start_time", TZ, nullable=True),
    sa.Column("end_time", TZ, nullable=True),
    sa.Column("update_time", TZ, nullable=False),
    # Epoch seconds: compared in SQL on both backends without time zone games.
    sa.Column("deadline", sa.Float, nullable=True),
    sa.Column("owner", sa.String(64), nullable=True),
    sa.Column("lease_expires_at", sa.Float, nullable=True),
    sa.Column("cancel_requested", sa.Boolean, nullable=False),
    # The StartRun directives (RunDirectives.to_dict); NULL when none were given.
    sa.Column("directives", JSON, nullable=True),
    sa.Column("idempotency_key", sa.String(255), nullable=True),
    sa.Index("uq_wf_runs_actor_idempotency_key", "actor", "idempotency_key", unique=True),
)

run_steps = sa.Table(
    "wf_run_steps", metadata,
    sa.Column("run_id", sa.String(64), sa.ForeignKey("wf_runs.run_id"), primary_key=True),
    sa.Column("step_id", sa.String(64), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("method", sa.String(255), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    # The attempt number this round of the step began with (RetryRun starts a round).
    sa.Column("first_attempt", sa.Integer, nullable=False),
    sa.Column("input", JSON, nullable=True),
    sa.Column("output", JSON, nullable=True),
    sa.Column("error", JSON, nullable=True),
    sa.Column("start_time", TZ, nullable=True),
    sa.Column("end_time", TZ, nullable=True),
)

run_events = sa.Table(
    "wf_run_events", metadata,
    sa.Column("event_id", EVENT_ID, primary_key=True, autoincrement=True),
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

# The request_ids of CancelRun and RetryRun, each written in the transaction of the
# change it made (see _requests); kept as long as the run.
run_requests = sa.Table(
    "wf_run_requests", metadata,
    sa.Column("request_id", sa.String(255), primary_key=True),
    sa.Column("run_id", sa.String(64), sa.ForeignKey("wf_runs.run_id"), nullable=False,
              index=True),
    sa.Column("operation", sa.String(16), nullable=False),
    sa.Column("actor", sa.String(255), nullable=False),
    sa.Column("create_time", TZ, nullable=False),
)
