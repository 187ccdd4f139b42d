from __future__ import annotations

import pytest
from engine_kit import T0

from bifrost.clock import ManualClock


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)
