"""State credentials in the heartbeat answer (docs/state-handoff.md#credentials): the lease holder that
asks gets STS credentials scoped to its epoch; nobody else does; bad configuration is refused at cold
start with the variable named; an STS failure leaves the heartbeat accepted and answered without
credentials; the restored epochs a site reports are kept in its item and logged; no secret reaches a
log line. The STS side is moto's (server mode); the session policy is checked by content, with a
small evaluator of the IAM rules it uses, because moto does not apply session policies."""

from __future__ import annotations

import fnmatch
import io
import json
import time
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from hfo_drill.moto_server import MotoServer
from hfo_protocol.heartbeat import parse_lease_answer, verify_lease_answer
from hfo_watchdog import cli
from hfo_watchdog.cli import _site_line, _status_doc
from hfo_watchdog.commit import Effects
from hfo_watchdog.config import Settings, SettingsError, StateSettings
from hfo_watchdog.core.model import ControlState, Lease, LeaseSite, Mode, Phase, Policy
from hfo_watchdog.heartbeat import HeartbeatDeps, handle
from hfo_watchdog.runtime import Runtime
from hfo_watchdog.state_access import StsCredentialIssuer, refusal_reason, session_name, session_policy
from hfo_watchdog.store import DynamoStateStore
from testsupport.watchdog import KEYRING, TABLE, JsonLog, create_table, heartbeat, scan_all, signed_heartbeat_event
from watchdog.fakes import FakeCredentialIssuer, FakeStandby

pytestmark = pytest.mark.moto

POLICY = Policy(lease_ttl_s=60, heartbeat_interval_s=10, stop_grace_s=30, down_heartbeat_s=180)
BUCKET = "hfo-state-123456789012"
ROLE_ARN = "arn:aws:iam::123456789012:role/hfo-state-access"
BASE_ENV = {
    "HFO_TABLE_NAME": "hfo-state",
    "HFO_INSTANCE_ID": "i-0123456789abcdef0",
    "HFO_HEALTH_URL": "https://laptop.tail1234.ts.net/healthz",
    "HFO_HMAC_SECRET_ARN": "/hfo/hmac",
    "AWS_REGION": "eu-west-3",
}


# ----------------------------------------------------------------------------- the session policy


def allowed(policy: dict[str, Any], action: str, resource: str) -> bool:
    """IAM's rule for a policy of Allow statements without conditions: some statement names the
    action and a resource pattern (`*` any characters, `?` one) that matches the whole ARN."""
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow" and "Condition" not in statement and "NotAction" not in statement
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        if action in actions and any(fnmatch.fnmatchcase(resource, pattern) for pattern in resources):
            return True
    return False


def obj(key: str) -> str:
    return f"arn:aws:s3:::{BUCKET}/{key}"


def test_the_session_policy_lets_a_holder_write_only_its_own_epoch_and_manifests() -> None:
    policy = session_policy(BUCKET, 7)
    own = "state/bot/epochs/000000000007/0123456789abcdef0123456789abcdef.tar.gz"
    assert allowed(policy, "s3:PutObject", obj(own))
    assert allowed(policy, "s3:PutObject", obj("state/bot/manifest.json"))
    assert allowed(policy, "s3:PutObject", obj("state/trader/manifest.json"))
    # Another epoch's prefix, older or newer, and anything outside state/: refused.
    for key in (
        "state/bot/epochs/000000000006/x.tar.gz",
        "state/bot/epochs/000000000008/x.tar.gz",
        "state/bot/epochs/00000000007/x.tar.gz",
        "state/bot/other.json",
        "other/bot/epochs/000000000007/x.tar.gz",
    ):
        assert not allowed(policy, "s3:PutObject", obj(key)), key
    # Reads: every state object (a claim restores what an older epoch wrote); nothing else.
    assert allowed(policy, "s3:GetObject", obj("state/bot/epochs/000000000003/x.tar.gz"))
    assert not allowed(policy, "s3:GetObject", obj("config/secret.json"))
    # ListBucket on the bucket only (a missing manifest must read as 404, not 403).
    assert allowed(policy, "s3:ListBucket", f"arn:aws:s3:::{BUCKET}")
    for action in ("s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutObjectAcl", "s3:PutBucketPolicy", "s3:*"):
        assert not allowed(policy, action, obj("state/bot/manifest.json")), action
    # Tagging: the snapshot an accepted manifest write replaced, of any epoch (the first publish
    # after a claim replaces the previous holder's); never a manifest, nothing outside state/.
    for key in ("state/bot/epochs/000000000006/x.tar.gz", "state/bot/epochs/000000000007/x.tar.gz"):
        assert allowed(policy, "s3:PutObjectTagging", obj(key)), key
    for key in ("state/bot/manifest.json", "other/bot/epochs/000000000006/x.tar.gz"):
        assert not allowed(policy, "s3:PutObjectTagging", obj(key)), key
    assert not allowed(policy, "s3:PutObjectVersionTagging", obj("state/bot/epochs/000000000006/x.tar.gz"))
    assert {
        a for s in policy["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    } == {
        "s3:GetObject",
        "s3:PutObject",
        "s3:ListBucket",
        "s3:PutObjectTagging",
    }


def test_the_session_policy_fits_sts_and_names_the_partition() -> None:
    """STS refuses a packed session policy over 2048 characters of plain text."""
    text = json.dumps(session_policy("a" * 63, 10**12 - 1), separators=(",", ":"))
    assert len(text) < 2048
    china = session_policy(BUCKET, 1, "aws-cn")
    assert all("arn:aws-cn:s3:::" in json.dumps(s) for s in china["Statement"])
    with pytest.raises(ValueError, match="epoch must be"):
        session_policy(BUCKET, 0)
    assert session_name("standby", 12) == "hfo-state-standby-e12"


# ----------------------------------------------------------------------------- who gets credentials


def test_only_the_site_the_answered_lease_names_gets_credentials_and_only_when_it_asks() -> None:
    holds = ControlState(lease=Lease(LeaseSite.STANDBY, 5))
    assert refusal_reason(holds, "standby", asked=True, enabled=True) is None
    assert refusal_reason(holds, "primary", asked=True, enabled=True) == "the lease is standby#5, not this site's"
    assert refusal_reason(holds, "standby", asked=False, enabled=True) == "not asked"
    assert "state handoff is off" in (refusal_reason(holds, "standby", asked=True, enabled=False) or "")
    handover = ControlState(lease=Lease(LeaseSite.NONE, 6))
    assert refusal_reason(handover, "standby", asked=True, enabled=True) is not None
    assert refusal_reason(handover, "primary", asked=True, enabled=True) is not None


# ----------------------------------------------------------------------------- configuration


def test_state_is_off_by_default_and_on_with_both_variables() -> None:
    assert Settings.from_env(BASE_ENV).state is None
    s = Settings.from_env({**BASE_ENV, "HFO_STATE_BUCKET": BUCKET, "HFO_STATE_ROLE_ARN": ROLE_ARN})
    assert s.state == StateSettings(BUCKET, ROLE_ARN, 900, "eu-west-3", None)
    s = Settings.from_env(
        {
            **BASE_ENV,
            "HFO_STATE_BUCKET": BUCKET,
            "HFO_STATE_ROLE_ARN": ROLE_ARN,
            "HFO_STATE_CREDENTIALS_TTL_S": "3600",
            "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9000",
        }
    )
    assert s.state is not None and (s.state.credentials_ttl_s, s.state.endpoint_url) == (3600, "http://127.0.0.1:9000")


@pytest.mark.parametrize(
    ("env", "variable", "words"),
    [
        ({"HFO_STATE_BUCKET": BUCKET}, "HFO_STATE_ROLE_ARN", "is required when HFO_STATE_BUCKET is set"),
        ({"HFO_STATE_ROLE_ARN": ROLE_ARN}, "HFO_STATE_BUCKET", "is required when HFO_STATE_ROLE_ARN is set"),
        ({"HFO_STATE_BUCKET": "Hfo_State"}, "HFO_STATE_BUCKET", "S3 bucket name"),
        ({"HFO_STATE_BUCKET": "-hfo"}, "HFO_STATE_BUCKET", "S3 bucket name"),
        ({"HFO_STATE_ROLE_ARN": "arn:aws:iam::123:role/x"}, "HFO_STATE_ROLE_ARN", "IAM role ARN"),
        ({"HFO_STATE_ROLE_ARN": "arn:aws:iam::123456789012:user/x"}, "HFO_STATE_ROLE_ARN", "IAM role ARN"),
        ({"HFO_STATE_CREDENTIALS_TTL_S": "899"}, "HFO_STATE_CREDENTIALS_TTL_S", "integer from 900 to 3600"),
        ({"HFO_STATE_CREDENTIALS_TTL_S": "3601"}, "HFO_STATE_CREDENTIALS_TTL_S", "integer from 900 to 3600"),
        ({"HFO_STATE_CREDENTIALS_TTL_S": "15m"}, "HFO_STATE_CREDENTIALS_TTL_S", "integer from 900 to 3600"),
        (
            {"HFO_STATE_BUCKET": BUCKET, "HFO_STATE_ROLE_ARN": ROLE_ARN, "AWS_REGION": "", "AWS_DEFAULT_REGION": ""},
            "AWS_REGION",
            "must name the region",
        ),
        (
            {"HFO_STATE_BUCKET": BUCKET, "HFO_STATE_ROLE_ARN": ROLE_ARN, "AWS_ENDPOINT_URL": "http://u:p@minio:9000"},
            "AWS_ENDPOINT_URL",
            "must not carry credentials",
        ),
    ],
)
def test_bad_state_settings_are_refused_with_the_variable_named(env: dict[str, str], variable: str, words: str) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({**BASE_ENV, **env})
    assert refused.value.variable == variable and words in str(refused.value)
    assert "u:p" not in str(refused.value)


def test_the_runtime_builds_no_sts_client_until_a_heartbeat_asks(aws: MotoServer) -> None:
    """Cold start stays lean: the heartbeat's deps carry a factory, the STS client comes later."""
    runtime = Runtime(Settings.from_env({**BASE_ENV, "HFO_STATE_BUCKET": BUCKET, "HFO_STATE_ROLE_ARN": ROLE_ARN}))
    runtime._keyring = KEYRING  # the keyring is another test's subject
    deps = runtime.heartbeat_deps()
    assert deps.credentials is not None and "sts" not in runtime._clients
    assert isinstance(deps.credentials(), StsCredentialIssuer) and "sts" not in runtime._clients
    off = Runtime(Settings.from_env(BASE_ENV))
    off._keyring = KEYRING
    assert off.heartbeat_deps().credentials is None


# ----------------------------------------------------------------------------- the handler on moto


def _role() -> str:
    iam = boto3.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "sts:AssumeRole"}
        ],
    }
    return str(iam.create_role(RoleName="hfo-state-access", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"])


@pytest.fixture
def setup(aws: MotoServer) -> dict[str, Any]:
    client = create_table()
    store = DynamoStateStore(client, TABLE, steady_gap_s=30, writer="heartbeat")
    state = StateSettings(BUCKET, _role(), 900, aws.region, aws.endpoint)
    issuer = StsCredentialIssuer(lambda: boto3.client("sts"), state)
    return {"client": client, "store": store, "issuer": issuer, "log": JsonLog()}


def _deps(setup: dict[str, Any], credentials: Any = "sts") -> HeartbeatDeps:
    issuer = setup["issuer"] if credentials == "sts" else credentials
    return HeartbeatDeps(
        store=setup["store"],
        keyring=KEYRING,
        policy=POLICY,
        max_skew_s=30,
        effects=lambda: Effects(FakeStandby(), _Quiet(), setup["log"]),
        log=setup["log"],
        credentials=None if issuer is None else (lambda: issuer),
    )


class _Quiet:
    def notify(self, notification: Any) -> bool:
        return True


def _answer(result: dict[str, Any]) -> Any:
    assert result["statusCode"] == 200, result["body"]
    body = result["body"].encode()
    verify_lease_answer(KEYRING, result["headers"]["x-hfo-signature"], body)
    return parse_lease_answer(body)


def _secrets_absent(log: JsonLog, *values: str) -> None:
    text = log.stream.getvalue()
    assert text  # something was logged: the check is not vacuous
    for value in values:
        assert value not in text


def test_the_holder_that_asks_gets_sts_credentials_for_its_epoch(setup: dict[str, Any]) -> None:
    answer = _answer(handle(signed_heartbeat_event(heartbeat("primary", state=True)), _deps(setup)))
    assert (answer.site, answer.epoch) == ("primary", 1)
    creds = answer.state
    assert creds is not None
    assert (creds.bucket, creds.epoch, creds.site, creds.region) == (BUCKET, 1, "primary", "us-east-1")
    assert creds.endpoint_url == setup["issuer"].settings.endpoint_url
    assert 850 <= creds.expires_at - time.time() <= 905
    # The credentials are STS's: moto knows the session they belong to.
    who = boto3.client(
        "sts",
        aws_access_key_id=creds.access_key_id,
        aws_secret_access_key=creds.secret_access_key,
        aws_session_token=creds.session_token,
    ).get_caller_identity()
    assert who["Arn"].endswith(f"assumed-role/hfo-state-access/{session_name('primary', 1)}")
    issued = setup["log"].records("state_credentials_issued")
    assert [(r["site"], r["epoch"]) for r in issued] == [("primary", 1)]
    _secrets_absent(setup["log"], creds.secret_access_key, creds.session_token, creds.access_key_id)


def test_after_a_failover_the_standby_gets_credentials_for_the_stored_epoch_and_the_primary_none(
    setup: dict[str, Any],
) -> None:
    """The epoch is the committed lease's, not the one the agent says it has seen."""
    state = ControlState(
        armed_at=1.0,
        version=1,
        mode=Mode.AUTO,
        phase=Phase.ON_STANDBY,
        lease=Lease(LeaseSite.STANDBY, 5, time.time() - 100),
    )
    assert setup["store"].save(0, state, None)
    fake = FakeCredentialIssuer(time.time)
    deps = _deps(setup, fake)
    standby = _answer(handle(signed_heartbeat_event(heartbeat("standby", state=True, epoch_seen=4)), deps))
    assert standby.state is not None and (standby.state.site, standby.state.epoch) == ("standby", 5)
    primary = _answer(handle(signed_heartbeat_event(heartbeat("primary", state=True, workload="stopped")), deps))
    assert (primary.site, primary.epoch, primary.state) == ("standby", 5, None)
    [(site, epoch, policy)] = fake.issued
    assert (site, epoch) == ("standby", 5)
    assert f"arn:aws:s3:::{fake.bucket}/state/*/epochs/000000000005/*" in json.dumps(policy)


def test_a_site_that_does_not_hold_the_lease_or_does_not_ask_gets_none(setup: dict[str, Any]) -> None:
    fake = FakeCredentialIssuer(time.time)
    deps = _deps(setup, fake)
    standby = _answer(handle(signed_heartbeat_event(heartbeat("standby", state=True, workload="stopped")), deps))
    assert standby.site == "primary" and standby.state is None
    silent = _answer(handle(signed_heartbeat_event(heartbeat("primary", seq=1)), deps))
    assert silent.state is None
    assert fake.issued == []  # no STS call for either
    assert [r["why"] for r in setup["log"].records("state_credentials_withheld")] == [
        "the lease is primary#1, not this site's"
    ]
    off = _answer(handle(signed_heartbeat_event(heartbeat("primary", seq=2, state=True)), _deps(setup, None)))
    assert off.state is None


def test_an_sts_failure_answers_the_lease_without_credentials(setup: dict[str, Any]) -> None:
    fake = FakeCredentialIssuer(time.time)
    fake.fail_with = "AccessDenied"
    answer = _answer(handle(signed_heartbeat_event(heartbeat("primary", state=True)), _deps(setup, fake)))
    assert (answer.site, answer.state) == ("primary", None)
    [warning] = setup["log"].records("state_credentials_unavailable")
    assert (warning["site"], warning["epoch"], warning["error"]) == ("primary", 1, "AccessDenied")


def test_sts_refusing_the_role_is_an_error_code_never_a_crash(setup: dict[str, Any], aws: MotoServer) -> None:
    """The real issuer against a role that does not exist: moto answers an error; the heartbeat is
    still answered (200, the lease) and the log names STS's code."""
    missing = StsCredentialIssuer(
        lambda: boto3.client("sts", endpoint_url="http://127.0.0.1:9"),  # nothing listens: a connection error
        StateSettings(BUCKET, ROLE_ARN, 900, aws.region, None),
    )
    answer = _answer(handle(signed_heartbeat_event(heartbeat("primary", state=True)), _deps(setup, missing)))
    assert answer.state is None
    [warning] = setup["log"].records("state_credentials_unavailable")
    assert warning["error"] == "EndpointConnectionError"


def test_restored_epochs_are_kept_in_the_site_item_shown_in_status_and_logged_once(setup: dict[str, Any]) -> None:
    deps = _deps(setup, FakeCredentialIssuer(time.time))
    for seq in (1, 2):
        _answer(handle(signed_heartbeat_event(heartbeat("standby", seq=seq, state_restored=(("bot", 4),))), deps))
    _answer(handle(signed_heartbeat_event(heartbeat("standby", seq=3, state_restored=(("bot", 6),))), deps))
    state, primary, standby = setup["store"].load()
    assert standby is not None and standby.state_restored == (("bot", 6),)
    doc = _status_doc(state, primary, standby, None, time.time())
    assert doc["standby"]["state_restored"] == {"bot": 6}
    assert "state restored: bot from epoch 6" in _site_line(standby, time.time())
    records = setup["log"].records("state_restored")
    logged = [(r["workload"], r["restored_epoch"], r.get("previous_epoch")) for r in records]
    assert logged == [("bot", 4, None), ("bot", 6, 4)]
    # The history says it too, once per change, newest first, beside the transitions.
    history = setup["store"].restored_history(10)
    assert [(h.site, h.workload, h.restored_epoch, h.previous_epoch, h.lease_epoch) for h in history] == [
        ("standby", "bot", 6, 4, 1),
        ("standby", "bot", 4, None, 1),
    ]
    out = io.StringIO()
    assert cli.main(["--table", TABLE, "history"], out=out) == 0
    assert "standby restored bot from epoch 6 (before: epoch 4)  lease epoch 1" in out.getvalue()
    out = io.StringIO()
    assert cli.main(["--table", TABLE, "history", "--json", "--limit", "1"], out=out) == 0
    [newest] = json.loads(out.getvalue())
    assert (newest["kind"], newest["site"], newest["restored_epoch"]) == ("state_restored", "standby", 6)
    # A heartbeat naming nothing leaves nothing behind in the item (older agents, state off).
    _answer(handle(signed_heartbeat_event(heartbeat("primary", seq=1)), deps))
    item = next(i for i in scan_all(setup["client"], TABLE) if i["sk"]["S"] == "primary")
    assert "state_restored" not in item


# ----------------------------------------------------------------------------- moto enforcing IAM


def test_with_iam_enforced_the_emulator_applies_the_role_policy_but_not_the_session_policy() -> None:
    """moto in server mode enforces IAM once INITIAL_NO_AUTH_ACTION_COUNT requests are spent: a set
    from StsCredentialIssuer, under the role policy Terraform gives (state_access.tf), may write
    state objects and nothing else. moto (5.2.5) ignores the session policy passed to AssumeRole,
    so the refusal of another epoch's prefix cannot be shown live here (docs/state-handoff.md);
    this test says so, and fails the day the emulator enforces it (then assert the refusal)."""
    # The four set-up calls (bucket, role, its policy, AssumeRole) go unauthenticated; every later
    # request is authenticated and authorized by moto.
    with MotoServer(extra_env={"INITIAL_NO_AUTH_ACTION_COUNT": "4"}) as moto:
        keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        where = {"endpoint_url": moto.endpoint, "region_name": moto.region}
        boto3.client("s3", **where, **keys).create_bucket(Bucket=BUCKET)
        iam = boto3.client("iam", **where, **keys)
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                 "Principal": {"AWS": "arn:aws:iam::123456789012:root"}}]}  # fmt: skip
        arn = iam.create_role(RoleName="hfo-state-access", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        objects = f"arn:aws:s3:::{BUCKET}/state/*"
        role_policy = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": objects},
            {"Effect": "Allow", "Action": "s3:PutObjectTagging", "Resource": f"arn:aws:s3:::{BUCKET}/state/*/epochs/*"},
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{BUCKET}"},
        ]}  # fmt: skip
        iam.put_role_policy(
            RoleName="hfo-state-access", PolicyName="state-objects", PolicyDocument=json.dumps(role_policy)
        )
        issuer = StsCredentialIssuer(
            lambda: boto3.client("sts", **where, **keys), StateSettings(BUCKET, arn, 900, moto.region, moto.endpoint)
        )
        creds = issuer.issue("primary", 7)
        s3 = boto3.client(
            "s3",
            **where,
            aws_access_key_id=creds.access_key_id,
            aws_secret_access_key=creds.secret_access_key,
            aws_session_token=creds.session_token,
        )

        def put(key: str) -> str:
            try:
                s3.put_object(Bucket=BUCKET, Key=key, Body=b"x")
            except ClientError as exc:
                return str(exc.response["Error"]["Code"])
            return "allowed"

        assert put("state/bot/epochs/000000000007/a.tar.gz") == "allowed"
        assert put("state/bot/manifest.json") == "allowed"
        assert put("other/bot.json") == "AccessDenied"

        def tag(key: str) -> str:
            try:
                s3.put_object_tagging(Bucket=BUCKET, Key=key, Tagging={"TagSet": [{"Key": "k", "Value": "v"}]})
            except ClientError as exc:
                return str(exc.response["Error"]["Code"])
            return "allowed"

        assert tag("state/bot/epochs/000000000007/a.tar.gz") == "allowed"  # superseded snapshots only
        assert tag("state/bot/manifest.json") == "AccessDenied"
        with pytest.raises(ClientError) as refused:
            s3.delete_object(Bucket=BUCKET, Key="state/bot/manifest.json")
        assert refused.value.response["Error"]["Code"] == "AccessDenied"
        # The emulator's gap: the session policy would refuse this on AWS (see the pure test above).
        assert put("state/bot/epochs/000000000006/a.tar.gz") == "allowed", "moto now enforces session policies"
