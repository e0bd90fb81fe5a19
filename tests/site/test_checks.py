"""The background check runner (hfo_site.checks): timeouts, crashes and no stacking of slow checks."""

from __future__ import annotations

import asyncio

from hfo_site.checks import CheckRunner
from hfo_site.metrics import HealthMetrics
from hfo_site.verdict import PASS, CheckResult


class SlowCheck:
    name = "slow"
    keys = ("slow:thing",)

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.started = 0

    async def run(self) -> dict[str, CheckResult]:
        self.started += 1
        await asyncio.sleep(self.delay)
        return {"slow:thing": CheckResult(PASS, 0.0, "done")}


class BrokenCheck:
    name = "broken"
    keys = ("broken:thing",)

    async def run(self) -> dict[str, CheckResult]:
        raise RuntimeError("boom")


def test_a_slow_check_times_out_and_is_never_stacked() -> None:
    async def main() -> None:
        slow = SlowCheck(delay=0.35)
        runner = CheckRunner([slow, BrokenCheck()], interval_s=0.05, timeout_s=0.05, metrics=HealthMetrics())
        for _ in range(4):  # four rounds while the first call is still sleeping
            await runner.run_round()
            await asyncio.sleep(0.05)
        assert slow.started == 1
        assert runner.results is not None
        assert runner.results["slow:thing"].status == "fail"
        assert runner.results["slow:thing"].output == "previous check still running"
        assert runner.results["broken:thing"].output == "check crashed: RuntimeError"
        await asyncio.sleep(0.3)  # the first call finishes in the background...
        await runner.run_round()  # ...so the next round may start it again
        assert slow.started == 2
        assert runner.results["slow:thing"].output == "timed out after 0.05s"

    asyncio.run(main())


def test_rounds_run_at_a_fixed_rate_until_stopped() -> None:
    async def main() -> int:
        runner = CheckRunner([SlowCheck(delay=0.0)], interval_s=0.1, timeout_s=0.1, metrics=HealthMetrics())
        stop = asyncio.Event()
        task = asyncio.create_task(runner.run(stop))
        await asyncio.sleep(0.55)
        stop.set()
        await asyncio.wait_for(task, 1.0)
        return runner.rounds

    assert 3 <= asyncio.run(main()) <= 7  # never more than the interval allows
