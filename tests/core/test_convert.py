"""Timestamps and durations: Baton's own conversions match protobuf's."""

from __future__ import annotations

import datetime as dt
import random

from google.protobuf import duration_pb2, timestamp_pb2

from baton_core import datetime_to_timestamp, seconds_to_duration, set_timestamp


def _reference(value: dt.datetime) -> timestamp_pb2.Timestamp:
    message = timestamp_pb2.Timestamp()
    message.FromDatetime(value)
    return message


def test_timestamps_match_protobufs_own_conversion_before_and_after_the_epoch():
    rng = random.Random(7)
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    for _ in range(5000):
        value = epoch + dt.timedelta(seconds=rng.uniform(-5e10, 5e9))
        assert datetime_to_timestamp(value) == _reference(value), value
        naive = value.replace(tzinfo=None)  # naive means UTC, as protobuf takes it
        assert datetime_to_timestamp(naive) == _reference(naive), naive


def test_other_time_zones_are_converted_to_the_same_instant():
    berlin = dt.timezone(dt.timedelta(hours=1))
    value = dt.datetime(2026, 11, 25, 17, 30, 0, 123456, tzinfo=berlin)
    message = timestamp_pb2.Timestamp()
    set_timestamp(message, value)
    assert message == _reference(value)
    assert message.ToDatetime(tzinfo=dt.UTC) == value
    assert datetime_to_timestamp(None) is None


def test_durations_match_protobufs_own_conversion_for_either_sign():
    rng = random.Random(11)
    values = [0.5, 1.25, 1e-9, 3600.000001, -1.5, -0.25, -1e-9,
              *(rng.uniform(-1e6, 1e6) for _ in range(5000))]
    for seconds in values:
        reference = duration_pb2.Duration()
        reference.FromNanoseconds(int(seconds * 1e9))
        assert seconds_to_duration(seconds) == reference, seconds
    assert seconds_to_duration(0) == duration_pb2.Duration()
    assert seconds_to_duration(None) == duration_pb2.Duration()
