"""``bifrost run`` as a real subprocess, for the tests that must kill a controller.

The controller runs exactly as it would against a real cluster (``python -m bifrost.cli.run``
with a kubeconfig and a database URL), so a test can SIGKILL it at any point and start it again
under the same identity. Each run logs to ``<logs>/<identity>-<run>.log``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
SYSTEM_NAMESPACE = "bifrost-system"


@dataclass
class ControllerProcess:
    """One controller identity: started, killed and restarted, stopped; its log and /readyz.

    ``environment`` is added to the inherited environment (``BIFROST_*`` settings such as
    ``BIFROST_RUNNER_LEASE_SECONDS``); the store is never migrated on start (the test migrates
    it). ``health_port``: where ``/readyz`` is served (``describe``); ``None`` serves none.
    """

    kubeconfig: Path
    db_url: str
    logs: Path
    identity: str
    lease_duration: float = 15.0
    health_port: int | None = None
    log_level: str = "INFO"
    environment: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    runs: int = 0
    kills: list[str] = field(default_factory=list)
    signals: list[str] = field(default_factory=list)

    @property
    def log_path(self) -> Path:
        """The current run's log."""
        return self.logs / f"{self.identity}-{self.runs}.log"

    def start(self) -> ControllerProcess:
        """Start a new run (the previous one must have ended)."""
        assert self.proc is None or self.proc.poll() is not None, f"{self.identity} is running"
        self.runs += 1
        env = {
            **os.environ,
            "POD_NAMESPACE": SYSTEM_NAMESPACE,
            "BIFROST_MIGRATE_ON_START": "false",
            **self.environment,
        }
        command = [
            sys.executable, "-m", "bifrost.cli.run",
            "--kubeconfig", str(self.kubeconfig),
            "--database-url", self.db_url,
            "--identity", self.identity,
            "--lease-duration", str(self.lease_duration),
            "--log-level", self.log_level,
        ]
        if self.health_port is not None:
            command += ["--health-port", str(self.health_port)]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO
            )
        return self

    def owns(self, owner: str | None) -> bool:
        """``owner`` (an operation's lease owner, a journal row's actor) is one of this
        controller's runners: ``<identity>`` or ``<identity>/<i>``."""
        return owner is not None and (owner == self.identity
                                      or owner.startswith(f"{self.identity}/"))

    def signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the running controller (it must not have exited by itself)."""
        assert self.proc is not None
        assert self.proc.poll() is None, f"{self.identity} exited by itself:\n{self.log_tail()}"
        self.proc.send_signal(sig)
        self.signals.append(sig.name)

    def pause(self) -> None:
        """SIGSTOP, and wait until every thread of it is stopped (the signal is asynchronous:
        until then it may still write). ``signal(SIGCONT)`` resumes it."""
        self.signal(signal.SIGSTOP)
        assert self.proc is not None
        tasks = Path(f"/proc/{self.proc.pid}/task")

        def stopped() -> bool:
            states = []
            for task in tasks.iterdir():
                with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                    states.append((task / "stat").read_text().rsplit(")", 1)[1].split()[0])
            return bool(states) and all(state in "tTZX" for state in states)
        wait_for(stopped, timeout=10, interval=0.001, what=f"{self.identity} to stop")

    def kill(self, where: str = "") -> None:
        """SIGKILL the running controller (it must not have exited by itself); ``where`` is
        recorded in ``kills``."""
        self.signal(signal.SIGKILL)
        assert self.proc is not None
        assert self.proc.wait(timeout=10) == -signal.SIGKILL
        self.kills.append(where)

    def restart_after_kill(self, where: str = "") -> None:
        self.kill(where)
        self.start()

    def stop(self, timeout: float = 20) -> int | None:
        """SIGCONT (in case it is paused), then SIGTERM; the exit code (``None``: it had to be
        killed after ``timeout`` seconds)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGCONT)
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def log(self) -> str:
        """The current run's log so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, chars: int = 4000) -> str:
        return self.log()[-chars:]

    def describe(self) -> dict[str, Any] | None:
        """The ``/readyz`` document (also when it answers 503); ``None`` while nothing listens."""
        assert self.health_port is not None, f"{self.identity} serves no health port"
        url = f"http://127.0.0.1:{self.health_port}/readyz"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return dict(json.loads(response.read()))
        except urllib.error.HTTPError as exc:
            return dict(json.loads(exc.read()))
        except OSError:
            return None
