"""The standby EC2 instance: read its state, start it (falling back through instance types when
EC2 has no capacity), stop it. Every call is driven by the instance's current state, so calling
twice is harmless, and nothing here raises: the outcome says what happened (docs/adapters.md).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from hfo_watchdog.aws import client_config
from hfo_watchdog.core.model import Ec2Outcome, InstanceState

log = logging.getLogger(__name__)

# EC2 error codes that mean "this instance type cannot run here right now": try the next type.
# InsufficientInstanceCapacity is the usual one on StartInstances; the host/reserved variants
# come from dedicated hosts and capacity reservations; Unsupported is what EC2 answers when the
# type is not offered in the instance's Availability Zone.
CAPACITY_ERROR_CODES = frozenset(
    {
        "InsufficientInstanceCapacity",
        "InsufficientHostCapacity",
        "InsufficientReservedInstanceCapacity",
        "InsufficientCapacity",
        "Unsupported",
    }
)
NOT_FOUND_CODES = frozenset({"InvalidInstanceID.NotFound"})
INCORRECT_STATE_CODE = "IncorrectInstanceState"


def ec2_client(
    max_attempts: int, region: str | None = None, *, connect_timeout: float = 3.0, read_timeout: float = 10.0
) -> Any:
    """A boto3 EC2 client with botocore's ``standard`` retries: ``max_attempts`` (1-10) counts every
    attempt, the first included. The endpoint comes from the standard environment: ``AWS_ENDPOINT_URL``
    (or ``AWS_ENDPOINT_URL_EC2``) when set, which is how tests and the demo reach moto."""
    return boto3.client("ec2", region_name=region, config=client_config(max_attempts, connect_timeout, read_timeout))


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code") or "Unknown")


def _error_message(exc: ClientError) -> str:
    message = str(exc.response.get("Error", {}).get("Message") or "")
    return message if len(message) <= 200 else message[:197] + "..."


def _to_state(name: str | None) -> InstanceState:
    try:
        return InstanceState(name or "unknown")
    except ValueError:
        return InstanceState.UNKNOWN


@dataclass(frozen=True)
class _Seen:
    state: InstanceState
    instance_type: str | None = None
    error: str | None = None  # aws_error detail when the state could not be read


class Ec2StandbyInstance:
    """ports.StandbyInstance over the EC2 API (DescribeInstances, StartInstances, StopInstances,
    ModifyInstanceAttribute). ``fallback_types`` are tried in order after the instance's own type
    when a start fails for lack of capacity."""

    def __init__(self, client: Any, instance_id: str, fallback_types: Sequence[str] = ()) -> None:
        if not isinstance(instance_id, str) or not instance_id.startswith("i-"):
            raise ValueError(f"instance_id must look like i-0123456789abcdef0, got {instance_id!r}")
        if isinstance(fallback_types, str):
            raise ValueError("fallback_types must be a sequence of instance types, not one string")
        types = [t.strip() for t in fallback_types]
        for t in types:
            if not t or "." not in t:
                raise ValueError(f"fallback instance type {t!r} is not an instance type like t3.small")
        self._client = client
        self.instance_id = instance_id
        self.fallback_types: tuple[str, ...] = tuple(dict.fromkeys(types))  # ordered, no duplicates

    def __repr__(self) -> str:
        return f"Ec2StandbyInstance(instance_id={self.instance_id!r}, fallback_types={self.fallback_types!r})"

    # -- reading -------------------------------------------------------------------------------

    def _describe(self) -> _Seen:
        try:
            resp = self._client.describe_instances(InstanceIds=[self.instance_id])
        except ClientError as exc:
            code = _error_code(exc)
            if code in NOT_FOUND_CODES:
                return _Seen(InstanceState.MISSING)
            return _Seen(InstanceState.UNKNOWN, error=f"DescribeInstances failed: {code}: {_error_message(exc)}")
        except BotoCoreError as exc:
            return _Seen(InstanceState.UNKNOWN, error=f"DescribeInstances failed: {type(exc).__name__}")
        for reservation in resp.get("Reservations", []):
            for inst in reservation.get("Instances", []):
                if inst.get("InstanceId") == self.instance_id:
                    return _Seen(_to_state(inst.get("State", {}).get("Name")), inst.get("InstanceType"))
        return _Seen(InstanceState.MISSING)

    def state(self) -> InstanceState:
        try:
            return self._describe().state
        except Exception:
            log.exception("reading the standby instance's state failed unexpectedly")
            return InstanceState.UNKNOWN

    # -- acting --------------------------------------------------------------------------------

    def ensure_running(self) -> Ec2Outcome:
        try:
            return self._ensure_running()
        except Exception as exc:
            return self._failed("start", exc)

    def ensure_stopped(self) -> Ec2Outcome:
        try:
            return self._ensure_stopped()
        except Exception as exc:
            return self._failed("stop", exc)

    def _failed(self, what: str, exc: Exception) -> Ec2Outcome:
        if isinstance(exc, BotoCoreError):  # no answer from EC2 (network, endpoint, credentials)
            detail = f"{what}: the EC2 API could not be reached ({type(exc).__name__})"
        else:
            log.exception("standby instance %s: %s failed unexpectedly", self.instance_id, what)
            detail = f"{what}: unexpected {type(exc).__name__}"
        return self._loud(Ec2Outcome(False, "none", InstanceState.UNKNOWN, error="aws_error", detail=detail))

    def _unusable(self, seen: _Seen) -> Ec2Outcome | None:
        """The outcome for states in which the instance can be neither started nor stopped."""
        if seen.state is InstanceState.MISSING:
            return self._loud(
                Ec2Outcome(
                    False, "none", seen.state, error="missing", detail=f"instance {self.instance_id} does not exist"
                )
            )
        if seen.state in (InstanceState.TERMINATED, InstanceState.SHUTTING_DOWN):
            return self._loud(
                Ec2Outcome(
                    False,
                    "none",
                    seen.state,
                    seen.instance_type,
                    error="terminated",
                    detail=f"instance {self.instance_id} is {seen.state.value}; it can never run again",
                )
            )
        if seen.state is InstanceState.UNKNOWN:
            return self._loud(
                Ec2Outcome(False, "none", seen.state, error="aws_error", detail=seen.error or "state unknown")
            )
        return None

    def _loud(self, outcome: Ec2Outcome) -> Ec2Outcome:
        log.error("standby instance %s: %s (%s)", self.instance_id, outcome.error, outcome.detail)
        return outcome

    def _ensure_running(self) -> Ec2Outcome:
        seen = self._describe()
        unusable = self._unusable(seen)
        if unusable is not None:
            return unusable
        if seen.state in (InstanceState.RUNNING, InstanceState.PENDING):
            return Ec2Outcome(
                True, "already_running", seen.state, seen.instance_type, detail=f"instance is {seen.state.value}"
            )
        if seen.state is InstanceState.STOPPING:
            return Ec2Outcome(
                True,
                "waiting",
                seen.state,
                seen.instance_type,
                detail="instance is stopping; it can be started once stopped",
            )
        return self._start_with_fallbacks(seen.instance_type)

    def _start_with_fallbacks(self, original: str | None) -> Ec2Outcome:
        candidates = [original] if original else []
        candidates += [t for t in self.fallback_types if t != original]
        tried: list[str] = []
        current = original
        for itype in candidates:
            if itype != current:
                try:
                    self._client.modify_instance_attribute(InstanceId=self.instance_id, InstanceType={"Value": itype})
                    current = itype
                except ClientError as exc:
                    code = _error_code(exc)
                    if code in CAPACITY_ERROR_CODES or code == "InvalidInstanceAttributeValue":
                        tried.append(f"{itype} ({code} on ModifyInstanceAttribute)")
                        continue
                    if code == INCORRECT_STATE_CODE:
                        return self._raced("ModifyInstanceAttribute", current)
                    return self._aws_error("ModifyInstanceAttribute", exc, current)
            try:
                resp = self._client.start_instances(InstanceIds=[self.instance_id])
            except ClientError as exc:
                code = _error_code(exc)
                if code in CAPACITY_ERROR_CODES:
                    log.warning("standby instance %s: no capacity for %s (%s)", self.instance_id, itype, code)
                    tried.append(f"{itype} ({code})")
                    continue
                if code == INCORRECT_STATE_CODE:
                    return self._raced("StartInstances", current)
                return self._aws_error("StartInstances", exc, current)
            state = InstanceState.PENDING
            for change in resp.get("StartingInstances", []):
                if change.get("InstanceId") == self.instance_id:
                    state = _to_state(change.get("CurrentState", {}).get("Name"))
            detail = f"StartInstances accepted with {itype}"
            if itype != original:
                detail += f" (fallback; no capacity for: {', '.join(tried)})"
                log.warning("standby instance %s: started with fallback type %s", self.instance_id, itype)
            return Ec2Outcome(True, "start_requested", state, itype, detail=detail)
        # Nothing could start: put the original type back so the next attempt starts from it.
        restore = ""
        if original and current != original:
            try:
                self._client.modify_instance_attribute(InstanceId=self.instance_id, InstanceType={"Value": original})
                current = original
            except (ClientError, BotoCoreError) as exc:
                restore = f"; could not restore {original} ({type(exc).__name__}), left at {current}"
        return self._loud(
            Ec2Outcome(
                False,
                "none",
                InstanceState.STOPPED,
                current,
                error="insufficient_capacity",
                detail=f"no capacity for any instance type; tried: {', '.join(tried) or 'none'}{restore}",
            )
        )

    def _raced(self, operation: str, itype: str | None) -> Ec2Outcome:
        """EC2 said IncorrectInstanceState: the state changed since we read it. Report the state
        now and let the next tick act on it (never loop here)."""
        seen = self._describe()
        return Ec2Outcome(
            True,
            "waiting",
            seen.state,
            seen.instance_type or itype,
            detail=f"{operation}: the instance changed state meanwhile (now {seen.state.value}); try again later",
        )

    def _aws_error(self, operation: str, exc: ClientError, itype: str | None) -> Ec2Outcome:
        code = _error_code(exc)
        return self._loud(
            Ec2Outcome(
                False,
                "none",
                self._describe().state,
                itype,
                error="aws_error",
                detail=f"{operation} failed: {code}: {_error_message(exc)}",
            )
        )

    def _ensure_stopped(self) -> Ec2Outcome:
        seen = self._describe()
        unusable = self._unusable(seen)
        if unusable is not None:
            return unusable
        if seen.state is InstanceState.STOPPED:
            return Ec2Outcome(True, "already_stopped", seen.state, seen.instance_type, detail="instance is stopped")
        if seen.state is InstanceState.STOPPING:
            return Ec2Outcome(True, "waiting", seen.state, seen.instance_type, detail="instance is already stopping")
        if seen.state is InstanceState.PENDING:
            return Ec2Outcome(
                True,
                "waiting",
                seen.state,
                seen.instance_type,
                detail="instance is pending; it can be stopped once running",
            )
        try:
            resp = self._client.stop_instances(InstanceIds=[self.instance_id])
        except ClientError as exc:
            if _error_code(exc) == INCORRECT_STATE_CODE:
                return self._raced("StopInstances", seen.instance_type)
            return self._aws_error("StopInstances", exc, seen.instance_type)
        state = InstanceState.STOPPING
        for change in resp.get("StoppingInstances", []):
            if change.get("InstanceId") == self.instance_id:
                state = _to_state(change.get("CurrentState", {}).get("Name"))
        return Ec2Outcome(True, "stop_requested", state, seen.instance_type, detail="StopInstances accepted")
