"""lambda/build.py: the watchdog's Lambda package. Same sources give the same bytes (so an
unchanged tree never redeploys), the package is complete without boto3 and holds only the code
the Lambda handlers import (no harness, no test helper, no CLI), and bad inputs (a lock that
lags the requirements, an unpinned requirement, a tampered wheel) stop the build with a message
that says what to do."""

from __future__ import annotations

import base64
import hashlib
import modulefinder
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest
from testsupport.tools import REPO_ROOT


@pytest.fixture
def sources(tmp_path: Path) -> tuple[Path, ...]:
    """Copies of the two source packages, so the tests can touch and change them."""
    copies = []
    for package in ("lambda/src/hfo_watchdog", "protocol/src/hfo_protocol"):
        dest = tmp_path / "src" / Path(package).name
        shutil.copytree(REPO_ROOT / package, dest, ignore=shutil.ignore_patterns("__pycache__"))
        copies.append(dest)
    return tuple(copies)


def build(lambda_build: ModuleType, out: Path, sources: tuple[Path, ...], **kwargs: object):
    wheelhouse = lambda_build.DEFAULT_WHEELHOUSE
    return lambda_build.build(out=out, wheelhouse=wheelhouse, offline=True, sources=sources, **kwargs)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_sources_same_bytes(lambda_build: ModuleType, lambda_zip: Path, sources: tuple[Path, ...], tmp_path: Path):
    first = build(lambda_build, tmp_path / "a.zip", sources)
    # Different mtimes, a stray cache directory and a different output path change nothing.
    for path in sources[0].rglob("*.py"):
        os.utime(path, (1_000_000_000, 1_000_000_000))
    (sources[0] / "__pycache__").mkdir()
    (sources[0] / "__pycache__" / "model.cpython-312.pyc").write_bytes(b"\0junk")
    second = build(lambda_build, tmp_path / "elsewhere" / "b.zip", sources)
    assert first.sha256_hex == second.sha256_hex == sha256(second.path)
    # And the same as the session's package built from the repository itself.
    assert sha256(lambda_zip) == first.sha256_hex


def test_changed_source_changes_the_hash(lambda_build: ModuleType, sources: tuple[Path, ...], tmp_path: Path):
    before = build(lambda_build, tmp_path / "a.zip", sources)
    model = sources[0] / "core" / "model.py"
    model.write_text(model.read_text() + "\n# changed\n")
    after = build(lambda_build, tmp_path / "b.zip", sources)
    assert before.sha256_hex != after.sha256_hex


def test_entries_are_sorted_with_fixed_times_and_modes(lambda_zip: Path) -> None:
    with zipfile.ZipFile(lambda_zip) as zf:
        infos = zf.infolist()
    names = [i.filename for i in infos]
    assert names == sorted(names)
    assert len(names) == len(set(names))
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.external_attr >> 16 for i in infos} == {0o100644}
    assert not any("__pycache__" in n or n.endswith((".pyc", ".pyo")) or n.endswith("/") for n in names)


def test_package_holds_the_code_and_pinned_dependencies_but_not_boto3(
    lambda_build: ModuleType, lambda_zip: Path
) -> None:
    with zipfile.ZipFile(lambda_zip) as zf:
        names = zf.namelist()
    tops = {n.split("/", 1)[0] for n in names}
    assert {"hfo_watchdog", "hfo_protocol", "requests", "aws_lambda_powertools", "urllib3"} <= tops
    assert not tops & {"boto3", "botocore", "s3transfer"}
    # Every locked package is in, at its locked version (its dist-info).
    for pin in lambda_build.read_lock():
        dist = pin.name.replace("-", "_")
        assert any(t.lower() == f"{dist}-{pin.version}.dist-info".lower() for t in tops), pin
    # Pure Python only: the same package runs on arm64 and x86_64.
    assert not any(n.endswith((".so", ".pyd", ".dylib")) for n in names)


OUR_PACKAGES = ("hfo_watchdog", "hfo_protocol")


def packed_modules(zip_path: Path) -> set[str]:
    """The dotted names of our Python modules in a package."""
    with zipfile.ZipFile(zip_path) as zf:
        names = [n for n in zf.namelist() if n.split("/", 1)[0] in OUR_PACKAGES and n.endswith(".py")]
    return {n.removesuffix(".py").removesuffix("/__init__").replace("/", ".") for n in names}


def test_package_holds_exactly_the_modules_the_handlers_import(lambda_zip: Path) -> None:
    """Production is what Lambda calls, hfo_watchdog.handlers. What it can load is computed here
    apart from build.py, by the standard library's modulefinder (it follows every import
    statement of every module reached, those inside functions too), and must be what the
    package holds: nothing more (no drill, no test helper, no CLI), nothing less."""
    finder = modulefinder.ModuleFinder(path=[str(REPO_ROOT / "lambda" / "src"), str(REPO_ROOT / "protocol" / "src")])
    finder.import_hook("hfo_watchdog.handlers")
    reached = {name for name in finder.modules if name.split(".")[0] in OUR_PACKAGES}
    packed = packed_modules(lambda_zip)
    assert packed - reached == set(), "modules production never imports are in the Lambda package"
    assert reached - packed == set(), "modules the handlers import are missing from the Lambda package"
    assert "hfo_watchdog.cli" not in packed and "hfo_watchdog.core.engine" in packed
    assert "hfo_watchdog.doctor" not in packed  # `hfo doctor` runs on the user's machine only
    with zipfile.ZipFile(lambda_zip) as zf:
        tops = {n.split("/", 1)[0] for n in zf.namelist()}
    assert not tops & {"hfo_drill", "testsupport", "tests", "hfo_site", "hfo_bot"}


def test_a_module_no_handler_imports_stays_out_until_one_does(
    lambda_build: ModuleType, sources: tuple[Path, ...], tmp_path: Path
) -> None:
    watchdog = sources[0]
    (watchdog / "harness.py").write_text("import moto\n")
    (watchdog / "core" / "unused.py").write_text("ANSWER = 42\n")
    before = packed_modules(build(lambda_build, tmp_path / "a.zip", sources).path)
    assert {"hfo_watchdog.harness", "hfo_watchdog.core.unused"}.isdisjoint(before)
    # An import inside a function of a module the handlers reach is enough to ship it.
    tick = watchdog / "tick.py"
    tick.write_text(
        tick.read_text() + "\n\ndef _later() -> None:\n    from hfo_watchdog.core import unused  # noqa: F401\n"
    )
    after = packed_modules(build(lambda_build, tmp_path / "b.zip", sources).path)
    assert after - before == {"hfo_watchdog.core.unused"}


def test_package_imports_on_its_own(lambda_zip: Path, tmp_path: Path) -> None:
    """What the Lambda runtime does: the package directory first on sys.path."""
    task = tmp_path / "task"
    with zipfile.ZipFile(lambda_zip) as zf:
        zf.extractall(task)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import hfo_protocol, hfo_watchdog.core.model, requests, aws_lambda_powertools;"
        "print(requests.__file__); print(hfo_protocol.__file__); print(aws_lambda_powertools.__file__)"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", code, str(task)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert all(line.startswith(str(task)) for line in result.stdout.split())


def test_lock_lagging_the_requirements_stops_the_build(
    lambda_build: ModuleType, sources: tuple[Path, ...], tmp_path: Path
) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("aws-lambda-powertools==9.9.9\nrequests==2.34.2\nboto3==1.44.5\n")
    stale = r"aws-lambda-powertools==9\.9\.9 \(lock: 3\.37\.0\).*build\.py lock"
    with pytest.raises(lambda_build.BuildError, match=stale):
        build(lambda_build, tmp_path / "x.zip", sources, requirements=requirements)
    assert not (tmp_path / "x.zip").exists()


def test_unpinned_requirement_is_refused(lambda_build: ModuleType, sources: tuple[Path, ...], tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# runtime\nrequests>=2\n")
    with pytest.raises(lambda_build.BuildError, match=r"requirements\.txt line 2: 'requests>=2' is not pinned"):
        build(lambda_build, tmp_path / "x.zip", sources, requirements=requirements)


def test_tampered_wheel_is_refused(lambda_build: ModuleType, sources: tuple[Path, ...], tmp_path: Path) -> None:
    wheelhouse = tmp_path / "wheels"
    shutil.copytree(lambda_build.DEFAULT_WHEELHOUSE, wheelhouse)
    victim = next(wheelhouse.glob("requests-*.whl"))
    victim.write_bytes(victim.read_bytes() + b"\0")
    with pytest.raises(lambda_build.BuildError, match=r"pip download failed|not matching its locked sha256"):
        lambda_build.build(out=tmp_path / "x.zip", wheelhouse=wheelhouse, offline=True, sources=sources)
    assert not (tmp_path / "x.zip").exists()


def test_two_inputs_with_one_path_are_refused(lambda_build: ModuleType, tmp_path: Path) -> None:
    entries = [("pkg/__init__.py", b"a = 1\n"), ("pkg/__init__.py", b"a = 2\n")]
    with pytest.raises(lambda_build.BuildError, match=r"two inputs provide 'pkg/__init__.py'"):
        lambda_build.write_zip(entries, tmp_path / "x.zip")


def test_cli_prints_the_hash_terraform_compares(lambda_build: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "cli.zip"
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "lambda" / "build.py"), "--offline", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    expected = base64.b64encode(hashlib.sha256(out.read_bytes()).digest()).decode()  # filebase64sha256()
    assert f"source_code_hash {expected}" in result.stdout
