"""Property test of the state fencing (docs/state-handoff.md#fencing) on a real moto S3 server.

Writers with epochs (several may share one) read the manifest and write it later, in any
interleaving: a read long before the write is a paused process or a delayed request, a write
sent again is a duplicated or retried request. Whatever the order:
- the stored manifest's epoch never decreases;
- no write from an epoch lower than the highest already stored is ever accepted;
- a write is accepted exactly when its ETag is still current and its read epoch is not newer
  (no false refusal either), and a refused or duplicated write changes nothing;
- a refusal is Fenced exactly when a newer epoch is stored (else Conflict).
"""

from __future__ import annotations

import uuid

import boto3
import pytest
from hfo_drill.moto_server import MotoServer
from hfo_site.state import Conflict, Fenced, Manifest, Observed, S3StateStore, SnapshotRef, commit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = [pytest.mark.moto, pytest.mark.slow]

WORKLOAD = "bot-a"
WRITERS = 4

operations = st.lists(
    st.tuples(st.sampled_from(["read", "write", "resend"]), st.integers(0, WRITERS - 1)), min_size=1, max_size=30
)
epochs = st.lists(st.integers(1, 5), min_size=WRITERS, max_size=WRITERS)


def snapshot(epoch: int) -> SnapshotRef:
    return SnapshotRef(f"state/{WORKLOAD}/epochs/{epoch:012d}/{uuid.uuid4().hex}.tar.gz", "0" * 64, 1)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations, writer_epochs=epochs)
def test_no_interleaving_lets_an_older_epoch_overwrite_a_newer_one(
    aws: MotoServer, ops: list[tuple[str, int]], writer_epochs: list[int]
) -> None:
    bucket = f"prop-{uuid.uuid4().hex[:16]}"  # a fresh bucket per example (the fixture resets once per test)
    boto3.client("s3").create_bucket(Bucket=bucket)
    store = S3StateStore(bucket)
    seen: dict[int, Observed] = {}
    last_sent: dict[int, tuple[Observed, Manifest]] = {}
    highest = 0
    for action, writer in ops:
        own = writer_epochs[writer]
        current = store.read_manifest(WORKLOAD)
        if action == "read":
            seen[writer] = current
            continue
        if action == "resend":
            if writer not in last_sent:
                continue
            observed, new = last_sent[writer]
        else:
            observed = seen.get(writer, Observed(None, None))  # never read: it writes as the first writer
            new = Manifest(WORKLOAD, own, snapshot(own), "site", "t", uuid.uuid4().hex)
        stored_epoch = current.manifest.epoch if current.manifest else 0
        try:
            etag = commit(store, observed, new)
        except Fenced as fenced:
            assert fenced.stored_epoch > own
            assert stored_epoch > own or (observed.manifest is not None and observed.manifest.epoch > own)
            assert store.read_manifest(WORKLOAD) == current
        except Conflict:
            assert stored_epoch <= own and observed.etag != current.etag
            assert store.read_manifest(WORKLOAD) == current
        else:
            after = store.read_manifest(WORKLOAD)
            assert after.etag == etag and after.manifest == new
            if action == "resend" and current.manifest == new:
                assert after == current  # a duplicate of the stored write: recognised, nothing rewritten
            else:
                assert observed.etag == current.etag, "a write with a stale ETag was accepted"
                assert observed.manifest is None or observed.manifest.epoch <= own
            assert own >= highest, f"epoch {own} overwrote epoch {highest}"
            highest = own
            if action == "write":
                last_sent[writer] = (observed, new)
        final = store.read_manifest(WORKLOAD).manifest
        assert (final.epoch if final else 0) == highest  # never decreases, always the highest accepted
