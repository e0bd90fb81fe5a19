"""``hfo-site state restore`` (init container) and ``hfo-site state sync`` (sidecar): the state
directory of a gated workload follows the lease (docs/state-handoff.md#the-pod-init-container-and-sidecar).

Both take their S3 credentials from the site agent (``client.AgentClient``) and apply the fencing
rules of ``handoff``: restore claims the state for the agent's lease epoch before the bot starts;
sync publishes the directory when its content changed and once more on SIGTERM, and stops for good
when a newer epoch holds the state.

Exit codes: 0 done; 1 a failure that retrying did not fix (sync's final upload); 2 bad arguments
or settings (nothing written); 3 fenced (a newer lease holds the state); 4 corrupt snapshot or
manifest (nothing written into the directory); 5 restore timed out (``--wait``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import signal
import stat
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hfo_site.logs import setup_logging
from hfo_site.state.client import (
    AgentClient,
    AgentUnavailable,
    Credentials,
    NoCredentials,
    StateConfigError,
)
from hfo_site.state.errors import (
    Conflict,
    CorruptManifest,
    CorruptSnapshot,
    Fenced,
    NotClaimed,
    StateError,
    StoreUnavailable,
)
from hfo_site.state.handoff import claim, publish
from hfo_site.state.manifest import Manifest, check_workload

log = logging.getLogger("hfo_site.state")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_FENCED = 3
EXIT_CORRUPT = 4
EXIT_TIMEOUT = 5

RETRY_PAUSE_S = 2.0
CREDENTIALS_TICK_S = 10.0  # how often sync asks the agent for its current credentials
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def add_parser(sub: Any) -> None:
    """Declare ``state restore`` and ``state sync`` under the site CLI's subcommands."""
    state = sub.add_parser(
        "state",
        help="the workload's state directory: restore (init container), sync (sidecar)",
        description="Settings from the environment: HFO_STATE_CREDENTIALS_URL (the agent's "
        ".../v1/state/credentials), HFO_STATE_TOKEN_FILE (its bearer token), HFO_LOG_LEVEL.",
    )
    actions = state.add_subparsers(dest="state_command", required=True, metavar="{restore,sync}")
    restore = actions.add_parser("restore", help="claim the state for the agent's lease epoch and restore it")
    sync = actions.add_parser("sync", help="upload the directory when it changes, and once more on SIGTERM")
    for parser in (restore, sync):
        parser.add_argument("--workload", required=True, help="the workload's name (a DNS label, e.g. the pod's)")
        parser.add_argument("--dir", required=True, type=Path, help="the state directory (absolute path)")
        parser.add_argument(
            "--restored-file", type=Path, help="where restore writes, and sync reads, restored.json (default DIR/..)"
        )
    restore.add_argument("--wait", type=float, default=120.0, help="seconds to wait for credentials (default 120)")
    restore.add_argument(
        "--adopt-from",
        type=Path,
        help="on the very first claim (no state in the bucket) into an empty DIR, move this directory's "
        "entries into DIR first: the state a workload kept before it had a state directory",
    )
    sync.add_argument("--interval", type=float, default=30.0, help="seconds between checks for changes (default 30)")
    sync.add_argument(
        "--final-timeout", type=float, default=10.0, help="seconds the upload on SIGTERM may take (default 10)"
    )


@dataclass(frozen=True)
class Options:
    workload: str
    directory: Path
    restored_file: Path
    agent: AgentClient
    adopt_from: Path | None = None
    wait_s: float = 0.0
    interval_s: float = 0.0
    final_timeout_s: float = 0.0


def _number(value: float, name: str, low: float, high: float) -> float:
    if not low <= value <= high:  # also refuses NaN
        raise StateConfigError(f"{name} {value:g} is out of range ({low:g} to {high:g})")
    return value


def options(args: argparse.Namespace, env: Mapping[str, str]) -> Options:
    """Every argument and setting checked before anything is read or written: StateConfigError
    names the first wrong one."""
    command = args.state_command
    try:
        workload = check_workload(args.workload)
    except ValueError as exc:
        raise StateConfigError(f"--workload: {exc}") from None
    directory: Path = args.dir
    if not directory.is_absolute():
        raise StateConfigError(f"--dir: {directory} is not an absolute path")
    if directory.is_symlink() or (directory.exists() and not directory.is_dir()):
        raise StateConfigError(f"--dir: {directory} is not a directory")
    if command == "sync" and not directory.is_dir():
        raise StateConfigError(f"--dir: {directory} does not exist (the restore creates it)")
    if not directory.parent.is_dir():
        raise StateConfigError(f"--dir: the parent of {directory} does not exist")
    restored_file: Path = args.restored_file or directory.parent / "restored.json"
    if not restored_file.is_absolute():
        raise StateConfigError(f"--restored-file: {restored_file} is not an absolute path")
    if restored_file.is_relative_to(directory):
        raise StateConfigError(f"--restored-file: {restored_file} is inside --dir (it would be uploaded as state)")
    if not restored_file.parent.is_dir():
        raise StateConfigError(f"--restored-file: the directory of {restored_file} does not exist")
    level = env.get("HFO_LOG_LEVEL", "INFO").upper()
    if level not in _LEVELS:
        raise StateConfigError(f"HFO_LOG_LEVEL: {level!r} is not one of {', '.join(_LEVELS)}")
    url = env.get("HFO_STATE_CREDENTIALS_URL", "")
    if not url:
        raise StateConfigError("HFO_STATE_CREDENTIALS_URL: is required (the agent's .../v1/state/credentials)")
    token = env.get("HFO_STATE_TOKEN_FILE", "")
    if not token:
        raise StateConfigError("HFO_STATE_TOKEN_FILE: is required (the file holding the agent's bearer token)")
    agent = AgentClient(url, Path(token))
    if command == "restore":
        wait = _number(args.wait, "--wait", 1.0, 3600.0)
        adopt_from: Path | None = args.adopt_from
        if adopt_from is not None:
            if not adopt_from.is_absolute() or adopt_from.is_symlink() or not adopt_from.is_dir():
                raise StateConfigError(f"--adopt-from: {adopt_from} is not an absolute path of a directory")
            if adopt_from.is_relative_to(directory):
                raise StateConfigError(f"--adopt-from: {adopt_from} is inside --dir")
        return Options(workload, directory, restored_file, agent, adopt_from=adopt_from, wait_s=wait)
    interval = _number(args.interval, "--interval", 0.1, 86400.0)
    final = _number(args.final_timeout, "--final-timeout", 1.0, 300.0)
    return Options(workload, directory, restored_file, agent, interval_s=interval, final_timeout_s=final)


def main(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> int:
    command = f"hfo-site state {args.state_command}"
    try:
        opts = options(args, os.environ if env is None else env)
    except StateConfigError as exc:
        print(f"{command}: bad argument: {exc}", file=sys.stderr)
        return EXIT_USAGE
    setup_logging(os.environ.get("HFO_LOG_LEVEL", "INFO").upper())
    if args.state_command == "restore":
        return run_restore(opts)
    return run_sync(opts, stop_on_signals())


STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})


def stop_on_signals() -> threading.Event:
    """An event set by the first SIGTERM or SIGINT. Not from a signal handler: a handler runs in the
    main thread between two bytecodes, possibly while that thread holds the event's own lock (on
    its way into or out of `stop.wait`), and `Event.set` there deadlocks the sync, which then makes
    no final upload (CI caught it: a SIGTERM that landed just after the sync's start line). The
    signals are blocked instead, and a thread of its own takes them with `sigwait`. Call it from the
    main thread before any other thread starts, so that every thread inherits the mask."""
    stop = threading.Event()
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)

    def wait_for_signal() -> None:
        signum = signal.sigwait(STOP_SIGNALS)
        log.info("stop requested: final upload", extra={"signal": signal.Signals(signum).name})
        stop.set()

    threading.Thread(target=wait_for_signal, name="stop-signals", daemon=True).start()
    return stop


# -- content ---------------------------------------------------------------------------------------
def content_digest(directory: Path) -> str:
    """A digest of what the bot would find again after a restore: every path, its kind, its
    executable bit and its bytes (modification times are left out, so rewriting a file with the same
    bytes is no change). A symlink or special file counts by name, so it shows as a change and the
    upload then refuses it with its reason."""
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(directory, followlinks=False):
        dirs.sort()
        base = Path(root)
        for name in [*dirs, *sorted(files)]:
            path = base / name
            relative = path.relative_to(directory).as_posix()
            info = path.lstat()
            if stat.S_ISREG(info.st_mode):
                digest.update(f"f {relative} {int(bool(info.st_mode & 0o111))} {info.st_size}\0".encode())
                with path.open("rb") as handle:
                    while chunk := handle.read(1 << 16):
                        digest.update(chunk)
            else:
                digest.update(f"{'d' if stat.S_ISDIR(info.st_mode) else 'x'} {relative}\0".encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class Restored:
    workload: str
    epoch: int
    snapshot_key: str | None
    content_sha256: str | None


def write_restored(path: Path, document: dict[str, Any]) -> None:
    """Atomically: a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def read_restored(path: Path, workload: str) -> Restored | None:
    try:
        document = json.loads(path.read_text())
        if document["workload"] != workload:
            log.warning("restored file names another workload; ignored", extra={"path": str(path)})
            return None
        epoch = document["epoch"]
        if isinstance(epoch, bool) or not isinstance(epoch, int):
            raise TypeError("epoch")
        return Restored(workload, epoch, document.get("snapshot_key"), document.get("content_sha256"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        log.warning("restored file is unreadable; ignored", extra={"path": str(path)})
        return None


# -- restore ---------------------------------------------------------------------------------------
def run_restore(opts: Options) -> int:
    """Claim the state for the agent's lease epoch, restore it into the directory, write the
    restored file. Never leaves a half-restored directory; never exits 0 on the wrong state."""
    deadline = time.monotonic() + opts.wait_s
    reason = "no attempt made"
    # A new volume: the directory to adopt or restore into (its parent, the volume, was checked).
    opts.directory.mkdir(mode=0o755, exist_ok=True)
    while True:
        try:
            credentials = opts.agent.credentials()
        except (NoCredentials, AgentUnavailable) as exc:
            reason = str(exc)
        else:
            outcome = _restore_once(opts, credentials)
            if isinstance(outcome, int):
                return outcome
            reason = outcome
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        log.info("state restore waits", extra={"workload": opts.workload, "reason": reason})
        time.sleep(min(RETRY_PAUSE_S, remaining))
    print(f"hfo-site state restore: gave up after {opts.wait_s:g} s: {reason}", file=sys.stderr)
    log.error("state restore timed out", extra={"workload": opts.workload, "reason": reason})
    return EXIT_TIMEOUT


def _restore_once(opts: Options, credentials: Credentials) -> int | str:
    """An exit code, or the reason to try again."""
    workload, epoch = opts.workload, credentials.epoch
    store = credentials.store()
    try:
        observed = store.read_manifest(workload)
        kept = _kept_under_the_same_lease(opts, epoch, observed.manifest)
        if kept is not None:
            return kept
        if opts.adopt_from is not None:
            _adopt_legacy(opts, observed.manifest is None)
        claimed = claim(store, workload, epoch, credentials.site, opts.directory)
    except Fenced as exc:
        return _fail(opts, "fenced", epoch, str(exc), EXIT_FENCED)
    except (CorruptSnapshot, CorruptManifest) as exc:
        return _fail(opts, "failed", epoch, str(exc), EXIT_CORRUPT)
    except (StoreUnavailable, Conflict) as exc:
        return str(exc)
    except StateError as exc:  # the local directory cannot be adopted (a symlink, a device in it)
        return _fail(opts, "failed", epoch, str(exc), EXIT_FAILED)
    except OSError as exc:  # --adopt-from on another file system, or not writable
        return _fail(opts, "failed", epoch, f"cannot move --adopt-from's entries: {exc.strerror}", EXIT_FAILED)
    snapshot = claimed.manifest.snapshot
    write_restored(
        opts.restored_file,
        {
            "workload": workload,
            "epoch": epoch,
            "site": credentials.site,
            "snapshot_key": snapshot.key,
            "sha256": snapshot.sha256,
            "restored_epoch": claimed.restored_epoch,
            "adopted": claimed.adopted,
            "files": claimed.files,
            "content_sha256": content_digest(opts.directory),
            "at": int(time.time()),
        },
    )
    detail = "adopted the local directory (no state in the bucket yet)" if claimed.adopted else ""
    opts.agent.report(
        workload, "restored", epoch, snapshot_key=snapshot.key, restored_epoch=claimed.restored_epoch, detail=detail
    )
    log.info(
        "state restored",
        extra={
            "workload": workload,
            "epoch": epoch,
            "restored_epoch": claimed.restored_epoch,
            "files": claimed.files,
            "adopted": claimed.adopted,
            "snapshot_key": snapshot.key,
        },
    )
    return EXIT_OK


def _kept_under_the_same_lease(opts: Options, epoch: int, stored: Manifest | None) -> int | None:
    """A pod restarted under the lease it restored for (a crash, a node reboot: no final upload),
    with its volume: this directory was restored under ``epoch``, the manifest is still at ``epoch``,
    and only this pod's sidecar wrote under it from this very directory, so the directory holds the
    last upload and possibly newer writes. Keep it (restoring the manifest's snapshot would throw the
    newer writes away); the sidecar uploads the difference. None: claim as usual."""
    previous = read_restored(opts.restored_file, opts.workload)
    if previous is None or previous.epoch != epoch or stored is None or stored.epoch != epoch:
        return None
    if not opts.directory.is_dir():
        return None
    if not any(opts.directory.iterdir()) and previous.content_sha256 != content_digest(opts.directory):
        return None  # emptied since (not by the bot's own writes): restore what the manifest names
    log.info(
        "state kept: restarted under the lease it was restored for",
        extra={"workload": opts.workload, "epoch": epoch, "snapshot_key": stored.snapshot.key},
    )
    opts.agent.report(
        opts.workload,
        "restored",
        epoch,
        snapshot_key=stored.snapshot.key,
        restored_epoch=stored.snapshot_epoch,
        detail="kept the local directory: restarted under the same lease",
    )
    return EXIT_OK


def _adopt_legacy(opts: Options, first_claim: bool) -> None:
    """The first claim of a workload that kept its state elsewhere on the volume (the bot's files at
    the volume's root, from before the state component): move them into the empty state directory, so
    the claim adopts them. Never on a later claim (the bucket is the truth then), never into a
    directory that already holds something, never the state directory itself, the restored file, a
    restore's staging directory or ``lost+found``."""
    source, target = opts.adopt_from, opts.directory
    if source is None or not first_claim or any(target.iterdir()):
        return
    skip = {target.name, opts.restored_file.name, f".{opts.restored_file.name}.tmp", "lost+found"}
    moved = 0
    for entry in sorted(source.iterdir()):
        if entry.name in skip or entry.name.startswith(".restore-") or entry == target:
            continue
        os.replace(entry, target / entry.name)
        moved += 1
    log.info("adopting the state kept before the state directory", extra={"from": str(source), "entries": moved})


def _fail(opts: Options, event: str, epoch: int, reason: str, code: int) -> int:
    print(f"hfo-site state restore: {reason}", file=sys.stderr)
    log.error("state restore refused", extra={"workload": opts.workload, "epoch": epoch, "reason": reason})
    opts.agent.report(opts.workload, event, epoch, detail=reason)
    return code


# -- sync ------------------------------------------------------------------------------------------
class _Sync:
    def __init__(self, opts: Options) -> None:
        self.opts = opts
        restored = read_restored(opts.restored_file, opts.workload)
        self.epoch: int | None = restored.epoch if restored else None
        self.last_key: str | None = restored.snapshot_key if restored else None
        self.last_digest: str | None = restored.content_sha256 if restored else None
        self.credentials: Credentials | None = None
        self.fenced: str | None = None
        self.last_error: str | None = None
        self.uploads = 0

    def current_credentials(self) -> Credentials:
        """The agent's current credentials, asked at every tick and before every upload (a local
        request), so a changed epoch is seen at once. When the agent has none to give (the lease
        moved to none for a planned handover: 409) or cannot be reached, the cached set serves while
        it is valid: the final upload under the old epoch is what makes the handover lossless, and
        the manifest's fencing, not the credentials, decides whether it is accepted."""
        cached = self.credentials
        try:
            fresh = self.opts.agent.credentials()
        except (NoCredentials, AgentUnavailable):
            if cached is not None and not cached.expires_within(5.0):
                return cached
            raise
        if self.epoch is None:
            self.epoch = fresh.epoch
        elif fresh.epoch != self.epoch:
            self.fence(
                f"the agent's lease is now at epoch {fresh.epoch}; this pod claimed epoch {self.epoch} "
                "and belongs to an older lease"
            )
            raise NoCredentials("epoch_changed", "the pod belongs to an older lease")
        self.credentials = fresh
        return fresh

    def refresh(self) -> None:
        try:
            self.current_credentials()
        except (NoCredentials, AgentUnavailable) as exc:
            if self.fenced is None:
                log.warning("no state credentials from the agent yet", extra={"reason": str(exc)})

    def fence(self, reason: str) -> None:
        if self.fenced is None:
            self.fenced = reason
            log.error("state sync fenced: no more uploads", extra={"workload": self.opts.workload, "reason": reason})
            self.opts.agent.report(self.opts.workload, "fenced", self.epoch or 0, detail=reason)

    def upload(self, event: str) -> bool | None:
        """Publish when the content changed: True uploaded, False unchanged, None refused or failed."""
        opts = self.opts
        digest = content_digest(opts.directory)
        if digest == self.last_digest:
            return False
        try:
            credentials = self.current_credentials()
            published = publish(credentials.store(), opts.workload, credentials.epoch, credentials.site, opts.directory)
        except Fenced as exc:
            self.fence(str(exc))
            return None
        except (NoCredentials, AgentUnavailable, StateError) as exc:
            if self.fenced is None:
                self.failed(str(exc), permanent=isinstance(exc, (NotClaimed, CorruptManifest)))
            return None
        self.last_digest, self.last_key, self.last_error = digest, published.manifest.snapshot.key, None
        self.uploads += 1
        log.info(
            "state uploaded",
            extra={"workload": opts.workload, "epoch": published.manifest.epoch, "snapshot_key": self.last_key},
        )
        if event == "uploaded":
            opts.agent.report(opts.workload, "uploaded", published.manifest.epoch, snapshot_key=self.last_key)
        return True

    def failed(self, reason: str, *, permanent: bool) -> None:
        level = logging.ERROR if permanent else logging.WARNING
        log.log(level, "state upload failed; retrying at the next interval", extra={"reason": reason})
        if reason != self.last_error:  # one report per distinct failure, not one per interval
            self.last_error = reason
            self.opts.agent.report(self.opts.workload, "failed", self.epoch or 0, detail=reason)


def run_sync(opts: Options, stop: threading.Event) -> int:
    """Until ``stop`` is set: every interval, publish the directory if its content changed. Then
    one final upload, bounded by ``--final-timeout``. Exit 0 after it, 3 when fenced, 1 when the
    final upload failed or timed out."""
    sync = _Sync(opts)
    # Credentials are fetched at start and kept fresh on their own cadence, whatever the interval:
    # the final upload must find a valid set even after the lease has moved on (409 from the agent).
    sync.refresh()
    log.info(
        "state sync started",
        extra={
            "workload": opts.workload,
            "epoch": sync.epoch,
            "interval_s": opts.interval_s,
            "credentials": sync.credentials is not None,
        },
    )
    next_check = time.monotonic() + opts.interval_s
    while not stop.wait(max(0.0, min(CREDENTIALS_TICK_S, next_check - time.monotonic()))):
        if sync.fenced is None:
            sync.refresh()
        if time.monotonic() >= next_check:
            if sync.fenced is None:
                sync.upload("uploaded")
            next_check = time.monotonic() + opts.interval_s
    if sync.fenced is not None:
        print(f"hfo-site state sync: fenced: {sync.fenced}", file=sys.stderr)
        return EXIT_FENCED
    outcome: list[bool | None] = []
    worker = threading.Thread(target=lambda: outcome.append(sync.upload("final")), name="final-upload", daemon=True)
    started = time.monotonic()
    worker.start()
    worker.join(opts.final_timeout_s)
    took = time.monotonic() - started
    epoch = sync.epoch or 0
    if not outcome:
        reason = f"the final upload did not finish within {opts.final_timeout_s:g} s"
        opts.agent.report(opts.workload, "failed", epoch, detail=reason, timeout_s=1.0)
        print(f"hfo-site state sync: {reason}", file=sys.stderr)
        return EXIT_FAILED
    if sync.fenced is not None:
        print(f"hfo-site state sync: fenced: {sync.fenced}", file=sys.stderr)
        return EXIT_FENCED
    if outcome[0] is None:
        reason = f"the final upload failed: {sync.last_error}"
        print(f"hfo-site state sync: {reason}", file=sys.stderr)
        return EXIT_FAILED
    detail = "uploaded" if outcome[0] else "unchanged since the last upload"
    opts.agent.report(opts.workload, "final", epoch, snapshot_key=sync.last_key, detail=detail, timeout_s=2.0)
    log.info(
        "state sync stopped after its final upload",
        extra={"workload": opts.workload, "epoch": epoch, "changed": outcome[0], "seconds": round(took, 3)},
    )
    return EXIT_OK
