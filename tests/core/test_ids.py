"""new_id: unique, and within one process in creation order, even within a millisecond.
new_etag: a fresh version tag each time. Neither makes a system call per id, and a
forked child does not repeat its parent's random draws."""

from __future__ import annotations

import os
import re
import time

from baton_core import new_etag, new_id


def test_ids_made_in_one_millisecond_sort_in_creation_order():
    ids = [new_id("s_") for _ in range(20_000)]  # many share a millisecond
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 2 + 26 for i in ids)


def test_the_time_part_is_the_creation_millisecond():
    before = int(time.time() * 1000)
    stamp = int(new_id()[:12], 16)
    assert before <= stamp <= int(time.time() * 1000)


def test_etags_are_16_hex_digits_and_do_not_repeat():
    tags = [new_etag() for _ in range(10_000)]
    assert all(re.fullmatch(r"[0-9a-f]{16}", t) for t in tags)
    assert len(set(tags)) == len(tags)


def _draws() -> str:
    time.sleep(0.002)  # a new millisecond: new_id draws a fresh random part
    return f"{new_id()[12:]} {new_etag()}"


def test_a_forked_child_draws_other_random_parts_than_its_parent():
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its draws, straight back to the parent
        os.write(write, _draws().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 100).decode().split()
    os.close(read)
    # The same draws in the parent, from the generator state the child inherited.
    parent = _draws().split()
    assert child[0] != parent[0] and child[1] != parent[1]
