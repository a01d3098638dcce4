"""Environment variables, defaults and names of the workflow engine, in one place."""

from baton_core import constants

ENV_RUN_LEASE = "BATON_RUN_LEASE_SECONDS"
ENV_REPLICA_ID = constants.ENV_REPLICA_ID
ENV_MAX_ACTIVE_RUNS = "BATON_MAX_ACTIVE_RUNS"
ENV_MAX_STARTING_RUNS = "BATON_MAX_STARTING_RUNS"
ENV_DRAIN = constants.ENV_WORKFLOW_DRAIN

DEFAULT_RUN_LEASE = 10.0
DEFAULT_MAX_ACTIVE_RUNS = 5000
# StartRun calls one replica works on at once; more wait their turn, holding
# only their request. A burst of StartRuns would otherwise hold a converted
# definition, a run and its pending commit per call until the writer caught up.
DEFAULT_MAX_STARTING_RUNS = 16
DEFAULT_MAX_CONCURRENCY = 16
# How long a graceful stop lets the worker calls in flight finish (and commits their
# outcomes) before it cancels the rest. It comes after the server's own grace
# (BATON_SHUTDOWN_GRACE_SECONDS, 5 s); the two together stay well under the 20 s
# Kubernetes is given before a SIGKILL (deploy/k8s).
DEFAULT_DRAIN = constants.DEFAULT_WORKFLOW_DRAIN
# Inline definitions (StartRun with `definition`) kept converted for the next run,
# and the largest one kept (serialized): at most 64 x 64 KiB of keys.
INLINE_DEFINITIONS_KEPT = 64
INLINE_DEFINITION_MAX_BYTES = 64 * 1024

VERSION_TABLE = "alembic_version_orchestrator"
DB_FILE = "orchestrator.db"

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
DEFAULT_LOG_PAGE_SIZE = 500
MAX_LOG_PAGE_SIZE = 5000

# How often a watcher on another replica than the run's owner re-reads the events.
WATCH_POLL_SECONDS = 0.25

# Largest run input a StartRun may carry (it is stored with the run and read back
# by GetRun and ListRuns).
MAX_INPUT_BYTES = 1024 * 1024
