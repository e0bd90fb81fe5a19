"""The ``exec`` backend: supervise one child command (Docker Compose, systemd and bare-host users).

- The child runs in its own process group (new session), so a stop reaches everything it
  started: SIGTERM to the group, then SIGKILL to the group once HFO_STOP_GRACE_S has passed.
- On Linux the child also gets PR_SET_PDEATHSIG=SIGKILL: if the agent itself is killed, its
  direct child dies with it instead of running on without a fence.
- While the lease is held, a child that exits is restarted with exponential backoff
  (HFO_EXEC_RESTART_BACKOFF_S doubling up to HFO_EXEC_RESTART_BACKOFF_MAX_S).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import os
import shutil
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from hfo_site.backends.base import Observation, WorkloadError

log = logging.getLogger("hfo_site.exec")

_PR_SET_PDEATHSIG = 1
_POLL_S = 0.02


def _pdeathsig_setter():  # type: ignore[no-untyped-def]
    """A preexec_fn that asks the kernel to SIGKILL the child when the agent dies (Linux only)."""
    if not sys.platform.startswith("linux"):
        return None
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return None
    prctl = ctypes.CDLL(libc_name, use_errno=True).prctl  # resolved before fork: nothing to load in the child

    def _set() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)

    return _set


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group. Reads /proc; falls back to kill(0)."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return []
        return [pgid]
    members = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses, so split after the last ")"
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) >= 3 and fields[2] == str(pgid) and fields[0] != "Z":
            members.append(int(entry.name))
    return members


class ExecBackend:
    name = "exec"

    def __init__(
        self,
        argv: Sequence[str],
        grace_s: float,
        backoff_s: float = 1.0,
        backoff_max_s: float = 60.0,
        env: dict[str, str] | None = None,
    ) -> None:
        if not argv:
            raise ValueError("exec backend: empty command")
        self._argv = tuple(argv)
        self._grace = grace_s
        self._backoff = backoff_s
        self._backoff_max = backoff_max_s
        self._env = env
        self._proc: asyncio.subprocess.Process | None = None
        self._want = False
        self._stopping = False
        self._restart_pending = False
        self._supervisor: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._preexec = _pdeathsig_setter()
        self.spawns = 0
        self.last_exit: int | None = None

    # -- state ---------------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.returncode is None else None

    def _alive(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    def _executable(self) -> str | None:
        head = self._argv[0]
        if os.sep in head:
            return head if os.access(head, os.X_OK) and Path(head).is_file() else None
        return shutil.which(head)

    async def observe(self) -> Observation:
        ready = self._executable() is not None
        detail = "" if ready else f"command {self._argv[0]!r} not found or not executable"
        if self._stopping:
            return Observation("stopping", ready, detail)
        if self._alive():
            return Observation("running", ready, detail or f"pid {self.pid}")
        if self._want:
            last = f"exited with {self.last_exit}; restarting" if self.last_exit is not None else "starting"
            return Observation("starting", ready, detail or last)
        return Observation("stopped", ready, detail)

    # -- actions -------------------------------------------------------------------------------
    async def start(self) -> None:
        async with self._lock:
            self._want = True
            if self._supervisor is not None and not self._supervisor.done():
                return
            try:
                proc = await self._spawn()  # the first spawn's failure is the caller's to see
            except WorkloadError:
                self._want = False
                raise
            self._supervisor = asyncio.create_task(self._supervise(proc))

    async def stop(self) -> None:
        async with self._lock:
            self._want = False
            self._wake.set()
            proc = self._proc
            if proc is not None:
                self._stopping = True
                try:
                    await self._terminate(proc)
                finally:
                    self._stopping = False
            if self._supervisor is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await self._supervisor
                self._supervisor = None

    async def close(self) -> None:
        if self._supervisor is not None and not self._supervisor.done():
            self._supervisor.cancel()

    def add_env(self, extra: dict[str, str]) -> None:
        """Variables every child started from now on gets, on top of the agent's own environment
        (or of ``env`` when one was given): HFO_BOT_LEASE_URL (docs/protocol.md#lease-endpoint)."""
        self._env = {**(os.environ if self._env is None else self._env), **extra}

    # -- internals -----------------------------------------------------------------------------
    async def _spawn(self) -> asyncio.subprocess.Process:
        try:
            proc = await asyncio.create_subprocess_exec(
                *self._argv,
                stdin=asyncio.subprocess.DEVNULL,
                start_new_session=True,  # own session and process group: pgid == pid
                preexec_fn=self._preexec,
                env=self._env,
            )
        except OSError as exc:
            raise WorkloadError(f"cannot start {self._argv[0]!r}: {exc.strerror}") from None
        self._proc = proc
        self.spawns += 1
        log.info("workload started", extra={"pid": proc.pid, "command": self._argv[0]})
        return proc

    async def _supervise(self, proc: asyncio.subprocess.Process | None) -> None:
        backoff = self._backoff
        while True:
            started = time.monotonic()
            if proc is not None:
                code = await proc.wait()
                self.last_exit = code
                if not self._want:
                    return  # stop() is terminating the group
                await self._terminate(proc)  # leftovers of the group would run unsupervised
                log.warning(
                    "workload exited while the lease is held; restarting after backoff",
                    extra={"exit_code": code, "backoff_s": backoff},
                )
                if time.monotonic() - started > self._backoff_max:
                    backoff = self._backoff  # it had run a good while: start the backoff over
            if not self._want:
                return
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), backoff)
            if not self._want:
                return
            backoff = min(backoff * 2, self._backoff_max)
            try:
                proc = await self._spawn()
            except WorkloadError as exc:
                log.error("workload restart failed", extra={"error": str(exc)})
                proc = None

    async def _terminate(self, proc: asyncio.subprocess.Process) -> None:
        """SIGTERM the group, SIGKILL it after the grace, return once no member is left."""
        pgid = proc.pid
        self._signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + self._grace
        while time.monotonic() < deadline:
            if proc.returncode is not None and not group_members(pgid):
                break
            await asyncio.sleep(_POLL_S)
        else:
            if proc.returncode is None or group_members(pgid):
                log.warning("workload did not stop within the grace period; killing it", extra={"grace_s": self._grace})
                self._signal_group(pgid, signal.SIGKILL)
        await proc.wait()
        self.last_exit = proc.returncode
        kill_deadline = time.monotonic() + 5.0
        while group_members(pgid) and time.monotonic() < kill_deadline:
            self._signal_group(pgid, signal.SIGKILL)
            await asyncio.sleep(_POLL_S)
        log.info("workload stopped", extra={"pid": pgid, "exit_code": proc.returncode})

    @staticmethod
    def _signal_group(pgid: int, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
