"""The ``bifrost`` command: the controller's entry points (db, dev, run, demo).

Help texts are rendered as Markdown (``rich_markup_mode="markdown"``) so a docstring's single line
breaks are not kept in the output: paragraphs rewrap to the terminal's width instead of breaking
mid-sentence. Shell completion is on (``--install-completion``/``--show-completion``);
``--version`` prints the installed distribution's version (:mod:`bifrost.cli.version`).
"""

from __future__ import annotations

from typing import Annotated

import typer

from bifrost.cli import db, demo, dev, run
from bifrost.cli.version import print_version

app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
    help="The bifrost Gateway API controller: run it, try it on a local devcluster, migrate "
    "its store.",
)
app.add_typer(db.app, name="db", help="Database schema: upgrade, current, downgrade; vacuum.")
dev.register(app)
demo.register(app)
run.register(app)


@app.callback()
def main(
    version: Annotated[bool, print_version("bifrost")] = False,
) -> None:
    """The bifrost Gateway API controller: run it, try it on a local devcluster, migrate its
    store."""


if __name__ == "__main__":  # pragma: no cover
    app()
