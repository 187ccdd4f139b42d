"""``bifrost dev``: run the local devcluster (and its simulated peers)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the devcluster commands to the ``bifrost`` app."""
