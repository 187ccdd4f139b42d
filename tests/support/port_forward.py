"""A running ``kubectl port-forward`` as the tests drive it: started with ``subprocess``, its
output read as it comes (without blocking), the local port taken from its ``Forwarding from``
line, killed at the end."""

from __future__ import annotations

import os
import select
import subprocess

from support.waiting import wait_for


class PortForward:
    """A running ``kubectl port-forward``, its output read as it comes."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        self.stdout = b""
        self.stderr = b""

    def _read(self) -> None:
        assert self.process.stdout is not None and self.process.stderr is not None
        pipes = [self.process.stdout, self.process.stderr]
        readable, _, _ = select.select(pipes, [], [], 0)
        for pipe in readable:
            data = os.read(pipe.fileno(), 65536)
            if pipe is self.process.stdout:
                self.stdout += data
            else:
                self.stderr += data

    def local_port(self) -> int:
        """The local port of its ``Forwarding from 127.0.0.1:PORT -> REMOTE`` line."""

        def port() -> int | None:
            self._read()
            for line in self.stdout.decode().splitlines():
                if line.startswith("Forwarding from 127.0.0.1:"):
                    return int(line.split(":")[1].split()[0])
            assert self.process.poll() is None, self.output()
            return None

        found = wait_for(port, what=lambda: f"the forwarding line: {self.output()}", timeout=30)
        assert found is not None
        return found

    def exited(self) -> int | None:
        self._read()
        return self.process.poll()

    def output(self) -> str:
        return f"stdout: {self.stdout.decode()!r}, stderr: {self.stderr.decode()!r}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        assert self.process.stdout is not None and self.process.stderr is not None
        self.stdout += self.process.stdout.read()
        self.stderr += self.process.stderr.read()
        self.process.stdout.close()
        self.process.stderr.close()
