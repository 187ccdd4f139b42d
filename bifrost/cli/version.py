"""``--version`` for ``bifrost`` and ``bifrost-admin``: the installed distribution's version.

The distribution is ``bifrost-gateway`` (``bifrost`` on the package index is someone else's
project), while the import name and the commands stay ``bifrost``; so the version is read from the
distribution's metadata by that name, not from the import package. A source tree that was never
installed has no metadata: it says so instead of guessing.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import typer

DISTRIBUTION = "bifrost-gateway"


def installed_version() -> str:
    """The version of the installed ``bifrost-gateway`` distribution, or ``unknown``."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown (bifrost-gateway is not installed)"


def print_version(command: str) -> typer.models.OptionInfo:
    """A ``--version`` option for the root callback of ``command``: prints
    ``<command> (bifrost-gateway) <version>`` and exits 0 before any subcommand runs."""

    def show(value: bool) -> None:
        if value:
            typer.echo(f"{command} ({DISTRIBUTION}) {installed_version()}")
            raise typer.Exit(0)

    option: typer.models.OptionInfo = typer.Option(
        "--version",
        callback=show,
        is_eager=True,
        help="Print the installed version and exit.",
    )
    return option
