"""Log fields bound around a piece of work: nested, reset on exit, apart per thread."""

from __future__ import annotations

import threading

from bifrost.logcontext import bound, current


def test_fields_nest_override_and_reset() -> None:
    assert current() == {}
    with bound(gateway="apps/edge", operation=7):
        with bound(step="issue", attempt=2, machine=None):
            assert current() == {"gateway": "apps/edge", "operation": 7, "step": "issue",
                                 "attempt": 2}
            with bound(attempt=3):
                assert current()["attempt"] == 3
            assert current()["attempt"] == 2
        assert current() == {"gateway": "apps/edge", "operation": 7}
    assert current() == {}


def test_each_thread_has_its_own_fields() -> None:
    seen: list[object] = []
    with bound(operation=1):
        thread = threading.Thread(target=lambda: seen.append(dict(current())))
        thread.start()
        thread.join()
        assert current() == {"operation": 1}
    assert seen == [{}]
