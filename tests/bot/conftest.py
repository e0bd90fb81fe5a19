"""Fixtures for the reference bot: a real ``python -m hfo_bot`` child process on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from testsupport.bot import BotProcess, answers
from testsupport.net import free_port, wait_until


@pytest.fixture
def spawn_bot(tmp_path: Path) -> Iterator[Callable[..., BotProcess]]:
    started: list[BotProcess] = []

    def spawn(*args: str, wait: bool = True, launcher: list[str] | None = None, **env: str) -> BotProcess:
        """``python -m hfo_bot ARGS``; ``launcher`` replaces ``-m hfo_bot`` (e.g. fake_discord's ``-c``)."""
        port = free_port()
        state_dir = tmp_path / f"state-{len(started)}"
        full_env = {
            "PATH": os.environ.get("PATH", ""),
            "HFO_SITE": "primary",
            "POD_NAME": "bot-0",
            "HFO_BOT_HEALTH_HOST": "127.0.0.1",
            "HFO_BOT_HEALTH_PORT": str(port),
            "HFO_BOT_STATE_DIR": str(state_dir),
            **env,
        }
        proc = subprocess.Popen(
            [sys.executable, *(launcher or ["-m", "hfo_bot"]), *args],
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        bot = BotProcess(proc, port, state_dir)
        started.append(bot)
        if wait:
            wait_until(lambda: answers(bot), timeout=20, what="bot /livez")
        return bot

    yield spawn
    for bot in started:
        if bot.proc.poll() is None:
            bot.proc.kill()
            bot.proc.communicate(timeout=10)
