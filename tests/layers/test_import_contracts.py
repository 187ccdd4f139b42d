"""The import contracts in pyproject.toml hold (the layers of bifrost, the emulator kept apart,
each third-party library behind its one adapter).

Why this is a test and not only a CI step: .ci/run also runs ``lint-imports``, but a developer who
runs just the test suite should learn that a new import breaks the architecture before CI does.
The contracts themselves, and what each protects, are in ``[tool.importlinter]``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# The console script installed beside this interpreter by `pip install -e '.[test]'`.
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def test_every_import_contract_is_kept() -> None:
    result = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", str(REPO / "pyproject.toml")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
