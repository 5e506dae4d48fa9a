"""Starting and stopping local mode's processes by pid file, never touching anyone else's.

A pid file holds the pid and the process's start time (from /proc), so a pid the kernel
recycled for an unrelated process is never signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from watchfloor_stack.localmode.components import Component


@dataclass(frozen=True)
class Running:
    pid: int
    started: str


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (starttime); the command name in field 2 may hold spaces, so split after ')'.
    fields = stat.rsplit(")", 1)[1].split()
    # A killed process nobody has reaped yet (state Z) is gone, not running.
    return None if fields[0] == "Z" else fields[19]


class ProcessTable:
    def __init__(self, state: Path) -> None:
        self.run_dir = state / "run"
        self.log_dir = state / "logs"
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)

    def _pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def running(self, name: str) -> Running | None:
        """The live process this table started under `name`, if any (stale files are removed)."""
        path = self._pid_file(name)
        try:
            recorded = json.loads(path.read_text())
            entry = Running(int(recorded["pid"]), str(recorded["started"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if _start_time(entry.pid) != entry.started:
            path.unlink(missing_ok=True)
            return None
        return entry

    def start(self, component: Component, env: dict[str, str]) -> Running:
        log = open(self.log_file(component.name), "ab")  # noqa: SIM115 - handed to the child
        with log:
            process = subprocess.Popen(  # noqa: S603 - our own command line, no shell
                component.command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # keeps running after `make local-up` returns
            )
        started = _start_time(process.pid) or ""
        entry = Running(process.pid, started)
        self._pid_file(component.name).write_text(
            json.dumps({"pid": entry.pid, "started": entry.started, "command": component.command})
        )
        return entry

    def stop(self, name: str, timeout: float = 10.0) -> bool:
        """SIGTERM, then SIGKILL after `timeout`; True when a process was stopped."""
        entry = self.running(name)
        if entry is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(entry.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _start_time(entry.pid) == entry.started:
            _reap(entry.pid)
            time.sleep(0.05)
        if _start_time(entry.pid) == entry.started:
            with contextlib.suppress(ProcessLookupError):
                os.kill(entry.pid, signal.SIGKILL)
            time.sleep(0.1)
        _reap(entry.pid)
        self._pid_file(name).unlink(missing_ok=True)
        return True

    def names(self) -> list[str]:
        return sorted(path.stem for path in self.run_dir.glob("*.pid"))


def _reap(pid: int) -> None:
    # When the caller is the parent (tests start local mode in-process), collect the zombie so
    # /proc stops showing it.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
