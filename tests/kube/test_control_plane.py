"""The control plane fixture itself (testsupport/kube_apiserver.py): what it starts, and that it always
stops, also when a test fails, on Ctrl-C and when the test run is killed outright."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from testsupport.kube_apiserver import SERVER_VERSION, ControlPlane, wait_for
from testsupport.tools import REPO_ROOT

pytestmark = [pytest.mark.kube, pytest.mark.network]

CHILD = Path(__file__).with_name("ctrl_c_child.py")
NAMES = ("etcd", "kube-apiserver", "kube-controller-manager")


def test_it_serves_kubernetes_1_20_with_token_authentication_and_rbac(kube_cluster: ControlPlane) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    assert client.VersionApi(kube_cluster.admin()).get_code().git_version == SERVER_VERSION
    with kube_cluster.api_client("wrong-token") as api, pytest.raises(ApiException) as refused:
        client.CoreV1Api(api).list_namespace()
    assert refused.value.status == 401
    token = kube_cluster.service_account_token("default", "default")
    with kube_cluster.api_client(token) as api, pytest.raises(ApiException) as forbidden:
        client.CoreV1Api(api).list_namespaced_secret("default")
    assert forbidden.value.status == 403  # authenticated, but RBAC grants a ServiceAccount nothing by itself
    assert [c.name for c in kube_cluster.children] == list(NAMES)
    assert kube_cluster.timings["controller_manager_ready"] < 120


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _group_empty(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return not any(_alive(int(p.name)) for p in Path("/proc").iterdir() if p.name.isdigit() and _pgid(p.name) == pgid)


def _pgid(pid: str) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[2])
    except (OSError, IndexError, ValueError):
        return -1


def _run_child(tmp_path: Path) -> tuple[subprocess.Popen[str], list[int]]:
    marks = tmp_path / "marks"
    marks.mkdir()
    env = {**os.environ, "HFO_CHILD_MARKS": str(marks)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--basetemp", str(tmp_path / "base"),
         "-o", "timeout=300", str(CHILD)],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        wait_for(lambda: (marks / "hanging").exists() or proc.poll() is not None, 180, "the child run to hang")
    except TimeoutError:
        proc.kill()
        raise
    if proc.poll() is not None:
        raise AssertionError(f"the child run ended early:\n{proc.communicate()[0]}")
    pids = json.loads((marks / "pids.json").read_text())
    assert len(pids) == len(NAMES) and all(_alive(p) for p in pids)
    return proc, pids


@pytest.mark.slow
def test_ctrl_c_after_a_failed_test_stops_every_process(tmp_path: Path) -> None:
    proc, pids = _run_child(tmp_path)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal goes to the whole foreground group
    try:
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert "KeyboardInterrupt" in out and "1 failed" in out, out
    wait_for(lambda: not any(_alive(p) for p in pids), 10, "every control plane process gone")
    assert all(_group_empty(p) for p in pids)  # nothing they started either


@pytest.mark.slow
def test_a_killed_test_run_leaves_no_process(tmp_path: Path) -> None:
    proc, pids = _run_child(tmp_path)
    started = time.monotonic()
    proc.kill()  # SIGKILL: no finalizer, no atexit; the parent-death signal does it
    proc.wait(timeout=10)
    wait_for(lambda: not any(_alive(p) for p in pids), 10, "every control plane process gone")
    assert all(_group_empty(p) for p in pids)
    assert time.monotonic() - started < 10
