"""Static checks of every Terraform root (each module and each example): formatting, and
`terraform validate` after an offline init from the provider mirror; the roots expose the module's
settings and outputs; every module and root has a README that lists them; the watchdog module's
defaults are the watchdog's own. Also the mirror lookup the other Terraform tests rely on."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hfo_drill.module_defaults import watchdog_environment
from hfo_watchdog.config import Settings
from hfo_watchdog.core.model import Policy
from testsupport.terraform import (
    MIRROR_ENV,
    PROVIDER_SOURCE,
    TerraformEnv,
    find_provider_mirror,
    module_dirs,
    working_copy,
)
from testsupport.tools import REPO_ROOT

pytestmark = pytest.mark.terraform

ROOTS = sorted(p.relative_to(REPO_ROOT / "terraform").as_posix() for p in module_dirs(REPO_ROOT / "terraform"))


def test_every_module_has_the_standard_files() -> None:
    for root in ROOTS:
        if root.startswith("modules/"):
            present = {p.name for p in (REPO_ROOT / "terraform" / root).glob("*.tf")}
            assert {"main.tf", "variables.tf", "outputs.tf", "versions.tf"} <= present, root
    assert "examples/complete" in ROOTS


def test_fmt_check(tfenv: TerraformEnv) -> None:
    result = tfenv.run(["fmt", "-check", "-recursive", "-diff", "-no-color"], cwd=REPO_ROOT / "terraform")
    assert result.returncode == 0, f"terraform fmt would change these files:\n{result.stdout}{result.stderr}"


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return working_copy(tmp_path_factory.mktemp("static"))


# The quickstart's module comes from a Git URL (the fork's): validated here from the checkout.
QUICKSTART_SOURCE = re.compile(r'(?m)^(\s*source\s*=\s*)"git::[^"]+//terraform/modules/hybrid-failover\?ref=[^"]+"')


@pytest.mark.parametrize("root", ROOTS)
def test_validate(tfenv: TerraformEnv, tree: Path, root: str) -> None:
    directory = tree / root
    if root == "examples/quickstart":
        main = directory / "main.tf"
        text, count = QUICKSTART_SOURCE.subn(r'\1"../../modules/hybrid-failover"', main.read_text())
        assert count == 1, "the quickstart's module source is not the documented git:: URL"
        main.write_text(text)
    init = tfenv.run(["init", "-backend=false", "-input=false", "-no-color"], cwd=directory)
    assert init.returncode == 0, init.stdout + init.stderr
    result = tfenv.run(["validate", "-json", "-no-color"], cwd=directory)
    report = json.loads(result.stdout)
    messages = [f"{d['severity']}: {d['summary']}: {d.get('detail', '')}" for d in report["diagnostics"]]
    assert report["valid"], "\n".join(messages)
    assert report["warning_count"] == 0, "\n".join(messages)


def _fake_mirror(root: Path) -> Path:
    provider = root / PROVIDER_SOURCE / "5.100.0" / "linux_amd64"
    provider.mkdir(parents=True)
    (provider / "terraform-provider-aws_v5.100.0_x5").write_bytes(b"")
    return root


def test_mirror_from_environment_variable_wins(tmp_path: Path) -> None:
    configured = _fake_mirror(tmp_path / "configured")
    _fake_mirror(tmp_path / "searched" / "mirror")
    found = find_provider_mirror({MIRROR_ENV: str(configured)}, roots=(str(tmp_path / "searched"),))
    assert found == configured


def test_mirror_found_by_bounded_search(tmp_path: Path) -> None:
    expected = _fake_mirror(tmp_path / "a" / "b")
    assert find_provider_mirror({}, roots=(str(tmp_path / "missing"), str(tmp_path))) == expected
    # Deeper than the search depth: not found (the search never walks a whole disk).
    deep = tmp_path / "deep"
    _fake_mirror(deep / "1" / "2" / "3" / "4")
    assert find_provider_mirror({}, roots=(str(deep),)) is None


def test_mirror_environment_variable_without_provider_fails(tmp_path: Path) -> None:
    with pytest.raises(pytest.fail.Exception, match=MIRROR_ENV):
        find_provider_mirror({MIRROR_ENV: str(tmp_path)}, roots=())


def _blocks(directory: Path, kind: str) -> set[str]:
    names: set[str] = set()
    for path in directory.glob("*.tf"):
        names |= set(re.findall(rf'(?m)^{kind} "([^"]+)"', path.read_text(encoding="utf-8")))
    return names


COMPOSITE = REPO_ROOT / "terraform" / "modules" / "hybrid-failover"
COMPLETE = REPO_ROOT / "terraform" / "examples" / "complete"
QUICKSTART = REPO_ROOT / "terraform" / "examples" / "quickstart"


def test_the_repositorys_root_reaches_every_setting_and_output_of_the_module() -> None:
    """The tests and `make demo` apply examples/complete: nothing of the module is out of their reach."""
    assert _blocks(COMPOSITE, "variable") <= _blocks(COMPLETE, "variable")
    main = (COMPLETE / "main.tf").read_text(encoding="utf-8")
    module_block = main[main.index('module "hfo" {') :]
    passed = set(re.findall(r"(?m)^\s+(\w+)\s+= var\.\1$", module_block))
    assert passed == _blocks(COMPOSITE, "variable")
    assert _blocks(COMPLETE, "output") == _blocks(COMPOSITE, "output")


WATCHDOG = REPO_ROOT / "terraform" / "modules" / "watchdog"
# What the composite sets itself (from its other modules or fixed), not a user's setting.
WIRED_BY_THE_COMPOSITE = {
    "name_prefix",
    "lambda_zip_path",
    "health_url",
    "instance_id",
    "instance_arn",
    "ebs_kms_key_arn",
    "hmac_secret_arn",
    "discord_secret_arn",
    "alert_email",
    "tags",
    # Kept on in the composite: a pass-through (null) hides the setting from checkov's CKV_AWS_28,
    # which tests/terraform/test_checkov.py requires to pass on the state table.
    "table_point_in_time_recovery",
}


def test_the_composite_passes_every_watchdog_setting_through() -> None:
    """docs/terraform.md: the composite exposes every watchdog setting (null: the module's default)."""
    main = (COMPOSITE / "main.tf").read_text(encoding="utf-8")
    block = main[main.index('module "watchdog" {') :]
    block = block[: block.index("\n}\n")]
    passed = set(re.findall(r"(?m)^\s+(\w+)\s+= var\.\1$", block))
    wired = set(re.findall(r"(?m)^\s+(\w+)\s+=", block))
    missing = _blocks(WATCHDOG, "variable") - passed - WIRED_BY_THE_COMPOSITE - (wired - passed)
    assert missing == set(), f"hybrid-failover does not pass these through: {sorted(missing)}"
    assert passed <= _blocks(COMPOSITE, "variable")


def test_the_deployed_root_has_every_output_the_docs_read() -> None:
    """docs/runbook.md reads `terraform output` of the quickstart root a user deploys."""
    assert _blocks(QUICKSTART, "output") == _blocks(COMPOSITE, "output")
    assert (QUICKSTART / "outputs.tf").read_text() == (COMPLETE / "outputs.tf").read_text()
    quickstart_vars = _blocks(QUICKSTART, "variable")
    assert quickstart_vars - {"region", "tags"} <= _blocks(COMPOSITE, "variable")


class _Reading(dict[str, str]):
    """An environment that records every variable the watchdog's settings reader asks for."""

    def __init__(self, env: dict[str, str]) -> None:
        super().__init__(env)
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)


def test_the_watchdog_modules_defaults_are_the_watchdogs_own() -> None:
    """A user who sets nothing runs the watchdog's shipped defaults (`Policy()` and the rest of
    `Settings`), not a second set kept by hand in variables.tf: the module's environment, evaluated
    on its variables' defaults (the drill's reader of the module), read by the watchdog's own
    settings reader, equals what that reader gives when no setting is in the environment at all."""
    environment, bound = watchdog_environment(REPO_ROOT)
    resources = {  # what only exists once applied: the table, the instance, the URL, the ARNs
        "HFO_TABLE_NAME": "hfo-state",
        "HFO_INSTANCE_ID": "i-0123456789abcdef0",
        "HFO_HEALTH_URL": "https://laptop.example.ts.net/healthz",
        "HFO_HMAC_SECRET_ARN": "arn:aws:ssm:eu-west-3:123456789012:parameter/hfo/hmac-keyring",
        "HFO_SNS_TOPIC_ARN": "arn:aws:sns:eu-west-3:123456789012:hfo-alerts",
    }
    assert bound == set(resources)
    env = _Reading({**environment, **resources})
    from_terraform = Settings.from_env(env)
    # By name: the module sets nothing the watchdog does not read, and leaves out only what is off
    # by default (Discord alerts off in this module, fallback types, the state handoff's bucket,
    # role and credentials lifetime, set only by the composite with state_bucket_enabled) and the
    # test-only CA bundle.
    assert set(env) - env.read == set()
    assert env.read - set(env) == {
        "HFO_DISCORD_WEBHOOK_SECRET_ARN", "HFO_FALLBACK_INSTANCE_TYPES", "HFO_PROBE_CA_BUNDLE",
        "HFO_STATE_BUCKET", "HFO_STATE_ROLE_ARN", "HFO_STATE_CREDENTIALS_TTL_S",
    }  # fmt: skip
    assert from_terraform.policy == Policy()
    # The one deliberate difference: custom metrics cost money, so Terraform turns them off unless
    # custom_metrics is set (docs/configuration.md).
    assert from_terraform == dataclasses.replace(Settings.from_env(resources), metrics_disabled=True)


@pytest.mark.parametrize("root", ROOTS)
def test_every_module_and_root_has_a_readme_listing_its_interface(root: str) -> None:
    """Issue 9: each README says what the module creates, its inputs and outputs, and which root a
    user deploys. It must name every variable and output, so it cannot fall behind the code."""
    directory = REPO_ROOT / "terraform" / root
    readme = directory / "README.md"
    assert readme.is_file(), f"{root} has no README.md"
    text = readme.read_text(encoding="utf-8")
    names = _blocks(directory, "variable") | _blocks(directory, "output")
    if root.startswith("examples/"):  # the roots forward the module's own: its README lists those
        names -= _blocks(COMPOSITE, "variable") | _blocks(COMPOSITE, "output")
        assert "modules/hybrid-failover" in text
    missing = sorted(n for n in names if f"`{n}`" not in text)
    assert missing == [], f"{root}/README.md does not mention {missing}"
    assert "examples/quickstart" in text, f"{root}/README.md does not say which root a user deploys"
