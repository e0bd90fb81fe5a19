"""Life cycle: the real ``python -m hfo_bot --offline`` process on loopback (signals, exit codes, endpoints),
and the runner in-process for the paths a real gateway would take (failure, a close that hangs)."""

from __future__ import annotations

import asyncio
import json
import math
import signal
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from hfo_bot.config import load
from hfo_bot.gateway import GatewayStatus
from hfo_bot.metrics import BotMetrics
from hfo_bot.runner import EXIT_GATEWAY_FAILED, EXIT_OK, EXIT_STOP_TIMEOUT, Runner
from hfo_bot.state import StateStore
from testsupport.bot import BotProcess

pytestmark = pytest.mark.network

Spawn = Callable[..., BotProcess]


def test_offline_bot_is_alive_but_not_ready(spawn_bot: Spawn) -> None:
    bot = spawn_bot("--offline")
    assert bot.get("/livez").status_code == 200
    ready = bot.get("/readyz")
    assert ready.status_code == 503
    assert "offline" in ready.json()["reason"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_closes_cleanly_with_exit_zero(spawn_bot: Spawn, sig: signal.Signals) -> None:
    bot = spawn_bot("--offline")
    code, err = bot.stop(sig)
    assert code == 0, err
    assert f"received {sig.name}" in err
    assert err.index("gateway closed") < err.index("stopped")
    assert "Traceback" not in err


def test_every_start_is_recorded_on_the_state_volume(spawn_bot: Spawn, tmp_path: Path) -> None:
    state = tmp_path / "shared-state"
    for _ in range(2):
        bot = spawn_bot("--offline", HFO_BOT_STATE_DIR=str(state), HFO_SITE="standby")
        assert bot.stop()[0] == 0
    saved = json.loads((state / "state.json").read_text())
    assert (saved["starts"], saved["last_site"]) == (2, "standby")


def test_sharding_from_the_pod_name_shows_in_logs_and_metrics(spawn_bot: Spawn) -> None:
    bot = spawn_bot("--offline", POD_NAME="bot-2", SHARD_COUNT="12", SHARDS_PER_POD="4")
    metrics = bot.get("/metrics").text
    assert "hfo_bot_shard_count 12.0" in metrics
    assert "hfo_bot_shards_assigned 4.0" in metrics
    _, err = bot.stop()
    assert "pod=bot-2 shards 8-11 of 12" in err


@pytest.mark.parametrize(
    ("args", "env", "needle"),
    [
        (["--offline"], {"HFO_SITE": "laptop"}, "HFO_SITE='laptop' is not a site"),
        (["--offline"], {"POD_NAME": "bot-9", "SHARD_COUNT": "2", "SHARDS_PER_POD": "1"}, "ordinal 9 has no shards"),
        ([], {"DISCORD_TOKEN_FILE": "/nonexistent/token"}, "token file /nonexistent/token does not exist"),
    ],
)
def test_bad_configuration_exits_2_before_any_connection(
    spawn_bot: Spawn, args: list[str], env: dict[str, str], needle: str
) -> None:
    bot = spawn_bot(*args, wait=False, **env)
    _, err = bot.proc.communicate(timeout=20)
    assert bot.proc.returncode == 2
    assert needle in err


class ScriptedGateway:
    """A gateway whose run/close behave as scripted: fail on its own, or hang on close."""

    def __init__(self, fail: bool = False, close_delay: float = 0.0) -> None:
        self.fail = fail
        self.close_delay = close_delay
        self.closed = asyncio.Event()
        self.close_calls = 0

    async def run(self) -> None:
        await asyncio.sleep(0.05)
        if self.fail:
            raise RuntimeError("Improper token has been passed.")
        await self.closed.wait()

    async def close(self) -> None:
        self.close_calls += 1
        await asyncio.sleep(self.close_delay)
        self.closed.set()

    def status(self) -> GatewayStatus:
        return GatewayStatus(not self.closed.is_set(), 0.01 if not self.closed.is_set() else math.nan, "scripted")


def _runner(tmp_path: Path, gateway: ScriptedGateway, stop_timeout: str = "5") -> Runner:
    config = load(
        {
            "HFO_SITE": "primary",
            "POD_NAME": "bot-0",
            "HFO_BOT_HEALTH_HOST": "127.0.0.1",
            "HFO_BOT_HEALTH_PORT": "0",
            "HFO_BOT_STATE_DIR": str(tmp_path),
            "HFO_BOT_STOP_TIMEOUT_S": stop_timeout,
        }
    )
    return Runner(config, gateway, BotMetrics("primary", "bot-0", 1, 1), StateStore(tmp_path))


def test_gateway_failure_exits_3_and_closes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    gateway = ScriptedGateway(fail=True)
    assert asyncio.run(_runner(tmp_path, gateway).serve()) == EXIT_GATEWAY_FAILED
    assert "gateway failed: RuntimeError" in caplog.text
    assert gateway.close_calls == 1


def test_readiness_drops_at_once_while_the_gateway_is_still_closing(tmp_path: Path) -> None:
    gateway = ScriptedGateway(close_delay=0.5)
    runner = _runner(tmp_path, gateway)

    async def scenario() -> tuple[int, int, int]:
        task = asyncio.create_task(runner.serve())
        while runner.health.port == 0:
            await asyncio.sleep(0.01)
        url = f"http://127.0.0.1:{runner.health.port}/readyz"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            async with session.get(url) as resp:
                before = resp.status
            runner.request_stop("test")
            await asyncio.sleep(0.1)  # close is under way, not finished
            assert not task.done()
            async with session.get(url) as resp:
                during = resp.status
        return before, during, await task

    assert asyncio.run(scenario()) == (200, 503, EXIT_OK)


def test_close_that_hangs_is_cut_off_at_the_stop_timeout(tmp_path: Path) -> None:
    runner = _runner(tmp_path, ScriptedGateway(close_delay=30), stop_timeout="0.3")

    async def scenario() -> int:
        task = asyncio.create_task(runner.serve())
        await asyncio.sleep(0.2)
        runner.request_stop("test")
        return await asyncio.wait_for(task, 5)

    assert asyncio.run(scenario()) == EXIT_STOP_TIMEOUT
