"""``bifrost db``: schema migrations of the store (alembic)."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False)
