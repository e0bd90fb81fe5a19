"""The ``exec`` backend: supervise child commands (Docker Compose, systemd and bare-host users).

One command (HFO_EXEC_COMMAND) or several named ones (HFO_EXEC_WORKLOADS, docs/site.md#exec): they all
start together when the site gets the lease and all stop together, each within HFO_STOP_GRACE_S, on a
fence. Each has its own supervisor: one that crashes restarts on its own backoff and the others never
notice.

- The child runs in its own process group (new session), so a stop reaches everything it
  started: SIGTERM to the group, then SIGKILL to the group once HFO_STOP_GRACE_S has passed.
- On Linux the child also gets PR_SET_PDEATHSIG=SIGKILL: if the agent itself is killed, its
  direct child dies with it instead of running on without a fence.
- While the lease is held, a child that exits is restarted with exponential backoff
  (HFO_EXEC_RESTART_BACKOFF_S doubling up to HFO_EXEC_RESTART_BACKOFF_MAX_S).
- A workload with a state directory (HFO_EXEC_STATE_DIR[_<NAME>], docs/site.md#exec-state) gets
  the Pod's two state containers as child processes of the same CLI: ``hfo-site state restore``
  runs to completion before the command starts (the command does not start if it fails), then
  ``hfo-site state sync`` runs beside it; a stop terminates the command first and only then
  SIGTERMs the sync, which makes its final upload (bounded by the stop grace) and exits. A sync
  that dies while the command runs is restarted on the command's backoff: without it the command's
  writes would go on unuploaded, and a crash would lose more than one sync interval.
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hfo_site.backends.base import Observation, WorkloadError
from hfo_site.config import EXEC_SINGLE_NAME, ExecWorkload

log = logging.getLogger("hfo_site.exec")

_PR_SET_PDEATHSIG = 1
_POLL_S = 0.02
RESTORE_WAIT_S = 30.0  # the restore's --wait: credentials come with the heartbeat that granted the lease
SYNC_EXIT_MARGIN_S = 5.0  # after its final upload, the sync reports (2-3 s bound) and exits
SYNC_MIN_FINAL_S = 5.0  # the final upload's least bound, whatever the stop grace
SYNC_READY_S = 30.0  # the sync's start (Python and boto3 importing) on a loaded machine
SYNC_READY_LINE = b'"msg":"state sync started"'
# What ``hfo-site state restore`` exits with (docs/state-handoff.md), for the start's error.
RESTORE_EXITS = {
    1: "the local directory cannot be adopted (a symlink or device in it)",
    2: "a bad argument or setting",
    3: "fenced: a newer lease epoch holds the state",
    4: "corrupt snapshot or manifest",
    5: "no credentials or no store within the wait",
}
SYNC_EXITS = {1: "the final upload failed or timed out", 3: "it was fenced: its uploads were refused"}


@dataclass(frozen=True)
class StateWiring:
    """How the state containers reach this agent: its ``GET /v1/state/credentials`` URL and the
    bearer token's file (HFO_STATE_TOKEN_FILE), and the sync's interval."""

    credentials_url: str
    token_file: Path
    sync_interval_s: float = 30.0


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


class _Supervised:
    """One named command: its process group, its wish to run, its restart backoff."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        grace_s: float,
        backoff_s: float,
        backoff_max_s: float,
        env: dict[str, str] | None,
        preexec: Callable[[], object] | None,
        state_dir: Path | None = None,
    ) -> None:
        if not argv:
            raise ValueError(f"exec backend: empty command for {name!r}")
        if state_dir is not None and not state_dir.is_absolute():
            raise ValueError(f"exec backend: the state directory of {name!r} must be absolute, got {state_dir}")
        self.name = name
        self.state_dir = state_dir
        self.wiring: StateWiring | None = None
        self._sync: asyncio.subprocess.Process | None = None
        self._sync_relay: asyncio.Task[None] | None = None
        self._sync_keeper: asyncio.Task[None] | None = None
        self._sync_wake = asyncio.Event()
        self.sync_exit: int | None = None
        self.sync_restarts = 0
        self.argv = tuple(argv)
        self._grace = grace_s
        self._backoff = backoff_s
        self._backoff_max = backoff_max_s
        self.env = env
        self._preexec = preexec
        self._proc: asyncio.subprocess.Process | None = None
        self.want = False
        self.stopping = False
        self._supervisor: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self.spawns = 0
        self.last_exit: int | None = None

    # -- state ---------------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.returncode is None else None

    def alive(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    def executable(self) -> str | None:
        head = self.argv[0]
        if os.sep in head:
            return head if os.access(head, os.X_OK) and Path(head).is_file() else None
        return shutil.which(head)

    def state(self) -> tuple[str, str]:
        """(state, detail) of this command alone."""
        if self.stopping:
            return "stopping", "stopping"
        if self.alive():
            return "running", f"pid {self.pid}"
        if self.want:
            last = f"exited with {self.last_exit}; restarting" if self.last_exit is not None else "starting"
            return "starting", last
        return "stopped", "stopped"

    # -- actions -------------------------------------------------------------------------------
    @property
    def sync_pid(self) -> int | None:
        sync = self._sync
        return sync.pid if sync is not None and sync.returncode is None else None

    async def start(self) -> None:
        async with self._lock:
            self.want = True
            if self._supervisor is not None and not self._supervisor.done():
                return
            try:
                if self.state_dir is not None:
                    await self._restore()  # the command never starts on state that was not restored
                    await self._start_sync()
                proc = await self._spawn()  # the first spawn's failure is the caller's to see
            except WorkloadError:
                self.want = False
                await self._stop_sync()
                raise
            self._supervisor = asyncio.create_task(self._supervise(proc))
            if self._sync is not None:
                self._sync_keeper = asyncio.create_task(self._keep_sync(self._sync))

    async def stop(self) -> None:
        async with self._lock:
            self.want = False
            self._wake.set()
            proc = self._proc
            self.stopping = True
            try:
                if proc is not None:
                    await self._terminate(proc)
                if self._supervisor is not None:
                    with contextlib.suppress(asyncio.CancelledError):
                        await self._supervisor
                    self._supervisor = None
                keeper, self._sync_keeper = self._sync_keeper, None
                if keeper is not None:
                    # The command is gone (the fence is done). A sync restart under way finishes first
                    # (a sync killed before its SIGTERM handler makes no final upload); one that had
                    # died and was not back yet is started for the final upload.
                    self._sync_wake.set()
                    with contextlib.suppress(asyncio.CancelledError):
                        await keeper
                    if self._sync is None:
                        try:
                            await self._start_sync()
                        except WorkloadError as exc:
                            log.error(
                                "no state sync for the final upload", extra={"workload": self.name, "error": str(exc)}
                            )
                await self._stop_sync()  # only now: the final upload holds everything the command wrote
            finally:
                self.stopping = False

    async def close(self) -> None:
        for task in (self._supervisor, self._sync_keeper):
            if task is not None and not task.done():
                task.cancel()

    # -- the state containers ------------------------------------------------------------------
    def _state_command(self, *args: str) -> list[str]:
        """``hfo-site state ...`` with this interpreter: the agent's own CLI, never a copy of it."""
        assert self.state_dir is not None
        return [
            sys.executable,
            "-m",
            "hfo_site.cli",
            "state",
            *args,
            "--workload",
            self.name,
            "--dir",
            str(self.state_dir),
            "--restored-file",
            str(self.restored_file),
        ]

    @property
    def restored_file(self) -> Path:
        """``<dir>.restored.json`` beside the directory: one per workload, so two workloads whose
        directories share a parent never share the file (the CLI's default is ``<dir>/../restored.json``)."""
        assert self.state_dir is not None
        return self.state_dir.with_name(self.state_dir.name + ".restored.json")

    def _state_env(self) -> dict[str, str]:
        if self.wiring is None:
            raise WorkloadError(
                f"cannot start {self.name}: it has a state directory but the agent serves no state credentials"
                " (HFO_STATE_ENABLED)"
            )
        base = os.environ if self.env is None else self.env
        return {
            **base,
            "HFO_STATE_CREDENTIALS_URL": self.wiring.credentials_url,
            "HFO_STATE_TOKEN_FILE": str(self.wiring.token_file),
        }

    def _final_timeout(self) -> float:
        """The sync's --final-timeout: the stop grace, at least SYNC_MIN_FINAL_S (an upload is a few
        requests; the command is already gone, so this wait never overlaps two bots), at most 300."""
        return min(max(self._grace, SYNC_MIN_FINAL_S), 300.0)

    async def _restore(self) -> None:
        env = self._state_env()
        argv = self._state_command("restore", "--wait", f"{RESTORE_WAIT_S:g}")
        started = time.monotonic()
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, start_new_session=True, preexec_fn=self._preexec, env=env
            )
        except OSError as exc:
            raise WorkloadError(f"cannot run the state restore of {self.name}: {exc.strerror}") from None
        try:
            code = await asyncio.wait_for(proc.wait(), RESTORE_WAIT_S + 30.0)
        except TimeoutError:
            _signal_group(proc.pid, signal.SIGKILL)
            await proc.wait()
            raise WorkloadError(
                f"the state restore of {self.name} did not finish; the command was not started"
            ) from None
        finally:
            if proc.returncode is None:  # cancelled: never leave it behind
                _signal_group(proc.pid, signal.SIGKILL)
        if code != 0:
            why = RESTORE_EXITS.get(code, "unexpected exit")
            raise WorkloadError(
                f"the state restore of {self.name} failed with exit {code} ({why}); the command was not started"
            )
        log.info(
            "workload state restored",
            extra={
                "workload": self.name,
                "state_dir": str(self.state_dir),
                "took_s": round(time.monotonic() - started, 3),
            },
        )

    async def _start_sync(self) -> None:
        """Start the sync and wait until it has installed its SIGTERM handler (its "state sync
        started" line): a stop arriving earlier would kill it before its final upload."""
        if self.sync_pid is not None:
            return
        assert self.wiring is not None
        argv = self._state_command(
            "sync", "--interval", f"{self.wiring.sync_interval_s:g}", "--final-timeout", f"{self._final_timeout():g}"
        )
        try:
            sync = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
                preexec_fn=self._preexec,
                env=self._state_env(),
            )
        except OSError as exc:
            raise WorkloadError(f"cannot run the state sync of {self.name}: {exc.strerror}") from None
        self._sync = sync
        self.sync_exit = None
        ready = asyncio.Event()
        self._sync_relay = asyncio.create_task(_relay_stderr(sync, ready))
        waiter = asyncio.create_task(ready.wait())
        try:
            await asyncio.wait(
                {waiter, asyncio.create_task(sync.wait())}, timeout=SYNC_READY_S, return_when="FIRST_COMPLETED"
            )
        finally:
            waiter.cancel()
        if not ready.is_set():
            code = sync.returncode
            await self._stop_sync()
            why = f"exit {code}" if code is not None else f"not ready within {SYNC_READY_S:g} s"
            raise WorkloadError(f"the state sync of {self.name} did not start ({why}); the command was not started")
        log.info("workload state sync started", extra={"workload": self.name, "pid": sync.pid})

    async def _stop_sync(self) -> None:
        """SIGTERM the sync: it makes its final upload within --final-timeout (the stop grace),
        reports, and exits; SIGKILL only if it overstays that by SYNC_EXIT_MARGIN_S."""
        sync = self._sync
        if sync is None:
            return
        self._sync = None
        if sync.returncode is None:
            code = await _terminate_group(sync, self._final_timeout() + SYNC_EXIT_MARGIN_S, self.name, "state sync")
        else:
            code = sync.returncode
        self.sync_exit = code
        if self._sync_relay is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._sync_relay, 2.0)
            self._sync_relay = None
        if code == 0:
            log.info("workload state sync stopped after its final upload", extra={"workload": self.name})
        else:
            log.error(
                "workload state sync ended without a final upload",
                extra={"workload": self.name, "exit_code": code, "reason": SYNC_EXITS.get(code, "unexpected exit")},
            )

    async def _keep_sync(self, sync: asyncio.subprocess.Process) -> None:
        """Restart a sync that exits while the workload should run (a crash, an OOM kill), with the
        command's backoff. Like the command's supervisor it takes no lock: a stop never waits for it
        to fence the command. ``stop`` terminates the command, then wakes this task and waits for it
        (a start under way completes), and only then stops the sync for its final upload."""
        backoff = self._backoff
        current: asyncio.subprocess.Process | None = sync
        while self.want:
            if current is not None:
                exited = asyncio.ensure_future(current.wait())
                woken = asyncio.ensure_future(self._sync_wake.wait())
                try:
                    await asyncio.wait({exited, woken}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    exited.cancel()
                    woken.cancel()
                if not self.want:
                    return
                if current.returncode is None:
                    self._sync_wake.clear()
                    continue
                log.error(
                    "workload state sync exited while the workload runs; restarting it after backoff",
                    extra={
                        "workload": self.name,
                        "exit_code": current.returncode,
                        "reason": SYNC_EXITS.get(current.returncode, "unexpected exit"),
                        "backoff_s": backoff,
                    },
                )
                await self._stop_sync()  # collects its exit status and its stderr relay
                if not self.want:
                    return
            self._sync_wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._sync_wake.wait(), backoff)
            backoff = min(backoff * 2, self._backoff_max)
            if not self.want:
                return
            try:
                await self._start_sync()
            except WorkloadError as exc:
                log.error("workload state sync restart failed", extra={"workload": self.name, "error": str(exc)})
                current = None
                continue
            current = self._sync
            self.sync_restarts += 1

    # -- internals -----------------------------------------------------------------------------
    async def _spawn(self) -> asyncio.subprocess.Process:
        env = self.env
        if self.state_dir is not None:
            env = {**(os.environ if env is None else env), "HFO_STATE_DIR": str(self.state_dir)}
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.DEVNULL,
                start_new_session=True,  # own session and process group: pgid == pid
                preexec_fn=self._preexec,
                env=env,
            )
        except OSError as exc:
            raise WorkloadError(f"cannot start {self.name} ({self.argv[0]!r}): {exc.strerror}") from None
        self._proc = proc
        self.spawns += 1
        log.info("workload started", extra={"workload": self.name, "pid": proc.pid, "command": self.argv[0]})
        return proc

    async def _supervise(self, proc: asyncio.subprocess.Process | None) -> None:
        backoff = self._backoff
        while True:
            started = time.monotonic()
            if proc is not None:
                code = await proc.wait()
                self.last_exit = code
                if not self.want:
                    return  # stop() is terminating the group
                await self._terminate(proc)  # leftovers of the group would run unsupervised
                log.warning(
                    "workload exited while the lease is held; restarting after backoff",
                    extra={"workload": self.name, "exit_code": code, "backoff_s": backoff},
                )
                if time.monotonic() - started > self._backoff_max:
                    backoff = self._backoff  # it had run a good while: start the backoff over
            if not self.want:
                return
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), backoff)
            if not self.want:
                return
            backoff = min(backoff * 2, self._backoff_max)
            try:
                proc = await self._spawn()
            except WorkloadError as exc:
                log.error("workload restart failed", extra={"workload": self.name, "error": str(exc)})
                proc = None

    async def _terminate(self, proc: asyncio.subprocess.Process) -> None:
        self.last_exit = await _terminate_group(proc, self._grace, self.name, "workload")


async def _terminate_group(proc: asyncio.subprocess.Process, grace_s: float, name: str, what: str) -> int:
    """SIGTERM the group, SIGKILL it after the grace, return the exit status once no member is left."""
    pgid = proc.pid
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if proc.returncode is not None and not group_members(pgid):
            break
        await asyncio.sleep(_POLL_S)
    else:
        if proc.returncode is None or group_members(pgid):
            log.warning(
                f"{what} did not stop within the grace period; killing it", extra={"workload": name, "grace_s": grace_s}
            )
            _signal_group(pgid, signal.SIGKILL)
    code = await proc.wait()
    kill_deadline = time.monotonic() + 5.0
    while group_members(pgid) and time.monotonic() < kill_deadline:
        _signal_group(pgid, signal.SIGKILL)
        await asyncio.sleep(_POLL_S)
    log.info(f"{what} stopped", extra={"workload": name, "pid": pgid, "exit_code": code})
    return code


async def _relay_stderr(proc: asyncio.subprocess.Process, ready: asyncio.Event) -> None:
    """Copy the sync's log lines to the agent's stderr; set ``ready`` at its start line."""
    assert proc.stderr is not None
    out = sys.stderr.buffer if hasattr(sys.stderr, "buffer") else None
    while line := await proc.stderr.readline():
        if not ready.is_set() and SYNC_READY_LINE in line.replace(b'": "', b'":"'):
            ready.set()
        if out is not None:
            with contextlib.suppress(OSError, ValueError):
                out.write(line)
                out.flush()


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class ExecBackend:
    """``command``: one argv (the single-command form, named ``bot``) or named ExecWorkloads."""

    name = "exec"

    def __init__(
        self,
        command: Sequence[str] | Sequence[ExecWorkload],
        grace_s: float,
        backoff_s: float = 1.0,
        backoff_max_s: float = 60.0,
        env: dict[str, str] | None = None,
    ) -> None:
        if not command:
            raise ValueError("exec backend: empty command")
        workloads: list[ExecWorkload] = []
        for item in command:
            if isinstance(item, ExecWorkload):
                workloads.append(item)
        if not workloads:  # a plain argv
            workloads = [ExecWorkload(EXEC_SINGLE_NAME, tuple(str(a) for a in command))]
        elif len(workloads) != len(command):
            raise ValueError("exec backend: give one argv or a list of ExecWorkload, not a mix")
        names = [w.name for w in workloads]
        if len(set(names)) != len(names):
            raise ValueError(f"exec backend: workload names must be unique, got {names}")
        preexec = _pdeathsig_setter()
        self._children = tuple(
            _Supervised(w.name, w.argv, grace_s, backoff_s, backoff_max_s, env, preexec, w.state_dir) for w in workloads
        )
        dirs = [w.state_dir for w in workloads if w.state_dir is not None]
        if len(set(dirs)) != len(dirs):
            raise ValueError("exec backend: each workload needs its own state directory")
        self._lock = asyncio.Lock()

    # -- state ---------------------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self._children)

    def pids(self) -> dict[str, int | None]:
        """The running process (group leader) of each workload, None while it does not run."""
        return {c.name: c.pid for c in self._children}

    def spawns_of(self, name: str) -> int:
        return self._child(name).spawns

    def last_exit_of(self, name: str) -> int | None:
        return self._child(name).last_exit

    @property
    def pid(self) -> int | None:
        """The first workload's pid (the single-command form's only one)."""
        return self._children[0].pid

    @property
    def spawns(self) -> int:
        """Processes started, all workloads together."""
        return sum(c.spawns for c in self._children)

    @property
    def last_exit(self) -> int | None:
        """The first workload's last exit status (the single-command form's only one)."""
        return self._children[0].last_exit

    def _child(self, name: str) -> _Supervised:
        for c in self._children:
            if c.name == name:
                return c
        raise KeyError(name)

    async def observe(self) -> Observation:
        missing = [c for c in self._children if c.executable() is None]
        ready = not missing
        states = {c.name: c.state() for c in self._children}
        kinds = {s for s, _ in states.values()}
        if len(self._children) == 1:
            detail = next(iter(states.values()))[1]
            if detail in ("stopping", "stopped"):
                detail = ""
        else:
            detail = ", ".join(f"{name} {text}" for name, (_, text) in states.items())
        if missing:  # named when there are several
            prefix = "{name}: " if len(self._children) > 1 else ""
            detail = "; ".join(
                f"{prefix.format(name=c.name)}command {c.argv[0]!r} not found or not executable" for c in missing
            )
        if "stopping" in kinds:
            state = "stopping"
        elif kinds == {"running"}:
            state = "running"
        elif kinds == {"stopped"}:
            state = "stopped"
        else:
            state = "starting"  # some are wanted and not (yet, or again) running
        return Observation(state, ready, detail)

    # -- actions -------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start every workload not yet running, together. A workload whose first spawn fails is
        named in the WorkloadError; the others keep running, and the next start() tries it again."""
        async with self._lock:
            results = await asyncio.gather(*(c.start() for c in self._children), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        for err in errors:
            if not isinstance(err, WorkloadError):
                raise err
        if errors:
            raise WorkloadError("; ".join(str(e) for e in errors))

    async def stop(self) -> None:
        """Stop every workload at once: each gets SIGTERM now and SIGKILL after the grace."""
        async with self._lock:
            results = await asyncio.gather(*(c.stop() for c in self._children), return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r

    async def close(self) -> None:
        for c in self._children:
            await c.close()

    @property
    def has_state(self) -> bool:
        """Whether any workload declared a state directory."""
        return any(c.state_dir is not None for c in self._children)

    def sync_pids(self) -> dict[str, int | None]:
        """The running state sync of each workload with a state directory."""
        return {c.name: c.sync_pid for c in self._children if c.state_dir is not None}

    def sync_exit_of(self, name: str) -> int | None:
        """How the last state sync of ``name`` ended (0: after its final upload)."""
        return self._child(name).sync_exit

    def configure_state(self, wiring: StateWiring) -> None:
        """Where the state containers get their credentials (the agent's lease server, once bound)."""
        for c in self._children:
            c.wiring = wiring

    def add_env(self, extra: dict[str, str]) -> None:
        """Variables every child started from now on gets, on top of the agent's own environment
        (or of ``env`` when one was given): HFO_BOT_LEASE_URL (docs/protocol.md#lease-endpoint)."""
        for c in self._children:
            c.env = {**(os.environ if c.env is None else c.env), **extra}
