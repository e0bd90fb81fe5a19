"""Snapshots of a state directory: a gzip'd tar of its regular files and directories, and a
safe extraction (docs/state-handoff.md#snapshots).

Extraction never trusts the archive: every member must be a regular file or a directory with a
relative path that stays inside the target (no absolute path, no ``..``, no link, no device),
and the archive's total size, member count and each member's size are capped (a small
compressed archive cannot fill the disk). The members are written into a fresh directory beside
the target, which replaces the target's content only once the whole archive was read: a refused
archive leaves the target as it was.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import stat
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from hfo_site.state.errors import StateError, UnsafeArchive

DEFAULT_MAX_UNPACKED_BYTES = 1 << 30  # 1 GiB
DEFAULT_MAX_MEMBERS = 100_000
_CHUNK = 1 << 16


@dataclass(frozen=True)
class Packed:
    data: bytes
    sha256: str
    size: int
    files: int


def pack(directory: Path) -> Packed:
    """The directory's regular files and subdirectories, sorted, with normalised owners and
    modes (0o644/0o755 kept only as "executable or not"), as a .tar.gz. A symlink, socket or
    device in the directory is refused (StateError): the restore would refuse it too."""
    if not directory.is_dir():
        raise StateError(f"state directory {directory} does not exist or is not a directory")
    buffer = io.BytesIO()
    files = 0
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as tar:
        for path in sorted(_walk(directory)):
            relative = path.relative_to(directory).as_posix()
            info = path.lstat()
            member = tarfile.TarInfo(relative)
            member.mtime = int(info.st_mtime)
            member.uid = member.gid = 0
            member.uname = member.gname = ""
            if stat.S_ISDIR(info.st_mode):
                member.type = tarfile.DIRTYPE
                member.mode = 0o755
                tar.addfile(member)
            elif stat.S_ISREG(info.st_mode):
                member.size = info.st_size
                member.mode = 0o755 if info.st_mode & 0o111 else 0o644
                with path.open("rb") as handle:
                    tar.addfile(member, handle)
                files += 1
            else:
                raise StateError(f"state directory holds {relative!r}, which is not a regular file or directory")
    data = buffer.getvalue()
    return Packed(data=data, sha256=hashlib.sha256(data).hexdigest(), size=len(data), files=files)


def _walk(directory: Path) -> list[Path]:
    found: list[Path] = []
    for root, dirs, files in os.walk(directory, followlinks=False):
        base = Path(root)
        found.extend(base / name for name in dirs)
        found.extend(base / name for name in files)
    return found


def unpack(
    data: bytes,
    target: Path,
    *,
    max_unpacked_bytes: int = DEFAULT_MAX_UNPACKED_BYTES,
    max_members: int = DEFAULT_MAX_MEMBERS,
) -> int:
    """Replace the content of ``target`` (created if missing) with the archive's; returns the
    number of files written. UnsafeArchive (target untouched) on any unsafe or oversized member."""
    target.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".restore-", dir=target.parent))
    try:
        files = _extract_into(data, staging, max_unpacked_bytes=max_unpacked_bytes, max_members=max_members)
        _replace_content(target, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return files


def _safe_parts(name: str) -> tuple[str, ...]:
    if not name or "\x00" in name or "\\" in name:
        raise UnsafeArchive(f"archive member name {name!r} is empty or holds a NUL or a backslash")
    path = PurePosixPath(name)
    if path.is_absolute():
        raise UnsafeArchive(f"archive member {name!r} has an absolute path")
    parts = tuple(p for p in path.parts if p != ".")
    if not parts or ".." in parts:
        raise UnsafeArchive(f"archive member {name!r} leaves the state directory ('..' or no name)")
    return parts


def _extract_into(data: bytes, staging: Path, *, max_unpacked_bytes: int, max_members: int) -> int:
    total = 0
    members = 0
    files = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for member in tar:
                members += 1
                if members > max_members:
                    raise UnsafeArchive(f"archive has more than {max_members} members")
                parts = _safe_parts(member.name)
                destination = staging.joinpath(*parts)
                if member.isdir():
                    _make_dirs(staging, parts)
                    continue
                if not member.isreg():
                    raise UnsafeArchive(f"archive member {member.name!r} is a link or a special file, not allowed")
                total += member.size
                if total > max_unpacked_bytes:
                    raise UnsafeArchive(f"archive unpacks to more than {max_unpacked_bytes} bytes")
                _make_dirs(staging, parts[:-1])
                if destination.exists() or destination.is_symlink():
                    raise UnsafeArchive(f"archive member {member.name!r} appears twice")
                source = tar.extractfile(member)
                if source is None:  # pragma: no cover - isreg() members always have a file object
                    raise UnsafeArchive(f"archive member {member.name!r} has no content")
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
                mode = 0o755 if member.mode & 0o111 else 0o644
                with os.fdopen(os.open(destination, flags, mode), "wb") as out:
                    written = 0
                    while chunk := source.read(_CHUNK):
                        written += len(chunk)
                        if written > member.size:
                            raise UnsafeArchive(f"archive member {member.name!r} is longer than it says")
                        out.write(chunk)
                os.utime(destination, (member.mtime, member.mtime))
                files += 1
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise UnsafeArchive(f"snapshot is not a readable .tar.gz: {type(exc).__name__}") from None
    return files


def _make_dirs(staging: Path, parts: tuple[str, ...]) -> None:
    current = staging
    for part in parts:
        current = current / part
        if current.is_symlink() or (current.exists() and not current.is_dir()):
            raise UnsafeArchive(f"archive member path {'/'.join(parts)!r} crosses a file")
        current.mkdir(mode=0o755, exist_ok=True)


def _replace_content(target: Path, staging: Path) -> None:
    for entry in list(target.iterdir()):
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    for entry in list(staging.iterdir()):
        os.replace(entry, target / entry.name)
