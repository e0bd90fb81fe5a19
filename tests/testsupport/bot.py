"""Helpers for the reference bot tests: HTTP on loopback and a handle on a ``python -m hfo_bot`` child."""

from __future__ import annotations

import json
import signal
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Answer:
    status_code: int
    headers: dict[str, str]
    text: str

    def json(self) -> object:
        return json.loads(self.text)


def http_get(url: str, timeout: float = 2.0) -> Answer:
    """GET on loopback; HTTP error statuses are answers, not exceptions."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback test URL
            return Answer(resp.status, dict(resp.headers), resp.read().decode())
    except urllib.error.HTTPError as err:
        return Answer(err.code, dict(err.headers), err.read().decode())


@dataclass
class BotProcess:
    proc: subprocess.Popen[str]
    port: int
    state_dir: Path

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str) -> Answer:
        return http_get(self.url(path))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> tuple[int, str]:
        self.proc.send_signal(sig)
        _, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, err


def answers(bot: BotProcess) -> bool:
    if bot.proc.poll() is not None:
        _, err = bot.proc.communicate()
        raise AssertionError(f"bot exited early with {bot.proc.returncode}: {err}")
    try:
        return bot.get("/livez").status_code == 200
    except (urllib.error.URLError, ConnectionError):
        return False
