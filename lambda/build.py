#!/usr/bin/env python3
"""Build the watchdog's Lambda package reproducibly: the same sources give the same zip, byte
for byte, so Terraform's source_code_hash only changes when the code or a pinned dependency
does.

    python lambda/build.py                 # -> build/lambda/hfo-watchdog.zip
    python lambda/build.py --offline       # use only wheels already in the wheelhouse
    python lambda/build.py lock            # re-pin lambda/build-lock.txt after requirements.txt changed

What goes in: the modules of hfo_watchdog (lambda/src) and hfo_protocol (protocol/src) that the
Lambda entry points import, directly or through other modules (every import statement counts,
those inside functions too); nothing the Lambda never loads, such as the `hfo` operator CLI. Plus
the runtime dependencies pinned in lambda/requirements.txt except boto3 (the Lambda runtime ships it),
resolved once into lambda/build-lock.txt with every transitive package pinned by version and
sha256. Only pure-Python wheels (platform tag ``any``) are accepted, so one package runs on
arm64 and x86_64 alike.

How it stays reproducible: entries sorted by path; every timestamp 1980-01-01 00:00:00; every
file mode 0644; no directory entries, no ``__pycache__``; fixed deflate level; wheels
verified against the lock's hashes. (zlib's output for a given input and level is stable
across the zlib versions CPython ships; a different zlib could in principle change bytes.)
"""

from __future__ import annotations

import argparse
import ast
import base64
import hashlib
import io
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

LAMBDA_DIR = Path(__file__).resolve().parent
REPO_ROOT = LAMBDA_DIR.parent
REQUIREMENTS = LAMBDA_DIR / "requirements.txt"
LOCK = LAMBDA_DIR / "build-lock.txt"
DEFAULT_OUT = REPO_ROOT / "build" / "lambda" / "hfo-watchdog.zip"
DEFAULT_WHEELHOUSE = REPO_ROOT / "build" / "lambda" / "wheels"
SOURCE_PACKAGES = (
    REPO_ROOT / "lambda" / "src" / "hfo_watchdog",
    REPO_ROOT / "protocol" / "src" / "hfo_protocol",
)
# The modules Lambda calls (terraform/modules/watchdog: hfo_watchdog.handlers.tick / .heartbeat).
ENTRY_MODULES = ("hfo_watchdog.handlers",)
# Provided by the Lambda Python runtime; packing our own would only add megabytes.
RUNTIME_PROVIDED = frozenset({"boto3", "botocore", "s3transfer"})
PYTHON_VERSION = "3.12"  # the Lambda runtime (python3.12)
FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold
FILE_MODE = 0o100644  # regular file, rw-r--r--
COMPRESS_LEVEL = 9

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!_-]+)$")
_LOCK_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)\s+--hash=sha256:([0-9a-f]{64})$")


class BuildError(Exception):
    """A build input is wrong; the message says which and how to fix it."""


def normalize(name: str) -> str:
    """PEP 503 project name normalization."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    sha256: str = ""


def read_requirements(path: Path = REQUIREMENTS) -> list[Pin]:
    """Top-level runtime pins, minus what the Lambda runtime provides. Every line must be `name==version`."""
    pins = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = _PIN.match(line)
        if not match:
            raise BuildError(f"{path.name} line {number}: {line!r} is not pinned as name==version")
        if normalize(match[1]) not in RUNTIME_PROVIDED:
            pins.append(Pin(normalize(match[1]), match[2]))
    return pins


def read_lock(path: Path = LOCK) -> list[Pin]:
    if not path.exists():
        raise BuildError(f"{path.name} is missing: run `python lambda/build.py lock`")
    pins = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LOCK_LINE.match(line)
        if not match:
            raise BuildError(f"{path.name} line {number}: expected `name==version --hash=sha256:<64 hex>`")
        pins.append(Pin(normalize(match[1]), match[2], match[3]))
    return pins


def check_lock_current(requirements: list[Pin], lock: list[Pin]) -> None:
    """Every top-level pin must be in the lock at the same version."""
    locked = {p.name: p.version for p in lock}
    stale = [
        f"{p.name}=={p.version} (lock: {locked.get(p.name, 'absent')})"
        for p in requirements
        if locked.get(p.name) != p.version
    ]
    if stale:
        raise BuildError(
            "lambda/build-lock.txt does not match lambda/requirements.txt: "
            + ", ".join(stale)
            + ". Run `python lambda/build.py lock`."
        )
    provided = sorted(p.name for p in lock if p.name in RUNTIME_PROVIDED)
    if provided:
        raise BuildError(f"lambda/build-lock.txt pins {', '.join(provided)}, which the Lambda runtime provides")


def _pip_download(args: list[str], dest: Path) -> None:
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
        "--only-binary=:all:", "--platform", "any", "--implementation", "py", "--abi", "none",
        "--python-version", PYTHON_VERSION, "--dest", str(dest), *args,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 - fixed argv
    if result.returncode != 0:
        raise BuildError(
            f"pip download failed (pure-Python wheels only, Python {PYTHON_VERSION}):\n{result.stderr.strip()}"
        )


def _wheel_identity(wheel: Path) -> tuple[str, str]:
    name, version = wheel.name.split("-")[:2]
    return normalize(name), version


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def lock(requirements: Path = REQUIREMENTS, out: Path = LOCK) -> list[Pin]:
    """Resolve the runtime pins (with their dependencies) to pure-Python wheels and pin each by hash."""
    pins = read_requirements(requirements)
    with tempfile.TemporaryDirectory() as tmp:
        _pip_download([f"{p.name}=={p.version}" for p in pins], Path(tmp))
        locked = []
        for wheel in sorted(Path(tmp).glob("*.whl")):
            name, version = _wheel_identity(wheel)
            if name not in RUNTIME_PROVIDED:
                locked.append(Pin(name, version, sha256_file(wheel)))
    lines = [
        "# Generated by `python lambda/build.py lock` from lambda/requirements.txt (minus boto3, which the",
        "# Lambda runtime provides). Every package of the Lambda zip, pinned by version and wheel sha256.",
        *(f"{p.name}=={p.version} --hash=sha256:{p.sha256}" for p in sorted(locked, key=lambda p: p.name)),
    ]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return locked


def fetch_wheels(pins: list[Pin], wheelhouse: Path, offline: bool) -> list[Path]:
    """The lock's wheels, downloaded once into the wheelhouse and verified against their hashes."""
    wheelhouse.mkdir(parents=True, exist_ok=True)
    requirement_file = wheelhouse / "locked-requirements.txt"
    requirement_file.write_text(
        "".join(f"{p.name}=={p.version} --hash=sha256:{p.sha256}\n" for p in pins), encoding="utf-8"
    )
    extra = ["--no-index", "--find-links", str(wheelhouse)] if offline else ["--find-links", str(wheelhouse)]
    _pip_download(["--no-deps", "--require-hashes", "-r", str(requirement_file), *extra], wheelhouse)
    by_identity = {_wheel_identity(w): w for w in wheelhouse.glob("*.whl")}
    wheels = []
    for pin in pins:
        wheel = by_identity.get((pin.name, pin.version))
        if wheel is None or sha256_file(wheel) != pin.sha256:
            raise BuildError(f"wheel for {pin.name}=={pin.version} missing or not matching its locked sha256")
        wheels.append(wheel)
    return wheels


def wheel_entries(wheel: Path) -> Iterator[tuple[str, bytes]]:
    """Files a wheel installs into site-packages (purelib/platlib data dirs folded in)."""
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            name = info.filename
            top, _, rest = name.partition("/")
            if top.endswith(".data"):
                kind, _, inner = rest.partition("/")
                if kind not in ("purelib", "platlib"):
                    continue  # scripts, headers, data: nothing a Lambda imports
                name = inner
            yield name, zf.read(info)


def _module_files(sources: Iterable[Path]) -> dict[str, Path]:
    """Dotted module name -> file, for every Python module of the source packages."""
    files: dict[str, Path] = {}
    for package_dir in sources:
        for path in package_dir.rglob("*.py"):
            relative = path.relative_to(package_dir.parent)
            if any(part.startswith(".") or part == "__pycache__" for part in relative.parts):
                continue
            parts = list(relative.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            files[".".join(parts)] = path
    return files


def _imported_names(path: Path, module: str, is_package: bool) -> Iterator[str]:
    """Every module name an import statement of `path` may load (at any depth of the file)."""
    tree = ast.parse(path.read_bytes(), filename=str(path))
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield target
            yield from (f"{target}.{alias.name}" for alias in node.names)  # `from pkg import submodule`


def reachable_modules(sources: Iterable[Path], entries: Iterable[str] = ENTRY_MODULES) -> set[str]:
    """The modules of the source packages that importing `entries` can load: the entries, what
    they import, what that imports, and so on, with the packages that hold each one."""
    files = _module_files(sources)
    missing = [e for e in entries if e not in files]
    if missing:
        raise BuildError(f"entry module(s) {', '.join(missing)} not found in the source packages")
    seen: set[str] = set()
    todo = list(entries)
    while todo:
        name = todo.pop()
        if name in seen or name not in files:
            continue
        seen.add(name)
        parents = name.split(".")
        todo.extend(".".join(parents[:i]) for i in range(1, len(parents)))
        path = files[name]
        todo.extend(_imported_names(path, name, path.name == "__init__.py"))
    return seen


def source_entries(package_dir: Path, modules: set[str] | None = None) -> Iterator[tuple[str, bytes]]:
    """A source package's files, as importable paths; with `modules`, only those Python modules
    (data files always). Caches and hidden files stay out."""
    if not package_dir.is_dir():
        raise BuildError(f"source package {package_dir} not found")
    base = package_dir.parent
    files = _module_files([package_dir])
    keep = None if modules is None else {files[m] for m in modules if m in files}
    for path in package_dir.rglob("*"):
        relative = path.relative_to(base)
        if path.is_dir() or any(part.startswith(".") or part == "__pycache__" for part in relative.parts):
            continue
        if path.suffix in {".pyc", ".pyo"}:
            continue
        if keep is not None and path.suffix == ".py" and path not in keep:
            continue
        yield relative.as_posix(), path.read_bytes()


def write_zip(entries: Iterable[tuple[str, bytes]], out: Path) -> None:
    """Write entries sorted by name, with fixed times and modes. Duplicate names are an error."""
    collected: dict[str, bytes] = {}
    for name, data in entries:
        if name in collected and collected[name] != data:
            raise BuildError(f"two inputs provide {name!r} with different contents")
        collected[name] = data
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name in sorted(collected):
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.external_attr = FILE_MODE << 16
            info.create_system = 3  # Unix, so the mode above is honoured on extraction
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, collected[name], compresslevel=COMPRESS_LEVEL)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(buffer.getvalue())
    os.replace(tmp, out)


@dataclass(frozen=True)
class BuildResult:
    path: Path
    size: int
    sha256_hex: str
    sha256_b64: str  # what Lambda reports as CodeSha256 and Terraform's filebase64sha256() gives


def build(
    out: Path = DEFAULT_OUT,
    wheelhouse: Path = DEFAULT_WHEELHOUSE,
    offline: bool = False,
    sources: tuple[Path, ...] = SOURCE_PACKAGES,
    requirements: Path = REQUIREMENTS,
    lock_file: Path = LOCK,
) -> BuildResult:
    pins = read_lock(lock_file)
    check_lock_current(read_requirements(requirements), pins)
    wheels = fetch_wheels(pins, wheelhouse, offline)
    modules = reachable_modules(sources)

    def everything() -> Iterator[tuple[str, bytes]]:
        for wheel in wheels:
            yield from wheel_entries(wheel)
        for package in sources:
            yield from source_entries(package, modules)

    write_zip(everything(), out)
    digest = hashlib.sha256(out.read_bytes()).digest()
    return BuildResult(out, out.stat().st_size, digest.hex(), base64.b64encode(digest).decode())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("command", nargs="?", choices=["build", "lock"], default="build")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="zip to write (default: %(default)s)")
    parser.add_argument(
        "--wheelhouse", type=Path, default=DEFAULT_WHEELHOUSE, help="wheel cache (default: %(default)s)"
    )
    parser.add_argument("--offline", action="store_true", help="use only wheels already in the wheelhouse")
    args = parser.parse_args(argv)
    try:
        if args.command == "lock":
            pins = lock()
            print(f"{LOCK.relative_to(REPO_ROOT)}: {len(pins)} packages pinned")
            return 0
        result = build(args.out, args.wheelhouse, args.offline)
    except BuildError as exc:
        print(f"build.py: {exc}", file=sys.stderr)
        return 2
    print(f"{result.path}: {result.size} bytes")
    print(f"sha256 {result.sha256_hex}")
    print(f"source_code_hash {result.sha256_b64}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
