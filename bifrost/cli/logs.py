"""How ``bifrost run`` and ``bifrost dev`` write their log: ``--log-format json|text``.

- **json** (the default in a pod, where ``KUBERNETES_SERVICE_HOST`` is set): one JSON object per
  line with ``time`` (UTC, ISO 8601, milliseconds), ``level``, ``logger``, ``message``, every
  field bound by :func:`bifrost.logcontext.bound` (``gateway``, ``operation``, ``machine``,
  ``step``, ``attempt``) and ``exception`` when there is one — what a log pipeline indexes.
- **text** (the default elsewhere): ``time level logger: message`` then the bound fields as
  ``key=value``, compact, for a terminal.

The bound fields are captured when the record is *made* (:class:`ContextFilter`, a filter on the
handler, runs in the logging thread), not when it is formatted: ``bifrost run`` holds its start-up
lines back and writes them later, from another context.

Third-party loggers (APScheduler, urllib3, the Kubernetes client, transitions, alembic) stay at
WARNING whatever ``--log-level`` says: their INFO is chatter next to bifrost's own lines, and the
Kubernetes client at DEBUG logs request and response bodies — Secret data among them.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import IO, Any

from bifrost.logcontext import current

__all__ = [
    "LOG_FORMATS",
    "QUIET_LOGGERS",
    "ContextFilter",
    "JsonFormatter",
    "TextFormatter",
    "default_log_format",
    "log_handler",
    "parse_log_format",
    "quiet_third_parties",
]

LOG_FORMATS = ("json", "text")

#: Kept at WARNING (see the module docstring).
QUIET_LOGGERS = ("apscheduler", "urllib3", "kubernetes", "transitions", "alembic")

_FIELDS = "bifrost_fields"


def default_log_format() -> str:
    """``json`` in a cluster (``$KUBERNETES_SERVICE_HOST`` set), else ``text``."""
    return "json" if os.environ.get("KUBERNETES_SERVICE_HOST", "").strip() else "text"


def parse_log_format(value: str | None) -> str:
    """``--log-format``: ``json`` or ``text`` (any case); empty means the default. A
    ``ValueError`` names the choices."""
    if value is None or not value.strip():
        return default_log_format()
    chosen = value.strip().lower()
    if chosen not in LOG_FORMATS:
        raise ValueError(f"{value!r} is not a log format: use json or text")
    return chosen


def _fields(record: logging.LogRecord) -> Mapping[str, str | int]:
    fields = getattr(record, _FIELDS, None)
    return fields if fields is not None else current()


class ContextFilter(logging.Filter):
    """Copies :func:`bifrost.logcontext.current` onto each record as it is handled."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, _FIELDS, None) is None:
            setattr(record, _FIELDS, dict(current()))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in _fields(record).items():
            line.setdefault(key, value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``time level logger: message key=value ...`` (the bound fields, in binding order)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = " ".join(f"{key}={value}" for key, value in _fields(record).items())
        if not fields:
            return text
        first, sep, rest = text.partition("\n")  # a traceback goes after the fields
        return f"{first} {fields}{sep}{rest}"


def log_handler(log_format: str, stream: IO[str]) -> logging.Handler:
    """A handler writing ``log_format`` lines to ``stream``, with the bound fields."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(ContextFilter())
    return handler


def quiet_third_parties() -> None:
    """Set :data:`QUIET_LOGGERS` to WARNING."""
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
