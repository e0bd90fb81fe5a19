"""The AWS emulator: a real ``moto`` server in a child process on loopback.

Tests that need AWS talk to it through boto3 with AWS_ENDPOINT_URL, exactly as the CLI and
the demo do. Each server is an independent AWS: a test module that must not be disturbed by
resets elsewhere (the shared Terraform stack) starts its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from testsupport.net import free_port, wait_until

REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@dataclass(frozen=True)
class MotoServer:
    endpoint: str
    region: str = REGION

    def env(self) -> dict[str, str]:
        """Environment for boto3, the CLI or terraform to talk to this server only."""
        return {
            **CREDENTIALS,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def reset(self) -> None:
        """Forget every resource (moto's own reset API)."""
        req = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")  # noqa: S310 - loopback only
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback only
            resp.read()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 - loopback only
            return resp.status == 200
    except OSError:
        return False


@contextmanager
def moto_server() -> Iterator[MotoServer]:
    port = free_port()
    env = {**os.environ, **CREDENTIALS, "MOTO_PORT": str(port)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = MotoServer(endpoint=f"http://127.0.0.1:{port}")
    try:
        wait_until(
            lambda: proc.poll() is None and _answers(f"{server.endpoint}/moto-api/data.json"),
            timeout=60,
            what="moto server",
        )
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
