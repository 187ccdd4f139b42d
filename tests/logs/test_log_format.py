"""``--log-format``: JSON lines with the bound fields, compact text, the in-cluster default, the
fields of when a line was logged (not when a held line is written), third parties at WARNING,
and a usage error for an unknown format."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from logging.handlers import MemoryHandler

import pytest

from bifrost.cli.logs import (
    QUIET_LOGGERS,
    ContextFilter,
    default_log_format,
    log_handler,
    parse_log_format,
    quiet_third_parties,
)
from bifrost.logcontext import bound


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    log = logging.getLogger(f"bifrost.test_log_format.{id(object())}")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    yield log
    log.handlers.clear()


def test_json_lines_carry_time_level_logger_message_and_the_bound_fields(
        logger: logging.Logger) -> None:
    stream = io.StringIO()
    logger.addHandler(log_handler("json", stream))
    with bound(gateway="apps/edge", operation=12, machine="rotate_certificate"), \
            bound(step="issue", attempt=2):
        logger.info("operation %s step %s", 12, "issue")
    logger.warning("outside")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("failed")
    first, second, third = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "operation 12 step issue"
    assert (first["level"], first["logger"]) == ("INFO", logger.name)
    assert first["time"].endswith("+00:00") and "T" in first["time"]
    assert {k: first[k] for k in ("gateway", "operation", "machine", "step", "attempt")} == {
        "gateway": "apps/edge", "operation": 12, "machine": "rotate_certificate",
        "step": "issue", "attempt": 2}
    assert "operation" not in second and second["level"] == "WARNING"
    assert "RuntimeError: boom" in third["exception"]


def test_text_lines_show_the_bound_fields_compactly(logger: logging.Logger) -> None:
    stream = io.StringIO()
    logger.addHandler(log_handler("text", stream))
    with bound(gateway="apps/edge", operation=12, step="issue", attempt=1):
        logger.info("step done")
    logger.info("plain")
    with_fields, plain = stream.getvalue().splitlines()
    assert with_fields.endswith(
        f"INFO {logger.name}: step done gateway=apps/edge operation=12 step=issue attempt=1")
    assert plain.endswith(f"INFO {logger.name}: plain")


def test_a_held_line_keeps_the_fields_of_when_it_was_logged(logger: logging.Logger) -> None:
    """``bifrost run`` holds its start-up lines in a MemoryHandler and writes them later."""
    stream = io.StringIO()
    held = MemoryHandler(capacity=100, flushLevel=logging.CRITICAL + 1,
                         target=log_handler("json", stream))
    held.addFilter(ContextFilter())
    logger.addHandler(held)
    with bound(operation=7):
        logger.info("held")
    held.flush()
    assert json.loads(stream.getvalue())["operation"] == 7


def test_json_in_a_cluster_text_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert default_log_format() == "text" == parse_log_format(None)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    assert default_log_format() == "json" == parse_log_format("")
    assert parse_log_format("TEXT") == "text"
    with pytest.raises(ValueError, match="use json or text"):
        parse_log_format("yaml")


def test_third_parties_stay_at_warning() -> None:
    saved = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    try:
        quiet_third_parties()
        for name in ("apscheduler.scheduler", "urllib3.connectionpool", "kubernetes.client.rest"):
            assert logging.getLogger(name).getEffectiveLevel() == logging.WARNING
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


@pytest.mark.parametrize("command", ["run", "dev"])
def test_an_unknown_log_format_is_a_usage_error(command: str) -> None:
    done = subprocess.run([sys.executable, "-m", "bifrost.cli.main", command, "--log-format",
                           "yaml"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert "use json or text" in done.stderr
