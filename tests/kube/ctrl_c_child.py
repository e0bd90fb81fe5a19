"""Run only by test_control_plane.py, in a child pytest: it uses the session's kube_cluster fixture, fails
one test, then hangs in another until the parent interrupts (SIGINT) or kills (SIGKILL) the run. Not
collected by the suite itself (the name does not start with test_)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from testsupport.kube_apiserver import ControlPlane

MARKS = os.environ.get("HFO_CHILD_MARKS", "")
pytestmark = pytest.mark.skipif(not MARKS, reason="run by tests/kube/test_control_plane.py only")


def test_fails(kube_cluster: ControlPlane) -> None:
    Path(MARKS, "pids.json").write_text(json.dumps(kube_cluster.pids()))
    raise AssertionError("a failing test: the control plane must stay up for the rest of the session")


def test_hangs(kube_cluster: ControlPlane) -> None:
    assert kube_cluster.core().read_namespace("default")  # still serving after the failure
    Path(MARKS, "hanging").write_text("waiting to be interrupted")
    time.sleep(120)
