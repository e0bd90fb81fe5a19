"""Where snapshots and manifests are kept: the ``StateStore`` protocol and its S3 implementation
(docs/state-handoff.md#store). Any S3-compatible store that honours conditional PUTs works
(``endpoint_url`` points the client at it, e.g. MinIO or the tests' moto server).

The store itself decides nothing: it performs the three conditional operations the fencing
relies on and reports their outcome precisely, and tags a snapshot superseded when told to. The
fencing rules, and when a snapshot is superseded, live in ``handoff``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from hfo_site.state.errors import Conflict, CorruptSnapshot, StoreUnavailable
from hfo_site.state.manifest import Manifest, manifest_key

DEFAULT_MAX_SNAPSHOT_BYTES = 256 << 20  # 256 MiB compressed

# The tag the bucket's lifecycle expires objects by (terraform/modules/state-bucket, rule
# "expire-superseded-snapshots"; tests/terraform/test_state_bucket.py ties the two together).
SUPERSEDED_TAG_KEY = "hfo-state"
SUPERSEDED_TAG_VALUE = "superseded"


class PreconditionFailed(Exception):
    """The conditional write's condition did not hold (HTTP 412): the object changed since it was
    read, or it exists where none was expected. Internal to the store and ``handoff``, which turn
    it into Fenced or Conflict after re-reading."""


@dataclass(frozen=True)
class Observed:
    """One read of the manifest: the manifest (None when there is none yet) and its ETag, which a
    conditional write of the next manifest must name."""

    manifest: Manifest | None
    etag: str | None


class StateStore(Protocol):
    def read_manifest(self, workload: str) -> Observed:
        """The current manifest and its ETag (both None when absent). CorruptManifest if invalid."""
        ...

    def write_manifest(self, manifest: Manifest, *, if_match: str | None) -> str:
        """Store ``manifest`` only if the stored one still has ETag ``if_match`` (or, with None,
        only if there is none). Returns the new ETag; PreconditionFailed when the condition does
        not hold, Conflict when the store reports a concurrent conditional write."""
        ...

    def put_snapshot(self, key: str, data: bytes) -> None:
        """Create the snapshot object; never overwrites one (PreconditionFailed if it exists)."""
        ...

    def get_snapshot(self, key: str, *, max_bytes: int = DEFAULT_MAX_SNAPSHOT_BYTES) -> bytes:
        """The snapshot's bytes; CorruptSnapshot if missing or larger than ``max_bytes``."""
        ...

    def tag_superseded(self, key: str) -> None:
        """Tag the snapshot ``key`` ``hfo-state=superseded`` (its current version), so the bucket's
        lifecycle expires it. Only for a snapshot no manifest can name again (``handoff`` decides);
        StoreUnavailable on failure."""
        ...


class S3StateStore:
    """The state store on one S3 bucket. Credentials come from boto3's usual chain (environment,
    web identity, instance profile); ``endpoint_url`` None means AWS itself."""

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        client: Any = None,
    ) -> None:
        self.bucket = bucket
        # Any: the dev pins carry boto3-stubs without the per-service S3 stubs.
        self._s3: Any = client or boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30),
        )

    def read_manifest(self, workload: str) -> Observed:
        key = manifest_key(workload)
        try:
            response = self._s3.get_object(Bucket=self.bucket, Key=key)
            body: bytes = response["Body"].read(1 << 20)
        except ClientError as exc:
            if _code(exc) in {"NoSuchKey", "404"}:
                return Observed(manifest=None, etag=None)
            raise _unavailable("read", key, exc) from None
        except BotoCoreError as exc:
            raise _unavailable("read", key, exc) from None
        return Observed(manifest=Manifest.from_json(body, workload=workload), etag=str(response["ETag"]))

    def write_manifest(self, manifest: Manifest, *, if_match: str | None) -> str:
        key = manifest_key(manifest.workload)
        condition: dict[str, Any] = {"IfMatch": if_match} if if_match is not None else {"IfNoneMatch": "*"}
        try:
            response = self._s3.put_object(
                Bucket=self.bucket, Key=key, Body=manifest.to_json(), ContentType="application/json", **condition
            )
        except ClientError as exc:
            _raise_condition(exc, key)
            raise _unavailable("write", key, exc) from None
        except BotoCoreError as exc:
            raise _unavailable("write", key, exc) from None
        return str(response["ETag"])

    def put_snapshot(self, key: str, data: bytes) -> None:
        try:
            self._s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType="application/gzip", IfNoneMatch="*")
        except ClientError as exc:
            _raise_condition(exc, key)
            raise _unavailable("write", key, exc) from None
        except BotoCoreError as exc:
            raise _unavailable("write", key, exc) from None

    def get_snapshot(self, key: str, *, max_bytes: int = DEFAULT_MAX_SNAPSHOT_BYTES) -> bytes:
        try:
            response = self._s3.get_object(Bucket=self.bucket, Key=key)
            if response["ContentLength"] > max_bytes:
                response["Body"].close()
                raise CorruptSnapshot(f"snapshot {key!r} is larger than the {max_bytes}-byte cap")
            data: bytes = response["Body"].read(max_bytes + 1)
        except ClientError as exc:
            if _code(exc) in {"NoSuchKey", "404"}:
                raise CorruptSnapshot(f"snapshot {key!r} named by the manifest does not exist") from None
            raise _unavailable("read", key, exc) from None
        except BotoCoreError as exc:
            raise _unavailable("read", key, exc) from None
        if len(data) > max_bytes:
            raise CorruptSnapshot(f"snapshot {key!r} is larger than the {max_bytes}-byte cap")
        return data

    def tag_superseded(self, key: str) -> None:
        tagging = {"TagSet": [{"Key": SUPERSEDED_TAG_KEY, "Value": SUPERSEDED_TAG_VALUE}]}
        try:
            self._s3.put_object_tagging(Bucket=self.bucket, Key=key, Tagging=tagging)
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable("tag", key, exc) from None


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _raise_condition(exc: ClientError, key: str) -> None:
    code = _code(exc)
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code == "PreconditionFailed" or status == 412:
        raise PreconditionFailed(f"{key!r} changed since it was read (412)") from None
    if code == "ConditionalRequestConflict" or status == 409:
        raise Conflict(f"a concurrent conditional write of {key!r} was in progress (409); re-read and retry") from None


def _unavailable(verb: str, key: str, exc: Exception) -> StoreUnavailable:
    # The error code and HTTP status only: botocore's messages can carry request details.
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return StoreUnavailable(f"could not {verb} {key!r}: {_code(exc) or 'error'} (HTTP {status})")
    return StoreUnavailable(f"could not {verb} {key!r}: {type(exc).__name__}")
