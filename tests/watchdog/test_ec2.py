"""Ec2StandbyInstance against the moto server.

moto's instances never linger in a transient state (run and start answer `pending` but the
instance is `running` at once; stop and terminate likewise), and it never runs out of capacity.
Those cases are produced on the REAL boto3 client with botocore `before-send` handlers:

- transient states: the DescribeInstances request is forwarded to moto unchanged, and only the
  `<instanceState>` element of moto's genuine XML answer is rewritten (pending 0, stopping 64,
  shutting-down 32), so botocore's own parser reads a genuine answer;
- no capacity: StartInstances for chosen instance types is answered with EC2's error document
  (`<Response><Errors><Error><Code>InsufficientInstanceCapacity</Code>...`, HTTP 500 as EC2
  sends server errors); every other call, including ModifyInstanceAttribute, goes to moto.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests
from botocore.awsrequest import AWSResponse
from hfo_drill.aws_setup import instance_state
from hfo_drill.moto_server import MotoServer
from hfo_watchdog.core.model import InstanceState
from hfo_watchdog.ec2 import Ec2StandbyInstance, ec2_client
from testsupport.net import free_port

pytestmark = pytest.mark.moto

TRANSIENT_CODES = {"pending": 0, "shutting-down": 32, "stopping": 64}
_AMI: list[str] = []


class _Raw:
    """The minimal raw-body object AWSResponse reads (``stream()``)."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def ec2_error(code: str, message: str, status: int) -> AWSResponse:
    """EC2's error document, exactly as the Query API sends it."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>"
        f"<RequestID>{uuid.uuid4()}</RequestID></Response>"
    ).encode()
    return AWSResponse(
        "https://ec2.us-east-1.amazonaws.com/", status, {"Content-Type": "text/xml;charset=UTF-8"}, _Raw(body)
    )


def _action(request: Any) -> str:
    body = request.body.decode() if isinstance(request.body, bytes) else str(request.body or "")
    match = re.search(r"(?:^|&)Action=([A-Za-z]+)", body)
    return match.group(1) if match else ""


@pytest.fixture
def plain(aws: MotoServer) -> Any:
    """A client with no handlers: to set up and inspect moto's own view."""
    return boto3.client("ec2")


@pytest.fixture
def client(aws: MotoServer) -> Any:
    """The client under test (built as the handlers build it): calls are recorded."""
    c = ec2_client(max_attempts=1)
    c.calls = []  # operation names, one per API call
    c.meta.events.register("before-call.ec2", lambda model, **_: c.calls.append(model.name))
    return c


@pytest.fixture
def instance_id(plain: Any) -> str:
    if not _AMI:
        _AMI.append(plain.describe_images(Owners=["amazon"], MaxResults=5)["Images"][0]["ImageId"])
    resp = plain.run_instances(ImageId=_AMI[0], MinCount=1, MaxCount=1, InstanceType="t3.micro")
    return str(resp["Instances"][0]["InstanceId"])


def moto_type(plain: Any, iid: str) -> str:
    return str(plain.describe_instance_attribute(InstanceId=iid, Attribute="instanceType")["InstanceType"]["Value"])


def show_transient_state(client: Any, state: str) -> None:
    """DescribeInstances answers moto's genuine XML with the instance state rewritten."""
    code = TRANSIENT_CODES[state]

    def handler(request: Any, **_: Any) -> AWSResponse:
        real = requests.post(request.url, data=request.body, headers=dict(request.headers), timeout=10)
        body = re.sub(
            rb"<instanceState><code>\d+</code><name>[a-z-]+</name></instanceState>",
            f"<instanceState><code>{code}</code><name>{state}</name></instanceState>".encode(),
            real.content,
        )
        assert body != real.content, "moto's answer carried an instance state to rewrite"
        return AWSResponse(request.url, real.status_code, dict(real.headers), _Raw(body))

    client.meta.events.register("before-send.ec2.DescribeInstances", handler)


def no_capacity_for(
    client: Any, plain: Any, iid: str, types: set[str], code: str = "InsufficientInstanceCapacity", status: int = 500
) -> list[str]:
    """StartInstances fails with `code` while the instance's type (as moto holds it) is in
    `types`. Returns the list of types each refused attempt had."""
    refused: list[str] = []

    def handler(request: Any, **_: Any) -> AWSResponse | None:
        current = moto_type(plain, iid)
        if current not in types:
            return None  # genuine call to moto
        refused.append(current)
        message = (
            f"We currently do not have sufficient {current} capacity in the Availability Zone you requested "
            "(us-east-1a). Our system will be working on provisioning additional capacity."
        )
        return ec2_error(code, message, status)

    client.meta.events.register("before-send.ec2.StartInstances", handler)
    return refused


def fail_call(client: Any, operation: str, code: str, status: int) -> None:
    client.meta.events.register(
        f"before-send.ec2.{operation}", lambda request, **_: ec2_error(code, f"{code} (injected)", status)
    )


# --- state ---------------------------------------------------------------------------------


def test_state_reads_running_and_stopped_from_ec2(client: Any, plain: Any, instance_id: str) -> None:
    standby = Ec2StandbyInstance(client, instance_id)
    assert standby.state() is InstanceState.RUNNING
    plain.stop_instances(InstanceIds=[instance_id])
    assert standby.state() is InstanceState.STOPPED
    plain.terminate_instances(InstanceIds=[instance_id])
    assert standby.state() is InstanceState.TERMINATED


@pytest.mark.parametrize("state", sorted(TRANSIENT_CODES))
def test_state_reads_transient_states(client: Any, instance_id: str, state: str) -> None:
    show_transient_state(client, state)
    assert Ec2StandbyInstance(client, instance_id).state() is InstanceState(state)


def test_state_of_a_missing_instance_is_missing(client: Any) -> None:
    assert Ec2StandbyInstance(client, "i-0123456789abcdef0").state() is InstanceState.MISSING


def test_state_is_unknown_when_ec2_cannot_be_reached(aws: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    unreachable = ec2_client(max_attempts=1, connect_timeout=0.5, read_timeout=0.5)
    standby = Ec2StandbyInstance(unreachable, "i-0123456789abcdef0")
    assert standby.state() is InstanceState.UNKNOWN
    outcome = standby.ensure_running()
    assert not outcome.ok and outcome.error == "aws_error" and outcome.state is InstanceState.UNKNOWN


def test_state_is_unknown_on_an_aws_error(client: Any, instance_id: str) -> None:
    fail_call(client, "DescribeInstances", "UnauthorizedOperation", 403)
    standby = Ec2StandbyInstance(client, instance_id)
    assert standby.state() is InstanceState.UNKNOWN
    outcome = standby.ensure_stopped()
    assert not outcome.ok and outcome.error == "aws_error" and "UnauthorizedOperation" in outcome.detail


# --- ensure_running ------------------------------------------------------------------------


def test_start_from_stopped_really_starts_the_instance(client: Any, plain: Any, instance_id: str) -> None:
    plain.stop_instances(InstanceIds=[instance_id])
    outcome = Ec2StandbyInstance(client, instance_id).ensure_running()
    assert outcome.ok and outcome.action == "start_requested" and outcome.error is None
    assert outcome.state is InstanceState.PENDING, "EC2 answers a start with the pending state"
    assert outcome.instance_type == "t3.micro"
    assert instance_state(instance_id) == "running"
    assert client.calls == ["DescribeInstances", "StartInstances"]


def test_start_is_idempotent(client: Any, plain: Any, instance_id: str) -> None:
    plain.stop_instances(InstanceIds=[instance_id])
    standby = Ec2StandbyInstance(client, instance_id)
    assert standby.ensure_running().action == "start_requested"
    second = standby.ensure_running()
    assert second.ok and second.action == "already_running" and second.state is InstanceState.RUNNING
    assert client.calls.count("StartInstances") == 1


def test_start_while_pending_is_already_running(client: Any, instance_id: str) -> None:
    show_transient_state(client, "pending")
    outcome = Ec2StandbyInstance(client, instance_id).ensure_running()
    assert outcome.ok and outcome.action == "already_running" and outcome.state is InstanceState.PENDING
    assert "StartInstances" not in client.calls


def test_start_while_stopping_waits(client: Any, plain: Any, instance_id: str) -> None:
    plain.stop_instances(InstanceIds=[instance_id])
    show_transient_state(client, "stopping")
    outcome = Ec2StandbyInstance(client, instance_id).ensure_running()
    assert outcome.ok and outcome.action == "waiting" and outcome.state is InstanceState.STOPPING
    assert outcome.error is None
    assert client.calls == ["DescribeInstances"], "nothing is asked of EC2 until the stop has finished"
    assert instance_state(instance_id) == "stopped"


@pytest.mark.parametrize("method", ["ensure_running", "ensure_stopped"])
def test_terminated_instance_is_reported_loudly_not_raised(
    client: Any, plain: Any, instance_id: str, method: str, caplog: pytest.LogCaptureFixture
) -> None:
    plain.terminate_instances(InstanceIds=[instance_id])
    with caplog.at_level(logging.ERROR, logger="hfo_watchdog.ec2"):
        outcome = getattr(Ec2StandbyInstance(client, instance_id), method)()
    assert not outcome.ok and outcome.error == "terminated" and outcome.state is InstanceState.TERMINATED
    assert instance_id in outcome.detail
    assert client.calls == ["DescribeInstances"], "no start/stop is attempted on a terminated instance"
    assert any(instance_id in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)


@pytest.mark.parametrize("method", ["ensure_running", "ensure_stopped"])
def test_shutting_down_instance_is_reported_as_terminated(client: Any, instance_id: str, method: str) -> None:
    show_transient_state(client, "shutting-down")
    outcome = getattr(Ec2StandbyInstance(client, instance_id), method)()
    assert not outcome.ok and outcome.error == "terminated" and outcome.state is InstanceState.SHUTTING_DOWN
    assert client.calls == ["DescribeInstances"]


@pytest.mark.parametrize("method", ["ensure_running", "ensure_stopped"])
def test_missing_instance_is_reported_not_raised(client: Any, method: str) -> None:
    outcome = getattr(Ec2StandbyInstance(client, "i-0123456789abcdef0"), method)()
    assert not outcome.ok and outcome.error == "missing" and outcome.state is InstanceState.MISSING
    assert "i-0123456789abcdef0" in outcome.detail


# --- capacity fallbacks --------------------------------------------------------------------


def test_insufficient_capacity_falls_back_to_the_next_type(client: Any, plain: Any, instance_id: str) -> None:
    plain.stop_instances(InstanceIds=[instance_id])
    refused = no_capacity_for(client, plain, instance_id, {"t3.micro"})
    standby = Ec2StandbyInstance(client, instance_id, fallback_types=["t3a.micro", "t2.micro"])
    outcome = standby.ensure_running()
    assert outcome.ok and outcome.action == "start_requested"
    assert outcome.instance_type == "t3a.micro"
    assert "t3.micro (InsufficientInstanceCapacity)" in outcome.detail
    assert refused == ["t3.micro"]
    assert moto_type(plain, instance_id) == "t3a.micro", "the instance type was really changed"
    assert instance_state(instance_id) == "running", "and the instance really started"
    assert client.calls == ["DescribeInstances", "StartInstances", "ModifyInstanceAttribute", "StartInstances"]


def test_fallbacks_are_tried_in_order(client: Any, plain: Any, instance_id: str) -> None:
    plain.stop_instances(InstanceIds=[instance_id])
    refused = no_capacity_for(client, plain, instance_id, {"t3.micro", "t3a.micro"})
    outcome = Ec2StandbyInstance(client, instance_id, ["t3a.micro", "t2.micro", "m5.large"]).ensure_running()
    assert outcome.ok and outcome.instance_type == "t2.micro"
    assert refused == ["t3.micro", "t3a.micro"]
    assert moto_type(plain, instance_id) == "t2.micro" and instance_state(instance_id) == "running"


def test_unsupported_type_in_the_zone_falls_back_too(client: Any, plain: Any, instance_id: str) -> None:
    plain.stop_instances(InstanceIds=[instance_id])
    no_capacity_for(client, plain, instance_id, {"t3.micro"}, code="Unsupported", status=400)
    outcome = Ec2StandbyInstance(client, instance_id, ["t2.micro"]).ensure_running()
    assert outcome.ok and outcome.instance_type == "t2.micro"
    assert "Unsupported" in outcome.detail


def test_no_capacity_anywhere_is_an_error_not_an_exception(
    client: Any, plain: Any, instance_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    plain.stop_instances(InstanceIds=[instance_id])
    refused = no_capacity_for(client, plain, instance_id, {"t3.micro", "t3a.micro", "t2.micro"})
    with caplog.at_level(logging.WARNING, logger="hfo_watchdog.ec2"):
        outcome = Ec2StandbyInstance(client, instance_id, ["t3a.micro", "t2.micro"]).ensure_running()
    assert not outcome.ok and outcome.error == "insufficient_capacity" and outcome.action == "none"
    for itype in ("t3.micro", "t3a.micro", "t2.micro"):
        assert itype in outcome.detail
    assert refused == ["t3.micro", "t3a.micro", "t2.micro"], "each type tried exactly once, in order"
    assert instance_state(instance_id) == "stopped"
    assert moto_type(plain, instance_id) == "t3.micro", "the original type is put back for the next attempt"
    assert outcome.instance_type == "t3.micro"
    assert any(r.levelno == logging.ERROR and "insufficient_capacity" in r.getMessage() for r in caplog.records)


def test_no_capacity_without_fallbacks(client: Any, plain: Any, instance_id: str) -> None:
    plain.stop_instances(InstanceIds=[instance_id])
    no_capacity_for(client, plain, instance_id, {"t3.micro"})
    outcome = Ec2StandbyInstance(client, instance_id).ensure_running()
    assert not outcome.ok and outcome.error == "insufficient_capacity"
    assert "ModifyInstanceAttribute" not in client.calls


def test_other_aws_errors_are_reported_with_their_code(client: Any, plain: Any, instance_id: str) -> None:
    plain.stop_instances(InstanceIds=[instance_id])
    fail_call(client, "StartInstances", "UnauthorizedOperation", 403)
    outcome = Ec2StandbyInstance(client, instance_id, ["t3a.micro"]).ensure_running()
    assert not outcome.ok and outcome.error == "aws_error"
    assert "StartInstances" in outcome.detail and "UnauthorizedOperation" in outcome.detail
    assert "ModifyInstanceAttribute" not in client.calls, "no fallback for an error that is not capacity"
    assert moto_type(plain, instance_id) == "t3.micro"


def test_standard_retries_from_max_attempts(aws: MotoServer, plain: Any, instance_id: str) -> None:
    plain.stop_instances(InstanceIds=[instance_id])
    c = ec2_client(max_attempts=2)
    sends: list[str] = []
    c.meta.events.register("before-send.ec2.StartInstances", lambda request, **_: sends.append("try"))
    no_capacity_for(c, plain, instance_id, {"t3.micro"})
    outcome = Ec2StandbyInstance(c, instance_id).ensure_running()
    assert outcome.error == "insufficient_capacity"
    assert len(sends) == 2, "a 500 from EC2 is retried by botocore's standard mode: 2 attempts in all"


@pytest.mark.parametrize("attempts", [0, 11, True])
def test_ec2_client_refuses_out_of_range_attempts(attempts: Any) -> None:
    with pytest.raises(ValueError, match="max_attempts must be an integer from 1 to 10"):
        ec2_client(max_attempts=attempts, region="us-east-1")


def test_ec2_client_uses_the_endpoint_from_the_environment(aws: MotoServer) -> None:
    c = ec2_client(max_attempts=3)
    assert c.meta.endpoint_url == aws.endpoint
    assert c.meta.config.retries == {"mode": "standard", "total_max_attempts": 3}


# --- ensure_stopped ------------------------------------------------------------------------


def test_stop_from_running_really_stops_the_instance(client: Any, plain: Any, instance_id: str) -> None:
    outcome = Ec2StandbyInstance(client, instance_id).ensure_stopped()
    assert outcome.ok and outcome.action == "stop_requested" and outcome.state is InstanceState.STOPPING
    assert instance_state(instance_id) == "stopped"
    again = Ec2StandbyInstance(client, instance_id).ensure_stopped()
    assert again.ok and again.action == "already_stopped" and again.state is InstanceState.STOPPED
    assert client.calls.count("StopInstances") == 1


@pytest.mark.parametrize("state", ["stopping", "pending"])
def test_stop_while_transient_waits(client: Any, instance_id: str, state: str) -> None:
    show_transient_state(client, state)
    outcome = Ec2StandbyInstance(client, instance_id).ensure_stopped()
    assert outcome.ok and outcome.action == "waiting" and outcome.state is InstanceState(state)
    assert "StopInstances" not in client.calls


def test_state_change_race_is_waiting_not_an_error(client: Any, plain: Any, instance_id: str) -> None:
    # e.g. someone else stopped it between our read and our call
    fail_call(client, "StopInstances", "IncorrectInstanceState", 400)
    outcome = Ec2StandbyInstance(client, instance_id).ensure_stopped()
    assert outcome.ok and outcome.action == "waiting" and outcome.error is None
    assert client.calls == ["DescribeInstances", "StopInstances", "DescribeInstances"]


# --- construction --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instance_id", "fallbacks", "message"),
    [
        ("sg-123", (), "instance_id"),
        ("i-0123456789abcdef0", "t3.small", "sequence"),
        ("i-0123456789abcdef0", ["t3.small", ""], "instance type"),
        ("i-0123456789abcdef0", ["large"], "instance type"),
    ],
)
def test_bad_arguments_are_refused(instance_id: str, fallbacks: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Ec2StandbyInstance(object(), instance_id, fallbacks)


def test_duplicate_fallbacks_are_tried_once(client: Any) -> None:
    standby = Ec2StandbyInstance(client, "i-0123456789abcdef0", ["t3a.micro", "t2.micro", "t3a.micro"])
    assert standby.fallback_types == ("t3a.micro", "t2.micro")
