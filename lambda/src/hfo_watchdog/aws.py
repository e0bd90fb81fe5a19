"""The botocore Config every AWS client of the watchdog uses (EC2, DynamoDB, SNS, Secrets
Manager): botocore's standard retries with the attempts counted as HFO_AWS_MAX_ATTEMPTS means
them, and bounded connect and read timeouts. The endpoint is not set here: boto3 takes it from
the standard environment (AWS_ENDPOINT_URL), which is how the tests and the drill reach moto."""

from __future__ import annotations

from botocore.config import Config

MAX_ATTEMPTS_RANGE = (1, 10)


def client_config(max_attempts: int, connect_timeout: float = 3.0, read_timeout: float = 10.0) -> Config:
    """botocore Config shared by the watchdog's AWS clients: standard retries, bounded timeouts."""
    lo, hi = MAX_ATTEMPTS_RANGE
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or not lo <= max_attempts <= hi:
        raise ValueError(f"max_attempts must be an integer from {lo} to {hi}, got {max_attempts!r}")
    # botocore's `max_attempts` in a Config counts *retries*; `total_max_attempts` counts every
    # attempt, first included, which is what HFO_AWS_MAX_ATTEMPTS means (1 = no retry).
    return Config(
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
    )
