"""The standby's boot script (terraform/modules/standby/templates/hfo-bootstrap.sh), run for real
by bash with stand-ins for the commands it drives (aws, tailscale, dnf, curl, systemctl, k3s),
which cannot run here. The stand-ins record every call; each keeps the behaviour the script
relies on (exit codes, `k3s --version` and `tailscale version` output, the K3s installer)."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from testsupport.tools import REPO_ROOT

MODULE = REPO_ROOT / "terraform" / "modules" / "standby"
SCRIPT = MODULE / "templates" / "hfo-bootstrap.sh"
K3S_VERSION = "v1.33.1+k3s1"
TAILSCALE_VERSION = "1.84.0"

# Stand-ins, one file per command; each records its call, then behaves as below.
STUBS = Path(__file__).parent / "bootstrap_stubs"


def terraform_env_keys() -> set[str]:
    """The keys Terraform writes to /etc/hfo/bootstrap.env (the module's bootstrap_env local)."""
    text = (MODULE / "main.tf").read_text(encoding="utf-8")
    block = re.search(r"bootstrap_env = \{(.*?)\n  \}", text, flags=re.DOTALL)
    assert block, "bootstrap_env not found in the standby module"
    return set(re.findall(r"^\s+([A-Z][A-Z0-9_]+)\s+=", block.group(1), flags=re.MULTILINE))


@dataclass
class Node:
    root: Path
    secret: str

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    def calls(self) -> list[str]:
        log = self.root / "calls.log"
        return log.read_text(encoding="utf-8").splitlines() if log.exists() else []

    def boot(self) -> subprocess.CompletedProcess[str]:
        (self.root / "calls.log").unlink(missing_ok=True)
        env = {
            "PATH": f"{self.root / 'bin'}:{os.environ['PATH']}",
            "STATE": str(self.state),
            "STUB_LOG": str(self.root / "calls.log"),
            "HFO_BOOTSTRAP_ENV": str(self.root / "bootstrap.env"),
            "HFO_RUN_DIR": str(self.run_dir),
            "HFO_K3S_MANIFESTS": str(self.root / "manifests"),
            "HFO_API_WAIT_S": "5",
        }
        return subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def node(tmp_path: Path) -> Node:
    bash = shutil.which("bash")
    assert bash
    (tmp_path / "bin").mkdir()
    (tmp_path / "state").mkdir()
    (tmp_path / "manifests").mkdir()
    for source in sorted(STUBS.iterdir()):
        stub = tmp_path / "bin" / source.name
        stub.write_text(f'#!{bash}\necho "{source.name} $*" >> "$STUB_LOG"\n' + source.read_text(), encoding="utf-8")
        stub.chmod(0o755)
    values = {
        "AWS_REGION": "eu-west-3",
        "HFO_K3S_VERSION": K3S_VERSION,
        "HFO_TAILSCALE_VER": TAILSCALE_VERSION,
        "HFO_TS_HOSTNAME": "hfo-standby",
        "HFO_TS_SECRET": "hfo/tailscale-auth-key",
        "HFO_TS_SSH": "true",
    }
    assert set(values) == terraform_env_keys(), "keep this test's env in step with the module's bootstrap_env"
    (tmp_path / "bootstrap.env").write_text("".join(f"{k}='{v}'\n" for k, v in values.items()), encoding="utf-8")
    result = Node(tmp_path, "tskey-auth-" + secrets.token_hex(20))
    (result.state / "secret-value").write_text(result.secret, encoding="utf-8")
    return result


def test_first_boot_installs_pinned_versions_and_joins_the_tailnet(node: Node) -> None:
    result = node.boot()
    assert result.returncode == 0, result.stdout + result.stderr
    calls = node.calls()
    assert f"dnf install -y -q tailscale-{TAILSCALE_VERSION}" in calls
    assert any(
        c.startswith("curl ") and "raw.githubusercontent.com/k3s-io/k3s/v1.33.1%2Bk3s1/install.sh" in c for c in calls
    )
    assert (node.state / "installer-env").read_text().split() == [
        f"INSTALL_K3S_VERSION={K3S_VERSION}",
        "SKIP_SELINUX=true",
    ]
    up = [c for c in calls if c.startswith("tailscale up")]
    assert len(up) == 1
    assert "--hostname=hfo-standby" in up[0] and "--ssh=true" in up[0]
    assert "systemctl enable --now k3s" in calls
    assert "hfo-bootstrap: done" in result.stdout


def test_auth_key_goes_through_a_private_file_never_a_command_line(node: Node) -> None:
    result = node.boot()
    assert result.returncode == 0, result.stdout + result.stderr
    assert (node.state / "authkey-file").read_text().strip() == "match"  # tailscale read the key from the file
    assert (node.state / "authkey-mode").read_text().strip() == "600"
    assert list(node.run_dir.iterdir()) == [node.run_dir / "k3s-install.sh"]  # the key file is gone
    everything = "\n".join(node.calls()) + result.stdout + result.stderr
    assert node.secret not in everything


def test_second_boot_changes_nothing_and_reads_no_secret(node: Node) -> None:
    assert node.boot().returncode == 0
    result = node.boot()
    assert result.returncode == 0, result.stdout + result.stderr
    calls = node.calls()
    assert not any(c.startswith(("dnf ", "curl ", "aws ", "tailscale up")) for c in calls), calls
    assert "tailscale set --hostname=hfo-standby --ssh=true" in calls  # settings kept in step
    assert "systemctl enable --now k3s" in calls


def test_a_different_k3s_version_is_replaced_by_the_pinned_one(node: Node) -> None:
    (node.state / "k3s-installed").write_text("v1.30.0+k3s1\n")
    result = node.boot()
    assert result.returncode == 0
    assert (node.state / "k3s-installed").read_text().strip() == K3S_VERSION
    assert "installing k3s v1.33.1+k3s1 (found: v1.30.0+k3s1)" in result.stdout


def test_tailscale_failure_does_not_keep_k3s_down(node: Node) -> None:
    (node.state / "aws-fails").touch()  # no access to the secret
    result = node.boot()
    assert result.returncode == 1  # systemd retries the unit
    assert "FAILED: tailscale" in result.stdout
    assert (node.state / "k3s-installed").read_text().strip() == K3S_VERSION
    assert "systemctl enable --now k3s" in node.calls()
    assert not (node.state / "tailscale-up").exists()
    assert list(node.run_dir.glob("tailscale-authkey*")) == []


def test_systemd_unit_runs_the_script_at_every_boot_with_bounded_retries() -> None:
    unit = (MODULE / "templates" / "hfo-bootstrap.service").read_text(encoding="utf-8")
    assert "ExecStart=/usr/local/sbin/hfo-bootstrap" in unit
    assert "WantedBy=multi-user.target" in unit
    assert "Restart=on-failure" in unit
    assert re.search(r"StartLimitBurst=\d+", unit) and re.search(r"TimeoutStartSec=\d+", unit)
