"""Where bifrost keeps local state by default: the XDG state directory, never the working
directory; ``BIFROST_DATA_DIR`` overrides it and ``BIFROST_DATABASE_URL`` overrides both."""

from __future__ import annotations

from pathlib import Path

import pytest

from bifrost.settings import Settings, default_data_dir


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("BIFROST_DATA_DIR", "BIFROST_DATABASE_URL", "XDG_STATE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)


def test_xdg_state_home_when_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert default_data_dir() == tmp_path / "xdg" / "bifrost"
    assert Settings().resolved_database_url() == f"sqlite:///{tmp_path}/xdg/bifrost/bifrost.db"


def test_home_local_state_when_unset_or_relative(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert default_data_dir() == tmp_path / "home" / ".local" / "state" / "bifrost"
    monkeypatch.setenv("XDG_STATE_HOME", "relative/dir")  # the XDG spec says: ignore it
    assert default_data_dir() == tmp_path / "home" / ".local" / "state" / "bifrost"
    assert Settings().data_dir.is_absolute()


def test_bifrost_data_dir_and_database_url_override(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("BIFROST_DATA_DIR", str(tmp_path / "data"))
    assert Settings().resolved_database_url() == f"sqlite:///{tmp_path}/data/bifrost.db"
    monkeypatch.setenv("BIFROST_DATABASE_URL", "postgresql+psycopg://u@h/db")
    assert Settings().resolved_database_url() == "postgresql+psycopg://u@h/db"
