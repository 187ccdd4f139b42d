"""``bifrost-admin``: inspect and operate every gateway's state."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="bifrost operator tool")


@app.callback()
def main() -> None:
    """Inspect and operate gateways."""
