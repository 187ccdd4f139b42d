"""Process-wide settings, read from the environment (``BIFROST_*``) by pydantic-settings.

The same settings drive the controller and ``bifrost-admin`` so both open the same store.

Local state (the default SQLite store) goes to the XDG state directory,
``$XDG_STATE_HOME/bifrost`` or else ``~/.local/state/bifrost``, never into the working directory;
``BIFROST_DATA_DIR`` overrides it (the image sets it to its data volume).
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    """``$XDG_STATE_HOME/bifrost`` when ``XDG_STATE_HOME`` is an absolute path (the XDG Base
    Directory rule: a relative one is ignored), else ``~/.local/state/bifrost``."""
    xdg = os.environ.get("XDG_STATE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "state"
    return base / "bifrost"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BIFROST_", extra="ignore")

    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Directory for the default SQLite database and other local state "
        "(default: $XDG_STATE_HOME/bifrost, else ~/.local/state/bifrost).",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the store; default: SQLite file <data_dir>/bifrost.db. "
        "PostgreSQL: postgresql+psycopg://user:pass@host/db",
    )
    journal_cap_per_gateway: int = Field(
        default=5000, ge=10, description="Journal rows kept per gateway; older rows are pruned."
    )
    deleted_gateway_retention: timedelta = Field(
        default=timedelta(days=7), ge=timedelta(0),
        description="How long a deleted Gateway's history (operations, journal, certificates, "
        "children) stays in the store before housekeeping purges it; seconds or ISO 8601 "
        "(e.g. P7D, PT12H).",
    )
    housekeeping_interval_seconds: float = Field(
        default=600.0, gt=0,
        description="How often the leader purges deleted Gateways past their retention and "
        "caps every Gateway's journal at journal_cap_per_gateway.",
    )
    migrate_on_start: bool = Field(
        default=True, description="Run 'bifrost db upgrade' when the controller starts."
    )
    runner_lease_seconds: float | None = Field(
        default=None, gt=0,
        description="How long a runner holds an operation without renewing; after a crash, "
        "another runner (or the restarted one) resumes it once this passed. Must be shorter "
        "than the leader Lease; default: two thirds of it (10 s for the default 15 s).",
    )
    renewal_poll_seconds: float = Field(
        default=30.0, gt=0,
        description="How often the renewal scheduler re-reads the store besides its alarms.",
    )
    renewal_jitter_seconds: float = Field(
        default=60.0, ge=0,
        description="Renewals are spread over up to this many seconds (per certificate).",
    )

    sandbox_workers: int = Field(
        default=2, ge=1, le=32,
        description="Worker processes that evaluate blueprint templates and CEL expressions.",
    )
    sandbox_memory_mb: int = Field(
        default=384, ge=0,
        description="Address-space limit of each sandbox worker in MiB (0: none).",
    )
    sandbox_render_seconds: float = Field(
        default=10.0, gt=0,
        description="Hard wall time of one render call (one Gateway's or one route's "
        "children); the worker is killed past it.",
    )
    sandbox_expression_seconds: float = Field(
        default=2.0, gt=0,
        description="Hard wall time of one CEL evaluation; the worker is killed past it.",
    )

    @field_validator("deleted_gateway_retention", mode="before")
    @classmethod
    def _seconds(cls, value: object) -> object:
        """A plain number (``604800``, ``3600.5``) is seconds, as in the other settings."""
        if isinstance(value, str):
            try:
                return timedelta(seconds=float(value))
            except (ValueError, OverflowError):
                return value  # ISO 8601 (P7D) or an error pydantic explains
        return value

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'bifrost.db').as_posix()}"
