"""The epoch-fenced state store (hfo_site.state, docs/state-handoff.md) against a real moto S3
server: round trip between the sites, claim on restore, fenced and racing writers, duplicated
requests, and tampered snapshots. Every refusal leaves the manifest and the directory as they were."""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from hfo_drill.moto_server import CREDENTIALS, MotoServer
from hfo_site.state import (
    SUPERSEDED_TAG_KEY,
    SUPERSEDED_TAG_VALUE,
    Conflict,
    CorruptManifest,
    CorruptSnapshot,
    Fenced,
    Manifest,
    NotClaimed,
    Observed,
    S3StateStore,
    SnapshotRef,
    StoreUnavailable,
    claim,
    commit,
    manifest_key,
    publish,
    restore,
)

pytestmark = pytest.mark.moto

WORKLOAD = "bot-a"


@pytest.fixture
def bucket(aws: MotoServer) -> str:
    name = f"hfo-state-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


@pytest.fixture
def store(aws: MotoServer, bucket: str) -> S3StateStore:
    # The endpoint passed explicitly, as a MinIO user would (the environment points there too).
    return S3StateStore(bucket, endpoint_url=aws.endpoint, region=aws.region)


def write_files(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return directory


def read_files(directory: Path) -> dict[str, str]:
    return {p.relative_to(directory).as_posix(): p.read_text() for p in sorted(directory.rglob("*")) if p.is_file()}


def manifest_bytes(bucket: str) -> bytes:
    return bytes(boto3.client("s3").get_object(Bucket=bucket, Key=manifest_key(WORKLOAD))["Body"].read())


def test_the_emulator_refuses_a_stale_if_match_and_an_existing_if_none_match(bucket: str) -> None:
    """The whole fencing rests on these two refusals; if a moto upgrade drops them, this fails first."""
    s3 = boto3.client("s3")
    first = s3.put_object(Bucket=bucket, Key="k", Body=b"1", IfNoneMatch="*")["ETag"]
    second = s3.put_object(Bucket=bucket, Key="k", Body=b"2", IfMatch=first)["ETag"]
    for condition in ({"IfMatch": first}, {"IfNoneMatch": "*"}):
        with pytest.raises(ClientError) as refused:
            s3.put_object(Bucket=bucket, Key="k", Body=b"3", **condition)  # type: ignore[arg-type]
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert s3.get_object(Bucket=bucket, Key="k")["ETag"] == second


def test_state_follows_the_lease_from_primary_to_standby_and_back(store: S3StateStore, tmp_path: Path) -> None:
    laptop = write_files(tmp_path / "laptop", {"counter": "41", "logs/day1.log": "started\n"})
    first = claim(store, WORKLOAD, 1, "primary", laptop)
    assert first.adopted and first.manifest.epoch == 1 and first.files == 2  # the existing data kept
    (laptop / "counter").write_text("42")
    publish(store, WORKLOAD, 1, "primary", laptop)

    ec2 = write_files(tmp_path / "ec2", {"stale-from-an-old-run": "x"})
    failover = claim(store, WORKLOAD, 2, "standby", ec2)
    assert read_files(ec2) == {"counter": "42", "logs/day1.log": "started\n"}
    assert (failover.restored_epoch, failover.manifest.epoch, failover.manifest.writer_site) == (1, 2, "standby")
    (ec2 / "counter").write_text("43")
    publish(store, WORKLOAD, 2, "standby", ec2)

    handback = claim(store, WORKLOAD, 4, "primary", laptop)  # epoch 3 was the lease's "none"
    assert read_files(laptop) == {"counter": "43", "logs/day1.log": "started\n"}
    assert handback.restored_epoch == 2
    assert Manifest.from_json(manifest_bytes(store.bucket), workload=WORKLOAD).epoch == 4


def test_a_claim_fences_every_older_writer_and_changes_nothing_for_them(store: S3StateStore, tmp_path: Path) -> None:
    laptop = write_files(tmp_path / "laptop", {"counter": "1"})
    claim(store, WORKLOAD, 1, "primary", laptop)
    claim(store, WORKLOAD, 2, "standby", tmp_path / "ec2")
    before = manifest_bytes(store.bucket)
    (laptop / "counter").write_text("999")
    with pytest.raises(Fenced) as fenced:
        publish(store, WORKLOAD, 1, "primary", laptop)
    assert (fenced.value.stored_epoch, fenced.value.own_epoch) == (2, 1)
    assert "epoch 2" in str(fenced.value) and "epoch 1" in str(fenced.value)
    with pytest.raises(Fenced):  # nor can an old holder claim again
        claim(store, WORKLOAD, 1, "primary", laptop)
    assert manifest_bytes(store.bucket) == before
    assert (laptop / "counter").read_text() == "999"  # a refused claim restored nothing over it


def test_a_paused_writer_waking_with_an_old_etag_is_always_refused(store: S3StateStore, tmp_path: Path) -> None:
    """A process frozen between its read and its write (GC pause, SIGSTOP, a suspended laptop)
    wakes up holding a manifest and an ETag from before the claim: its write is refused every time,
    however long it slept, and whatever it read."""
    laptop = write_files(tmp_path / "laptop", {"counter": "1"})
    claim(store, WORKLOAD, 1, "primary", laptop)
    paused = [store.read_manifest(WORKLOAD) for _ in range(20)]
    claim(store, WORKLOAD, 2, "standby", tmp_path / "ec2")
    current = manifest_bytes(store.bucket)
    time.sleep(1.5)  # nothing in the fencing expires with time
    refused = 0
    for observed in paused:
        assert observed.manifest is not None
        stale = Manifest(WORKLOAD, 1, observed.manifest.snapshot, "primary", "2026-12-03T00:00:00Z", uuid.uuid4().hex)
        with pytest.raises(Fenced):
            commit(store, observed, stale)
        refused += 1
    assert refused == len(paused)
    assert manifest_bytes(store.bucket) == current


def test_two_writers_of_the_same_epoch_race_and_exactly_one_wins(store: S3StateStore, tmp_path: Path) -> None:
    claim(store, WORKLOAD, 3, "standby", write_files(tmp_path / "a", {"v": "0"}))
    observed = store.read_manifest(WORKLOAD)
    assert observed.manifest is not None
    one = Manifest(WORKLOAD, 3, observed.manifest.snapshot, "standby", "t1", uuid.uuid4().hex)
    two = Manifest(WORKLOAD, 3, observed.manifest.snapshot, "standby", "t2", uuid.uuid4().hex)
    commit(store, observed, one)
    with pytest.raises(Conflict, match="changed since it was read"):
        commit(store, observed, two)
    assert Manifest.from_json(manifest_bytes(store.bucket), workload=WORKLOAD) == one


def test_a_duplicated_or_retried_manifest_write_is_recognised_not_repeated(store: S3StateStore, tmp_path: Path) -> None:
    """The first answer was lost and the request is sent again: the condition fails (the ETag moved
    on), the writer finds its own write_id stored, and reports success with the stored ETag."""
    claim(store, WORKLOAD, 1, "primary", write_files(tmp_path / "a", {"v": "0"}))
    observed = store.read_manifest(WORKLOAD)
    assert observed.manifest is not None
    new = Manifest(WORKLOAD, 1, observed.manifest.snapshot, "primary", "t", uuid.uuid4().hex)
    etag = commit(store, observed, new)
    assert commit(store, observed, new) == etag
    assert store.read_manifest(WORKLOAD).etag == etag


def test_publishing_before_claiming_is_refused(store: S3StateStore, tmp_path: Path) -> None:
    directory = write_files(tmp_path / "a", {"v": "0"})
    with pytest.raises(NotClaimed, match="no manifest"):
        publish(store, WORKLOAD, 1, "primary", directory)
    claim(store, WORKLOAD, 1, "primary", directory)
    with pytest.raises(NotClaimed) as refused:
        publish(store, WORKLOAD, 2, "standby", directory)
    assert (refused.value.stored_epoch, refused.value.own_epoch) == (1, 2)


def test_a_claim_racing_a_last_upload_of_the_old_holder_restores_that_upload(
    store: S3StateStore, tmp_path: Path
) -> None:
    """Failover from a primary that is still alive: its upload lands between the new holder's read
    and its re-stamp. The re-stamp's condition fails and the claim starts over with that upload."""
    laptop = write_files(tmp_path / "laptop", {"counter": "1"})
    claim(store, WORKLOAD, 1, "primary", laptop)

    class LateUpload(S3StateStore):
        fired = False

        def write_manifest(self, manifest: Manifest, *, if_match: str | None) -> str:
            if not self.fired and manifest.epoch == 2:
                self.fired = True
                (laptop / "counter").write_text("2")
                publish(store, WORKLOAD, 1, "primary", laptop)
            return super().write_manifest(manifest, if_match=if_match)

    racing = LateUpload(store.bucket)
    claimed = claim(racing, WORKLOAD, 2, "standby", tmp_path / "ec2")
    assert racing.fired
    assert read_files(tmp_path / "ec2") == {"counter": "2"}
    assert claimed.manifest.epoch == 2


@pytest.mark.parametrize("tamper", ["flip-a-byte", "truncate", "replace"])
def test_a_tampered_snapshot_is_refused_and_nothing_is_restored(
    store: S3StateStore, bucket: str, tmp_path: Path, tamper: str
) -> None:
    claim(store, WORKLOAD, 1, "primary", write_files(tmp_path / "laptop", {"counter": "1"}))
    observed = store.read_manifest(WORKLOAD)
    assert observed.manifest is not None
    key = observed.manifest.snapshot.key
    s3 = boto3.client("s3")
    data = bytearray(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    if tamper == "flip-a-byte":
        data[len(data) // 2] ^= 0xFF
    elif tamper == "truncate":
        data = data[:-10]
    else:  # same size, valid archive, other content: only the sha256 tells
        data = bytearray(b"\0" * len(data))
    s3.put_object(Bucket=bucket, Key=key, Body=bytes(data))
    before = manifest_bytes(bucket)
    ec2 = write_files(tmp_path / "ec2", {"untouched": "yes"})
    with pytest.raises(CorruptSnapshot, match=key):
        claim(store, WORKLOAD, 2, "standby", ec2)
    assert read_files(ec2) == {"untouched": "yes"}
    assert manifest_bytes(bucket) == before  # not claimed: a person decides (a versioned bucket keeps the good one)


def test_a_snapshot_over_the_size_cap_is_refused_before_it_is_read(store: S3StateStore, tmp_path: Path) -> None:
    claim(store, WORKLOAD, 1, "primary", write_files(tmp_path / "laptop", {"big": "x" * 5000}))
    with pytest.raises(CorruptSnapshot, match="cap"):
        claim(store, WORKLOAD, 2, "standby", tmp_path / "ec2", max_snapshot_bytes=10)


def test_an_invalid_manifest_is_refused_with_its_reason(store: S3StateStore, bucket: str, tmp_path: Path) -> None:
    s3 = boto3.client("s3")
    for body, reason in [
        (b"not json", "not JSON"),
        (b'{"version": 2}', "version"),
        (b'{"version": 1, "workload": "bot-a"}', "lacks or mistypes"),
    ]:
        s3.put_object(Bucket=bucket, Key=manifest_key(WORKLOAD), Body=body)
        with pytest.raises(CorruptManifest, match=reason):
            claim(store, WORKLOAD, 1, "primary", tmp_path / "a")


def test_store_errors_name_the_object_and_code_but_no_credentials(aws: MotoServer, tmp_path: Path) -> None:
    missing = S3StateStore("no-such-bucket-here", endpoint_url=aws.endpoint, region=aws.region)
    with pytest.raises(StoreUnavailable) as failed:
        missing.read_manifest(WORKLOAD)
    message = str(failed.value)
    assert "state/bot-a/manifest.json" in message and "NoSuchBucket" in message
    for secret in CREDENTIALS.values():
        assert secret not in message
    assert "Signature" not in message


def test_bad_arguments_are_refused_before_any_request(store: S3StateStore, tmp_path: Path) -> None:
    for workload, epoch, site in [("../etc", 1, "primary"), ("Bot_A", 1, "primary"), (WORKLOAD, -1, "primary"),
                                  (WORKLOAD, True, "primary"), (WORKLOAD, 1, "Primary Site")]:  # fmt: skip
        with pytest.raises(ValueError):
            claim(store, workload, epoch, site, tmp_path / "a")  # type: ignore[arg-type]
    assert store.read_manifest(WORKLOAD) == Observed(manifest=None, etag=None)


def test_a_presigned_put_carries_an_unsigned_if_match_and_the_store_honours_it(bucket: str) -> None:
    """The planned credentials (docs/state-handoff.md#credentials): the watchdog presigns a manifest
    PUT without knowing the ETag, and the holder adds If-Match itself. On the emulator the header
    is honoured: stale, the PUT is refused (412) and nothing changes; current, it is accepted. (moto
    does not check signatures: whether S3 accepts an unsigned If-Match on a presigned URL is still
    to be verified against AWS itself.)"""
    s3 = boto3.client("s3")
    key = manifest_key(WORKLOAD)
    old = s3.put_object(Bucket=bucket, Key=key, Body=b"v1")["ETag"]
    current = s3.put_object(Bucket=bucket, Key=key, Body=b"v2", IfMatch=old)["ETag"]
    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=60)
    assert url.startswith("http://127.0.0.1:")

    def put(etag: str) -> int:
        # An explicit type: urllib's default (a form) makes the emulator parse the body as fields.
        headers = {"If-Match": etag, "Content-Type": "application/json"}
        request = urllib.request.Request(url, data=b"v3", method="PUT", headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback emulator
                return int(response.status)
        except urllib.error.HTTPError as refused:
            return refused.code

    assert put(old) == 412
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"v2"
    assert put(current) == 200
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"v3"


# ----------------------------------------------------------------------------- superseded snapshots


def tags(bucket: str, key: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in boto3.client("s3").get_object_tagging(Bucket=bucket, Key=key)["TagSet"]}


SUPERSEDED = {SUPERSEDED_TAG_KEY: SUPERSEDED_TAG_VALUE}


def test_each_accepted_upload_tags_the_snapshot_it_replaced_and_never_the_current_one(
    store: S3StateStore, bucket: str, tmp_path: Path
) -> None:
    """The bucket's lifecycle expires only objects tagged hfo-state=superseded: without the tag a
    bot uploading every 30 s keeps every snapshot forever. A claim's re-stamp keeps the pointer, so
    it tags nothing; the first publish after it tags the previous holder's snapshot."""
    assert SUPERSEDED == {"hfo-state": "superseded"}
    laptop = write_files(tmp_path / "laptop", {"counter": "0"})
    keys = [claim(store, WORKLOAD, 1, "primary", laptop).manifest.snapshot.key]
    assert tags(bucket, keys[0]) == {}
    for n in range(1, 4):
        (laptop / "counter").write_text(str(n))
        keys.append(publish(store, WORKLOAD, 1, "primary", laptop).manifest.snapshot.key)
        assert tags(bucket, keys[-1]) == {}, "the snapshot the manifest names was tagged"
    assert [tags(bucket, key) for key in keys] == [SUPERSEDED, SUPERSEDED, SUPERSEDED, {}]

    restamped = claim(store, WORKLOAD, 2, "standby", tmp_path / "ec2")
    assert restamped.manifest.snapshot.key == keys[-1]
    assert tags(bucket, keys[-1]) == {}  # the re-stamp names the same snapshot: nothing tagged
    assert restore_and_read(store, tmp_path / "check") == {"counter": "3"}
    newest = publish(store, WORKLOAD, 2, "standby", tmp_path / "ec2").manifest.snapshot.key
    assert (tags(bucket, keys[-1]), tags(bucket, newest)) == (SUPERSEDED, {})  # epoch 1's, by epoch 2


def restore_and_read(store: S3StateStore, directory: Path) -> dict[str, str]:
    observed = store.read_manifest(WORKLOAD)
    assert observed.manifest is not None
    restore(store, observed.manifest, directory)
    return read_files(directory)


def test_a_fenced_or_losing_writer_tags_nothing_whenever_its_write_arrives(
    store: S3StateStore, bucket: str, tmp_path: Path
) -> None:
    """A stale site read the manifest (naming the current snapshot) before the new holder's claim:
    its write is refused, so it never tags the snapshot the new holder restored and still names.
    The same for a loser of a same-epoch race."""
    laptop = write_files(tmp_path / "laptop", {"counter": "1"})
    claim(store, WORKLOAD, 1, "primary", laptop)
    current = publish(store, WORKLOAD, 1, "primary", laptop).manifest.snapshot.key
    paused = store.read_manifest(WORKLOAD)  # a stale primary, frozen after its read
    claim(store, WORKLOAD, 2, "standby", tmp_path / "ec2")

    fresh = f"state/{WORKLOAD}/epochs/{1:012d}/{uuid.uuid4().hex}.tar.gz"
    store.put_snapshot(fresh, b"late")
    stale = Manifest(WORKLOAD, 1, SnapshotRef(fresh, "0" * 64, 4), "primary", "t", uuid.uuid4().hex)
    with pytest.raises(Fenced):
        commit(store, paused, stale)
    (laptop / "counter").write_text("999")
    with pytest.raises(Fenced):
        publish(store, WORKLOAD, 1, "primary", laptop)
    assert tags(bucket, current) == {}

    racing = store.read_manifest(WORKLOAD)
    publish(store, WORKLOAD, 2, "standby", tmp_path / "ec2")  # wins: tags `current`
    winner = store.read_manifest(WORKLOAD)
    assert winner.manifest is not None
    loser = Manifest(WORKLOAD, 2, SnapshotRef(fresh, "0" * 64, 4), "standby", "t", uuid.uuid4().hex)
    with pytest.raises(Conflict):
        commit(store, racing, loser)  # read before the winner's write: refused, tags nothing
    assert (tags(bucket, current), tags(bucket, winner.manifest.snapshot.key)) == (SUPERSEDED, {})
    assert tags(bucket, fresh) == {}


class FailingTags(S3StateStore):
    def __init__(self, bucket: str, error: Exception) -> None:
        super().__init__(bucket)
        self.error = error
        self.attempts: list[str] = []

    def tag_superseded(self, key: str) -> None:
        self.attempts.append(key)
        raise self.error


@pytest.mark.parametrize("how", ["store", "unexpected", "object-gone"])
def test_a_tagging_failure_is_logged_and_the_upload_stays_accepted(
    store: S3StateStore, bucket: str, tmp_path: Path, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Tagging is best effort: the manifest write was accepted, so the upload succeeded; the
    leftover snapshot only costs storage. The log names the key and the error code, no secret."""
    laptop = write_files(tmp_path / "laptop", {"counter": "1"})
    previous = claim(store, WORKLOAD, 1, "primary", laptop).manifest.snapshot.key
    writer: S3StateStore
    if how == "store":
        writer = FailingTags(bucket, StoreUnavailable(f"could not tag {previous!r}: AccessDenied (HTTP 403)"))
    elif how == "unexpected":
        writer = FailingTags(bucket, RuntimeError(f"token={CREDENTIALS['AWS_SECRET_ACCESS_KEY']}"))
    else:  # a real store error: the object is gone (deleted by hand), S3 answers NoSuchKey
        writer = store
        boto3.client("s3").delete_object(Bucket=bucket, Key=previous)
    (laptop / "counter").write_text("2")
    with caplog.at_level(logging.WARNING, logger="hfo_site.state"):
        published = publish(writer, WORKLOAD, 1, "primary", laptop)
    assert store.read_manifest(WORKLOAD) == Observed(published.manifest, published.etag)
    assert restore_and_read(store, tmp_path / "check") == {"counter": "2"}
    if isinstance(writer, FailingTags):
        assert writer.attempts == [previous]
    [record] = [r for r in caplog.records if "not tagged" in r.getMessage()]
    assert record.levelno == logging.WARNING and record.__dict__["snapshot_key"] == previous
    reason = str(record.__dict__["reason"])
    assert {"store": "AccessDenied", "unexpected": "RuntimeError", "object-gone": "NoSuchKey"}[how] in reason
    for secret in CREDENTIALS.values():
        assert secret not in caplog.text and secret not in reason
