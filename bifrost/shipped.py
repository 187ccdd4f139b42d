"""Where the files bifrost ships with its code live: migrations, its CRDs, the examples and the
install manifest.

- ``migrations/``, ``deploy/crds/``, ``examples/`` and ``dist/install.yaml`` (the rendered
  install manifest ``bifrost demo --in-cluster`` applies) stay at the top of the repository;
  the build (``setup.py``) copies them into the wheel under ``bifrost/_shipped/``. In a source
  checkout (an editable install) there is no ``_shipped/``, and the top-level folders are the
  package's own files.

Nothing outside the installed package (or its checkout) is read at run time.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def shipped(relative: str) -> Path:
    """A top-level folder or file of the repository as shipped: ``migrations``, ``deploy/crds``,
    ``examples/...`` or ``dist/install.yaml``."""
    inside = PACKAGE / "_shipped" / relative
    return inside if inside.exists() else PACKAGE.parent / relative

