"""Child processes of the drill, each in its own session and process group, so the drill (and
only the drill) decides when they die: Ctrl-C in a terminal reaches the drill, not them.

- `spawn()` starts a command in a new session; on Linux the kernel also SIGKILLs it if the drill
  dies without cleaning up (PR_SET_PDEATHSIG), so a killed drill leaves no orphans running.
- `Child.kill()` is a machine losing power: SIGKILL to its group and to the groups of all its
  descendants (a site agent's bot runs in a session of its own).
- `Child.terminate()` is an orderly shutdown: SIGTERM to the same groups, SIGKILL after a grace.

Needs the development environment only; the Lambda package never imports it.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def _pdeathsig() -> Callable[[], None] | None:
    """A preexec_fn asking the kernel to SIGKILL the child when its parent dies (Linux only).
    libc is resolved here, before any fork, so the child runs one prctl() call and nothing else."""
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    prctl = ctypes.CDLL(name, use_errno=True).prctl

    def set_pdeathsig() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)

    return set_pdeathsig


_PREEXEC = _pdeathsig()


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, pgid) of a process from /proc, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()  # comm may hold spaces and parentheses
    return fields[0], int(fields[1]), int(fields[2])


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    stat = _stat(pid)
    if stat is not None:
        return stat[0] != "Z"
    if Path("/proc").is_dir():
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def descendants(pid: int) -> list[int]:
    """Every live descendant of `pid` (children, grandchildren...), read from /proc."""
    children: dict[int, list[int]] = {}
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        stat = _stat(int(entry.name))
        if stat is not None and stat[0] != "Z":
            children.setdefault(stat[1], []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _signal_groups(pgids: set[int], sig: signal.Signals) -> None:
    for pgid in pgids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)


class Child:
    """One spawned command: its own session, process group, log file."""

    def __init__(self, name: str, proc: subprocess.Popen[bytes], log_path: Path | None) -> None:
        self.name = name
        self.proc = proc
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def groups(self) -> set[int]:
        """The process groups of this child and of every live descendant."""
        pgids = {self.proc.pid}
        for pid in descendants(self.proc.pid):
            stat = _stat(pid)
            if stat is not None:
                pgids.add(stat[2])
        return pgids

    def tree(self) -> list[int]:
        """This child's pid (while it runs) and its live descendants' pids."""
        return ([self.proc.pid] if self.running() else []) + descendants(self.proc.pid)

    def kill(self) -> list[int]:
        """SIGKILL the whole tree at once (groups found first, so orphans cannot slip away).
        Returns the pids that were alive."""
        pids = self.tree()
        groups = self.groups()
        _signal_groups(groups, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        _wait_gone(pids, 5.0)
        return pids

    def terminate(self, grace_s: float) -> list[int]:
        """SIGTERM the tree, wait up to `grace_s` for every process of it to exit, then SIGKILL
        what is left. Returns the pids that were alive."""
        pids = self.tree()
        groups = self.groups()
        if not pids:
            return []
        _signal_groups(groups, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            self.proc.poll()
            groups |= self.groups()  # a child spawned while shutting down still goes
            if not any(alive(p) for p in pids) and not self.running():
                return pids
            time.sleep(0.05)
        _signal_groups(groups, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        _wait_gone(pids, 5.0)
        return pids

    def log_tail(self, lines: int = 15) -> str:
        if self.log_path is None:
            return ""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _wait_gone(pids: Sequence[int], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.02)


def kill_together(children: Sequence[Child]) -> list[int]:
    """SIGKILL several children's trees in one sweep (every group found before any signal), as
    a machine losing power takes all its processes at once. Returns the pids that were alive."""
    pids = [p for c in children for p in c.tree()]
    groups: set[int] = set()
    for child in children:
        groups |= child.groups()
    _signal_groups(groups, signal.SIGKILL)
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.proc.wait(timeout=10)
    _wait_gone(pids, 5.0)
    return pids


def spawn(
    name: str,
    argv: Sequence[str],
    env: Mapping[str, str],
    log_path: Path | None = None,
    cwd: Path | None = None,
) -> Child:
    """Start `argv` in a new session with `env` (the whole environment, nothing inherited),
    stdout and stderr appended to `log_path` (or discarded)."""
    if log_path is not None:
        with log_path.open("ab") as log:
            proc = subprocess.Popen(  # noqa: S603 - fixed argument lists built by the drill
                list(argv),
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_PREEXEC,
            )
    else:
        proc = subprocess.Popen(  # noqa: S603 - fixed argument lists built by the drill
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_PREEXEC,
        )
    return Child(name, proc, log_path)
