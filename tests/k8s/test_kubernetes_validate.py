"""Built-in kinds pass ``kubernetes-validate --strict`` (the API's own OpenAPI schemas, unknown fields
refused) for the Kubernetes versions K3s ships; custom kinds, which it cannot check, must each have a
schema in k8s/schemas (tests/k8s/test_schemas.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
from kubernetes_validate.utils import SchemaNotFoundError
from testsupport.k8s import KUSTOMIZATIONS, SCHEMAS, all_docs, ident, rendered_text

pytestmark = pytest.mark.k8s

# K3s stable channel at the time of writing, and the newest version kubernetes-validate knows.
K8S_VERSIONS = ("1.33.0", kubernetes_validate.latest_version())


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_built_in_kinds_validate_strictly(version: str) -> None:
    validated, unknown = 0, set()
    for source, doc in all_docs():
        try:
            kubernetes_validate.validate(doc, version, strict=True)
            validated += 1
        except SchemaNotFoundError:
            unknown.add((doc["apiVersion"], doc["kind"]))
        except kubernetes_validate.ValidationError as err:
            path = ".".join(str(p) for p in err.path)
            pytest.fail(f"{source}: {ident(doc)} invalid for Kubernetes {version}: {path}: {err.message}")
    assert validated > 20
    assert unknown <= set(SCHEMAS), f"custom kinds without a schema in k8s/schemas: {unknown - set(SCHEMAS)}"


def test_strict_mode_refuses_an_unknown_field() -> None:
    doc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {"port": 80}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, K8S_VERSIONS[0], strict=True)


@pytest.mark.parametrize("name", ["laptop", "aws"])
def test_the_cli_accepts_each_overlay(name: str, tmp_path: Path) -> None:
    rendered = tmp_path / f"{name}.yaml"
    rendered.write_text(rendered_text(name))
    cli = Path(sys.executable).with_name("kubernetes-validate")
    proc = subprocess.run(
        [str(cli), "--strict", "-k", K8S_VERSIONS[0], "--quiet", str(rendered)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # custom resources are only warned about: exactly the SealedSecrets of this overlay
    warned = [line for line in proc.stdout.splitlines() if line.startswith("WARN")]
    assert all("SealedSecret" in line for line in warned), warned
    assert KUSTOMIZATIONS[name]
