"""`hfo doctor`: check a live deployment for the hazards that break a real failover, before they bite.

It reads what Terraform says was deployed (the root's outputs: `terraform output -json` in
--terraform-dir, or a saved copy) and compares it with the live AWS account (boto3, the user's own
credentials) and, unless told not to, probes the health URL once with the real keyring. Every check
gives one verdict (docs/doctor.md lists them, what each means and its fix):

    PASS  nothing to do
    WARN  works, but something is unfinished or costs you (alerts nobody reads, a paused watchdog...)
    FAIL  a failover, a heartbeat, an alert or a boot of the standby will not work as it stands
    SKIP  could not be checked (no AWS access, --no-probe, an output it needs is missing)

No secret value is ever printed or returned: secrets are read only to check their presence and
shape (set, not a placeholder, a keyring that parses, an auth key that looks like one).

Not part of the Lambda package: lambda/build.py packs only what the handlers import, and nothing
there imports this module.
"""

from __future__ import annotations

import base64
import binascii
import enum
import gzip
import hashlib
import ipaddress
import json
import re
import subprocess
import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hfo_protocol.timefmt import format_ts

TAILNET_CIDR = "100.64.0.0/10"  # Tailscale's CGNAT range: every tailnet address is in it
SSM_STANDARD_MAX_BYTES = 4096  # an SSM Standard-tier parameter's value (Advanced: 8192)
SSM_ADVANCED_MAX_BYTES = 8192
K3S_MIN_MEMORY_MIB = 2048
LAMBDA_MIN_UNRESERVED = 10  # AWS keeps at least this much of the account's concurrency unreserved
TICK_LATE_FACTOR = 3  # the last tick is late after this many tick intervals
PLATFORMS = {"arm64": "linux/arm64", "x86_64": "linux/amd64"}
# What the values of a fresh deployment look like before the user puts the real ones (any
# case): Terraform's placeholders, the docs' `<...>` and the usual words.
PLACEHOLDER_MARKERS = (
    "placeholder",
    "replace-with",
    "replace_with",
    "replace-me",
    "changeme",
    "change-me",
    "<",
    "todo",
)
TAILSCALE_KEY_PREFIX = "tskey-"
TAILSCALE_CONSUMED_PREFIX = "consumed:"  # what the standby writes once it joined (bootstrap.sh)
DISCORD_WEBHOOK_RE = re.compile(r"^https://(?:[a-z]+\.)?discord(?:app)?\.com/api/webhooks/\d+/[A-Za-z0-9_-]+$")
REQUIRED_OUTPUTS = (
    "table_name",
    "instance_id",
    "alert_topic_arn",
    "secret_names",
    "function_names",
    "standby",
    "watchdog",
)
_PART_RE = re.compile(r"^(?P<file>.+)/(?P<n>\d{2,})$")
_K3S_CIDR_RE = re.compile(r'^"?(cluster-cidr|service-cidr)"?\s*:\s*"?([0-9a-fA-F.:/]+)"?\s*$', re.MULTILINE)


class DoctorInputError(ValueError):
    """The outputs cannot be read or are not those of a hybrid-failover root: nothing was checked."""


class Status(enum.StrEnum):
    PASS = "PASS"  # noqa: S105 - a verdict, not a password
    WARN = "WARN"
    FAIL = "FAIL"
    SKIP = "SKIP"


@dataclass(frozen=True)
class Finding:
    check: str  # the check's id (docs/doctor.md#<id>)
    status: Status
    reason: str
    fix: str = ""

    def line(self) -> str:
        text = f"{self.status.value:<4}  {self.check:<20} {self.reason}"
        if self.fix and self.status is not Status.PASS:
            text += f" Fix: {self.fix}"
        return text

    def as_dict(self) -> dict[str, str]:
        return {"check": self.check, "status": self.status.value, "reason": self.reason, "fix": self.fix}


class _Skip(Exception):
    """Internal: the check cannot run; the message says why."""


class _Fail(Exception):
    """Internal: an AWS read failed in a way that is itself the finding."""

    def __init__(self, reason: str, fix: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.fix = fix


# ----------------------------------------------------------------------------------- outputs


def parse_outputs(doc: Any, source: str) -> dict[str, Any]:
    """Terraform's outputs as {name: value}: from `terraform output -json` ({name: {"value": ...}})
    or a plain {name: value} map. Raises DoctorInputError naming what is missing."""
    if not isinstance(doc, dict):
        raise DoctorInputError(f"{source}: expected a JSON object of Terraform outputs, got {type(doc).__name__}")
    if not doc:
        raise DoctorInputError(f"{source}: no outputs at all (was `terraform apply` run in that directory?)")
    wrapped = all(isinstance(v, dict) and "value" in v for v in doc.values())
    values = {k: v["value"] for k, v in doc.items()} if wrapped else dict(doc)
    missing = [k for k in REQUIRED_OUTPUTS if values.get(k) is None]
    if missing:
        raise DoctorInputError(
            f"{source}: missing output(s) {', '.join(missing)}: these are not the outputs of a hybrid-failover root "
            "(terraform/examples/quickstart of this release; copy its outputs.tf into your root and apply)"
        )
    for key in ("table_name", "instance_id", "alert_topic_arn"):
        if not isinstance(values[key], str) or not values[key]:
            raise DoctorInputError(f"{source}: output {key} must be a non-empty string")
    for key in ("secret_names", "function_names", "standby", "watchdog"):
        if not isinstance(values[key], dict):
            raise DoctorInputError(f"{source}: output {key} must be an object")
    return values


def read_outputs_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DoctorInputError(f"--outputs: cannot read {str(path)!r}: {exc.strerror}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DoctorInputError(f"--outputs: {str(path)!r} is not JSON (line {exc.lineno}: {exc.msg})") from None
    return parse_outputs(doc, f"--outputs {str(path)!r}")


def read_terraform_outputs(directory: Path, terraform: str = "terraform", timeout_s: float = 120.0) -> dict[str, Any]:
    """`terraform output -json` in `directory` (read-only: it never changes the state)."""
    if not directory.is_dir():
        raise DoctorInputError(f"--terraform-dir: {str(directory)!r} is not a directory")
    try:
        result = subprocess.run(  # noqa: S603 - a fixed argv; the binary is the user's terraform
            [terraform, "output", "-json"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            env=None,
        )
    except FileNotFoundError:
        raise DoctorInputError(
            f"terraform not found ({terraform!r}): put it on PATH, or save the outputs with "
            "`terraform output -json > outputs.json` and pass --outputs outputs.json"
        ) from None
    except subprocess.TimeoutExpired:
        raise DoctorInputError(f"`terraform output -json` in {str(directory)!r} took over {timeout_s:g}s") from None
    if result.returncode != 0:
        error = " ".join(result.stderr.split())[:500]
        raise DoctorInputError(f"`terraform output -json` failed in {str(directory)!r}: {error}")
    try:
        doc = json.loads(result.stdout)
    except json.JSONDecodeError:
        raise DoctorInputError(f"`terraform output -json` in {str(directory)!r} did not print JSON") from None
    return parse_outputs(doc, f"terraform outputs of {str(directory)!r}")


# ----------------------------------------------------------------------------------- helpers


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", "")) or type(exc).__name__
    return type(exc).__name__


def _ago(at: float, now: float) -> str:
    delta = max(0.0, now - at)
    if delta < 120:
        text = f"{delta:.0f}s"
    elif delta < 7200:
        text = f"{delta / 60:.0f} min"
    elif delta < 172800:
        text = f"{delta / 3600:.1f} h"
    else:
        text = f"{delta / 86400:.1f} days"
    return f"{text} ago ({format_ts(at)})"


def is_placeholder(value: str) -> bool:
    lowered = value.strip().lower()
    return not lowered or any(marker in lowered for marker in PLACEHOLDER_MARKERS)


def overlapping_networks(networks: Mapping[str, str], allowed: set[frozenset[str]]) -> list[str]:
    """Every pair of named CIDR blocks that overlap, except the pairs in `allowed` (a VPC and its
    own subnet). Raises ValueError for a block that is not a CIDR."""
    parsed = {}
    for name, cidr in networks.items():
        try:
            parsed[name] = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise ValueError(f"{name} {cidr!r} is not a CIDR block") from None
    names = sorted(parsed)
    found = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            if frozenset((a, b)) in allowed:
                continue
            na, nb = parsed[a], parsed[b]
            if na.version == nb.version and na.overlaps(nb):
                found.append(f"{a} {na} and {b} {nb}")
    return found


def decode_node_files(parameters: Mapping[str, str], path: str) -> dict[str, bytes]:
    """The standby's configuration files from its SSM parameters (<path>/<file>/<NN>: parts of
    base64 of gzip, terraform/modules/standby). Raises ValueError for a file that does not decode."""
    parts: dict[str, dict[int, str]] = {}
    prefix = path.rstrip("/") + "/"
    for name, value in parameters.items():
        if not name.startswith(prefix):
            continue
        match = _PART_RE.match(name[len(prefix) :])
        if match is None:
            continue
        parts.setdefault(match["file"], {})[int(match["n"])] = value
    files = {}
    for name, numbered in parts.items():
        if sorted(numbered) != list(range(len(numbered))):
            raise ValueError(f"{name}: parts {sorted(numbered)} are not 00..{len(numbered) - 1:02d}")
        text = "".join(numbered[i] for i in range(len(numbered)))
        try:
            files[name] = gzip.decompress(base64.b64decode(text, validate=True))
        except (binascii.Error, OSError, EOFError, zlib.error):
            raise ValueError(f"{name}: not base64 of gzip") from None
    return files


# ----------------------------------------------------------------------------------- the doctor


@dataclass
class SecretRead:
    name: str
    store: str  # "ssm" or "secretsmanager"
    value: str | None  # None: exists, but holds no value
    tier: str | None = None  # SSM only
    kms_key: str | None = None  # SSM SecureString / Secrets Manager: the key id or ARN when customer managed

    def where(self) -> str:
        return f"SSM parameter {self.name}" if self.store == "ssm" else f"secret {self.name}"

    def put_command(self, region: str, file: str) -> str:
        if self.store == "ssm":
            return (
                f"aws ssm put-parameter --region {region} --name {self.name} --type SecureString "
                f"--overwrite --value file://{file}"
            )
        return f"aws secretsmanager put-secret-value --region {region} --secret-id {self.name} --secret-string file://{file}"


CheckFn = Callable[["Doctor"], Finding]
CHECKS: list[tuple[str, CheckFn]] = []


def check(check_id: str) -> Callable[[Callable[[Doctor], tuple[Status, str, str]]], Callable[[Doctor], Finding]]:
    """Register a check: it returns (status, reason, fix), or raises _Skip / _Fail."""

    def register(fn: Callable[[Doctor], tuple[Status, str, str]]) -> Callable[[Doctor], Finding]:
        def run(doctor: Doctor) -> Finding:
            try:
                status, reason, fix = fn(doctor)
            except _Skip as skip:
                return Finding(check_id, Status.SKIP, str(skip))
            except _Fail as failed:
                return Finding(check_id, Status.FAIL, failed.reason, failed.fix)
            return Finding(check_id, status, reason, fix)

        CHECKS.append((check_id, run))
        return run

    return register


@dataclass
class Doctor:
    """The deployment (its outputs), a boto3 session in its region, and the answers read so far
    (each AWS read is made once, whichever checks need it)."""

    outputs: Mapping[str, Any]
    session: Any
    probe: bool = True
    registry: bool = True  # read the images' platforms from their registry
    ca_bundle: str | None = None
    clock: Callable[[], float] = time.time
    clients: dict[str, Any] = field(default_factory=dict)  # tests may put a client here
    _cache: dict[str, Any] = field(default_factory=dict)
    _aws_error: str | None = None

    # -- plumbing

    @property
    def region(self) -> str:
        return str(self.session.region_name)

    def client(self, service: str) -> Any:
        if service not in self.clients:
            self.clients[service] = self.session.client(service)
        return self.clients[service]

    def cached(self, key: str, load: Callable[[], Any]) -> Any:
        if key not in self._cache:
            try:
                self._cache[key] = load()
            except (_Fail, _Skip) as exc:
                self._cache[key] = exc
        value = self._cache[key]
        if isinstance(value, (_Fail, _Skip)):
            raise value
        return value

    def need_aws(self) -> None:
        if self._aws_error is not None:
            raise _Skip(f"needs AWS access ({self._aws_error})")

    def standby_out(self, key: str) -> Any:
        value = self.outputs["standby"].get(key)
        if value is None:
            raise _Skip(f"the output standby.{key} is missing (apply this release's root)")
        return value

    def watchdog_out(self, key: str) -> Any:
        value = self.outputs["watchdog"].get(key)
        if value is None:
            raise _Skip(f"the output watchdog.{key} is missing (apply this release's root)")
        return value

    # -- shared reads

    def instance(self) -> dict[str, Any]:
        def load() -> dict[str, Any]:
            self.need_aws()
            instance_id = self.outputs["instance_id"]
            try:
                answer = self.client("ec2").describe_instances(InstanceIds=[instance_id])
            except Exception as exc:
                code = _code(exc)
                if code.startswith("InvalidInstanceID"):
                    raise _Fail(
                        f"the standby instance {instance_id} does not exist in {self.region}",
                        "replace the standby (docs/runbook.md#replace-the-standby-instance)",
                    ) from None
                raise _Fail(f"cannot describe the standby instance {instance_id}: {code}") from None
            found = [i for r in answer.get("Reservations", []) for i in r.get("Instances", [])]
            if not found:
                raise _Fail(
                    f"the standby instance {instance_id} does not exist in {self.region}",
                    "replace the standby (docs/runbook.md#replace-the-standby-instance)",
                )
            return dict(found[0])

        result: dict[str, Any] = self.cached("instance", load)
        return result

    def tick_config(self) -> dict[str, Any]:
        def load() -> dict[str, Any]:
            self.need_aws()
            name = self.outputs["function_names"].get("tick")
            if not name:
                raise _Skip("the output function_names.tick is missing")
            try:
                return dict(self.client("lambda").get_function_configuration(FunctionName=name))
            except Exception as exc:
                raise _Fail(f"cannot read the tick function {name}: {_code(exc)}") from None

        result: dict[str, Any] = self.cached("tick_config", load)
        return result

    def tick_env(self) -> dict[str, str]:
        return dict(self.tick_config().get("Environment", {}).get("Variables", {}))

    def setting(self, name: str, default: float) -> float:
        try:
            return float(self.tick_env().get(name, default))
        except (ValueError, _Fail, _Skip):
            return default

    def state_items(self) -> tuple[dict[str, Any] | None, dict[str, dict[str, Any]]]:
        """The raw control item and the site items (by site) of the state table."""

        def load() -> tuple[dict[str, Any] | None, dict[str, dict[str, Any]]]:
            self.need_aws()
            from hfo_watchdog.store import DynamoStateStore, StoreError

            store = DynamoStateStore(self.client("dynamodb"), self.outputs["table_name"], writer="doctor")
            try:
                return store._load_items()
            except StoreError as exc:
                raise _Fail(
                    f"cannot read the state table {self.outputs['table_name']}: {exc}",
                    "check the table exists in this region and your credentials may read it",
                ) from None

        result: tuple[dict[str, Any] | None, dict[str, dict[str, Any]]] = self.cached("state", load)
        return result

    def secret(self, key: str) -> SecretRead | None:
        """The secret (or SecureString parameter) the output secret_names.<key> names, or None when
        the output is null (that secret is off). Which store holds it: an ARN output says so, else
        a name starting with "/" is an SSM parameter, else a Secrets Manager secret, and the other
        store is tried when the first has no such name."""

        def load() -> SecretRead | None:
            name = self.outputs["secret_names"].get(key)
            if name is None:
                return None
            self.need_aws()
            arn = (self.outputs.get("secret_arns") or {}).get(key) or ""
            order = ["ssm", "secretsmanager"] if (":ssm:" in arn or str(name).startswith("/")) else [
                "secretsmanager",
                "ssm",
            ]  # fmt: skip
            if ":secretsmanager:" in arn:
                order = ["secretsmanager"]
            for store in order:
                found = self._read_ssm(name) if store == "ssm" else self._read_secretsmanager(name)
                if found is not None:
                    return found
            raise _Fail(
                f"no secret or SSM parameter named {name} in {self.region}",
                "run `terraform apply` in your root again (it creates it), and check the region",
            )

        result: SecretRead | None = self.cached(f"secret:{key}", load)
        return result

    def _read_secretsmanager(self, name: str) -> SecretRead | None:
        client = self.client("secretsmanager")
        try:
            described = client.describe_secret(SecretId=name)
        except Exception as exc:
            if _code(exc) == "ResourceNotFoundException":
                return None
            raise _Fail(f"cannot describe the secret {name}: {_code(exc)}") from None
        kms = described.get("KmsKeyId")
        try:
            value = client.get_secret_value(SecretId=name).get("SecretString")
        except Exception as exc:
            code = _code(exc)
            if code == "ResourceNotFoundException":  # the secret exists, with no AWSCURRENT version
                return SecretRead(name, "secretsmanager", None, kms_key=kms)
            raise _Fail(
                f"cannot read the secret {name}: {code}",
                "use credentials allowed secretsmanager:GetSecretValue on it (the doctor never prints it)",
            ) from None
        return SecretRead(name, "secretsmanager", value, kms_key=kms)

    def _read_ssm(self, name: str) -> SecretRead | None:
        client = self.client("ssm")
        try:
            parameter = client.get_parameter(Name=name, WithDecryption=True)["Parameter"]
        except Exception as exc:
            code = _code(exc)
            if code in ("ParameterNotFound", "ValidationException"):
                return None
            raise _Fail(
                f"cannot read the SSM parameter {name}: {code}",
                "use credentials allowed ssm:GetParameter and kms:Decrypt on it (the doctor never prints it)",
            ) from None
        tier, kms = None, None
        try:
            described = client.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [name]}])
            for meta in described.get("Parameters", []):
                tier, kms = meta.get("Tier"), meta.get("KeyId")
        except Exception:  # noqa: S110 - the tier and key are extras; the value is what matters
            pass
        return SecretRead(name, "ssm", parameter.get("Value"), tier=tier, kms_key=kms)

    def node_parameters(self) -> dict[str, str]:
        def load() -> dict[str, str]:
            self.need_aws()
            path = self.standby_out("parameter_path")
            values: dict[str, str] = {}
            try:
                paginator = self.client("ssm").get_paginator("get_parameters_by_path")
                for page in paginator.paginate(Path=path, Recursive=True):
                    for p in page.get("Parameters", []):
                        values[p["Name"]] = p["Value"]
            except Exception as exc:
                raise _Fail(f"cannot read the standby's parameters under {path}: {_code(exc)}") from None
            return values

        result: dict[str, str] = self.cached("node_parameters", load)
        return result

    def node_files(self) -> dict[str, bytes]:
        def load() -> dict[str, bytes]:
            path = self.standby_out("parameter_path")
            try:
                return decode_node_files(self.node_parameters(), path)
            except ValueError as exc:
                raise _Fail(
                    f"the standby's configuration under {path} is damaged: {exc}",
                    "run `terraform apply` in your root (it rewrites every parameter)",
                ) from None

        result: dict[str, bytes] = self.cached("node_files", load)
        return result

    # -- running

    def run(self, only: Iterable[str] | None = None) -> list[Finding]:
        wanted = None if only is None else set(only)
        return [run(self) for check_id, run in CHECKS if wanted is None or check_id in wanted]


# ----------------------------------------------------------------------------------- checks
# In the order a user fixes things: access, infrastructure, secrets, the watchdog, then the sites.


@check("aws-access")
def check_aws_access(d: Doctor) -> tuple[Status, str, str]:
    try:
        identity = d.client("sts").get_caller_identity()
    except Exception as exc:
        d._aws_error = f"no working AWS credentials: {_code(exc)}"
        return (
            Status.FAIL,
            f"cannot call AWS in {d.region}: {_code(exc)}",
            "set AWS_PROFILE (or credentials) for the account of the stack; `aws sts get-caller-identity` must work",
        )
    account = str(identity.get("Account", ""))
    topic_account = d.outputs["alert_topic_arn"].split(":")[4] if d.outputs["alert_topic_arn"].count(":") >= 5 else ""
    if topic_account and account != topic_account:
        d._aws_error = f"credentials of account {account}, stack in {topic_account}"
        return (
            Status.FAIL,
            f"your credentials are for account {account}, the stack is in account {topic_account}",
            f"use the profile of account {topic_account} (AWS_PROFILE)",
        )
    return Status.PASS, f"account {account}, region {d.region}", ""


@check("standby-instance")
def check_standby_instance(d: Doctor) -> tuple[Status, str, str]:
    instance = d.instance()
    state = instance.get("State", {}).get("Name", "unknown")
    instance_id = d.outputs["instance_id"]
    if state in ("terminated", "shutting-down"):
        return (
            Status.FAIL,
            f"the standby {instance_id} is {state}: no failover is possible",
            "replace the standby (docs/runbook.md#replace-the-standby-instance)",
        )
    try:
        control, _ = d.state_items()
        lease = "primary" if control is None else control.get("lease_site", {}).get("S", "primary")
    except (_Fail, _Skip):
        lease = "unknown"
    if state in ("running", "pending") and lease in ("primary", "unknown"):
        return (
            Status.WARN,
            f"the standby {instance_id} is {state} while the primary holds the lease: it costs by the hour",
            "if you are not bootstrapping it or running a drill: `hfo status`, then "
            f"`aws ec2 stop-instances --instance-ids {instance_id}`",
        )
    return Status.PASS, f"{instance_id} ({instance.get('InstanceType')}) is {state}, lease on {lease}", ""


@check("networks")
def check_networks(d: Doctor) -> tuple[Status, str, str]:
    networks_out = d.standby_out("networks")
    cluster = str(networks_out.get("cluster_cidr"))
    service = str(networks_out.get("service_cidr"))
    source = "Terraform's outputs"
    try:  # what the node really reads at boot wins over what the outputs say
        config = d.node_files().get("k3s-config.yaml", b"").decode("utf-8", "replace")
        live = dict(_K3S_CIDR_RE.findall(config))
        cluster = live.get("cluster-cidr", cluster)
        service = live.get("service-cidr", service)
        source = "the standby's k3s-config.yaml in SSM"
    except (_Fail, _Skip):
        pass
    instance = d.instance()
    networks: dict[str, str] = {"pod network": cluster, "service network": service, "tailnet": TAILNET_CIDR}
    host: set[str] = set()
    try:
        vpc = d.client("ec2").describe_vpcs(VpcIds=[instance["VpcId"]])["Vpcs"][0]
        blocks = [
            a["CidrBlock"]
            for a in vpc.get("CidrBlockAssociationSet", [])
            if a.get("CidrBlockState", {}).get("State", "associated") in ("associated", "associating")
        ] or [vpc["CidrBlock"]]
        for i, block in enumerate(blocks):
            networks[f"VPC {instance['VpcId']}" + (f" block {i + 1}" if i else "")] = block
            host.add(f"VPC {instance['VpcId']}" + (f" block {i + 1}" if i else ""))
        subnet = d.client("ec2").describe_subnets(SubnetIds=[instance["SubnetId"]])["Subnets"][0]
        networks[f"subnet {instance['SubnetId']}"] = subnet["CidrBlock"]
        host.add(f"subnet {instance['SubnetId']}")
    except Exception as exc:
        raise _Fail(f"cannot read the standby's VPC and subnet: {_code(exc)}") from None
    allowed = {frozenset((a, b)) for a in host for b in host if a != b}
    try:
        overlaps = overlapping_networks(networks, allowed)
    except ValueError as exc:
        return Status.FAIL, f"{exc} (from {source})", "set cluster_cidr and service_cidr to CIDR blocks and apply"
    if overlaps:
        return (
            Status.FAIL,
            f"these networks overlap: {'; '.join(overlaps)} (K3s's from {source}): pods would take the node's own "
            "addresses and the standby would lose CoreDNS and the internet",
            "choose non-overlapping vpc_cidr/subnet_cidr, cluster_cidr and service_cidr (defaults 10.200.0.0/24, "
            "10.42.0.0/16, 10.43.0.0/16), apply, then replace the standby (K3s fixes its networks at first start; "
            "docs/runbook.md#replace-the-standby-instance)",
        )
    summary = ", ".join(f"{k} {v}" for k, v in sorted(networks.items()))
    return Status.PASS, f"no overlap: {summary}", ""


@check("standby-architecture")
def check_standby_architecture(d: Doctor) -> tuple[Status, str, str]:
    instance = d.instance()
    arch = str(instance.get("Architecture", ""))
    instance_type = str(instance.get("InstanceType", ""))
    platforms = list(d.standby_out("image_platforms"))
    try:
        described = d.client("ec2").describe_instance_types(InstanceTypes=[instance_type])["InstanceTypes"][0]
    except Exception as exc:
        raise _Fail(f"cannot describe instance type {instance_type}: {_code(exc)}") from None
    supported = described.get("ProcessorInfo", {}).get("SupportedArchitectures", [])
    if arch not in supported:
        return (
            Status.FAIL,
            f"the standby's image is {arch} but its type {instance_type} runs only {', '.join(supported)}: "
            "it cannot start",
            f"give it a type of architecture {arch} (aws ec2 modify-instance-attribute while stopped)",
        )
    platform = PLATFORMS.get(arch)
    if platform is None or platform not in platforms:
        return (
            Status.FAIL,
            f"the standby is {arch} ({instance_type}), the images are built for {', '.join(platforms) or 'nothing'}: "
            "every pod would fail with 'exec format error'",
            f"build the images for {platform} too (`make images` builds linux/amd64 and linux/arm64), push, and "
            "set image_platforms",
        )
    return Status.PASS, f"{instance_type} is {arch}; images built for {', '.join(platforms)}", ""


# --- the images' platforms, from their registry (the OCI distribution API, anonymous pull)

REGISTRY_TIMEOUT_S = 5.0
MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
_LOOPBACK_REGISTRIES = ("localhost", "127.0.0.1", "[::1]")
_CHALLENGE_RE = re.compile(r'(\w+)="([^"]*)"')


class RegistryUnreadable(Exception):
    """The registry could not be asked (network, authentication, an answer that is not a manifest)."""


class ImageMissing(Exception):
    """The registry answered that the image (its tag or digest) does not exist."""


@dataclass(frozen=True)
class ImageRef:
    registry: str  # host[:port]
    repository: str
    reference: str  # tag or digest

    @classmethod
    def parse(cls, image: str) -> ImageRef:
        """docker's rules: the first component is a registry when it has a dot or a colon, or is
        localhost; otherwise Docker Hub (and `library/` for a one-component name)."""
        rest, _, digest = image.partition("@")
        first, _, remainder = rest.partition("/")
        if remainder and ("." in first or ":" in first or first == "localhost"):
            registry, path = first, remainder
        else:
            registry, path = "registry-1.docker.io", rest if "/" in rest else f"library/{rest}"
        name, _, tag = path.rpartition(":") if ":" in path.rsplit("/", 1)[-1] else (path, "", "")
        if not name:
            raise ValueError(f"{image!r} is not an image reference")
        return cls(registry, name, digest or tag or "latest")

    @property
    def base(self) -> str:
        match = re.match(r"^(\[[^\]]+\]|[^:]+)", self.registry)
        host = match.group(1) if match else self.registry
        scheme = "http" if host in _LOOPBACK_REGISTRIES else "https"  # as docker treats loopback
        return f"{scheme}://{self.registry}/v2/{self.repository}"


def _registry_get(session: Any, url: str, ref: ImageRef, accept: str, token: list[str]) -> Any:
    headers = {"Accept": accept}
    if token:
        headers["Authorization"] = f"Bearer {token[0]}"
    try:
        answer = session.get(url, headers=headers, timeout=REGISTRY_TIMEOUT_S)
        if answer.status_code == 401 and not token:
            challenge = answer.headers.get("WWW-Authenticate", "")
            if not challenge.lower().startswith("bearer "):
                raise RegistryUnreadable(f"{ref.registry} asks for credentials ({challenge.split(' ')[0] or '401'})")
            params = dict(_CHALLENGE_RE.findall(challenge))
            realm = params.pop("realm", "")
            params.setdefault("scope", f"repository:{ref.repository}:pull")
            granted = session.get(realm, params=params, timeout=REGISTRY_TIMEOUT_S)
            if granted.status_code != 200:
                raise RegistryUnreadable(f"{ref.registry} refused an anonymous pull token (HTTP {granted.status_code})")
            doc = granted.json()
            token.append(str(doc.get("token") or doc.get("access_token") or ""))
            return _registry_get(session, url, ref, accept, token)
    except (RegistryUnreadable, ImageMissing):
        raise
    except Exception as exc:  # requests' network errors, a token answer that is not JSON
        raise RegistryUnreadable(f"{ref.registry} not reachable ({type(exc).__name__})") from None
    if answer.status_code == 404:
        raise ImageMissing(f"{ref.repository}:{ref.reference} is not in {ref.registry}")
    if answer.status_code in (401, 403):
        raise RegistryUnreadable(f"{ref.registry} does not let anonymous users pull {ref.repository}")
    if answer.status_code != 200:
        raise RegistryUnreadable(f"{ref.registry} answered HTTP {answer.status_code}")
    return answer


def image_platforms(image: str, session: Any) -> set[str]:
    """The platforms (os/architecture) an image is published for, read from its registry."""
    ref = ImageRef.parse(image)
    token: list[str] = []
    answer = _registry_get(session, f"{ref.base}/manifests/{ref.reference}", ref, MANIFEST_TYPES, token)
    try:
        doc = answer.json()
    except ValueError:
        raise RegistryUnreadable(f"the manifest of {image} is not JSON") from None
    if isinstance(doc.get("manifests"), list):  # an index: one manifest per platform
        platforms = {
            f"{m.get('platform', {}).get('os')}/{m.get('platform', {}).get('architecture')}" for m in doc["manifests"]
        }
        return {p for p in platforms if "unknown" not in p and "None" not in p}  # attestations name no platform
    config = doc.get("config", {}).get("digest")
    if not config:
        raise RegistryUnreadable(f"the manifest of {image} is neither an index nor an image manifest")
    blob = _registry_get(session, f"{ref.base}/blobs/{config}", ref, "*/*", token)
    try:
        image_config = blob.json()
    except ValueError:
        raise RegistryUnreadable(f"the configuration of {image} is not JSON") from None
    return {f"{image_config.get('os')}/{image_config.get('architecture')}"}


@check("image-platforms")
def check_image_platforms(d: Doctor) -> tuple[Status, str, str]:
    if not d.registry:
        raise _Skip("--no-registry")
    images = list(d.standby_out("workload_images"))
    wanted = list(d.standby_out("image_platforms"))
    try:
        arch = str(d.instance().get("Architecture", ""))
        standby = PLATFORMS.get(arch) or str(d.standby_out("platform"))
    except (_Fail, _Skip):
        standby = str(d.standby_out("platform"))
    import requests

    session = requests.Session()
    session.trust_env = True  # the user's proxy settings, as docker would use them
    missing, short, unreadable, fine = [], [], [], []
    for image in images:
        try:
            platforms = image_platforms(image, session)
        except ValueError as exc:
            short.append(str(exc))
            continue
        except ImageMissing as exc:
            missing.append(str(exc))
            continue
        except RegistryUnreadable as exc:
            unreadable.append(f"{image}: {exc}")
            continue
        lacking = [p for p in dict.fromkeys([standby, *wanted]) if p not in platforms]
        if lacking:
            short.append(f"{image} has {', '.join(sorted(platforms)) or 'no platform'}, not {', '.join(lacking)}")
        else:
            fine.append(image)
    fix = "`make images` builds and pushes both images for linux/amd64 and linux/arm64 (docs/walkthrough.md step 2)"
    if missing or short:
        why = "; ".join(missing + short)
        return Status.FAIL, f"{why}: the standby ({standby}) or the laptop would fail to pull or run them", fix
    if unreadable:
        checked = f" ({', '.join(fine)} fine)" if fine else ""
        return (
            Status.WARN,
            f"cannot read the platforms of {'; '.join(unreadable)}{checked}",
            "make the packages public (or check them with `docker buildx imagetools inspect <image>`)",
        )
    return Status.PASS, f"{', '.join(images)} are published for {', '.join(dict.fromkeys([standby, *wanted]))}", ""


@check("fallback-types")
def check_fallback_types(d: Doctor) -> tuple[Status, str, str]:
    arch = str(d.instance().get("Architecture", ""))
    types = [t.strip() for t in d.tick_env().get("HFO_FALLBACK_INSTANCE_TYPES", "").split(",") if t.strip()]
    if not types:
        return (
            Status.PASS,
            "no fallback instance types (without capacity the watchdog retries its own type)",
            "",
        )
    bad = []
    for instance_type in types:
        try:
            info = d.client("ec2").describe_instance_types(InstanceTypes=[instance_type])["InstanceTypes"][0]
        except Exception as exc:
            bad.append(f"{instance_type} ({_code(exc)})")
            continue
        supported = info.get("ProcessorInfo", {}).get("SupportedArchitectures", [])
        memory = int(info.get("MemoryInfo", {}).get("SizeInMiB", 0))
        if arch not in supported:
            bad.append(f"{instance_type} ({'/'.join(supported)}, not {arch})")
        elif memory < K3S_MIN_MEMORY_MIB:
            bad.append(f"{instance_type} ({memory} MiB, under K3s's {K3S_MIN_MEMORY_MIB})")
    if bad:
        return (
            Status.FAIL,
            f"fallback types the standby cannot run on: {', '.join(bad)}; a start on one would fail when EC2 has no "
            "capacity for its own type",
            f"set fallback_instance_types to {arch} types with 2 GiB or more, and apply",
        )
    return Status.PASS, f"fallback types {', '.join(types)} are all {arch} with 2 GiB or more", ""


@check("kms-key")
def check_kms_key(d: Doctor) -> tuple[Status, str, str]:
    d.need_aws()
    configured = d.outputs["standby"].get("ebs_kms_key_arn")
    instance = d.instance()
    volume_ids = [m["Ebs"]["VolumeId"] for m in instance.get("BlockDeviceMappings", []) if "Ebs" in m]
    keys: dict[str, str] = {}  # key -> what uses it
    try:
        if volume_ids:
            for volume in d.client("ec2").describe_volumes(VolumeIds=volume_ids)["Volumes"]:
                if volume.get("KmsKeyId"):
                    keys[volume["KmsKeyId"]] = f"the standby's volume {volume['VolumeId']}"
    except Exception as exc:
        raise _Fail(f"cannot describe the standby's volumes: {_code(exc)}") from None
    if configured:
        keys.setdefault(str(configured), "ebs_kms_key_arn")
    for secret_key in ("hmac_keyring", "tailscale_auth_key", "discord_webhook"):
        try:
            found = d.secret(secret_key)
        except (_Fail, _Skip):
            continue
        if found is not None and found.kms_key and not found.kms_key.startswith("alias/aws/"):
            keys.setdefault(found.kms_key, found.where())
    if not keys:
        return Status.PASS, "no KMS key involved (EBS and the secrets use AWS managed keys)", ""
    problems, notes = [], []
    for key, user in sorted(keys.items()):
        try:
            meta = d.client("kms").describe_key(KeyId=key)["KeyMetadata"]
        except Exception as exc:
            problems.append(f"{key} ({user}) cannot be described: {_code(exc)}")
            continue
        state, manager = meta.get("KeyState"), meta.get("KeyManager")
        if state != "Enabled":
            problems.append(f"{meta.get('KeyId', key)} ({user}) is {state}")
            continue
        if user.startswith("the standby's volume") and manager == "CUSTOMER":
            same = configured and (
                configured == key or configured == meta.get("Arn") or configured == meta.get("KeyId")
            )
            if not same:
                problems.append(
                    f"{meta.get('Arn', key)} ({user}) is customer managed but not ebs_kms_key_arn: the watchdog "
                    "has no kms:CreateGrant on it and StartInstances fails"
                )
                continue
        notes.append(f"{meta.get('KeyId', key)} ({user}) Enabled")
    if problems:
        return (
            Status.FAIL,
            "; ".join(problems),
            "enable the key (aws kms enable-key --key-id <key>); set ebs_kms_key_arn to the volume's key, apply",
        )
    return Status.PASS, "; ".join(notes), ""


@check("lambda-concurrency")
def check_lambda_concurrency(d: Doctor) -> tuple[Status, str, str]:
    d.need_aws()
    configured = dict(d.outputs["watchdog"].get("reserved_concurrency") or {})
    client = d.client("lambda")
    live: dict[str, int | None] = {}
    for which, name in sorted(d.outputs["function_names"].items()):
        try:
            answer = client.get_function_concurrency(FunctionName=name)
        except Exception as exc:
            raise _Fail(f"cannot read the concurrency of {name}: {_code(exc)}") from None
        value = answer.get("ReservedConcurrentExecutions")
        live[which] = None if value is None else int(value)
    zero = [d.outputs["function_names"][w] for w, v in live.items() if v == 0]
    if zero:
        return (
            Status.FAIL,
            f"reserved concurrency 0 on {', '.join(zero)}: the function is throttled and never runs",
            "set tick_reserved_concurrency / heartbeat_reserved_concurrency to -1 (no reservation) or 1+, and apply",
        )
    drift = [
        f"{w}: configured {configured[w]}, live {'none' if live.get(w) is None else live[w]}"
        for w in sorted(configured)
        if w in live and int(configured[w]) >= 0 and live[w] != int(configured[w])
    ]
    if drift:
        return (
            Status.FAIL,
            f"the reserved concurrency in AWS is not what Terraform set ({'; '.join(drift)})",
            "run `terraform apply` again; on a new account (quota 10) keep the reservations at -1 "
            "(docs/terraform.md on the Function URL's flood protection)",
        )
    reserved = {w: v for w, v in live.items() if v is not None}
    what = ", ".join(f"{w} {v}" for w, v in sorted(reserved.items())) or "no reservation"
    try:
        limits = client.get_account_settings()["AccountLimit"]
    except Exception as exc:
        return (
            Status.WARN,
            f"{what}; the account's concurrency quota is not readable ({_code(exc)})",
            "use credentials allowed lambda:GetAccountSettings to check the quota",
        )
    quota = int(limits.get("ConcurrentExecutions", 0))
    unreserved = int(limits.get("UnreservedConcurrentExecutions", 0))
    if unreserved < LAMBDA_MIN_UNRESERVED:
        return (
            Status.FAIL,
            f"the account's unreserved concurrency is {unreserved} (quota {quota}), under Lambda's minimum of "
            f"{LAMBDA_MIN_UNRESERVED}",
            "remove reservations (-1) or ask AWS for a higher concurrency quota (Service Quotas, Lambda)",
        )
    note = (
        "; the public heartbeat URL shares the account's unreserved pool (a flood can throttle other functions)"
        if "heartbeat" not in reserved
        else ""
    )
    return Status.PASS, f"{what}; account quota {quota}, unreserved {unreserved}{note}", ""


@check("watchdog-config")
def check_watchdog_config(d: Doctor) -> tuple[Status, str, str]:
    from hfo_watchdog.config import Settings, SettingsError

    config = d.tick_config()
    env = d.tick_env()
    try:
        settings = Settings.from_env(env)
    except SettingsError as exc:
        return Status.FAIL, f"the tick function's configuration is refused: {exc}", "fix the variable and apply"
    problems = []
    if settings.table_name != d.outputs["table_name"]:
        problems.append(f"HFO_TABLE_NAME is {settings.table_name}, the stack's table is {d.outputs['table_name']}")
    if settings.instance_id != d.outputs["instance_id"]:
        problems.append(f"HFO_INSTANCE_ID is {settings.instance_id}, the stack's standby is {d.outputs['instance_id']}")
    if config.get("State", "Active") != "Active" or config.get("LastUpdateStatus", "Successful") == "Failed":
        problems.append(f"the function is {config.get('State')} (last update {config.get('LastUpdateStatus')})")
    if problems:
        return Status.FAIL, "; ".join(problems), "run `terraform apply` in your root"
    return Status.PASS, f"{config.get('FunctionName')} configuration is valid and points at this stack", ""


@check("heartbeat-url")
def check_heartbeat_url(d: Doctor) -> tuple[Status, str, str]:
    """The agents' way in: the heartbeat function's URL exists, is public (authorization NONE: every
    heartbeat is authenticated by its HMAC), is the URL the sites were given (the `heartbeat_url`
    output), and its resource policy lets anyone invoke it: since October 2025 a public Function URL
    needs lambda:InvokeFunction next to lambda:InvokeFunctionUrl, else every call gets 403."""
    d.need_aws()
    name = d.outputs["function_names"].get("heartbeat")
    if not name:
        raise _Skip("the output function_names.heartbeat is missing")
    lam = d.client("lambda")
    fix = "run `terraform apply` in your root"
    try:
        config = lam.get_function_url_config(FunctionName=name)
    except Exception as exc:
        if _code(exc) == "ResourceNotFoundException":
            return Status.FAIL, f"{name} has no Function URL: no heartbeat can arrive", fix
        raise _Fail(f"cannot read the Function URL of {name}: {_code(exc)}") from None
    url = str(config.get("FunctionUrl", "")).rstrip("/")
    if config.get("AuthType") != "NONE":
        return (
            Status.FAIL,
            f"the heartbeat URL wants {config.get('AuthType')} authorization: the agents (no AWS credentials) get 403",
            fix,
        )
    given = str(d.outputs.get("heartbeat_url") or "").rstrip("/")
    if given and given != url:
        return (
            Status.FAIL,
            f"the heartbeat URL is {url}, the outputs (and so the sites) have {given}",
            "set HFO_HEARTBEAT_URL in k8s/base/kustomization.yaml to `terraform output -raw heartbeat_url`, push",
        )
    try:
        policy = json.loads(lam.get_policy(FunctionName=name)["Policy"])
    except Exception as exc:
        if _code(exc) != "ResourceNotFoundException":
            raise _Fail(f"cannot read the resource policy of {name}: {_code(exc)}") from None
        policy = {"Statement": []}
    public: set[str] = set()
    for statement in policy.get("Statement", []):
        principal = statement.get("Principal")
        if statement.get("Effect") != "Allow" or principal not in ("*", {"AWS": "*"}):
            continue
        actions = statement.get("Action", [])
        public.update([actions] if isinstance(actions, str) else actions)
    lacking = [
        a for a in ("lambda:InvokeFunctionUrl", "lambda:InvokeFunction") if a not in public and "lambda:*" not in public
    ]
    if lacking:
        return (
            Status.FAIL,
            f"the resource policy of {name} does not grant {' and '.join(lacking)} to everyone: every heartbeat "
            "gets 403 Forbidden",
            fix,
        )
    return Status.PASS, f"{url} is public (HMAC-authenticated by the handler) and is the URL the sites have", ""


@check("hmac-keyring")
def check_hmac_keyring(d: Doctor) -> tuple[Status, str, str]:
    from hfo_protocol.keys import Keyring

    found = d.secret("hmac_keyring")
    if found is None:
        raise _Skip("the output secret_names.hmac_keyring is null")
    fix = f"{found.put_command(d.region, 'hmac-keyring.txt')} (docs/walkthrough.md step 6)"
    size_issue = _size_issue(found)
    if found.value is None or is_placeholder(found.value):
        what = "has no value" if found.value is None else "still holds a placeholder"
        return Status.FAIL, f"the {found.where()} {what}: no probe or heartbeat can be verified", fix
    if size_issue:
        return Status.FAIL, f"the {found.where()} {size_issue}", "use a shorter keyring (one 48-byte key is plenty)"
    try:
        keyring = Keyring.from_secret_string(found.value)
    except ValueError as exc:
        return Status.FAIL, f"the {found.where()} is not a valid keyring: {exc}", fix
    return (
        Status.PASS,
        f"the {found.where()} holds a keyring of {len(keyring.keys)} key(s), active {keyring.active_kid}",
        "",
    )


def _size_issue(found: SecretRead) -> str:
    if found.store != "ssm" or found.value is None:
        return ""
    limit = SSM_ADVANCED_MAX_BYTES if found.tier == "Advanced" else SSM_STANDARD_MAX_BYTES
    size = len(found.value.encode("utf-8"))
    if size > limit:
        return f"is {size} bytes, over the {found.tier or 'Standard'} tier's {limit}"
    return ""


@check("tailscale-auth-key")
def check_tailscale_key(d: Doctor) -> tuple[Status, str, str]:
    found = d.secret("tailscale_auth_key")
    if found is None:
        raise _Skip("the output secret_names.tailscale_auth_key is null")
    fix = (
        "generate a one-off, pre-approved auth key tagged tag:hfo-standby (docs/walkthrough.md step 4) and "
        f"{found.put_command(d.region, 'tailscale-authkey.txt')}"
    )
    _, sites = d.state_items()
    standby_seen = "standby" in sites
    if found.value is not None and found.value.strip().startswith(TAILSCALE_CONSUMED_PREFIX):
        return Status.PASS, f"the {found.where()} was consumed: the standby joined the tailnet", ""
    if found.value is None or is_placeholder(found.value):
        what = "has no value" if found.value is None else "still holds a placeholder"
        if standby_seen:
            return (
                Status.WARN,
                f"the {found.where()} {what}; fine while the standby keeps its tailnet identity",
                ("put a new key only before replacing the standby"),
            )
        return Status.FAIL, f"the {found.where()} {what}: the standby cannot join the tailnet at its next boot", fix
    if not found.value.strip().startswith(TAILSCALE_KEY_PREFIX):
        return (
            Status.FAIL,
            f"the {found.where()} holds no Tailscale auth key (no {TAILSCALE_KEY_PREFIX} prefix)",
            fix,
        )
    if size := _size_issue(found):
        return Status.FAIL, f"the {found.where()} {size}", fix
    return Status.PASS, f"the {found.where()} holds an auth key; the standby joins with it at its next boot", ""


@check("discord-webhook")
def check_discord_webhook(d: Doctor) -> tuple[Status, str, str]:
    found = d.secret("discord_webhook")
    if found is None:
        return Status.PASS, "Discord alerts are off (discord_alerts = false); alerts go to the SNS topic", ""
    fix = found.put_command(d.region, "discord-webhook.txt")
    if found.value is None or is_placeholder(found.value):
        what = "has no value" if found.value is None else "still holds a placeholder"
        return Status.WARN, f"the {found.where()} {what}: no alert reaches Discord", fix
    if not DISCORD_WEBHOOK_RE.match(found.value.strip()):
        return (
            Status.FAIL,
            f"the {found.where()} is no Discord webhook URL (https://discord.com/api/webhooks/...)",
            fix,
        )
    return Status.PASS, f"the {found.where()} holds a Discord webhook URL", ""


@check("schedule")
def check_schedule(d: Doctor) -> tuple[Status, str, str]:
    d.need_aws()
    name = d.watchdog_out("schedule_name")
    try:
        schedule = d.client("scheduler").get_schedule(Name=name)
    except Exception as exc:
        if _code(exc) == "ResourceNotFoundException":
            return Status.FAIL, f"the schedule {name} does not exist: the watchdog never runs", "run `terraform apply`"
        raise _Fail(f"cannot read the schedule {name}: {_code(exc)}") from None
    state = schedule.get("State")
    target = schedule.get("Target", {}).get("Arn", "")
    tick_arn = (d.outputs["watchdog"].get("function_arns") or {}).get("tick")
    if state != "ENABLED":
        return (
            Status.FAIL,
            f"the schedule {name} is {state}: nothing watches the laptop",
            "`terraform apply` sets it ENABLED again; to keep the watchdog from acting, use `hfo pause` instead",
        )
    if tick_arn and target.split(":function:")[-1].split(":")[0] != str(tick_arn).split(":function:")[-1]:
        return (
            Status.FAIL,
            f"the schedule {name} targets {target}, not the tick function {tick_arn}",
            "run `terraform apply`",
        )
    return Status.PASS, f"{name} is ENABLED, {schedule.get('ScheduleExpression')}", ""


@check("alert-subscription")
def check_alert_subscription(d: Doctor) -> tuple[Status, str, str]:
    d.need_aws()
    topic = d.outputs["alert_topic_arn"]
    subscriptions = []
    try:
        paginator = d.client("sns").get_paginator("list_subscriptions_by_topic")
        for page in paginator.paginate(TopicArn=topic):
            subscriptions.extend(page.get("Subscriptions", []))
    except Exception as exc:
        raise _Fail(f"cannot list the subscriptions of {topic}: {_code(exc)}") from None
    pending = [s.get("Endpoint", "?") for s in subscriptions if s.get("SubscriptionArn") == "PendingConfirmation"]
    confirmed = [
        f"{s.get('Protocol')} {s.get('Endpoint')}"
        for s in subscriptions
        if str(s.get("SubscriptionArn", "")).startswith("arn:")
    ]
    discord = d.outputs["secret_names"].get("discord_webhook") is not None
    if pending and not confirmed:
        return (
            Status.FAIL,
            f"the subscription of {', '.join(pending)} is PendingConfirmation: alerts reach nobody",
            "open the e-mail 'AWS Notification - Subscription Confirmation' and click the link (it expires after 3 "
            "days; then `terraform apply` again)",
        )
    if not confirmed:
        if discord:
            return Status.PASS, "no subscription to the alert topic; alerts go to Discord", ""
        return (
            Status.WARN,
            f"nobody is subscribed to {topic} and Discord alerts are off: alerts reach nobody",
            "set alert_email (or discord_alerts) and apply",
        )
    extra = f"; still pending: {', '.join(pending)}" if pending else ""
    return Status.PASS, f"confirmed: {', '.join(confirmed)}{extra}", ""


@check("mode")
def check_mode(d: Doctor) -> tuple[Status, str, str]:
    control, _ = d.state_items()
    if control is None:
        return Status.PASS, "no state yet (mode auto at the first tick)", ""
    mode = control.get("mode", {}).get("S", "auto")
    if mode == "auto":
        return Status.PASS, "mode auto: fails over and back on its own", ""
    if mode == "paused":
        return (
            Status.WARN,
            "mode paused: the watchdog observes, never fails over",
            "`hfo resume` once both sites run",
        )
    if mode == "pin_primary":
        return (
            Status.WARN,
            "mode pin_primary: no failover even if the laptop dies",
            "`hfo resume` after the work",
        )
    until = control.get("mode_until", {}).get("N")
    until_text = f" until {format_ts(float(until))}" if until else ""
    return Status.WARN, f"mode {mode}{until_text}: the bot is kept on the standby", "`hfo resume` to go back to auto"


@check("armed")
def check_armed(d: Doctor) -> tuple[Status, str, str]:
    """The engine records `armed_at` in the control item (docs/state.md) when it arms; a control
    item without the attribute at all was written by a watchdog older than the armed gate, and
    then the primary's site record tells whether it has ever heartbeated."""
    control, sites = d.state_items()
    recorded = control is not None and "armed_at" in control
    armed_at = None if control is None else control.get("armed_at", {}).get("N")
    if armed_at is not None:
        return Status.PASS, f"armed {_ago(float(armed_at), d.clock())}", ""
    primary = sites.get("primary")
    fix = "finish the laptop (docs/walkthrough.md step 8): its agent heartbeats to the heartbeat URL"
    if primary is not None:
        last = float(primary["received_at"]["N"])
        count = primary.get("count", {}).get("N", "?")
        if recorded:
            return (
                Status.WARN,
                f"not armed yet, though the primary heartbeated ({count} heartbeats, last {_ago(last, d.clock())}): "
                "the next tick arms it",
                "wait a tick interval; if it stays unarmed, check last-tick and the schedule",
            )
        return Status.PASS, f"armed: the primary heartbeats ({count} heartbeats, last {_ago(last, d.clock())})", ""
    return (
        Status.WARN,
        "not armed: the primary's agent has never heartbeated, so there is no failover protection yet",
        fix,
    )


@check("primary-heartbeat")
def check_primary_heartbeat(d: Doctor) -> tuple[Status, str, str]:
    _, sites = d.state_items()
    primary = sites.get("primary")
    if primary is None:
        return (
            Status.WARN,
            "no heartbeat from the primary yet",
            "check HFO_HEARTBEAT_URL and the keyring on the laptop: `kubectl -n hfo logs deployment/hfo-site -c agent`",
        )
    at = float(primary["received_at"]["N"])
    window = d.setting("HFO_DOWN_HEARTBEAT_S", 180)
    age = d.clock() - at
    if age > window:
        return (
            Status.FAIL,
            f"the primary's last heartbeat was {_ago(at, d.clock())}, over HFO_DOWN_HEARTBEAT_S ({window:g}s)",
            "docs/troubleshooting.md#heartbeats-are-refused; `kubectl -n hfo logs deployment/hfo-site -c agent`",
        )
    return Status.PASS, f"last heartbeat {_ago(at, d.clock())}, workload {primary.get('workload', {}).get('S')}", ""


@check("last-tick")
def check_last_tick(d: Doctor) -> tuple[Status, str, str]:
    control, _ = d.state_items()
    interval = d.setting("HFO_TICK_INTERVAL_S", 60)
    late = interval * TICK_LATE_FACTOR
    last = None if control is None else control.get("last_tick_at", {}).get("N")
    tick = d.outputs["function_names"].get("tick")
    fix = f"see the schedule check, and the tick's log: aws logs tail /aws/lambda/{tick}"
    if last is None:
        return Status.FAIL, "the watchdog has never ticked", fix
    age = d.clock() - float(last)
    if age > late:
        return Status.FAIL, f"the last tick was {_ago(float(last), d.clock())}, over {TICK_LATE_FACTOR} intervals", fix
    return Status.PASS, f"last tick {_ago(float(last), d.clock())} (every {interval:g}s)", ""


@check("alarms")
def check_alarms(d: Doctor) -> tuple[Status, str, str]:
    """The CloudWatch alarms Terraform made (the `watchdog.alarm_names` output) exist and none fires:
    they watch what the watchdog cannot report itself (its own errors, a silent schedule, a standby
    running too long)."""
    d.need_aws()
    names = list(d.watchdog_out("alarm_names"))
    try:
        found = d.client("cloudwatch").describe_alarms(AlarmNames=names).get("MetricAlarms", [])
    except Exception as exc:
        raise _Fail(f"cannot read the alarms: {_code(exc)}") from None
    by_name = {a["AlarmName"]: a for a in found}
    missing = [n for n in names if n not in by_name]
    if missing:
        return (
            Status.WARN,
            f"alarms missing: {', '.join(missing)}: their failures would go unnoticed",
            "run `terraform apply`",
        )
    firing = [f"{n} ({by_name[n].get('StateReason', '')[:120]})" for n in names if by_name[n]["StateValue"] == "ALARM"]
    if firing:
        return (
            Status.WARN,
            f"in ALARM: {'; '.join(firing)}",
            "docs/runbook.md#cloudwatch-alarms says what each one means and what to do",
        )
    return Status.PASS, f"{len(names)} alarms, none in ALARM", ""


@check("standby-boot")
def check_standby_boot(d: Doctor) -> tuple[Status, str, str]:
    _, sites = d.state_items()
    standby = sites.get("standby")
    if standby is None:
        return (
            Status.WARN,
            "the standby has never heartbeated: it has not completed a boot with its agent (not bootstrapped yet?)",
            "bootstrap it once (docs/walkthrough.md step 7), or run a drill: `hfo drill --minutes 10`",
        )
    at = float(standby["received_at"]["N"])
    return Status.PASS, f"the standby last heartbeated {_ago(at, d.clock())} (its last boot reached the agent)", ""


@check("standby-config")
def check_standby_config(d: Doctor) -> tuple[Status, str, str]:
    path = d.standby_out("parameter_path")
    expected: dict[str, str] = dict(d.standby_out("parameter_files"))
    files = d.node_files()
    fix = "run `terraform apply` in your root (it rewrites the parameters; the next boot applies them)"
    missing = sorted(set(expected) - set(files))
    changed = sorted(f for f in expected if f in files and hashlib.sha256(files[f]).hexdigest() != expected[f])
    manifests = sorted(f for f in files if f.startswith("manifests/"))
    if missing or changed:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing)}")
        if changed:
            parts.append(f"not what Terraform wrote: {', '.join(changed)}")
        return Status.FAIL, f"the standby's configuration under {path}: {'; '.join(parts)}", fix
    if not manifests:
        return (
            Status.FAIL,
            f"no bootstrap manifests under {path}/manifests: the standby would boot K3s without Argo CD",
            "point bootstrap_manifests_dir at argocd/bootstrap of your checkout and apply",
        )
    return Status.PASS, f"{len(files)} files under {path}, as applied, {len(manifests)} bootstrap manifests", ""


@check("standby-loader")
def check_standby_loader(d: Doctor) -> tuple[Status, str, str]:
    d.need_aws()
    path = d.standby_out("parameter_path")
    instance_id = d.outputs["instance_id"]
    d.instance()
    try:
        attribute = d.client("ec2").describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
    except Exception as exc:
        raise _Fail(f"cannot read the standby's user data: {_code(exc)}") from None
    encoded = attribute.get("UserData", {}).get("Value", "")
    try:
        text = base64.b64decode(encoded).decode("utf-8", "replace") if encoded else ""
    except binascii.Error:
        text = ""
    fix = "replace the standby so it gets this release's loader (docs/runbook.md#replace-the-standby-instance)"
    if not text:
        return Status.FAIL, f"the standby {instance_id} has no user data: nothing bootstraps it", fix
    if "hfo-bootstrap" not in text:
        return Status.FAIL, "the standby's user data holds no hfo-bootstrap loader", fix
    if f"HFO_SSM_PATH='{path}'" not in text:
        return Status.FAIL, f"the standby's loader does not read {path}: its configuration would not be found", fix
    return Status.PASS, f"the loader in the user data reads {path} at every boot", ""


@check("health-probe")
def check_health_probe(d: Doctor) -> tuple[Status, str, str]:
    from hfo_protocol.keys import Keyring

    if not d.probe:
        raise _Skip("--no-probe")
    url = d.outputs["watchdog"].get("health_url") or d.tick_env().get("HFO_HEALTH_URL")
    if not url:
        raise _Skip("no health URL in the outputs (watchdog.health_url)")
    found = d.secret("hmac_keyring")
    if found is None or found.value is None or is_placeholder(found.value):
        raise _Skip("needs the HMAC keyring (see hmac-keyring)")
    try:
        keyring = Keyring.from_secret_string(found.value)
    except ValueError:
        raise _Skip("needs a valid HMAC keyring (see hmac-keyring)") from None
    from hfo_watchdog.probe import HttpsProber

    try:
        env = d.tick_env()
    except (_Fail, _Skip):
        env = {}  # the watchdog's own timeouts when readable, else its defaults
    try:
        prober = HttpsProber(
            str(url),
            keyring,
            connect_timeout=float(env.get("HFO_PROBE_CONNECT_TIMEOUT_S", 3.0)),
            read_timeout=float(env.get("HFO_PROBE_READ_TIMEOUT_S", 5.0)),
            max_skew_s=float(env.get("HFO_MAX_SKEW_S", 30)),
            ca_bundle=d.ca_bundle,
        )
    except ValueError as exc:
        return Status.FAIL, f"the health URL {url} cannot be probed: {exc}", "set health_url to https://<host>/healthz"
    result = prober.probe()
    if result.ok:
        return Status.PASS, f"{url} answered a signed pass in {result.latency_ms or 0:.0f} ms", ""
    failure = result.failure.value if result.failure else "error"
    return (
        Status.FAIL,
        f"{url}: {failure}: {result.detail}",
        f"docs/troubleshooting.md#the-probe-fails (class {failure}); `hfo probe {url} --secret-file hmac-keyring.txt`",
    )


# ----------------------------------------------------------------------------------- report


def exit_code(findings: list[Finding]) -> int:
    return 1 if any(f.status is Status.FAIL for f in findings) else 0


def summary(findings: list[Finding]) -> dict[str, int]:
    return {s.value.lower(): sum(1 for f in findings if f.status is s) for s in Status}


def render_text(findings: list[Finding]) -> str:
    counts = summary(findings)
    lines = [f.line() for f in findings]
    lines.append(
        f"{counts['pass']} passed, {counts['warn']} warnings, {counts['fail']} failed, {counts['skip']} skipped"
    )
    return "\n".join(lines) + "\n"


def render_json(findings: list[Finding]) -> str:
    doc = {"checks": [f.as_dict() for f in findings], "summary": summary(findings), "exit_code": exit_code(findings)}
    return json.dumps(doc, indent=2) + "\n"
