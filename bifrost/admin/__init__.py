"""The view layer of ``bifrost-admin``: store queries → frozen view models → renderers.

Kept apart from the typer commands (``bifrost.cli.admin``) so that what an operator sees is built
and tested once, whatever the output format: the JSON/YAML documents are these models dumped
as they are (their field names are a stable contract, see ``docs/admin-json.md``) and the tables
are drawn from the same models.
"""
