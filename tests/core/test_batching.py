"""batch_length: how many messages go in one batch of a bounded size."""

from __future__ import annotations

from google.protobuf import wrappers_pb2

from baton_core import batch_length


def test_batches_stop_at_the_size_bound_and_never_leave_a_message_behind():
    small = [wrappers_pb2.StringValue(value="x" * 98) for _ in range(10)]  # 100 bytes each
    assert batch_length(small, max_bytes=1_000_000) == 10
    assert batch_length(small, max_bytes=350) == 4
    assert batch_length([wrappers_pb2.StringValue(value="x" * 5000)], max_bytes=100) == 1
    assert batch_length([], max_bytes=100) == 0
