"""`python -m hfo_drill` (`make demo`, the full drill) as a real child process: Ctrl-C or
SIGTERM at any point stops everything it started (emulator, terraform, site processes, bots,
stand-in servers) and removes its work directory. The whole story and its outcome are tested in
tests/system/test_drill.py."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator

import pytest
from testsupport.drill import DRILL, DrillProcess, clean_env, port_open
from testsupport.net import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.system]
MOTO_LINE = r"moto server \(the AWS emulator\) pid (\d+) on http://127\.0\.0\.1:(\d+)"


@pytest.fixture
def drills() -> Iterator[list[DrillProcess]]:
    started: list[DrillProcess] = []
    yield started
    for run in started:
        run.close()


def interrupted(run: DrillProcess, sig: signal.Signals) -> str:
    run.snapshot()
    run.proc.send_signal(sig)
    output = run.rest(timeout=90)
    assert run.proc.returncode == 130, output
    assert "interrupted: everything the drill started has been stopped" in output
    assert "Traceback" not in output
    return output


def test_ctrl_c_during_setup_stops_the_emulator_and_terraform(drills: list[DrillProcess]) -> None:
    run = DrillProcess()
    drills.append(run)
    moto = run.wait_for(MOTO_LINE, 90)
    # With Terraform here, interrupt it mid-apply; without, mid-provisioning.
    run.wait_for(r"terraform apply of|creating the same resources directly", 60)
    time.sleep(2)
    tree = run.snapshot()
    assert int(moto.group(1)) in tree
    interrupted(run, signal.SIGINT)
    assert run.left_running() == []
    assert not port_open(int(moto.group(2)))
    assert not run.work_dir().exists()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_stopping_mid_story_stops_the_sites_their_bots_and_the_servers(
    drills: list[DrillProcess], sig: signal.Signals
) -> None:
    run = DrillProcess("--no-terraform")
    drills.append(run)
    moto = run.wait_for(MOTO_LINE, 90)
    funnel = run.wait_for(r"Funnel stand-in https://127\.0\.0\.1:(\d+)/healthz .* laptop health 127\.0\.0\.1:(\d+)", 30)
    url = run.wait_for(r"Function URL stand-in https://127\.0\.0\.1:(\d+)/", 60)
    laptop = run.wait_for(r"health pid (\d+) on 127\.0\.0\.1:\d+, agent pid (\d+)", 60)
    wanted = {int(laptop.group(1)), int(laptop.group(2)), int(moto.group(1))}
    ports = [int(moto.group(2)), int(funnel.group(1)), int(funnel.group(2)), int(url.group(1))]
    # Look while the laptop runs: the story kills it a moment after the healthy milestone, so a
    # look taken after that line races the story's own SIGKILL.
    wait_until(
        lambda: wanted <= set(run.snapshot()) and len(run.snapshot()) >= 4 and all(port_open(p) for p in ports),
        60,
        what="moto, the laptop's health service, agent and bot running, every port open",
    )
    run.wait_for(r"\*\* milestone: healthy", 90)
    run.snapshot()
    interrupted(run, sig)
    assert run.left_running() == []
    assert not any(port_open(p) for p in ports)
    assert not run.work_dir().exists()


def test_out_must_be_an_existing_directory() -> None:
    done = subprocess.run(
        [*DRILL, "--out", "/nonexistent/drill-out"], env=clean_env(), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "--out must be an existing directory, got '/nonexistent/drill-out'" in done.stderr
    assert done.stdout == ""
