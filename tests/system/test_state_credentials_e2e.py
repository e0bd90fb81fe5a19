"""Issue 14, credentials, end to end (docs/state-handoff.md#credentials): the real `hfo-site agent`
(a child process, state handoff on) heartbeats over HTTPS to the real heartbeat handler behind the
drill's Function URL server, whose store is DynamoDB and whose STS is the moto server. The lease
holder's agent gets credentials in a heartbeat answer and serves them on its lease server; a state
client uses them, through `hfo_site.state.store.S3StateStore` on moto's S3, to claim and publish;
its report reaches the watchdog's record of the site. A heartbeat of the site that does not hold the
lease gets no credentials. No credential or token appears in either side's logs."""

from __future__ import annotations

import asyncio
import io
import json
import signal
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import boto3
import pytest
from hfo_drill.function_url import FunctionUrlServer
from hfo_drill.moto_server import MotoServer
from hfo_site.heartbeat_client import BeatKind, HeartbeatClient, make_ssl_context
from hfo_site.state import S3StateStore
from hfo_site.state.handoff import claim, publish
from hfo_watchdog.commit import Effects
from hfo_watchdog.config import StateSettings
from hfo_watchdog.core.model import Policy
from hfo_watchdog.heartbeat import HeartbeatDeps, handle
from hfo_watchdog.state_access import StsCredentialIssuer
from hfo_watchdog.store import DynamoStateStore
from testsupport.https import TestCA
from testsupport.net import free_port, wait_until
from testsupport.site_helpers import HFO_SITE, SiteProcess
from testsupport.watchdog import KEYRING, SECRET_TEXT, TABLE, JsonLog, create_table
from watchdog.fakes import FakeStandby

pytestmark = [pytest.mark.moto, pytest.mark.network, pytest.mark.system, pytest.mark.slow]

BUCKET = "hfo-state-e2e"
TOKEN = "e2e-state-token-" + "k" * 24


class Quiet:
    def notify(self, notification: Any) -> bool:
        return True


@pytest.fixture
def watchdog(aws: MotoServer, tmp_path: Path) -> Iterator[tuple[FunctionUrlServer, TestCA, JsonLog, DynamoStateStore]]:
    client = create_table()
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
             "Principal": {"AWS": "arn:aws:iam::123456789012:root"}}]}  # fmt: skip
    role = boto3.client("iam").create_role(RoleName="hfo-state-access", AssumeRolePolicyDocument=json.dumps(trust))
    log = JsonLog()
    store = DynamoStateStore(client, TABLE, steady_gap_s=30, writer="heartbeat")
    issuer = StsCredentialIssuer(
        lambda: boto3.client("sts"), StateSettings(BUCKET, role["Role"]["Arn"], 900, aws.region, aws.endpoint)
    )
    deps = HeartbeatDeps(
        store=store,
        keyring=KEYRING,
        policy=Policy(lease_ttl_s=30, heartbeat_interval_s=1, stop_grace_s=30, down_heartbeat_s=180),
        max_skew_s=30,
        effects=lambda: Effects(FakeStandby(), Quiet(), log),
        log=log,
        credentials=lambda: issuer,
    )
    ca = TestCA(tmp_path)
    server = FunctionUrlServer(lambda event, _: handle(event, deps), lambda: None, ca.server_context(),
                               url_id="u1", region=aws.region).start()  # fmt: skip
    yield server, ca, log, store
    server.stop()


def _agent(tmp: Path, server: FunctionUrlServer, ca: TestCA, lease_port: int) -> SiteProcess:
    secret = tmp / "hmac"
    secret.write_text(SECRET_TEXT)
    token = tmp / "state-token"
    token.write_text(TOKEN)
    env = {
        "HFO_SITE": "primary",
        "HFO_HMAC_SECRET_FILE": str(secret),
        "HFO_HEARTBEAT_URL": server.url,
        "HFO_HEARTBEAT_INTERVAL_S": "1",
        "HFO_HEARTBEAT_TIMEOUT_S": "1",
        "HFO_BACKEND": "exec",
        "HFO_EXEC_COMMAND": "sleep 600",
        "HFO_STOP_GRACE_S": "1",
        "HFO_CA_BUNDLE": str(ca.bundle),
        "HFO_AGENT_BIND": "127.0.0.1",
        "HFO_AGENT_METRICS_PORT": str(free_port()),
        "HFO_AGENT_LEASE_PORT": str(lease_port),
        "HFO_AGENT_STATUS_URL": f"http://127.0.0.1:{free_port()}/agent-status",
        "HFO_STATE_ENABLED": "true",
        "HFO_STATE_TOKEN_FILE": str(token),
        "HFO_LOG_LEVEL": "DEBUG",
    }
    return SiteProcess("agent", env, tmp / "agent.log").start()


def _call(url: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any] | None]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=headers, method="POST" if body else "GET")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:  # noqa: S310 - loopback
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def test_the_holder_claims_and_publishes_with_heartbeat_credentials_and_a_non_holder_gets_none(
    watchdog: tuple[FunctionUrlServer, TestCA, JsonLog, DynamoStateStore], aws: MotoServer, tmp_path: Path
) -> None:
    server, ca, log, store = watchdog
    port = free_port()
    agent = _agent(tmp_path, server, ca, port)
    base = f"http://127.0.0.1:{port}/v1/state"
    try:
        started = time.monotonic()
        answers: list[tuple[int, dict[str, Any] | None]] = []

        def served() -> bool:
            if not agent.alive():
                raise AssertionError(agent.logs())
            try:
                answers.append(_call(f"{base}/credentials"))
            except OSError:
                return False
            return answers[-1][0] == 200

        wait_until(served, timeout=30, interval=0.1, what="credentials on the agent's lease server")
        ready_s = time.monotonic() - started
        creds = answers[-1][1]
        assert creds is not None
        assert (creds["epoch"], creds["site"], creds["bucket"]) == (1, "primary", BUCKET)
        assert creds["endpoint_url"] == aws.endpoint and 800 < creds["expires_at"] - time.time() <= 900

        # A state client (what `hfo-site state restore/sync` does with them): claim, then publish.
        s3 = boto3.client(
            "s3",
            endpoint_url=creds["endpoint_url"],
            region_name=creds["region"],
            aws_access_key_id=creds["access_key_id"],
            aws_secret_access_key=creds["secret_access_key"],
            aws_session_token=creds["session_token"],
        )
        state = S3StateStore(creds["bucket"], client=s3)
        directory = tmp_path / "state"
        directory.mkdir()
        (directory / "counter").write_text("1")
        claimed = claim(state, "bot", creds["epoch"], creds["site"], directory)
        assert claimed.adopted and claimed.manifest.epoch == 1
        (directory / "counter").write_text("2")
        published = publish(state, "bot", creds["epoch"], creds["site"], directory)
        assert published.manifest.snapshot.key.startswith("state/bot/epochs/000000000001/")
        assert _call(f"{base}/report", {
            "workload": "bot", "event": "restored", "epoch": 1, "snapshot_key": claimed.manifest.snapshot.key,
            "restored_epoch": claimed.restored_epoch, "at": int(time.time()), "detail": "adopted",
        }) == (204, None)  # fmt: skip

        # The watchdog records which epoch's state the site restored (its next heartbeats say it).
        def recorded() -> bool:
            _, primary, _ = store.load()
            return primary is not None and primary.state_restored == (("bot", 1),)

        wait_until(recorded, timeout=10, interval=0.1, what="the restored epoch in the watchdog's site record")

        # The standby does not hold the lease: its heartbeat asking for credentials gets none.
        standby = asyncio.run(_standby_beat(server.url, ca))
        assert standby.kind is BeatKind.ACCEPTED and standby.answer is not None
        assert (standby.answer.site, standby.answer.state) == ("primary", None)
    finally:
        agent.terminate()

    issued = log.records("state_credentials_issued")
    assert issued and all((r["site"], r["epoch"]) == ("primary", 1) for r in issued)
    assert any(r["why"].startswith("the lease is primary#1") for r in log.records("state_credentials_withheld"))
    for text in (log.stream.getvalue(), agent.logs()):
        assert creds["secret_access_key"] not in text
        assert creds["session_token"] not in text
        assert TOKEN not in text
    assert "state credentials received" in agent.logs()
    print(f"credentials served {ready_s:.2f} s after the agent started; {len(issued)} STS call(s)")


async def _standby_beat(url: str, ca: TestCA) -> Any:
    async with aiohttp.ClientSession() as session:
        client = HeartbeatClient(url, session, lambda: KEYRING, 5.0, make_ssl_context(ca.bundle))
        return await client.send("standby", 1, "stopped", 1, True, state=True)


def test_the_state_containers_restore_and_sync_through_the_real_agent(
    watchdog: tuple[FunctionUrlServer, TestCA, JsonLog, DynamoStateStore], aws: MotoServer, tmp_path: Path
) -> None:
    """The contract between the agent (this slice) and the state CLI (hfo-site state restore|sync):
    both real, as child processes, with nothing between them but the agent's lease server."""
    server, ca, log, store = watchdog
    port = free_port()
    agent = _agent(tmp_path, server, ca, port)
    directory = tmp_path / "pod" / "state"
    directory.mkdir(parents=True)
    (directory / "counter").write_text("41")
    env = {
        "HFO_STATE_CREDENTIALS_URL": f"http://127.0.0.1:{port}/v1/state/credentials",
        "HFO_STATE_TOKEN_FILE": str(tmp_path / "state-token"),
        "HFO_LOG_LEVEL": "DEBUG",
    }
    s3 = boto3.client("s3")
    try:
        restore = SiteProcess("state", env, tmp_path / "restore.log")
        restore.proc = subprocess.Popen(
            [*HFO_SITE, "state", "restore", "--workload", "bot", "--dir", str(directory), "--wait", "30"],
            env=restore.env, stdout=restore.log_path.open("ab"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        assert restore.proc.wait(timeout=60) == 0, restore.logs()
        restored = json.loads((tmp_path / "pod" / "restored.json").read_text())
        assert (restored["epoch"], restored["site"], restored["adopted"]) == (1, "primary", True)

        def recorded() -> bool:
            _, primary, _ = store.load()
            return primary is not None and primary.state_restored == (("bot", 1),)

        wait_until(recorded, timeout=15, interval=0.1, what="the CLI's restored report in the watchdog's record")

        sync = SiteProcess("state", env, tmp_path / "sync.log")
        sync.proc = subprocess.Popen(
            [*HFO_SITE, "state", "sync", "--workload", "bot", "--dir", str(directory), "--interval", "0.5"],
            env=sync.env, stdout=sync.log_path.open("ab"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        (directory / "counter").write_text("42")

        def manifest_key() -> str:
            body = s3.get_object(Bucket=BUCKET, Key="state/bot/manifest.json")["Body"].read()
            return str(json.loads(body)["snapshot"]["key"])

        wait_until(lambda: manifest_key() != restored["snapshot_key"], timeout=20, what="the sidecar's upload")
        (directory / "counter").write_text("43")
        sync.proc.send_signal(signal.SIGTERM)
        assert sync.proc.wait(timeout=30) == 0, sync.logs()
        final = manifest_key()
        assert final.startswith("state/bot/epochs/000000000001/")
        snapshot = s3.get_object(Bucket=BUCKET, Key=final)["Body"].read()
        with tarfile.open(fileobj=io.BytesIO(snapshot), mode="r:gz") as archive:
            member = archive.extractfile("counter")
            assert member is not None and member.read() == b"43"  # the final upload on SIGTERM
        status, creds = _call(f"http://127.0.0.1:{port}/v1/state/credentials")  # the set both CLIs used
        assert status == 200 and creds is not None
    finally:
        agent.terminate()
    # At HFO_LOG_LEVEL=DEBUG everywhere (the SDK's signed-request debug lines once carried the
    # session token into the CLIs' logs: hfo_site.logs now keeps them at WARNING).
    for text in (log.stream.getvalue(), agent.logs(), restore.logs(), sync.logs()):
        assert TOKEN not in text
        assert creds["secret_access_key"] not in text
        assert creds["session_token"] not in text
        assert creds["session_token"][:40] not in text
