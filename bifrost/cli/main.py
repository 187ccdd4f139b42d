"""The ``bifrost`` command: the controller's entry points (db, dev, run, demo)."""

from __future__ import annotations

import typer

from bifrost.cli import db, demo, dev, run

app = typer.Typer(no_args_is_help=True, add_completion=False, help="bifrost controller")
app.add_typer(db.app, name="db", help="Database schema: upgrade, current, downgrade.")
dev.register(app)
demo.register(app)
run.register(app)

if __name__ == "__main__":  # pragma: no cover
    app()
