"""The drill's child processes: own session and group, killed with every descendant (even one
in a session of its own, as a site agent's bot is), SIGTERM with a grace, and gone with the drill
if the drill itself is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hfo_drill.proc import alive, descendants, kill_together, spawn
from testsupport.net import wait_until

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc (Linux)")

PY = sys.executable
# A parent that starts a grandchild in a session of its own (like the exec backend starts a bot),
# writes the grandchild's pid, then sleeps.
PARENT = textwrap.dedent(
    """
    import subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    open(sys.argv[1], "w").write(str(child.pid))
    time.sleep(120)
    """
)


def _grandchild(pidfile: Path) -> int:
    wait_until(lambda: pidfile.exists() and pidfile.read_text().strip() != "", timeout=20, what="grandchild pid")
    return int(pidfile.read_text())


def test_a_child_gets_its_own_session_and_group(tmp_path: Path) -> None:
    child = spawn("sleeper", [PY, "-c", "import time; time.sleep(60)"], os.environ, tmp_path / "log")
    try:
        assert os.getpgid(child.pid) == child.pid
        assert os.getsid(child.pid) == child.pid
    finally:
        child.kill()
    assert not alive(child.pid)


def test_kill_takes_the_descendants_in_other_sessions_too(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    child = spawn("parent", [PY, "-c", PARENT, str(pidfile)], os.environ, tmp_path / "log")
    grandchild = _grandchild(pidfile)
    assert os.getsid(grandchild) != os.getsid(child.pid)  # a session of its own
    assert grandchild in descendants(child.pid)
    killed = child.kill()
    assert set(killed) >= {child.pid, grandchild}
    assert not alive(child.pid) and not alive(grandchild)


def test_kill_together_sweeps_several_trees(tmp_path: Path) -> None:
    children, grandchildren = [], []
    for n in range(2):
        pidfile = tmp_path / f"pid{n}"
        children.append(spawn(f"parent{n}", [PY, "-c", PARENT, str(pidfile)], os.environ, tmp_path / f"log{n}"))
        grandchildren.append(_grandchild(pidfile))
    kill_together(children)
    assert not any(alive(p) for p in [c.pid for c in children] + grandchildren)


def test_terminate_lets_a_child_exit_on_sigterm(tmp_path: Path) -> None:
    marker = tmp_path / "bye"
    code = (
        "import signal, sys, time\n"
        f"signal.signal(signal.SIGTERM, lambda *a: (open({str(marker)!r}, 'w').write('bye'), sys.exit(0)))\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    log = tmp_path / "log"
    child = spawn("polite", [PY, "-c", code], os.environ, log)
    wait_until(lambda: log.exists() and "ready" in log.read_text(), timeout=20, what="handler installed")
    started = time.monotonic()
    child.terminate(grace_s=10)
    assert time.monotonic() - started < 8
    assert marker.read_text() == "bye"
    assert child.proc.returncode == 0


def test_terminate_kills_what_ignores_sigterm_after_the_grace(tmp_path: Path) -> None:
    code = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    log = tmp_path / "log"
    child = spawn("stubborn", [PY, "-c", code], os.environ, log)
    wait_until(lambda: log.exists() and "ready" in log.read_text(), timeout=20, what="handler installed")
    started = time.monotonic()
    child.terminate(grace_s=0.5)
    assert 0.4 < time.monotonic() - started < 8
    assert child.proc.returncode == -signal.SIGKILL


def test_children_die_with_a_drill_killed_outright(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    drill = textwrap.dedent(
        f"""
        import os, sys, time
        from hfo_drill.proc import spawn
        child = spawn("sleeper", [sys.executable, "-c", "import time; time.sleep(120)"], os.environ)
        open({str(pidfile)!r}, "w").write(str(child.pid))
        time.sleep(120)
        """
    )
    proc = subprocess.Popen([PY, "-c", drill])
    try:
        wait_until(lambda: pidfile.exists() and pidfile.read_text() != "", timeout=20, what="child started")
        child = int(pidfile.read_text())
        assert alive(child)
        proc.kill()  # no cleanup code runs
        proc.wait(timeout=10)
        wait_until(lambda: not alive(child), timeout=10, what="child gone with its parent")
    finally:
        if proc.poll() is None:
            proc.kill()
