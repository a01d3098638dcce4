"""An outage of something a service follows: one warning, then one line when it is back."""

from __future__ import annotations

import logging

from baton_core import Outage


def test_an_outage_warns_once_and_says_when_it_is_over(caplog):
    log = logging.getLogger("baton.test.outage")
    outage = Outage(log, "registry watch")
    with caplog.at_level(logging.DEBUG, logger="baton.test.outage"):
        outage.recovered()  # nothing was wrong: nothing to say
        for _ in range(3):
            outage.failed("UNAVAILABLE", 2.0)
        assert outage.ongoing
        outage.recovered()
        outage.failed("UNAVAILABLE", 2.0)  # the next outage warns again
    levels = [(r.levelname, r.getMessage().split(" (")[0]) for r in caplog.records]
    assert levels == [("WARNING", "registry watch interrupted"),
                      ("DEBUG", "registry watch still interrupted"),
                      ("DEBUG", "registry watch still interrupted"),
                      ("INFO", "registry watch works again after 0.0s"),
                      ("WARNING", "registry watch interrupted")]
    assert caplog.records[3].getMessage().endswith("(3 retries)")
