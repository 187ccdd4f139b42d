"""The suite imports test modules by basename (no packages under tests/): two test files with
one name stop collection of the whole suite, which running one folder at a time never shows."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_no_two_test_modules_share_a_name() -> None:
    where: dict[str, list[str]] = defaultdict(list)
    for path in TESTS.rglob("*.py"):
        if path.name not in ("conftest.py", "__init__.py") and "__pycache__" not in path.parts:
            where[path.name].append(str(path.relative_to(TESTS)))
    assert {name: places for name, places in where.items() if len(places) > 1} == {}
