"""Retry policies as data, and the pure backoff function the engine schedules retries with.

A step's failures (a ``Retry`` outcome, an unexpected exception, an attempt interrupted by a crash)
are spaced out exponentially with jitter so that a struggling peer (API server, issuer, database)
is not hammered in lock-step by every operation at once. The policy is data on the machine spec so
``bifrost-admin`` can show it and tests can reason about it without running anything.
"""

from __future__ import annotations

import random
from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field, model_validator


class RetryPolicy(BaseModel):
    """How often and how patiently the engine re-runs one step.

    - ``max_attempts``: failed attempts (Retry outcomes, exceptions, interrupted attempts) after
      which the step fails; ``Wait`` outcomes never count. 1 means "never retry".
    - ``initial_backoff``: delay before the second attempt.
    - ``multiplier``: growth of the delay per failed attempt.
    - ``max_backoff``: cap on a single delay.
    - ``jitter``: fraction in [0, 1]; the delay is drawn uniformly from
      ``[base * (1 - jitter), base]`` so concurrent retries spread out.
    - ``timeout``: total time the step may take, from its first attempt, including its waits and
      retries; past it the step fails ("timed out"). ``None``: no limit.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_attempts: int = Field(default=5, ge=1)
    initial_backoff: timedelta = timedelta(seconds=1)
    max_backoff: timedelta = timedelta(minutes=5)
    multiplier: float = Field(default=2.0, ge=1.0)
    jitter: float = Field(default=0.2, ge=0.0, le=1.0)
    timeout: timedelta | None = None

    @model_validator(mode="after")
    def _check(self) -> RetryPolicy:
        if self.initial_backoff < timedelta(0):
            raise ValueError("initial_backoff must not be negative")
        if self.max_backoff < self.initial_backoff:
            raise ValueError("max_backoff must be >= initial_backoff")
        if self.timeout is not None and self.timeout <= timedelta(0):
            raise ValueError("timeout must be positive")
        return self


DEFAULT_RETRY = RetryPolicy()


def backoff(policy: RetryPolicy, attempt: int, rng: random.Random) -> timedelta:
    """Delay before the attempt that follows failed attempt number ``attempt`` (1-based).

    ``base = min(initial_backoff * multiplier ** (attempt - 1), max_backoff)``, then jittered down
    by up to ``jitter * base``. Never negative, never above ``max_backoff``.
    """
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, got {attempt}")
    initial = policy.initial_backoff.total_seconds()
    cap = policy.max_backoff.total_seconds()
    # Exponent grows without bound for long retry chains; stop growing once past the cap.
    base = initial
    for _ in range(attempt - 1):
        base *= policy.multiplier
        if base >= cap:
            break
    base = min(base, cap)
    factor = 1.0 - policy.jitter * rng.random()
    return timedelta(seconds=max(0.0, base * factor))
