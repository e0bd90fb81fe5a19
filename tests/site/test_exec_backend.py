"""The exec backend with real child processes (hfo_site.backends.exec)."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hfo_site.backends.base import WorkloadError
from hfo_site.backends.exec import ExecBackend, group_members
from hfo_site.config import ExecWorkload
from testsupport.net import wait_until

CHILD = textwrap.dedent(
    """
    import os, signal, subprocess, sys, time
    mode, out = sys.argv[1], sys.argv[2]
    if mode in ("ignore", "grandchild"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        def bye(*_):
            with open(out, "a") as f:
                f.write("term\\n")
            sys.exit(0)
        signal.signal(signal.SIGTERM, bye)
    with open(out, "a") as f:
        f.write(f"start {os.getpid()}\\n")
    if mode == "crash":
        sys.exit(3)
    if mode == "grandchild":
        # a grandchild that also ignores SIGTERM and would outlive its parent
        gc = subprocess.Popen([sys.executable, "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"])
        with open(out, "a") as f:
            f.write(f"grandchild {gc.pid}\\n")
    while True:
        time.sleep(0.05)
    """
)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def child(tmp_path: Path) -> Path:
    path = tmp_path / "child.py"
    path.write_text(CHILD)
    return path


def _backend(child: Path, mode: str, out: Path, grace: float = 2.0, **kw: float) -> ExecBackend:
    return ExecBackend([sys.executable, str(child), mode, str(out)], grace_s=grace, **kw)


def _lines(out: Path) -> list[str]:
    return out.read_text().splitlines() if out.exists() else []


async def _wait(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.02)


def test_start_runs_the_command_and_stop_sends_sigterm(child: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"

    async def main() -> None:
        backend = _backend(child, "polite", out)
        assert (await backend.observe()).state == "stopped"
        await backend.start()
        await backend.start()  # idempotent: still one child
        await _wait(lambda: any(line.startswith("start") for line in _lines(out)))
        observed = await backend.observe()
        assert observed.state == "running" and observed.ready
        pid = backend.pid
        assert pid is not None and os.getpgid(pid) == pid  # leader of its own process group
        started = time.monotonic()
        await backend.stop()
        assert time.monotonic() - started < 1.5  # it left on SIGTERM, no waiting out the grace
        assert not _alive(pid)
        assert (await backend.observe()).state == "stopped"
        assert backend.spawns == 1
        await backend.stop()  # idempotent

    asyncio.run(main())
    assert _lines(out)[-1] == "term"


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace(child: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"

    async def main() -> float:
        backend = _backend(child, "ignore", out, grace=0.6)
        await backend.start()
        await _wait(lambda: bool(_lines(out)))
        pid = backend.pid
        assert pid is not None
        started = time.monotonic()
        stopping = asyncio.create_task(backend.stop())
        await asyncio.sleep(0.2)
        assert (await backend.observe()).state == "stopping"
        await stopping
        assert not _alive(pid)
        return time.monotonic() - started

    elapsed = asyncio.run(main())
    assert 0.6 <= elapsed < 2.5
    assert "term" not in _lines(out)


def test_grandchildren_die_with_the_group(child: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"

    async def main() -> int:
        backend = _backend(child, "grandchild", out, grace=0.5)
        await backend.start()
        await _wait(lambda: any(line.startswith("grandchild") for line in _lines(out)))
        grandchild = int(next(line for line in _lines(out) if line.startswith("grandchild")).split()[1])
        assert _alive(grandchild)
        pgid = backend.pid
        await backend.stop()
        assert pgid is not None and not group_members(pgid)
        return grandchild

    grandchild = asyncio.run(main())
    wait_until(lambda: not _alive(grandchild), timeout=3, what="grandchild gone")


def test_a_crashing_child_is_restarted_with_growing_backoff(child: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"

    async def main() -> list[float]:
        backend = _backend(child, "crash", out, backoff_s=0.1, backoff_max_s=0.4)
        spawn_times: list[float] = []
        await backend.start()
        deadline = time.monotonic() + 5
        seen = 0
        observed_starting = False
        while len(spawn_times) < 5 and time.monotonic() < deadline:
            if backend.spawns > seen:
                seen = backend.spawns
                spawn_times.append(time.monotonic())
            observed = await backend.observe()
            if observed.state == "starting" and "exited with 3" in observed.detail:
                observed_starting = True
            await asyncio.sleep(0.005)
        assert observed_starting
        await backend.stop()
        after_stop = backend.spawns
        await asyncio.sleep(0.6)
        assert backend.spawns == after_stop  # no restart once stopped
        assert (await backend.observe()).state == "stopped"
        return spawn_times

    times = asyncio.run(main())
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(gaps) >= 3
    assert gaps[0] >= 0.08
    assert gaps[2] > gaps[0] * 1.5  # 0.1, 0.2, 0.4...
    assert max(gaps) < 1.5  # capped at backoff_max (0.4) plus process start time


def test_stop_during_backoff_cancels_the_restart(child: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"

    async def main() -> None:
        backend = _backend(child, "crash", out, backoff_s=5.0)
        await backend.start()
        await _wait(lambda: backend.last_exit == 3)
        started = time.monotonic()
        await backend.stop()
        assert time.monotonic() - started < 1.0  # the 5 s backoff did not hold the stop
        await asyncio.sleep(0.2)
        assert backend.spawns == 1

    asyncio.run(main())


def test_missing_command_is_a_clear_error_and_not_ready(tmp_path: Path) -> None:
    async def main() -> None:
        backend = ExecBackend([str(tmp_path / "no-such-bot")], grace_s=1)
        observed = await backend.observe()
        assert observed.ready is False and "not found" in observed.detail
        with pytest.raises(WorkloadError, match="cannot start"):
            await backend.start()
        assert (await backend.observe()).state == "stopped"
        await backend.stop()
        assert (await backend.observe()).state == "stopped"

    asyncio.run(main())


def test_the_child_dies_with_a_killed_agent(child: Path, tmp_path: Path) -> None:
    """PR_SET_PDEATHSIG: SIGKILL the supervising process; its child must not run on unfenced."""
    out = tmp_path / "out"
    parent = tmp_path / "parent.py"
    parent.write_text(
        textwrap.dedent(
            f"""
            import asyncio, sys
            from hfo_site.backends.exec import ExecBackend
            async def main():
                backend = ExecBackend([sys.executable, {str(child)!r}, "ignore", {str(out)!r}], grace_s=5)
                await backend.start()
                print(backend.pid, flush=True)
                await asyncio.sleep(60)
            asyncio.run(main())
            """
        )
    )
    proc = subprocess.Popen([sys.executable, str(parent)], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        pid = int(proc.stdout.readline())
        wait_until(lambda: _alive(pid), timeout=5, what="child started")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=5)
        wait_until(lambda: not _alive(pid), timeout=3, what="child killed with its parent")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)


# -- several named workloads (HFO_EXEC_WORKLOADS) ------------------------------------------------


def _named(child: Path, tmp_path: Path, modes: dict[str, str], **kw: float) -> tuple[ExecBackend, dict[str, Path]]:
    outs = {name: tmp_path / f"out-{name}" for name in modes}
    workloads = [
        ExecWorkload(name, (sys.executable, str(child), mode, str(outs[name]))) for name, mode in modes.items()
    ]
    return ExecBackend(workloads, **kw), outs  # type: ignore[arg-type]


def test_named_workloads_start_together_and_stop_together_within_one_grace(child: Path, tmp_path: Path) -> None:
    """Two children that ignore SIGTERM, grace 0.8 s: both are killed after one grace, not one after the
    other (which would take 1.6 s)."""

    async def main() -> tuple[float, dict[str, int | None]]:
        backend, outs = _named(child, tmp_path, {"bot-a": "ignore", "bot-b": "ignore"}, grace_s=0.8)
        assert backend.names == ("bot-a", "bot-b")
        await backend.start()
        await _wait(lambda: all(_lines(out) for out in outs.values()))
        pids = backend.pids()
        assert all(pids.values()) and len(set(pids.values())) == 2
        for pid in pids.values():
            assert pid is not None and os.getpgid(pid) == pid  # each in its own process group
        observed = await backend.observe()
        assert observed.state == "running" and observed.ready
        assert observed.detail == f"bot-a pid {pids['bot-a']}, bot-b pid {pids['bot-b']}"
        started = time.monotonic()
        stopping = asyncio.create_task(backend.stop())
        await asyncio.sleep(0.2)
        assert (await backend.observe()).state == "stopping"
        await stopping
        elapsed = time.monotonic() - started
        assert not any(_alive(pid) for pid in pids.values() if pid is not None)
        assert (await backend.observe()).state == "stopped"
        return elapsed, pids

    elapsed, _ = asyncio.run(main())
    assert 0.8 <= elapsed < 1.5


def test_a_crashing_workload_restarts_on_its_own_backoff_and_leaves_the_others_alone(
    child: Path, tmp_path: Path
) -> None:
    async def main() -> None:
        backend, outs = _named(
            child, tmp_path, {"bot-a": "polite", "bot-b": "crash"}, grace_s=2.0, backoff_s=0.1, backoff_max_s=0.2
        )
        await backend.start()
        await _wait(lambda: backend.spawns_of("bot-b") >= 4)
        steady = backend.pids()["bot-a"]
        assert steady is not None and _alive(steady)
        assert backend.spawns_of("bot-a") == 1
        assert _lines(outs["bot-a"]) == [f"start {steady}"]  # never signalled, never restarted
        assert backend.last_exit_of("bot-b") == 3 and backend.last_exit_of("bot-a") is None
        deadline = time.monotonic() + 3
        while True:  # bot-b is between two runs most of the time, and says so
            observed = await backend.observe()
            if observed.state == "starting" and "bot-b exited with 3; restarting" in observed.detail:
                break
            assert time.monotonic() < deadline, observed
            await asyncio.sleep(0.005)
        assert f"bot-a pid {steady}" in observed.detail
        await backend.stop()
        crashed = backend.spawns_of("bot-b")
        await asyncio.sleep(0.4)
        assert backend.spawns_of("bot-b") == crashed  # no restart once stopped
        assert _lines(outs["bot-a"])[-1] == "term"
        assert (await backend.observe()).state == "stopped"

    asyncio.run(main())


def test_a_workload_that_cannot_start_is_named_and_the_others_run(child: Path, tmp_path: Path) -> None:
    out = tmp_path / "out-b"

    async def main() -> None:
        backend = ExecBackend(
            [
                ExecWorkload("bot-a", (str(tmp_path / "no-such-bot"),)),
                ExecWorkload("bot-b", (sys.executable, str(child), "polite", str(out))),
            ],
            grace_s=1.0,
        )
        observed = await backend.observe()
        assert observed.ready is False and observed.detail.startswith("bot-a: command")
        with pytest.raises(WorkloadError, match=r"cannot start bot-a .*no-such-bot") as info:
            await backend.start()
        assert "bot-b" not in str(info.value)
        await _wait(lambda: bool(_lines(out)))
        assert backend.pids()["bot-a"] is None and backend.pids()["bot-b"] is not None
        assert (await backend.observe()).state == "starting"  # not all of them run
        await backend.stop()
        assert (await backend.observe()).state == "stopped"
        assert _lines(out)[-1] == "term"

    asyncio.run(main())


def test_every_named_workload_gets_the_lease_url(tmp_path: Path) -> None:
    script = tmp_path / "env.py"
    script.write_text(
        "import os, sys, time\nopen(sys.argv[1], 'w').write(os.environ['HFO_BOT_LEASE_URL'])\ntime.sleep(30)\n"
    )

    async def main() -> None:
        backend = ExecBackend(
            [ExecWorkload(n, (sys.executable, str(script), str(tmp_path / n))) for n in ("a", "b")], grace_s=1.0
        )
        backend.add_env({"HFO_BOT_LEASE_URL": "http://127.0.0.1:1/v1/lease"})
        await backend.start()
        await _wait(lambda: all((tmp_path / n).exists() and (tmp_path / n).read_text() for n in ("a", "b")))
        await backend.stop()

    asyncio.run(main())
    assert {(tmp_path / n).read_text() for n in ("a", "b")} == {"http://127.0.0.1:1/v1/lease"}
