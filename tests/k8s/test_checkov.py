"""checkov over everything this repository renders (both overlays, the laptop's platform and monitoring
parts, the Argo CD applications and projects, the K3s bootstrap): zero failed checks, and every skip declared
on its resource with a reason. A deliberately insecure canary manifest is scanned in the same run, so a
green result cannot come from checkov scanning nothing. Runs offline (BC_SKIP_MAPPING, no API key)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from testsupport.k8s import KUSTOMIZATIONS, MULTI_OVERLAYS, bootstrap_files, of_kind, render, rendered_text
from testsupport.tools import checkov_bin

pytestmark = [pytest.mark.k8s, pytest.mark.checkov, pytest.mark.slow]

CANARY = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: canary
  namespace: default
spec:
  replicas: 1
  selector:
    matchLabels: {app: canary}
  template:
    metadata:
      labels: {app: canary}
    spec:
      hostNetwork: true
      containers:
        - name: canary
          image: nginx:latest
          securityContext:
            privileged: true
"""
# Checks the canary must fail: privileged, host network, :latest, no limits, no probes, root.
CANARY_MUST_FAIL = {"CKV_K8S_16", "CKV_K8S_19", "CKV_K8S_14", "CKV_K8S_13", "CKV_K8S_8", "CKV_K8S_9", "CKV_K8S_23"}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    checkov = checkov_bin()
    root = tmp_path_factory.mktemp("checkov")
    ours = root / "ours"
    ours.mkdir()
    for name in KUSTOMIZATIONS:
        (ours / f"{name}.yaml").write_text(rendered_text(name))
    for f in bootstrap_files():
        shutil.copy(f, ours / f"bootstrap-{f.name}")
    (root / "canary").mkdir()
    (root / "canary" / "canary.yaml").write_text(CANARY)
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    env.pop("BC_API_KEY", None)
    proc = subprocess.run(
        [checkov, "-d", str(root), "--framework", "kubernetes", "-o", "json", "--skip-download"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    data = json.loads(proc.stdout)
    data = data if isinstance(data, dict) else next(d for d in data if d["check_type"] == "kubernetes")
    assert data["summary"]["parsing_errors"] == 0
    return data


def _split(report: dict[str, Any], kind: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    checks = report["results"][kind]
    canary = [c for c in checks if c["file_path"].startswith("/canary/")]
    ours = [c for c in checks if not c["file_path"].startswith("/canary/")]
    return ours, canary


def test_no_failed_check_on_our_manifests(report: dict[str, Any]) -> None:
    failed, _ = _split(report, "failed_checks")
    passed, _ = _split(report, "passed_checks")
    skipped, _ = _split(report, "skipped_checks")
    print(
        f"\ncheckov {report['summary']['checkov_version']}: {len(passed)} passed, {len(failed)} failed, "
        f"{len(skipped)} skipped on our manifests ({report['summary']['resource_count']} resources incl. canary)"
    )
    assert [f"{c['check_id']} {c['file_path']} {c['resource']}: {c['check_name']}" for c in failed] == []
    assert len(passed) > 300
    files = {c["file_path"] for c in passed}
    assert {"/ours/laptop.yaml", "/ours/aws.yaml"} <= files


def test_every_skip_is_declared_on_its_resource_with_a_reason(report: dict[str, Any]) -> None:
    skipped, _ = _split(report, "skipped_checks")
    for check in skipped:
        reason = check["check_result"].get("suppress_comment", "")
        assert len(reason) >= 30, f"{check['check_id']} on {check['resource']} skipped without a real reason"
    # Only the two documented exceptions, and only on our workloads: the bot (or each bot instance, whose pod
    # is the bot's: k8s/instances/pod-template.yaml) and the site Deployment.
    instances = {d["metadata"]["name"] for name in MULTI_OVERLAYS for d in of_kind(render(name), "StatefulSet")}
    assert {c["check_id"] for c in skipped} <= {"CKV_K8S_43", "CKV_K8S_15"}
    assert {c["resource"].rsplit(".", 1)[-1] for c in skipped} <= {"bot", "hfo-site", *instances}


def test_the_canary_fails_so_the_scan_is_real(report: dict[str, Any]) -> None:
    _, canary_failed = _split(report, "failed_checks")
    assert {c["check_id"] for c in canary_failed} >= CANARY_MUST_FAIL


def test_runs_offline(report: dict[str, Any]) -> None:
    assert Path(checkov_bin()).is_file()
    assert report["summary"]["checkov_version"]
