"""Prometheus metrics of the sessions service, created per registry on demand."""

from __future__ import annotations

import weakref

from prometheus_client import REGISTRY, CollectorRegistry, Counter

REDIS_FALLBACKS = "baton_sessions_redis_fallbacks"

# Several apps in one process (tests, an all-in-one run) share the counter of
# a registry rather than registering the name twice.
_fallbacks: weakref.WeakKeyDictionary[CollectorRegistry, Counter] = weakref.WeakKeyDictionary()


def redis_fallbacks(registry: CollectorRegistry | None = None) -> Counter:
    """Counter `baton_sessions_redis_fallbacks_total{operation}`: calls served without Redis."""
    registry = REGISTRY if registry is None else registry
    counter = _fallbacks.get(registry)
    if counter is None:
        counter = Counter(REDIS_FALLBACKS, "Hot-tier operations that fell back to SQL "
                          "because Redis was unreachable.", ["operation"], registry=registry)
        _fallbacks[registry] = counter
    return counter
