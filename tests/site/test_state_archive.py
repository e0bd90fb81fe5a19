"""Snapshots of a state directory (hfo_site.state.archive): what the bot wrote comes back as it
was, and an archive that tries to write outside the state directory, through a link, or more than
the cap is refused with its reason and leaves the directory untouched."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest
from hfo_site.state import StateError, UnsafeArchive, pack, unpack


def archive(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, content in members:
            if content is not None:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
            else:
                tar.addfile(info)
    return buffer.getvalue()


def regular(name: str, content: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), content


def special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info, None


@pytest.fixture
def target(tmp_path: Path) -> Path:
    directory = tmp_path / "state"
    directory.mkdir()
    (directory / "keep").write_text("before")
    return directory


def test_round_trip_keeps_files_dirs_and_the_executable_bit(tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "positions" / "empty").mkdir(parents=True)
    (source / "positions" / "btc.json").write_text('{"qty": 1}')
    (source / "run.sh").write_text("#!/bin/sh\n")
    (source / "run.sh").chmod(0o755)
    packed = pack(source)
    assert packed.files == 2 and packed.size == len(packed.data)
    restored = tmp_path / "restored"
    assert unpack(packed.data, restored) == 2
    assert (restored / "positions" / "btc.json").read_text() == '{"qty": 1}'
    assert (restored / "positions" / "empty").is_dir()
    assert os.access(restored / "run.sh", os.X_OK)
    assert pack(source).sha256 == packed.sha256  # the same directory packs to the same bytes


def test_restore_replaces_the_directory_content(tmp_path: Path, target: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "new").write_text("after")
    unpack(pack(source).data, target)
    assert sorted(p.name for p in target.iterdir()) == ["new"]


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        ((regular("../escape"),), "leaves the state directory"),
        ((regular("a/../../escape"),), "leaves the state directory"),
        ((regular("/etc/passwd"),), "absolute path"),
        ((special("link", tarfile.SYMTYPE, "/etc/passwd"),), "link"),
        ((special("link", tarfile.SYMTYPE, "inside"),), "link"),
        ((regular("f"), special("hard", tarfile.LNKTYPE, "f")), "link"),
        ((special("dev", tarfile.CHRTYPE),), "special file"),
        ((special("fifo", tarfile.FIFOTYPE),), "special file"),
        ((regular("twice"), regular("twice")), "appears twice"),
        ((regular("file"), regular("file/under")), "crosses a file"),
    ],
)
def test_unsafe_archives_are_refused_and_the_directory_is_untouched(
    target: Path, members: tuple[tuple[tarfile.TarInfo, bytes | None], ...], reason: str
) -> None:
    with pytest.raises(UnsafeArchive, match=reason):
        unpack(archive(*members), target)
    assert [p.name for p in target.iterdir()] == ["keep"]
    assert not (target.parent / "escape").exists()
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".restore-")]  # staging removed


def test_a_decompression_bomb_stops_at_the_cap(target: Path) -> None:
    bomb = archive(regular("zeros", b"\0" * (4 << 20)))
    assert len(bomb) < 10_000
    with pytest.raises(UnsafeArchive, match="more than 1048576 bytes"):
        unpack(bomb, target, max_unpacked_bytes=1 << 20)
    with pytest.raises(UnsafeArchive, match="more than 3 members"):
        unpack(archive(*(regular(f"f{i}") for i in range(5))), target, max_members=3)
    assert [p.name for p in target.iterdir()] == ["keep"]


@pytest.mark.parametrize("data", [b"", b"not gzip at all", archive(regular("f"))[:-20]])
def test_garbage_is_not_a_snapshot(target: Path, data: bytes) -> None:
    with pytest.raises(UnsafeArchive, match="not a readable"):
        unpack(data, target)
    assert [p.name for p in target.iterdir()] == ["keep"]


def test_pack_refuses_what_restore_would_refuse(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "link").symlink_to("/etc/hostname")
    with pytest.raises(StateError, match="'link', which is not a regular file"):
        pack(source)
    with pytest.raises(StateError, match="does not exist"):
        pack(tmp_path / "missing")
