"""One warning per outage of something a service follows, not one per retry."""

from __future__ import annotations

import logging
import time


class Outage:
    """Logs the first failure of an outage as a warning (later ones at debug level)
    and, once it works again, one line saying how long it was down.

    Args:
        log: Where to write.
        what: The thing followed, e.g. "registry watch".
    """

    def __init__(self, log: logging.Logger, what: str) -> None:
        self._log = log
        self._what = what
        self._since: float | None = None
        self._failures = 0

    @property
    def ongoing(self) -> bool:
        return self._since is not None

    def failed(self, why: str, retry_in: float) -> None:
        self._failures += 1
        if self._since is None:
            self._since = time.monotonic()
            self._log.warning("%s interrupted (%s); retrying (every %.1fs at most), "
                              "quietly until it works again", self._what, why, retry_in)
        else:
            self._log.debug("%s still interrupted (%s); retry #%d in %.1fs", self._what, why,
                            self._failures, retry_in)

    def recovered(self) -> None:
        if self._since is not None:
            self._log.info("%s works again after %.1fs (%d retries)", self._what,
                           time.monotonic() - self._since, self._failures)
        self._since, self._failures = None, 0
