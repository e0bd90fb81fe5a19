"""``hfo-site state restore`` and ``hfo-site state sync`` as the init container and the sidecar run
them: real child processes, a real moto S3 server, and the agent's two state endpoints served by a
real HTTP server on loopback (testsupport.state_agent). The children get no AWS key from their
environment: every request they sign uses the credentials the agent hands out."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from hfo_drill.moto_server import MotoServer
from hfo_site.state import Manifest, S3StateStore, claim, manifest_key
from testsupport.state_agent import StandInStateAgent, standin_state_agent

pytestmark = [pytest.mark.moto, pytest.mark.network]

HFO_SITE = shutil.which("hfo-site") or str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "hfo-site")
WORKLOAD = "bot-0"
TOKEN = "state-token-" + uuid.uuid4().hex


@pytest.fixture
def bucket(aws: MotoServer) -> str:
    name = f"hfo-state-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})  # every PUT is kept
    return name


@pytest.fixture
def agent(aws: MotoServer, bucket: str) -> Iterator[StandInStateAgent]:
    with standin_state_agent(TOKEN, bucket, aws.endpoint, aws.region) as stand_in:
        yield stand_in


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "secrets" / "token"
    path.parent.mkdir()
    path.write_text(TOKEN + "\n")
    return path


def child_env(agent: StandInStateAgent, token_file: Path, **extra: str) -> dict[str, str]:
    """The pod's environment: the agent's URL and the token file, and no AWS setting at all."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HFO_", "AWS_"))}
    return {
        **clean,
        "AWS_EC2_METADATA_DISABLED": "true",
        "HFO_STATE_CREDENTIALS_URL": agent.credentials_url,
        "HFO_STATE_TOKEN_FILE": str(token_file),
        **extra,
    }


def restore(env: dict[str, str], directory: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    command = [HFO_SITE, "state", "restore", "--workload", WORKLOAD, "--dir", str(directory), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, check=False)


class Sync:
    """``hfo-site state sync`` as a child process, its stderr (JSON log lines) collected as it comes."""

    def __init__(self, env: dict[str, str], directory: Path, *args: str) -> None:
        command = [HFO_SITE, "state", "sync", "--workload", WORKLOAD, "--dir", str(directory), *args]
        self.proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.wait_for_log("state sync started")

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def logs(self) -> list[dict[str, Any]]:
        out = []
        for line in list(self.lines):
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"msg": line})
        return out

    def wait_for_log(self, message: str, timeout: float = 30.0) -> None:
        wait_until(lambda: any(entry.get("msg") == message for entry in self.logs()), timeout, message)

    def terminate(self, timeout: float = 30.0) -> tuple[int, float]:
        """SIGTERM, as the kubelet sends it; the exit code and the seconds it took to exit."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code, time.monotonic() - started

    def output(self) -> str:
        stdout = self.proc.stdout.read() if self.proc.stdout and self.proc.poll() is not None else ""
        return "".join(self.lines) + stdout

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def syncs() -> Iterator[list[Sync]]:
    started: list[Sync] = []
    yield started
    for sync in started:
        sync.kill()


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for: {what}")


def write_files(directory: Path, files: dict[str, bytes]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return directory


def replace_file(path: Path, data: bytes) -> None:
    """Write as a careful bot does (a new file renamed over the old), so no reader sees half of it."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def read_files(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def stored_manifest(bucket: str) -> Manifest:
    body = boto3.client("s3").get_object(Bucket=bucket, Key=manifest_key(WORKLOAD))["Body"].read()
    return Manifest.from_json(body, workload=WORKLOAD)


def puts(bucket: str) -> int:
    """Accepted PUTs into the bucket so far: the bucket is versioned, each PUT is one version."""
    answer = boto3.client("s3").list_object_versions(Bucket=bucket, Prefix=f"state/{WORKLOAD}/")
    return len(answer.get("Versions", []))


def assert_no_secret(agent: StandInStateAgent, text: str) -> None:
    handed_out = agent.secrets_handed_out()
    assert handed_out, "the agent handed out no credentials"
    for secret in [*handed_out, TOKEN]:
        assert secret not in text


def test_restore_on_an_empty_bucket_adopts_the_local_directory(
    agent: StandInStateAgent, token_file: Path, bucket: str, tmp_path: Path
) -> None:
    """Migrating a bot that already has state: the very first claim uploads what is there."""
    laptop = write_files(tmp_path / "laptop" / "data", {"counter": b"41", "logs/day1.log": b"started\n"})
    agent.grant(1, "primary")
    done = restore(child_env(agent, token_file), laptop)
    assert done.returncode == 0, done.stderr
    assert read_files(laptop) == {"counter": b"41", "logs/day1.log": b"started\n"}
    manifest = stored_manifest(bucket)
    assert (manifest.epoch, manifest.writer_site, manifest.snapshot_epoch) == (1, "primary", 1)
    restored = json.loads((tmp_path / "laptop" / "restored.json").read_text())
    assert restored["adopted"] is True and restored["epoch"] == 1 and restored["files"] == 2
    assert restored["snapshot_key"] == manifest.snapshot.key
    assert [r["event"] for r in agent.reports] == ["restored"]
    assert agent.reports[0]["restored_epoch"] == 1 and agent.reports[0]["snapshot_key"] == manifest.snapshot.key

    agent.grant(2, "standby")  # the standby claims it next, into a directory with leftovers
    ec2 = write_files(tmp_path / "ec2" / "data", {"leftover-of-an-old-run": b"x"})
    again = restore(child_env(agent, token_file), ec2)
    assert again.returncode == 0, again.stderr
    assert read_files(ec2) == {"counter": b"41", "logs/day1.log": b"started\n"}
    assert stored_manifest(bucket).epoch == 2
    assert json.loads((tmp_path / "ec2" / "restored.json").read_text())["restored_epoch"] == 1
    assert_no_secret(agent, done.stdout + done.stderr + again.stdout + again.stderr)


def test_the_first_restore_adopts_what_the_bot_kept_before_it_had_a_state_directory(
    agent: StandInStateAgent, token_file: Path, bucket: str, tmp_path: Path
) -> None:
    """Migration: the bot kept its files at the volume's root; the component's restore (--adopt-from
    the volume) moves them into data/ on the very first claim, so they become the first snapshot.
    On any later claim the bucket is the truth and the option moves nothing."""
    volume = write_files(tmp_path / "volume", {"start-count": b"7", "commands/sync.json": b"{}"})
    (volume / "lost+found").mkdir()
    env = child_env(agent, token_file)
    agent.grant(1, "primary")
    first = restore(env, volume / "data", "--adopt-from", str(volume))
    assert first.returncode == 0, first.stderr
    assert read_files(volume / "data") == {"start-count": b"7", "commands/sync.json": b"{}"}
    assert sorted(p.name for p in volume.iterdir()) == ["data", "lost+found", "restored.json"]
    assert json.loads((volume / "restored.json").read_text())["adopted"] is True

    other = write_files(tmp_path / "other-volume", {"stale": b"x"})
    agent.grant(2, "standby")
    second = restore(env, other / "data", "--adopt-from", str(other))
    assert second.returncode == 0, second.stderr
    assert read_files(other / "data") == {"start-count": b"7", "commands/sync.json": b"{}"}
    assert (other / "stale").read_bytes() == b"x"  # a later claim: nothing moved


def test_restore_sync_then_sigterm_loses_nothing(
    agent: StandInStateAgent, token_file: Path, bucket: str, tmp_path: Path, syncs: list[Sync]
) -> None:
    """RPO 0 on a planned stop: every byte written before SIGTERM is in the state the next holder
    restores, although the sync interval (1 h) never came: the final upload carried it all."""
    laptop = write_files(tmp_path / "laptop" / "data", {"counter": b"0"})
    env = child_env(agent, token_file)
    agent.grant(7, "primary")
    assert restore(env, laptop).returncode == 0
    sync = Sync(env, laptop, "--interval", "3600")
    syncs.append(sync)
    last = {"counter": b"1000", "positions.json": b'{"BTC": 1}', "blob.bin": os.urandom(300_000)}
    for i in range(1, 1001):  # the bot keeps writing up to the last moment
        (laptop / "counter").write_bytes(str(i).encode())
    write_files(laptop, last)
    (laptop / "gone-before-stop").write_text("x")
    (laptop / "gone-before-stop").unlink()
    agent.revoke()  # the lease moved to none (planned handover): the cached credentials still serve
    code, took = sync.terminate()
    assert code == 0, sync.output()
    assert took < 10, f"the final upload took {took:.1f} s"
    final = agent.events("final")
    assert len(final) == 1 and final[0]["epoch"] == 7 and final[0]["detail"] == "uploaded"
    assert final[0]["snapshot_key"] == stored_manifest(bucket).snapshot.key

    agent.grant(9, "standby")
    ec2 = tmp_path / "ec2" / "data"
    ec2.parent.mkdir()  # the volume; the restore creates the directory in it
    assert restore(env, ec2).returncode == 0
    assert read_files(ec2) == read_files(laptop) == {**last}
    assert stored_manifest(bucket).epoch == 9
    assert_no_secret(agent, sync.output())


def test_a_pod_that_crashed_keeps_its_newer_writes_under_the_same_lease(
    agent: StandInStateAgent, token_file: Path, bucket: str, tmp_path: Path, syncs: list[Sync]
) -> None:
    """A crash (SIGKILL: no final upload) and a restart on the same volume under the same lease: the
    restore keeps the directory, which holds the last upload and the writes made after it, and the
    new sidecar uploads them; restoring the manifest's older snapshot over them would lose them."""
    laptop = write_files(tmp_path / "laptop" / "data", {"counter": b"1"})
    env = child_env(agent, token_file)
    agent.grant(4, "primary")
    assert restore(env, laptop).returncode == 0
    crashed = Sync(env, laptop, "--interval", "3600")
    syncs.append(crashed)
    replace_file(laptop / "counter", b"2-never-uploaded-before-the-crash")
    crashed.kill()
    before = stored_manifest(bucket)

    again = restore(env, laptop)
    assert again.returncode == 0, again.stderr
    assert (laptop / "counter").read_bytes() == b"2-never-uploaded-before-the-crash"
    assert stored_manifest(bucket) == before  # nothing re-stamped: the same lease
    assert agent.events("restored")[-1]["detail"] == "kept the local directory: restarted under the same lease"
    restarted = Sync(env, laptop, "--interval", "0.2")
    syncs.append(restarted)
    wait_until(lambda: len(agent.events("uploaded")) == 1, 20, "the upload of the writes the crash left")
    assert restarted.terminate()[0] == 0

    agent.grant(5, "standby")
    ec2 = tmp_path / "ec2" / "data"
    ec2.parent.mkdir()
    assert restore(env, ec2).returncode == 0
    assert (ec2 / "counter").read_bytes() == b"2-never-uploaded-before-the-crash"

    # A directory found empty, which it was not when restored, is restored, not kept (and not uploaded).
    (ec2 / "counter").unlink()
    assert restore(env, ec2).returncode == 0
    assert (ec2 / "counter").read_bytes() == b"2-never-uploaded-before-the-crash"


def test_a_superseded_sync_stops_uploading_and_its_upload_is_refused(
    aws: MotoServer, agent: StandInStateAgent, token_file: Path, bucket: str, tmp_path: Path, syncs: list[Sync]
) -> None:
    """A laptop cut off from AWS but still running: the standby claimed epoch 2. The laptop's
    sidecar (epoch 1) reads the newer epoch, uploads nothing from then on, reports "fenced" once,
    and exits 3 on SIGTERM (not before: a crash-looping sidecar would be noise)."""
    laptop = write_files(tmp_path / "laptop" / "data", {"counter": b"1"})
    env = child_env(agent, token_file)
    agent.grant(1, "primary")
    assert restore(env, laptop).returncode == 0
    sync = Sync(env, laptop, "--interval", "0.2")
    syncs.append(sync)
    (laptop / "counter").write_bytes(b"2")
    wait_until(lambda: len(agent.events("uploaded")) == 1, 20, "the first upload")

    standby = S3StateStore(bucket, endpoint_url=aws.endpoint, region=aws.region)
    claim(standby, WORKLOAD, 2, "standby", tmp_path / "ec2" / "data")
    after_claim = stored_manifest(bucket)
    before = puts(bucket)
    (laptop / "counter").write_bytes(b"3-written-without-the-lease")
    wait_until(lambda: bool(agent.events("fenced")), 20, "the fenced report")
    (laptop / "counter").write_bytes(b"4-written-without-the-lease")
    time.sleep(1.0)  # five more intervals
    assert sync.proc.poll() is None, "a fenced sidecar keeps running until it is stopped"
    assert puts(bucket) == before, "a fenced sidecar sent a PUT"
    assert stored_manifest(bucket) == after_claim
    fenced = agent.events("fenced")
    assert len(fenced) == 1 and "epoch 2" in fenced[0]["detail"] and fenced[0]["epoch"] == 1
    code, _ = sync.terminate()
    assert code == 3
    assert stored_manifest(bucket) == after_claim
    assert not agent.events("final")
    assert_no_secret(agent, sync.output())


def test_a_sync_whose_lease_epoch_changed_stops_uploading(
    agent: StandInStateAgent, token_file: Path, bucket: str, tmp_path: Path, syncs: list[Sync]
) -> None:
    """The agent now hands out credentials of a later epoch: this pod was started for an older lease
    (the site lost and regained it); only the new pod's restore may write for the new epoch."""
    laptop = write_files(tmp_path / "laptop" / "data", {"counter": b"1"})
    env = child_env(agent, token_file)
    agent.grant(4, "primary")
    assert restore(env, laptop).returncode == 0
    agent.grant(6, "primary")
    sync = Sync(env, laptop, "--interval", "0.2")
    syncs.append(sync)
    before = puts(bucket)
    (laptop / "counter").write_bytes(b"2")
    wait_until(lambda: bool(agent.events("fenced")), 20, "the fenced report")
    assert "epoch 6" in agent.events("fenced")[0]["detail"]
    assert puts(bucket) == before
    assert sync.terminate()[0] == 3


def test_sync_uploads_only_when_the_content_changed(
    agent: StandInStateAgent, token_file: Path, bucket: str, tmp_path: Path, syncs: list[Sync]
) -> None:
    laptop = write_files(tmp_path / "laptop" / "data", {"counter": b"1", "sub/a": b"a"})
    env = child_env(agent, token_file)
    agent.grant(1, "primary")
    assert restore(env, laptop).returncode == 0
    after_restore = puts(bucket)
    assert after_restore == 2  # the adopted snapshot and the manifest
    sync = Sync(env, laptop, "--interval", "0.1")
    syncs.append(sync)
    time.sleep(1.0)  # ten intervals, nothing changed since the restore
    assert puts(bucket) == after_restore
    replace_file(laptop / "counter", b"2")
    wait_until(lambda: len(agent.events("uploaded")) == 1, 20, "one upload")
    assert puts(bucket) == after_restore + 2  # one snapshot, one manifest
    replace_file(laptop / "counter", b"2")  # same bytes, new file and mtime: no change
    os.utime(laptop / "sub" / "a", (1, 1))
    time.sleep(1.0)
    assert puts(bucket) == after_restore + 2
    replace_file(laptop / "sub" / "b", b"b")
    wait_until(lambda: len(agent.events("uploaded")) == 2, 20, "a second upload")
    assert puts(bucket) == after_restore + 4
    code, _ = sync.terminate()
    assert code == 0
    assert puts(bucket) == after_restore + 4, "the final upload of unchanged content sent a PUT"
    assert agent.events("final")[0]["detail"] == "unchanged since the last upload"


def test_restore_refuses_a_corrupt_snapshot_with_exit_4_and_writes_nothing(
    agent: StandInStateAgent, token_file: Path, bucket: str, tmp_path: Path
) -> None:
    env = child_env(agent, token_file)
    agent.grant(1, "primary")
    assert restore(env, write_files(tmp_path / "laptop" / "data", {"counter": b"1" * 1000})).returncode == 0
    s3 = boto3.client("s3")
    key = stored_manifest(bucket).snapshot.key
    data = bytearray(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    data[len(data) // 2] ^= 0xFF
    s3.put_object(Bucket=bucket, Key=key, Body=bytes(data))
    before = s3.get_object(Bucket=bucket, Key=manifest_key(WORKLOAD))["Body"].read()

    agent.grant(2, "standby")
    ec2 = write_files(tmp_path / "ec2" / "data", {"untouched": b"yes"})
    refused = restore(env, ec2)
    assert refused.returncode == 4, refused.stderr
    assert "sha256" in refused.stderr and key in refused.stderr
    assert read_files(ec2) == {"untouched": b"yes"}
    assert sorted(p.name for p in (tmp_path / "ec2").iterdir()) == ["data"]  # no restored.json, no staging left
    assert s3.get_object(Bucket=bucket, Key=manifest_key(WORKLOAD))["Body"].read() == before
    failed = agent.events("failed")
    assert len(failed) == 1 and failed[0]["epoch"] == 2


def test_restore_of_a_fenced_epoch_exits_3(
    aws: MotoServer, agent: StandInStateAgent, token_file: Path, bucket: str, tmp_path: Path
) -> None:
    claim(S3StateStore(bucket, endpoint_url=aws.endpoint), WORKLOAD, 5, "standby", write_files(tmp_path / "s", {}))
    agent.grant(4, "primary")  # an agent whose view is older than the state
    laptop = write_files(tmp_path / "laptop" / "data", {"mine": b"1"})
    refused = restore(child_env(agent, token_file), laptop)
    assert refused.returncode == 3
    assert "epoch 5" in refused.stderr and "epoch 4" in refused.stderr
    assert read_files(laptop) == {"mine": b"1"}
    assert [r["event"] for r in agent.reports] == ["fenced"]


def test_restore_waits_for_the_lease_within_its_bound(
    agent: StandInStateAgent, token_file: Path, bucket: str, tmp_path: Path
) -> None:
    env = child_env(agent, token_file)
    laptop = write_files(tmp_path / "laptop" / "data", {"mine": b"1"})
    started = time.monotonic()
    timed_out = restore(env, laptop, "--wait", "1.5")
    took = time.monotonic() - started
    assert timed_out.returncode == 5
    assert "gave up after 1.5 s" in timed_out.stderr and "no_lease" in timed_out.stderr
    assert took < 15
    assert read_files(laptop) == {"mine": b"1"}
    assert not (tmp_path / "laptop" / "restored.json").exists()

    granter = threading.Timer(1.5, agent.grant, args=(3, "primary"))
    granter.start()
    try:
        waited = restore(env, laptop, "--wait", "30")
    finally:
        granter.cancel()
    assert waited.returncode == 0, waited.stderr
    assert stored_manifest(bucket).epoch == 3


def test_a_wrong_token_is_refused_and_never_printed(agent: StandInStateAgent, token_file: Path, tmp_path: Path) -> None:
    agent.grant(1, "primary")
    wrong = tmp_path / "wrong-token"
    wrong.write_text("not-the-token-but-secret-anyway")
    refused = restore(child_env(agent, wrong), write_files(tmp_path / "d" / "data", {}), "--wait", "1")
    assert refused.returncode == 5
    assert "401" in refused.stderr and "HFO_STATE_TOKEN_FILE" in refused.stderr
    assert "not-the-token-but-secret-anyway" not in refused.stderr + refused.stdout
    assert {status for _, _, status in agent.requests} == {401}


BAD_ARGUMENTS: dict[str, tuple[list[str], dict[str, str], str]] = {
    "workload not a DNS label": (["--workload", "Bot_0"], {}, "--workload: workload name 'Bot_0' is not a DNS label"),
    "relative dir": (["--dir", "data"], {}, "--dir: data is not an absolute path"),
    "dir is a file": (["--dir", "{tmp}/a-file"], {}, "is not a directory"),
    "restored file inside dir": (["--restored-file", "{tmp}/p/data/r.json"], {}, "is inside --dir"),
    "wait of 0": (["--wait", "0"], {}, "--wait 0 is out of range"),
    "wait not a number": (["--wait", "soon"], {}, "argument --wait: invalid float value: 'soon'"),
    "no credentials URL": ([], {"HFO_STATE_CREDENTIALS_URL": ""}, "HFO_STATE_CREDENTIALS_URL: is required"),
    "URL with a password": (
        [], {"HFO_STATE_CREDENTIALS_URL": "http://u:hunter2-pass@127.0.0.1:1/v1/state/credentials"},
        "must not carry user information",
    ),
    "URL of another path": ([], {"HFO_STATE_CREDENTIALS_URL": "http://127.0.0.1:1/v1/lease"}, "must end with"),
    "no token file": ([], {"HFO_STATE_TOKEN_FILE": "{tmp}/missing"}, "TOKEN_FILE: {tmp}/missing cannot be read"),
    "short token": ([], {"HFO_STATE_TOKEN_FILE": "{tmp}/short"}, "at least 16 characters"),
    "bad log level": ([], {"HFO_LOG_LEVEL": "LOUD"}, "HFO_LOG_LEVEL: 'LOUD'"),
    "adopt from inside dir": (["--adopt-from", "{tmp}/p/data"], {}, "--adopt-from: {tmp}/p/data is inside --dir"),
    "adopt from a file": (["--adopt-from", "{tmp}/a-file"], {}, "is not an absolute path of a directory"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD_ARGUMENTS))
def test_bad_arguments_exit_2_with_a_specific_error_and_write_nothing(
    case: str, agent: StandInStateAgent, token_file: Path, bucket: str, tmp_path: Path
) -> None:
    args, env_changes, message = BAD_ARGUMENTS[case]
    agent.grant(1, "primary")
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "short").write_text("short")
    data = write_files(tmp_path / "p" / "data", {"mine": b"1"})
    fill = {"{tmp}": str(tmp_path)}

    def sub(text: str) -> str:
        for key, value in fill.items():
            text = text.replace(key, value)
        return text

    defaults = {"--workload": WORKLOAD, "--dir": str(data)}
    given = [sub(a) for a in args]
    for flag, value in defaults.items():
        if flag not in given:
            given = [flag, value, *given]
    env = child_env(agent, token_file)
    env.update({k: sub(v) for k, v in env_changes.items()})
    result = subprocess.run(
        [HFO_SITE, "state", "restore", *given], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert sub(message) in result.stderr
    assert "hunter2-pass" not in result.stderr
    assert agent.requests == [], "a refused command talked to the agent"
    assert read_files(data) == {"mine": b"1"}
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["data"]
    assert puts(bucket) == 0


def test_sync_refuses_bad_arguments_before_it_starts(
    agent: StandInStateAgent, token_file: Path, tmp_path: Path
) -> None:
    env = child_env(agent, token_file)
    for args, message in [
        (["--dir", str(tmp_path / "missing")], "does not exist (the restore creates it)"),
        (["--dir", str(tmp_path), "--interval", "-1"], "--interval -1 is out of range"),
        (["--dir", str(tmp_path), "--final-timeout", "0"], "--final-timeout 0 is out of range"),
    ]:
        result = subprocess.run(
            [HFO_SITE, "state", "sync", "--workload", WORKLOAD, *args],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert result.returncode == 2 and message in result.stderr, result.stderr
    assert agent.requests == []


def test_the_final_upload_is_bounded_when_the_store_hangs(
    agent: StandInStateAgent, token_file: Path, tmp_path: Path, syncs: list[Sync]
) -> None:
    """A store that accepts the connection and never answers: the sidecar gives up after
    --final-timeout, says so to the agent, and exits 1 well within the pod's termination grace."""
    laptop = write_files(tmp_path / "laptop" / "data", {"counter": b"1"})
    env = child_env(agent, token_file)
    agent.grant(1, "primary")
    assert restore(env, laptop).returncode == 0
    with socket.socket() as blackhole:
        blackhole.bind(("127.0.0.1", 0))
        blackhole.listen(16)
        agent.endpoint_url = f"http://127.0.0.1:{blackhole.getsockname()[1]}"
        agent._issued.clear()  # the next credentials of epoch 1 name the silent endpoint
        sync = Sync(env, laptop, "--interval", "3600", "--final-timeout", "2")
        syncs.append(sync)
        (laptop / "counter").write_bytes(b"2")
        code, took = sync.terminate()
    assert code == 1
    assert took < 6, f"SIGTERM to exit took {took:.1f} s"
    assert "did not finish within 2 s" in sync.output()
    assert [r["detail"] for r in agent.events("failed")] == ["the final upload did not finish within 2 s"]


# -- against the real agent ----------------------------------------------------------------------------
class RealSiteAgent:
    """The real ``hfo_site.agent.Agent`` of the primary with its real lease server (the state API of
    docs/protocol.md#state-api) on loopback, in a thread of its own. Lease answers carrying moto-valid
    credentials go through the agent's own answer path, as verified heartbeat answers do
    (tests/site/test_state_api.py does the same). Every report the agent accepted is kept in order."""

    def __init__(self, tmp_path: Path, token_file: Path, aws: MotoServer, bucket: str) -> None:
        from hfo_site.agent import Agent
        from hfo_site.metrics import AgentMetrics
        from hfo_site.secrets import SecretFile, parse_token
        from hfo_site.state_api import StateAccess, StateReport

        accepted: list[dict[str, Any]] = []

        class Recording(StateAccess):
            def record(self, report: StateReport) -> None:
                super().record(report)
                accepted.append({"workload": report.workload, **report.to_doc()})

        class Stopped:
            name = "test"

            async def start(self) -> None: ...
            async def stop(self) -> None: ...
            async def close(self) -> None: ...

            async def observe(self) -> Any:
                from hfo_site.backends.base import Observation

                return Observation("stopped", True)

        self.reports = accepted
        self.aws, self.bucket = aws, bucket
        self.access = Recording(SecretFile(token_file, parse_token, "HFO_STATE_TOKEN_FILE"))
        self.metrics = AgentMetrics()
        self.agent = Agent(
            "primary",
            Stopped(),
            None,
            None,
            self.metrics,
            interval_s=10,
            retries=0,
            state=self.access,  # type: ignore[arg-type]
        )
        self.handed_out: list[str] = []
        self.epoch = 0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="real-agent", daemon=True)
        self.thread.start()
        self.runner, lease_url = self._call(self._start())
        self.credentials_url = lease_url.removesuffix("/v1/lease") + "/v1/state/credentials"

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    async def _start(self) -> Any:
        from hfo_site.agent_main import start_lease_endpoint

        return await start_lease_endpoint(self.agent, "127.0.0.1", 0, self.metrics)

    async def _feed(self, site: str, epoch: int, with_credentials: bool) -> None:
        from hfo_protocol.heartbeat import LeaseAnswer, StateCredentials
        from hfo_protocol.nonce import new_nonce
        from hfo_site.heartbeat_client import BeatKind, BeatResult
        from hfo_site.lease import lease_clock

        creds = None
        if with_credentials:
            secret, session = "SECRET" + uuid.uuid4().hex * 2, "SESSION" + uuid.uuid4().hex * 6
            self.handed_out += [secret, session]
            creds = StateCredentials(
                bucket=self.bucket, region=self.aws.region, endpoint_url=self.aws.endpoint, epoch=epoch, site=site,
                access_key_id="ASIA" + uuid.uuid4().hex[:16].upper(), secret_access_key=secret,
                session_token=session, expires_at=int(time.time() + 900),
            )  # fmt: skip
        answer = LeaseAnswer(new_nonce(), time.time(), site, epoch, 600, "auto", "healthy", 10, creds)
        self.agent._record(BeatResult(BeatKind.ACCEPTED, lease_clock(), "", "", 200, answer))

    def grant(self, epoch: int) -> None:
        """The watchdog's answer: the primary holds ``epoch``, with credentials for it."""
        self.epoch = epoch
        self._call(self._feed("primary", epoch, True))

    def move_to_none(self) -> None:
        """A planned handover: the lease goes to none (epoch + 1); the agent answers 409 from now on."""
        self.epoch += 1
        self._call(self._feed("none", self.epoch, False))

    def events(self, event: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.reports if event is None or r["event"] == event]

    def close(self) -> None:
        self._call(self.runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture
def real_agent(aws: MotoServer, bucket: str, token_file: Path, tmp_path: Path) -> Iterator[RealSiteAgent]:
    site = RealSiteAgent(tmp_path, token_file, aws, bucket)
    try:
        yield site
    finally:
        site.close()


def real_env(agent: RealSiteAgent, token_file: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HFO_", "AWS_"))}
    return {
        **clean,
        "AWS_EC2_METADATA_DISABLED": "true",
        "HFO_STATE_CREDENTIALS_URL": agent.credentials_url,
        "HFO_STATE_TOKEN_FILE": str(token_file),
    }


def test_with_the_real_agent_a_planned_handover_loses_nothing(
    real_agent: RealSiteAgent, token_file: Path, bucket: str, tmp_path: Path, syncs: list[Sync],
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    """The whole pod story against the agent's real state API: no lease (409, restore waits and gives
    up), adopt under epoch 3, sync, the lease moved to none for a planned handover (the agent refuses
    credentials from then on), SIGTERM: the final upload under epoch 3 is accepted with the cached
    credentials, and the holder of epoch 5 restores every byte. The agent validated and kept every
    report (its status shows the last), and neither side printed a credential or the token."""
    caplog.set_level("DEBUG")
    env = real_env(real_agent, token_file) | {"HFO_LOG_LEVEL": "DEBUG"}  # the chattiest the containers get
    laptop = write_files(tmp_path / "laptop" / "data", {"counter": b"0"})
    waited = restore(env, laptop, "--wait", "1")
    assert waited.returncode == 5 and "no_lease" in waited.stderr

    real_agent.grant(3)
    adopted = restore(env, laptop)
    assert adopted.returncode == 0, adopted.stderr
    assert stored_manifest(bucket).epoch == 3
    sync = Sync(env, laptop, "--interval", "3600")
    syncs.append(sync)
    write_files(laptop, {"counter": b"42", "ledger/2026-12-03.json": os.urandom(50_000)})
    expected = read_files(laptop)
    real_agent.move_to_none()
    code, _ = sync.terminate()
    assert code == 0, sync.output()
    assert [r["event"] for r in real_agent.reports] == ["restored", "final"]
    final = real_agent.events("final")[0]
    assert (final["epoch"], final["detail"]) == (3, "uploaded")
    assert final["snapshot_key"] == stored_manifest(bucket).snapshot.key
    status = real_agent.access.status_doc()["workloads"][WORKLOAD]
    assert (status["event"], status["epoch"]) == ("final", 3)

    real_agent.grant(5)  # back to this site after the handover, as the next holder
    again = tmp_path / "next" / "data"
    again.parent.mkdir()
    restored = restore(env, again)
    assert restored.returncode == 0, restored.stderr
    assert read_files(again) == expected
    assert real_agent.access.restored_epochs() == ((WORKLOAD, 3),)
    printed = waited.stderr + adopted.stderr + restored.stderr + sync.output() + caplog.text
    for secret in [*real_agent.handed_out, TOKEN]:
        assert secret not in printed


def test_with_the_real_agent_a_sync_from_an_older_lease_stops(
    real_agent: RealSiteAgent, token_file: Path, bucket: str, tmp_path: Path, syncs: list[Sync]
) -> None:
    """The agent now holds a later epoch (the site lost the lease and got it back while this pod
    lived on): the sidecar, started for epoch 4, sees epoch 6 in the agent's credentials, uploads
    nothing, reports fenced (accepted by the agent) and exits 3 on SIGTERM."""
    env = real_env(real_agent, token_file)
    laptop = write_files(tmp_path / "laptop" / "data", {"counter": b"1"})
    real_agent.grant(4)
    assert restore(env, laptop).returncode == 0
    sync = Sync(env, laptop, "--interval", "0.2")
    syncs.append(sync)
    real_agent.grant(6)
    before = puts(bucket)
    (laptop / "counter").write_bytes(b"2")
    wait_until(lambda: bool(real_agent.events("fenced")), 20, "the fenced report")
    assert "epoch 6" in real_agent.events("fenced")[0]["detail"]
    assert puts(bucket) == before
    assert sync.terminate()[0] == 3
    assert real_agent.access.status_doc()["workloads"][WORKLOAD]["event"] == "fenced"


# A SIGTERM that lands while the main thread holds the stop event's own lock, as it does for a few
# bytecodes on its way into and out of `stop.wait`. A signal handler calling `stop.set()` runs right
# there and deadlocks: CI caught a sync hung that way when the exec backend stopped it just after
# its start line, then killed it after the grace, without a final upload.
_STOP_IN_THE_WAIT_WINDOW = """
import os, signal, sys, time
from hfo_site.logs import setup_logging
from hfo_site.state.cli import stop_on_signals
setup_logging("INFO")
stop = stop_on_signals()
with stop._cond:  # what Event.wait holds around its inner wait (private: the point of the test)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.5)  # a handler would have run, and hung, by now
sys.exit(0 if stop.wait(10.0) else 1)
"""


def test_a_stop_signal_inside_the_wait_window_still_stops_the_sync() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _STOP_IN_THE_WAIT_WINDOW], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    assert '"msg":"stop requested: final upload"' in done.stderr.replace('": "', '":"')
    assert '"signal":"SIGTERM"' in done.stderr.replace('": "', '":"')
