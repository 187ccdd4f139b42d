"""The backoff function: exponential growth, capped, jittered within the documented band."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from pydantic import ValidationError

from bifrost.machines import RetryPolicy, backoff


def test_without_jitter_backoff_doubles_then_caps() -> None:
    policy = RetryPolicy(
        initial_backoff=timedelta(seconds=1),
        max_backoff=timedelta(seconds=10),
        multiplier=2,
        jitter=0,
    )
    rng = random.Random(1)
    delays = [backoff(policy, n, rng).total_seconds() for n in range(1, 8)]
    assert delays == [1, 2, 4, 8, 10, 10, 10]


def test_jitter_stays_in_band_and_varies() -> None:
    policy = RetryPolicy(
        initial_backoff=timedelta(seconds=4),
        max_backoff=timedelta(seconds=60),
        multiplier=3,
        jitter=0.5,
    )
    rng = random.Random(7)
    for attempt in range(1, 6):
        base = min(4 * 3 ** (attempt - 1), 60)
        samples = [backoff(policy, attempt, rng).total_seconds() for _ in range(200)]
        assert all(base * 0.5 <= s <= base for s in samples)
        assert max(samples) - min(samples) > base * 0.3  # it really spreads


def test_same_seed_same_delays() -> None:
    policy = RetryPolicy()
    a = [backoff(policy, n, random.Random(42)) for n in range(1, 5)]
    b = [backoff(policy, n, random.Random(42)) for n in range(1, 5)]
    assert a == b


def test_huge_attempt_numbers_do_not_overflow() -> None:
    policy = RetryPolicy(max_backoff=timedelta(minutes=5), jitter=0)
    assert backoff(policy, 10_000, random.Random(0)) == timedelta(minutes=5)


def test_invalid_policies_are_refused() -> None:
    with pytest.raises(ValueError, match="attempt must be >= 1"):
        backoff(RetryPolicy(), 0, random.Random(0))
    with pytest.raises(ValidationError, match="max_backoff"):
        RetryPolicy(initial_backoff=timedelta(seconds=10), max_backoff=timedelta(seconds=1))
    with pytest.raises(ValidationError):
        RetryPolicy(jitter=1.5)
    with pytest.raises(ValidationError):
        RetryPolicy(max_attempts=0)
