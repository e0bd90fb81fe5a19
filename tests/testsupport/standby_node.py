"""The standby node's boot, run here for real: the loader from the user data, then the bootstrap
script it fetches, under bash, with the real AWS CLI against the moto server (SSM Parameter Store,
Secrets Manager) and stand-ins for what cannot run here (tailscale, dnf, curl, systemctl, k3s: each
records its call and keeps the behaviour the scripts rely on; tests/terraform/bootstrap_stubs).

Every path the scripts write (/etc/rancher/k3s, /var/lib/rancher/k3s/..., /var/lib/hfo, /run/hfo) is
moved under the node's root directory through the scripts' own HFO_* overrides.
"""

from __future__ import annotations

import base64
import gzip
import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from hfo_drill.moto_server import MotoServer

from testsupport.tools import REPO_ROOT, require_tool

STUBS = REPO_ROOT / "tests" / "terraform" / "bootstrap_stubs"
TEMPLATES = REPO_ROOT / "terraform" / "modules" / "standby" / "templates"
AWSCLI_BIN = REPO_ROOT / ".venv-awscli" / "bin"
LOADER_PATH = "/usr/local/sbin/hfo-bootstrap"
NODE_ENV_PATH = "/etc/hfo/node.env"


def awscli_bin() -> Path:
    """The AWS CLI of `make awscli-venv` (the node runs the AWS CLI; AL2023 ships version 2)."""
    require_tool("aws (the AWS CLI, .venv-awscli)", str(AWSCLI_BIN / "aws"), "run `make awscli-venv`")
    return AWSCLI_BIN


def user_data_files(user_data: str) -> dict[str, str]:
    """path -> content of the files the cloud-config writes (plain text, as the module renders them)."""
    assert user_data.startswith("#cloud-config\n"), user_data[:60]
    config = yaml.safe_load(user_data)
    files = {}
    for f in config["write_files"]:
        assert "encoding" not in f, f["path"]
        files[f["path"]] = f["content"]
    return files


def rendered_user_data(region: str, ssm_path: str) -> str:
    """The user data as the standby module renders it: the loader, its settings and its unit (the
    stack test checks the deployed user data holds exactly these files)."""
    files = {
        NODE_ENV_PATH: f"AWS_REGION='{region}'\nHFO_SSM_PATH='{ssm_path}'\n",
        LOADER_PATH: (TEMPLATES / "hfo-node-loader.sh").read_text(),
        "/etc/systemd/system/hfo-bootstrap.service": (TEMPLATES / "hfo-bootstrap.service").read_text(),
    }
    config = {"write_files": [{"path": path, "content": content} for path, content in files.items()]}
    return "#cloud-config\n" + yaml.safe_dump(config)


def decode_parameters(parameters: Mapping[str, str], path: str) -> dict[str, bytes]:
    """What the loader rebuilds from the parameters under `path`: file -> bytes."""
    chunks: dict[str, list[tuple[str, str]]] = {}
    for name, value in parameters.items():
        rel = name.removeprefix(path + "/")
        file, part = rel.rsplit("/", 1)
        chunks.setdefault(file, []).append((part, value))
    return {f: gzip.decompress(base64.b64decode("".join(v for _, v in sorted(c)))) for f, c in chunks.items()}


@dataclass
class StandbyNode:
    root: Path
    moto: MotoServer
    user_data: str

    @classmethod
    def create(cls, root: Path, moto: MotoServer, user_data: str) -> StandbyNode:
        bash = shutil.which("bash")
        assert bash
        node = cls(root, moto, user_data)
        for d in ("bin", "state", "etc", "var", "run"):
            (root / d).mkdir(parents=True, exist_ok=True)
        for source in sorted(STUBS.iterdir()):
            stub = root / "bin" / source.name
            stub.write_text(
                f'#!{bash}\necho "{source.name} $*" >> "$STUB_LOG"\n' + source.read_text(), encoding="utf-8"
            )
            stub.chmod(0o755)
        files = user_data_files(user_data)
        node.loader.write_text(files[LOADER_PATH], encoding="utf-8")
        node.node_env.write_text(files[NODE_ENV_PATH], encoding="utf-8")
        return node

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def loader(self) -> Path:
        return self.root / "hfo-bootstrap"

    @property
    def node_env(self) -> Path:
        return self.root / "etc" / "node.env"

    @property
    def state_dir(self) -> Path:
        return self.root / "var" / "lib" / "hfo"

    @property
    def run_dir(self) -> Path:
        return self.root / "run" / "hfo"

    @property
    def k3s_config(self) -> Path:
        return self.root / "etc" / "rancher" / "k3s" / "config.yaml"

    @property
    def k3s_db(self) -> Path:
        return self.root / "var" / "lib" / "rancher" / "k3s" / "server" / "db"

    @property
    def manifests(self) -> Path:
        return self.root / "var" / "lib" / "rancher" / "k3s" / "server" / "manifests"

    def calls(self) -> list[str]:
        log = self.root / "calls.log"
        return log.read_text(encoding="utf-8").splitlines() if log.exists() else []

    def pulled(self) -> list[str]:
        path = self.state / "pulled"
        return path.read_text(encoding="utf-8").splitlines() if path.exists() else []

    def boot(self, extra_env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """One boot: the unit runs the loader, which runs the fetched bootstrap script."""
        (self.root / "calls.log").unlink(missing_ok=True)
        (self.state / "pulled").unlink(missing_ok=True)
        shutil.rmtree(self.run_dir, ignore_errors=True)  # /run is a tmpfs: empty at each boot
        env = {
            "PATH": os.pathsep.join([str(self.root / "bin"), str(awscli_bin()), "/usr/local/bin", "/usr/bin", "/bin"]),
            "HOME": str(self.root),
            "LANG": "C.UTF-8",
            "STATE": str(self.state),
            "STUB_LOG": str(self.root / "calls.log"),
            # the AWS CLI: the emulator, and nothing of the machine's own configuration
            **self.moto.env(),
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "AWS_PAGER": "",
            # the scripts' own overrides of where they write
            "HFO_NODE_ENV": str(self.node_env),
            "HFO_STATE_DIR": str(self.state_dir),
            "HFO_RUN_DIR": str(self.run_dir),
            "HFO_K3S_CONFIG": str(self.k3s_config),
            "HFO_K3S_DB": str(self.k3s_db),
            "HFO_K3S_MANIFESTS": str(self.manifests),
            "HFO_API_WAIT_S": "5",
            "HFO_PREPULL_WAIT_S": "0",
            **(extra_env or {}),
        }
        return subprocess.run(
            ["bash", str(self.loader)], env=env, capture_output=True, text=True, timeout=120, check=False
        )

    def started_cluster(self) -> None:
        """What K3s's first start leaves behind: its datastore (the network settings are then fixed)."""
        self.k3s_db.mkdir(parents=True, exist_ok=True)

    def synced_workloads(self, images: Iterable[str]) -> None:
        """Argo CD has synced namespace hfo: its workloads name these images."""
        (self.state / "live-images").write_text("".join(f"{i}\n" for i in images), encoding="utf-8")


def put_parameters(client: Any, parameters: Mapping[str, str]) -> None:
    """Store parameters as the module does: String, Standard tier."""
    for name, value in parameters.items():
        client.put_parameter(Name=name, Value=value, Type="String", Tier="Standard", Overwrite=True)
