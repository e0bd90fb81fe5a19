"""The AWS emulator: `python -m moto.server` as a child process on a free loopback port.

Each server is an independent AWS account. boto3, the `hfo` CLI and terraform reach it through
the environment `env()` gives (AWS_ENDPOINT_URL and throwaway credentials), exactly as they
would reach AWS. The drill starts one; the tests start one for the session, and the Terraform
tests one of their own (other tests reset the shared one between tests).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import TracebackType

from hfo_drill.net import answers_ok, free_port

REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


class MotoServer:
    """`python -m moto.server` on 127.0.0.1:<free port>; `start()` waits until it answers,
    `stop()` ends it (and waits for it). Also a context manager."""

    def __init__(
        self, *, region: str = REGION, extra_env: Mapping[str, str] | None = None, start_timeout_s: float = 60.0
    ) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.region = region
        self._extra_env = dict(extra_env or {})
        self._timeout = start_timeout_s
        self.proc: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        """Environment for boto3, the CLI or terraform to talk to this server only."""
        return {
            **CREDENTIALS,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def start(self) -> MotoServer:
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter, fixed arguments
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            env={**os.environ, **CREDENTIALS, "MOTO_PORT": str(self.port), **self._extra_env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches the caller, which stops the server in its order
        )
        deadline = time.monotonic() + self._timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto server exited with status {self.proc.returncode}")
            if answers_ok(f"{self.endpoint}/moto-api/data.json"):
                return self
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"moto server did not answer within {self._timeout:.0f}s")

    def reset(self) -> None:
        """Forget every resource (moto's own reset API), e.g. after a failed terraform apply."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310 - loopback only
            resp.read()

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


@contextmanager
def moto_server(extra_env: Mapping[str, str] | None = None) -> Iterator[MotoServer]:
    """A started server for the duration of the block."""
    with MotoServer(extra_env=extra_env) as server:
        yield server
