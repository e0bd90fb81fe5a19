"""checkov over terraform/ from its own virtual environment, offline: no failed check, and every
skipped check is skipped by a comment next to its resource that says why."""

from __future__ import annotations

import json
import os
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from testsupport.tools import REPO_ROOT, checkov_bin

pytestmark = [pytest.mark.checkov, pytest.mark.slow]

TERRAFORM = REPO_ROOT / "terraform"


@cache
def scan(binary: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BC_", "CKV_", "PRISMA_"))}
    env.update({"BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false", "LOG_LEVEL": "WARNING"})
    result = subprocess.run(
        [binary, "-d", str(TERRAFORM), "--framework", "terraform", "--download-external-modules", "false",
         "--skip-download", "-o", "json"],
        capture_output=True, text=True, timeout=300, env=env, check=False, cwd=REPO_ROOT,
    )  # fmt: skip
    assert result.stdout.strip(), result.stderr
    report = json.loads(result.stdout)
    # One framework: checkov answers an object (several would make a list).
    assert isinstance(report, dict), "expected one terraform report"
    return report


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return scan(checkov_bin())


def test_no_failed_check(report: dict[str, Any]) -> None:
    failed = [f"{c['check_id']} {c['resource']} ({c['file_path']})" for c in report["results"]["failed_checks"]]
    assert failed == []
    assert report["summary"]["failed"] == 0
    assert report["summary"]["parsing_errors"] == 0


def test_the_checks_that_matter_ran_and_passed(report: dict[str, Any]) -> None:
    passed = {(c["check_id"], c["resource"].split(".")[-2]) for c in report["results"]["passed_checks"]}
    for check in (
        ("CKV_AWS_79", "aws_instance"),  # IMDSv2 required
        ("CKV_AWS_8", "aws_instance"),  # encrypted root volume
        ("CKV_AWS_28", "aws_dynamodb_table"),  # point-in-time recovery
        ("CKV2_AWS_12", "aws_vpc"),  # default security group restricts everything
    ):
        assert check in passed, check


def _line_range_text(path: str, line_range: list[int]) -> str:
    file = TERRAFORM / path.lstrip("/")  # paths are relative to the scanned directory
    lines = file.read_text(encoding="utf-8").splitlines()
    return "\n".join(lines[line_range[0] - 1 : line_range[1]])


def test_every_skip_is_a_reasoned_comment_inside_its_resource(report: dict[str, Any]) -> None:
    skipped = report["results"]["skipped_checks"]
    assert skipped, "the modules skip a few checks on purpose; none found means the scan did not see them"
    for check in skipped:
        comment = check["check_result"].get("suppress_comment") or ""
        assert len(comment.split()) >= 6, f"{check['check_id']} on {check['resource']}: reason too short: {comment!r}"
        block = _line_range_text(check["file_path"], check["file_line_range"])
        assert f"#checkov:skip={check['check_id']}:" in block, (check["check_id"], check["resource"])


def test_no_skip_outside_the_code() -> None:
    """Skips live next to the resources, never in a config file that hides them."""
    for name in (".checkov.yaml", ".checkov.yml"):
        assert not (REPO_ROOT / name).exists()
        assert not (TERRAFORM / name).exists()


def test_scan_covers_every_module(report: dict[str, Any]) -> None:
    results = report["results"]
    files = {Path(c["file_path"]).parts[1:3] for kind in ("passed_checks", "skipped_checks") for c in results[kind]}
    for module in ("network", "secrets", "standby", "watchdog"):
        assert ("modules", module) in files, module
