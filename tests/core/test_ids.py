"""new_id: unique, and within one process in creation order, even within a millisecond."""

from __future__ import annotations

import time

from baton_core import new_id


def test_ids_made_in_one_millisecond_sort_in_creation_order():
    ids = [new_id("s_") for _ in range(20_000)]  # many share a millisecond
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 2 + 26 for i in ids)


def test_the_time_part_is_the_creation_millisecond():
    before = int(time.time() * 1000)
    stamp = int(new_id()[:12], 16)
    assert before <= stamp <= int(time.time() * 1000)
