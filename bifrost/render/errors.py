"""The error type every rendering failure is reported as.

Render errors are user-facing: a platform engineer reads them on a Gateway's ``Programmed=False``
condition and in ``bifrost-admin``. So each one says *which child* (its stable id), *where* in the
blueprint (the field, and a line where there is one) and *what* went wrong, in words that point at
the fix — never a bare Jinja/YAML/CEL exception.
"""

from __future__ import annotations

from typing import Any

BLUEPRINT = "<blueprint>"
"""``child_id`` used for errors that belong to the blueprint as a whole (e.g. ``addresses``)."""


class RenderError(Exception):
    """A blueprint could not be rendered for one child.

    - ``child_id``: the child's stable id (``<blueprint>`` for blueprint-wide fields).
    - ``message``: the cause, phrased so that the reader knows what to change.
    - ``line``: 1-based line, in the template source for template errors, in the *rendered output*
      for YAML errors (the message says which), in the expression for expression errors; ``None``
      when unknown.
    - ``source``: where it came from, as a field path, e.g. ``spec.children[lb].template``.
    """

    def __init__(self, child_id: str, message: str, line: int | None, source: str) -> None:
        self._child_id = child_id
        self._message = message
        self._line = line
        self._source = source
        super().__init__(child_id, message, line, source)

    @property
    def child_id(self) -> str:
        return self._child_id

    @property
    def message(self) -> str:
        return self._message

    @property
    def line(self) -> int | None:
        return self._line

    @property
    def source(self) -> str:
        return self._source

    def __str__(self) -> str:
        where = self._source if self._line is None else f"{self._source}, line {self._line}"
        return f"child {self._child_id!r} ({where}): {self._message}"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RenderError):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash((self._child_id, self._message, self._line, self._source))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (for conditions, events, the journal)."""
        return {
            "childId": self._child_id,
            "message": self._message,
            "line": self._line,
            "source": self._source,
        }
