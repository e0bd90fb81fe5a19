"""State credentials for the lease holder (docs/state-handoff.md#credentials).

The heartbeat handler gives the site that holds the lease, when it asks (`"state": true`),
short-lived STS credentials for the state bucket, scoped by a session policy to its own lease epoch:
it may read any workload's state and manifest, write manifests, and create snapshots only under
`state/<workload>/epochs/<its epoch>/`. Fencing never relies on the credentials (the manifest's
conditional write does that); they only bound what a leaked or stale set can do.

The decisions are pure (`refusal_reason`, `session_policy`); the one AWS call goes through the
`CredentialIssuer` port (hfo_watchdog.ports), whose real implementation here wraps an STS client
created on first use (cold start stays lean). Nothing here logs or raises with a secret in it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from hfo_protocol.heartbeat import StateCredentials

from hfo_watchdog.config import StateSettings
from hfo_watchdog.core.model import ControlState

_PARTITION = re.compile(r"^arn:(aws[a-z-]*):")
EPOCH_DIGITS = 12  # state/<workload>/epochs/<epoch:012d>/ (hfo_site.state.manifest)


class CredentialsUnavailable(RuntimeError):
    """STS refused or could not be reached. Carries the error code only, never a message from AWS
    that could echo request parts, and never a credential."""

    def __init__(self, code: str) -> None:
        super().__init__(f"STS AssumeRole failed: {code}")
        self.code = code


def refusal_reason(state: ControlState, site: str, asked: bool, enabled: bool) -> str | None:
    """Why this accepted heartbeat gets no credentials, or None when it does: state handoff is on,
    the agent asked, and the lease it is answered with names its site. The heartbeat has just been
    recorded, so a lease naming the site is fresh for it (its agent holds it for lease_ttl_s from
    sending); the credentials are for that lease's epoch only."""
    if not asked:
        return "not asked"
    if not enabled:
        return "state handoff is off (HFO_STATE_BUCKET and HFO_STATE_ROLE_ARN unset)"
    if state.lease.site.value != site:
        return f"the lease is {state.lease.site.value}#{state.lease.epoch}, not this site's"
    return None


def partition(role_arn: str) -> str:
    match = _PARTITION.match(role_arn)
    return match.group(1) if match else "aws"


def session_policy(bucket: str, epoch: int, arn_partition: str = "aws") -> dict[str, Any]:
    """The session policy of one epoch's credentials. The effective permissions are the
    intersection with the role's own policy (GetObject/PutObject on state/*, ListBucket,
    PutObjectTagging on state/*/epochs/*).

    - GetObject on every state object: a claim reads the manifest and the snapshot it names,
      whatever epoch wrote them;
    - PutObject on manifests (the conditional write that fences older epochs) and on snapshots
      under this epoch's prefix only: a site never creates an object under another epoch's prefix;
    - ListBucket on the bucket: without it S3 answers a GET of a missing key (the first claim of a
      workload finds no manifest) with 403 instead of 404;
    - PutObjectTagging on snapshots of any epoch (never a manifest): after its manifest write was
      accepted, the writer tags the snapshot it replaced ``hfo-state=superseded`` so the bucket's
      lifecycle expires it; that snapshot is often an older epoch's (the first publish after a
      claim replaces the previous holder's).

    Nothing else: no DeleteObject, no version or ACL operations."""
    if not 1 <= epoch < 10**EPOCH_DIGITS:
        raise ValueError(f"epoch must be from 1 to {10**EPOCH_DIGITS - 1}")
    root = f"arn:{arn_partition}:s3:::{bucket}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ReadState", "Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{root}/state/*"},
            {"Sid": "FindState", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": root},
            {
                "Sid": "WriteManifestsAndOwnEpoch",
                "Effect": "Allow",
                "Action": "s3:PutObject",
                "Resource": [f"{root}/state/*/manifest.json", f"{root}/state/*/epochs/{epoch:0{EPOCH_DIGITS}d}/*"],
            },
            {
                "Sid": "TagSupersededSnapshots",
                "Effect": "Allow",
                "Action": "s3:PutObjectTagging",
                "Resource": f"{root}/state/*/epochs/*",
            },
        ],
    }


def session_name(site: str, epoch: int) -> str:
    """Shown in CloudTrail for every request made with the credentials: who and which epoch."""
    return f"hfo-state-{site}-e{epoch}"


class StsCredentialIssuer:
    """hfo_watchdog.ports.CredentialIssuer on STS AssumeRole. `client_factory` builds the STS
    client on the first issue (the heartbeat's cold start does not pay for it)."""

    def __init__(self, client_factory: Callable[[], Any], settings: StateSettings) -> None:
        self._client_factory = client_factory
        self._client: Any = None
        self.settings = settings

    def issue(self, site: str, epoch: int) -> StateCredentials:
        s = self.settings
        policy = session_policy(s.bucket, epoch, partition(s.role_arn))
        try:
            if self._client is None:
                self._client = self._client_factory()
            answer = self._client.assume_role(
                RoleArn=s.role_arn,
                RoleSessionName=session_name(site, epoch),
                DurationSeconds=s.credentials_ttl_s,
                Policy=json.dumps(policy, separators=(",", ":")),
            )
            raw = answer["Credentials"]
            expires = raw["Expiration"]
            expires_at = int(expires.timestamp()) if isinstance(expires, datetime) else int(expires)
            return StateCredentials(
                bucket=s.bucket,
                region=s.region,
                endpoint_url=s.endpoint_url,
                epoch=epoch,
                site=site,
                access_key_id=str(raw["AccessKeyId"]),
                secret_access_key=str(raw["SecretAccessKey"]),
                session_token=str(raw["SessionToken"]),
                expires_at=expires_at,
            )
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", "")) or "ClientError"
            raise CredentialsUnavailable(code) from None
        except (BotoCoreError, KeyError, TypeError, ValueError) as exc:
            raise CredentialsUnavailable(type(exc).__name__) from None
