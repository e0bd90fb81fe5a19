"""The one path of the kubernetes backend the real test server (1.20) cannot show: a cluster that reports
``status.terminatingReplicas`` (Deployments, Kubernetes 1.33 and later, K3s included). There the stop
returns as soon as no Pod is left shutting down, instead of waiting out the whole stop grace. Against the
fake of testsupport/fake_k8s.py, which says why it is the only fake left."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hfo_site.backends.kubernetes import KubernetesBackend
from hfo_site.config import DESIRED_REPLICAS_ANNOTATION, WorkloadRef
from hfo_site.k8s import WorkloadApi, make_api_client
from testsupport.fake_k8s import FakeKubernetes, fake_kubernetes

pytestmark = pytest.mark.network

BOT = WorkloadRef("deployment", "bot")
GRACE = 10.0


@pytest.fixture
def k8s(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKubernetes]:
    with fake_kubernetes(ready_after_s=0.1, terminate_after_s=0.4) as fake:
        path = tmp_path / "kubeconfig"
        path.write_text(fake.kubeconfig())
        monkeypatch.setenv("KUBECONFIG", str(path))
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        yield fake


def test_stop_returns_once_no_pod_is_terminating_not_after_the_grace(k8s: FakeKubernetes) -> None:
    k8s.add("bot", 3)

    async def main() -> None:
        backend = KubernetesBackend(WorkloadApi(make_api_client(), k8s.namespace), (BOT,), grace_s=GRACE, poll_s=0.05)
        assert (await backend.observe()).state == "running"
        stopping = asyncio.create_task(backend.stop())
        await asyncio.sleep(0.15)
        observed = await backend.observe()
        assert observed.state == "stopping" and "3 pods still present" in observed.detail, observed
        started = time.monotonic()
        await stopping
        assert time.monotonic() - started < GRACE / 2  # not the grace: the cluster said they were gone
        assert (await backend.observe()).state == "stopped"

    asyncio.run(main())
    obj = k8s.obj("bot")
    assert (obj.replicas, obj.terminating) == (0, 0)
    assert obj.annotations[DESIRED_REPLICAS_ANNOTATION] == "3"
    assert k8s.calls("PATCH", "/deployments/bot/scale") == 1
