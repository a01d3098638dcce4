"""SessionOrchestrator: user sessions with a Redis hot tier over a SQL system of record."""

from ._app import SessionsApp, build_app
from ._config import SessionsConfig
from ._metrics import REDIS_FALLBACKS

__all__ = ["REDIS_FALLBACKS", "SessionsApp", "SessionsConfig", "build_app"]
