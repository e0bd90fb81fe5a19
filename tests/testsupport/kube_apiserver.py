"""A real Kubernetes control plane for the tests: etcd, kube-apiserver and kube-controller-manager on loopback.

The binaries: kube-apiserver and kube-controller-manager 1.20.2, built once by ``make kube-apiserver``
(tools/kube/build.py, cached outside the repository), etcd from Debian's ``etcd-server``, and the kubectl
on PATH (the one tests/k8s renders with). When they are missing the tests that need the server skip with
the reason the build recorded, and fail under CI=true.

What runs: etcd (its own data directory), kube-apiserver with token authentication (a static token file:
an admin in ``system:masters`` and the controller-manager) and ``--authorization-mode=RBAC``, signed
ServiceAccount tokens (TokenRequest), an audit log of every request, TLS from a throwaway CA; and
kube-controller-manager with every default controller but the node lifecycle one (no node heartbeats
here), so StatefulSets create and delete Pods, ServiceAccount token Secrets are filled in, quotas are
computed and namespaces are deleted. No kubelet and no scheduler run: :class:`KubeletStandIn` binds Pods to
a Node object, reports them Running and Ready through the status subresource and finishes their graceful
termination, as a kubelet would.

Processes: each runs in its own process group, with a parent-death signal (``setpriv --pdeathsig``) so
that even a killed test run leaves nothing behind; :meth:`ControlPlane.stop` ends each group with SIGTERM
then SIGKILL, with bounded waits, and runs at the end of the session, on failure and on Ctrl-C alike
(also from ``atexit``). Every wait here is bounded.

Helpers for tests that build on it: :meth:`ControlPlane.create_namespace`, :meth:`ControlPlane.apply` (the
real ``kubectl apply``, server-side by default), :meth:`ControlPlane.service_account_token` and
:meth:`ControlPlane.kubeconfig` (a ServiceAccount's own identity), :meth:`ControlPlane.mark_pod_ready`,
:meth:`ControlPlane.kubelet`, :meth:`ControlPlane.audit_events`, :func:`in_namespace` (what
``kustomize edit set namespace`` does to rendered objects) and :func:`install_crds` (the custom resource
definitions made from k8s/schemas).
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import importlib.util
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from testsupport.tools import REPO_ROOT, in_ci

BUILD_SCRIPT = REPO_ROOT / "tools" / "kube" / "build.py"
SERVER_VERSION = "v1.20.2"
NODE_NAME = "hfo-kubelet-stand-in"
ADMIN_USER = "hfo-test-admin"
FIELD_MANAGER = "hfo-tests"
Doc = dict[str, Any]


# -- locating the binaries ------------------------------------------------------------------------
def load_build_module() -> ModuleType:
    """tools/kube/build.py, which knows where the binaries of the current inputs are."""
    name = "hfo_kube_build"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BUILD_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class KubeBinaries:
    apiserver: Path
    controller_manager: Path
    etcd: Path
    kubectl: Path
    build_info: Mapping[str, Any]


def unavailable(message: str) -> None:
    """Skip loudly, or fail under CI=true: CI must never go green by skipping the real server."""
    if in_ci():
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(f"SKIPPED LOUDLY: {message}")


def kube_binaries() -> KubeBinaries:
    build = load_build_module()
    built = build.find_built()
    if built is None:
        why = build.last_failure() or "not built yet"
        unavailable(f"kube-apiserver {SERVER_VERSION} is not available ({why}); run `make kube-apiserver`")
    etcd = shutil.which("etcd")
    if etcd is None:
        unavailable("etcd is not on PATH; run `make kube-apiserver` (it installs Debian's etcd-server as root)")
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        unavailable("kubectl is not on PATH (install kubectl; tests/k8s need it too)")
    return KubeBinaries(
        apiserver=built.binary("kube-apiserver"),
        controller_manager=built.binary("kube-controller-manager"),
        etcd=Path(etcd),  # type: ignore[arg-type]
        kubectl=Path(kubectl),  # type: ignore[arg-type]
        build_info=built.info,
    )


# -- processes ----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"{what} not reached within {timeout:.0f} s")


_SETPRIV = shutil.which("setpriv")


class Child:
    """One server process in its own process group, killed with its parent if the test run dies."""

    def __init__(self, name: str, args: list[str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._log = log_path.open("ab")
        prefix = [_SETPRIV, "--pdeathsig", "KILL", "--"] if _SETPRIV else []
        self.proc = subprocess.Popen(
            [*prefix, *args],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() ends it and anything it started
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, term_timeout: float = 10.0) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=term_timeout)
        # The leader may be gone while something it started is not: end the whole group either way.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        self._log.close()


_RUNNING: list[ControlPlane] = []


@atexit.register
def _stop_leftovers() -> None:
    for plane in list(_RUNNING):
        plane.stop()


# -- the control plane --------------------------------------------------------------------------
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [{"level": "Metadata"}],
}


@dataclass
class ControlPlane:
    binaries: KubeBinaries
    workdir: Path
    children: list[Child] = field(default_factory=list)
    url: str = ""
    admin_token: str = ""
    ca_file: Path = field(init=False)
    admin_kubeconfig: Path = field(init=False)
    audit_log: Path = field(init=False)
    timings: dict[str, float] = field(default_factory=dict)
    _api: Any = None
    _crds_installed: bool = False

    def __post_init__(self) -> None:
        self.ca_file = self.workdir / "ca.pem"
        self.admin_kubeconfig = self.workdir / "admin.kubeconfig"
        self.audit_log = self.workdir / "audit.log"

    # -- start and stop ---------------------------------------------------------------------------
    def start(self, timeout: float = 120.0) -> ControlPlane:
        started = time.monotonic()
        _RUNNING.append(self)
        try:
            self._write_credentials()
            self._start_etcd(timeout)
            self.timings["etcd"] = round(time.monotonic() - started, 2)
            self._start_apiserver(timeout)
            self.timings["apiserver_ready"] = round(time.monotonic() - started, 2)
            self._start_controller_manager(timeout)
            self.timings["controller_manager_ready"] = round(time.monotonic() - started, 2)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()
        self.children.clear()
        if self._api is not None:
            self._api.close()
            self._api = None
        if self in _RUNNING:
            _RUNNING.remove(self)

    def pids(self) -> list[int]:
        return [c.pid for c in self.children]

    def _write_credentials(self) -> None:
        import secrets

        import trustme
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.workdir.mkdir(parents=True, exist_ok=True)
        ca = trustme.CA()
        ca.cert_pem.write_to_path(str(self.ca_file))
        serving = ca.issue_cert("127.0.0.1", "localhost", "kubernetes", "kubernetes.default.svc")
        serving.private_key_and_cert_chain_pem.write_to_path(str(self.workdir / "serving.pem"))
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (self.workdir / "sa.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
            )
        )
        (self.workdir / "sa.pub").write_bytes(
            key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
        self.admin_token = secrets.token_hex(24)
        self._cm_token = secrets.token_hex(24)
        tokens = self.workdir / "tokens.csv"
        tokens.write_text(
            f'{self.admin_token},{ADMIN_USER},uid-admin,"system:masters"\n'
            f'{self._cm_token},system:kube-controller-manager,uid-kcm,"system:masters"\n'
        )
        tokens.chmod(0o600)
        (self.workdir / "audit-policy.yaml").write_text(yaml.safe_dump(AUDIT_POLICY))

    def _start_etcd(self, timeout: float) -> None:
        for _attempt in range(3):
            client, peer = free_port(), free_port()
            data = self.workdir / f"etcd-{client}"
            child = Child(
                "etcd",
                [
                    str(self.binaries.etcd),
                    "--name=hfo-test",
                    f"--data-dir={data}",
                    f"--listen-client-urls=http://127.0.0.1:{client}",
                    f"--advertise-client-urls=http://127.0.0.1:{client}",
                    f"--listen-peer-urls=http://127.0.0.1:{peer}",
                    f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                    f"--initial-cluster=hfo-test=http://127.0.0.1:{peer}",
                    "--initial-cluster-state=new",
                    "--log-level=warn",
                    "--logger=zap",
                ],
                self.workdir / "etcd.log",
            )
            self.children.append(child)

            def healthy(port: int = client) -> bool:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
                        return json.loads(answer.read()).get("health") == "true"
                except (OSError, ValueError):
                    return False

            if self._wait_child(child, healthy, timeout, "etcd /health"):
                self.etcd_url = f"http://127.0.0.1:{client}"
                return
        raise RuntimeError("etcd could not bind free loopback ports three times in a row")

    def _start_apiserver(self, timeout: float) -> None:
        for _attempt in range(3):
            port = free_port()
            child = Child(
                "kube-apiserver",
                [
                    str(self.binaries.apiserver),
                    f"--etcd-servers={self.etcd_url}",
                    "--bind-address=127.0.0.1",
                    "--advertise-address=127.0.0.1",
                    f"--secure-port={port}",
                    "--insecure-port=0",
                    f"--tls-cert-file={self.workdir / 'serving.pem'}",
                    f"--tls-private-key-file={self.workdir / 'serving.pem'}",
                    f"--cert-dir={self.workdir / 'certs'}",
                    f"--token-auth-file={self.workdir / 'tokens.csv'}",
                    "--authorization-mode=RBAC",
                    "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                    f"--service-account-key-file={self.workdir / 'sa.pub'}",
                    f"--service-account-signing-key-file={self.workdir / 'sa.key'}",
                    "--service-cluster-ip-range=10.96.0.0/24",  # Service IPs are only allocated, never reached
                    f"--audit-policy-file={self.workdir / 'audit-policy.yaml'}",
                    f"--audit-log-path={self.audit_log}",
                    "--audit-log-maxbackup=1",
                    "--profiling=false",
                    "--v=0",
                ],
                self.workdir / "kube-apiserver.log",
            )
            self.children.append(child)
            self.url = f"https://127.0.0.1:{port}"
            if self._wait_child(child, self._readyz, timeout, "kube-apiserver /readyz"):
                self._write_admin_kubeconfig()
                return
        raise RuntimeError("kube-apiserver could not bind a free loopback port three times in a row")

    def _readyz(self) -> bool:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        url = f"{self.url}/readyz"
        assert url.startswith("https://127.0.0.1:")
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.admin_token}"})  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=2, context=context) as answer:  # noqa: S310
                return answer.status == 200
        except (OSError, urllib.error.HTTPError):
            return False

    def _start_controller_manager(self, timeout: float) -> None:
        kubeconfig = self.kubeconfig(self._cm_token, "kube-system", self.workdir / "controller-manager.kubeconfig")
        child = Child(
            "kube-controller-manager",
            [
                str(self.binaries.controller_manager),
                f"--kubeconfig={kubeconfig}",
                "--leader-elect=false",
                "--port=0",  # no insecure port
                "--secure-port=0",  # and no serving at all: nothing here scrapes it
                "--controllers=*,-nodelifecycle",  # no kubelet heartbeats: it would evict every Pod
                f"--service-account-private-key-file={self.workdir / 'sa.key'}",
                f"--root-ca-file={self.ca_file}",
                "--v=0",
            ],
            self.workdir / "kube-controller-manager.log",
        )
        self.children.append(child)

        def serving() -> bool:  # the ServiceAccount controller has run: the controllers are up
            try:
                self.core().read_namespaced_service_account("default", "default")
                return True
            except Exception:
                return False

        if not self._wait_child(child, serving, timeout, "kube-controller-manager"):
            raise RuntimeError(f"kube-controller-manager exited:\n{child.log_tail()}")

    def _wait_child(self, child: Child, ready: Callable[[], bool], timeout: float, what: str) -> bool:
        """True once ready; False if it died of a port already taken (the caller retries); raises otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return True
            if not child.alive():
                tail = child.log_tail()
                self.children.remove(child)
                child.stop()
                if "address already in use" in tail:
                    return False
                raise RuntimeError(f"{child.name} exited before {what} answered:\n{tail}")
            time.sleep(0.1)
        raise TimeoutError(f"{what} did not answer within {timeout:.0f} s:\n{child.log_tail()}")

    # -- clients -------------------------------------------------------------------------------
    def kubeconfig(self, token: str, namespace: str, path: Path) -> Path:
        """A kubeconfig for one bearer token (e.g. a ServiceAccount's, from :meth:`service_account_token`)."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "hfo-test", "cluster": {"server": self.url, "certificate-authority": str(self.ca_file)}}
            ],
            "users": [{"name": "user", "user": {"token": token}}],
            "contexts": [
                {"name": "hfo-test", "context": {"cluster": "hfo-test", "user": "user", "namespace": namespace}}
            ],
            "current-context": "hfo-test",
        }
        path.write_text(json.dumps(config, indent=1))
        path.chmod(0o600)
        return path

    def _write_admin_kubeconfig(self) -> None:
        self.kubeconfig(self.admin_token, "default", self.admin_kubeconfig)

    def api_client(self, token: str | None = None) -> Any:
        from kubernetes import client

        configuration = client.Configuration()
        configuration.host = self.url
        configuration.ssl_ca_cert = str(self.ca_file)
        configuration.api_key = {"authorization": f"Bearer {token or self.admin_token}"}  # as load_kube_config sets it
        configuration.retries = 0
        return client.ApiClient(configuration)

    def admin(self) -> Any:
        if self._api is None:
            self._api = self.api_client()
        return self._api

    def core(self) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self.admin())

    def apps(self) -> Any:
        from kubernetes import client

        return client.AppsV1Api(self.admin())

    def kubectl(
        self, *args: str, kubeconfig: Path | None = None, stdin: str | None = None, check: bool = True, timeout=120
    ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECONFIG": str(kubeconfig or self.admin_kubeconfig)}
        proc = subprocess.run(
            [str(self.binaries.kubectl), f"--cache-dir={self.workdir / 'kubectl-cache'}", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}")
        return proc

    # -- helpers for tests ---------------------------------------------------------------------
    def create_namespace(self, name: str, labels: Mapping[str, str] | None = None) -> str:
        from kubernetes import client

        self.core().create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=dict(labels or {})))
        )
        # The ServiceAccount admission plugin refuses Pods until the namespace's default account exists.
        wait_for(lambda: self._has_default_account(name), 30, f"ServiceAccount default in {name}")
        return name

    def _has_default_account(self, namespace: str) -> bool:
        try:
            self.core().read_namespaced_service_account("default", namespace)
            return True
        except Exception:
            return False

    def apply(
        self,
        docs: str | Iterable[Doc],
        *,
        server_side: bool = True,
        dry_run: bool = False,
        field_manager: str = FIELD_MANAGER,
        check: bool = True,
        kubeconfig: Path | None = None,
        extra: Iterable[str] = (),
    ) -> subprocess.CompletedProcess[str]:
        """``kubectl apply -f -`` (server-side by default; ``dry_run`` for --dry-run=server)."""
        text = docs if isinstance(docs, str) else yaml.safe_dump_all(list(docs), sort_keys=False)
        args = ["apply", "-f", "-", f"--field-manager={field_manager}", *extra]
        if server_side:
            args.append("--server-side")
        if dry_run:
            args.append("--dry-run=server")
        return self.kubectl(*args, stdin=text, check=check, kubeconfig=kubeconfig)

    def service_account_token(self, namespace: str, name: str, expiration_s: int = 3600) -> str:
        """A bound token of the ServiceAccount (TokenRequest), as the projected volume gives a Pod."""
        from kubernetes import client

        request = client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=expiration_s)
        )
        answer = self.core().create_namespaced_service_account_token(name, namespace, request)
        return str(answer.status.token)

    def service_account_kubeconfig(self, namespace: str, name: str, path: Path) -> Path:
        return self.kubeconfig(self.service_account_token(namespace, name), namespace, path)

    def ensure_node(self) -> str:
        """The Node object Pods are bound to (a kubelet registers one; none runs here)."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        try:
            self.core().create_node(client.V1Node(metadata=client.V1ObjectMeta(name=NODE_NAME)))
        except ApiException as exc:
            if exc.status != 409:
                raise
        return NODE_NAME

    def bind_pod(self, namespace: str, name: str) -> None:
        """What the scheduler does: bind the Pod to the node. Its deletion is then graceful."""
        from kubernetes import client

        body = client.V1Binding(
            metadata=client.V1ObjectMeta(name=name),
            target=client.V1ObjectReference(kind="Node", name=self.ensure_node()),
        )
        # The client cannot read the answer (a Status, not a Binding): take it raw.
        self.core().create_namespaced_pod_binding(name, namespace, body, _preload_content=False)

    def mark_pod_ready(self, namespace: str, name: str, ready: bool = True) -> None:
        """What the kubelet reports once the containers run and pass readiness: through pods/status."""
        pod = self.core().read_namespaced_pod(name, namespace)
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        flag = "True" if ready else "False"
        conditions = [
            {"type": "Initialized", "status": "True", "lastTransitionTime": now},
            {"type": "Ready", "status": flag, "lastTransitionTime": now},
            {"type": "ContainersReady", "status": flag, "lastTransitionTime": now},
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
        ]
        statuses = [
            {
                "name": c.name,
                "image": c.image,
                "imageID": f"stand-in://{c.image}",
                "ready": ready,
                "restartCount": 0,
                "started": True,
                "state": {"running": {"startedAt": now}},
            }
            for c in pod.spec.containers
        ]
        body = {
            "status": {
                "phase": "Running",
                "conditions": conditions,
                "containerStatuses": statuses,
                "hostIP": "127.0.0.1",
                "podIP": "127.0.0.1",
                "startTime": now,
            }
        }
        self.core().patch_namespaced_pod_status(name, namespace, body, _content_type="application/merge-patch+json")

    def finish_termination(self, namespace: str, name: str) -> None:
        """What the kubelet does once the containers have stopped: delete with grace 0."""
        from kubernetes.client.exceptions import ApiException

        try:
            self.core().delete_namespaced_pod(name, namespace, grace_period_seconds=0)
        except ApiException as exc:
            if exc.status != 404:
                raise

    @contextlib.contextmanager
    def kubelet(
        self, namespace: str, ready_after_s: float = 0.0, terminate_after_s: float = 0.0
    ) -> Iterator[KubeletStandIn]:
        stand_in = KubeletStandIn(self, namespace, ready_after_s, terminate_after_s)
        stand_in.start()
        try:
            yield stand_in
        finally:
            stand_in.stop()

    def ensure_crds(self) -> None:
        if not self._crds_installed:
            install_crds(self)
            self._crds_installed = True

    def audit_events(self, namespace: str | None = None, user: str | None = None) -> list[Doc]:
        """Every request the API server answered so far (audit level Metadata), optionally only those
        on one namespace and/or by one user (e.g. ``system:serviceaccount:<ns>:hfo-site``)."""
        if not self.audit_log.exists():
            return []
        events = [json.loads(line) for line in self.audit_log.read_text().splitlines() if line.strip()]
        return [
            e
            for e in events
            if (namespace is None or e.get("objectRef", {}).get("namespace") == namespace)
            and (user is None or e.get("user", {}).get("username") == user)
        ]

    def requests_by(self, namespace: str, user: str) -> list[tuple[str, str, str, int]]:
        """(verb, resource[/subresource], name, status code) of each request a user made in a namespace."""
        out = []
        for event in self.audit_events(namespace, user):
            ref = event.get("objectRef", {})
            resource = ref.get("resource", "") + (f"/{ref['subresource']}" if ref.get("subresource") else "")
            out.append((event["verb"], resource, ref.get("name", ""), event.get("responseStatus", {}).get("code", 0)))
        return out


class KubeletStandIn:
    """A kubelet's effect on the API, for one namespace: bind new Pods to the node, report them Running
    and Ready ``ready_after_s`` later, and finish a graceful deletion ``terminate_after_s`` after it began.
    ``hold_ready`` keeps Pods not ready (a bot that cannot reach Discord)."""

    def __init__(self, plane: ControlPlane, namespace: str, ready_after_s: float, terminate_after_s: float) -> None:
        self.plane = plane
        self.namespace = namespace
        self.ready_after_s = ready_after_s
        self.terminate_after_s = terminate_after_s
        self.hold_ready = False
        self.errors: list[str] = []
        self._seen: dict[str, float] = {}
        self._deleting: dict[str, float] = {}
        self._stop = threading.Event()
        self._api = plane.api_client()
        self._thread = threading.Thread(target=self._run, name=f"kubelet-{namespace}", daemon=True)

    def start(self) -> None:
        self.plane.ensure_node()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._api.close()
        if self.errors:
            raise AssertionError(f"the kubelet stand-in failed: {self.errors[:3]}")

    def _run(self) -> None:
        from kubernetes import client

        core = client.CoreV1Api(self._api)
        while not self._stop.wait(0.1):
            try:
                self._step(core)
            except Exception as exc:  # a Pod deleted between list and act: try again next round
                if "NotFound" not in str(exc) and "Conflict" not in str(exc):
                    self.errors.append(f"{type(exc).__name__}: {str(exc)[:300]}")

    def _step(self, core: Any) -> None:
        now = time.monotonic()
        for pod in core.list_namespaced_pod(self.namespace).items:
            name = pod.metadata.name
            if pod.metadata.deletion_timestamp is not None:
                began = self._deleting.setdefault(name, now)
                if now - began >= self.terminate_after_s:
                    self.plane.finish_termination(self.namespace, name)
                continue
            if not pod.spec.node_name:
                self.plane.bind_pod(self.namespace, name)
                self._seen[name] = now
                continue
            seen = self._seen.setdefault(name, now)
            ready = any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))
            if not ready and not self.hold_ready and now - seen >= self.ready_after_s:
                self.plane.mark_pod_ready(self.namespace, name)


def start_control_plane(workdir: Path, timeout: float = 120.0) -> ControlPlane:
    return ControlPlane(kube_binaries(), workdir).start(timeout)


# -- manifests --------------------------------------------------------------------------------
def in_namespace(docs: Iterable[Doc], namespace: str) -> list[Doc]:
    """Rendered objects moved to another namespace, as ``kustomize edit set namespace`` would do:
    metadata.namespace of namespaced objects and the ServiceAccount subjects of RoleBindings. The
    Namespace objects themselves are left out (create the namespace with :meth:`create_namespace`)."""
    moved: list[Doc] = []
    for doc in docs:
        if doc.get("kind") == "Namespace":
            continue
        doc = copy.deepcopy(doc)
        if "namespace" in doc.get("metadata", {}):
            doc["metadata"]["namespace"] = namespace
        if doc.get("kind") in ("RoleBinding", "ClusterRoleBinding"):
            for subject in doc.get("subjects", []):
                if subject.get("kind") == "ServiceAccount":
                    subject["namespace"] = namespace
        moved.append(doc)
    return moved


# -- custom resource definitions from k8s/schemas ----------------------------------------------------
# The plural of each custom kind the manifests use (all namespaced); the schema files are testsupport.k8s.SCHEMAS.
CRD_PLURALS: dict[tuple[str, str], str] = {
    ("argoproj.io/v1alpha1", "Application"): "applications",
    ("argoproj.io/v1alpha1", "AppProject"): "appprojects",
    ("bitnami.com/v1alpha1", "SealedSecret"): "sealedsecrets",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitors",
    ("helm.cattle.io/v1", "HelmChart"): "helmcharts",
}
# JSON Schema keywords a CRD's structural schema cannot hold; the offline validation keeps checking them.
NOT_STRUCTURAL = ("$schema", "$comment", "$id", "propertyNames", "uniqueItems", "dependentRequired")


def _only_required(node: Any) -> bool:
    """anyOf/oneOf/allOf/not whose branches only list required fields: allowed in a structural schema."""
    if isinstance(node, list):
        return all(_only_required(n) for n in node)
    return isinstance(node, dict) and set(node) <= {"required"}


def structural(node: Any) -> Any:
    """The part of a JSON Schema that a CRD can enforce (apiextensions.k8s.io/v1 structural schema)."""
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in NOT_STRUCTURAL:
            continue
        if key == "const":
            out["enum"] = [value]
        elif key == "properties":
            out[key] = {name: structural(sub) for name, sub in value.items()}
        elif key == "items":
            out[key] = structural(value)
        elif key == "additionalProperties":
            # false, or beside properties: a CRD cannot say it (unknown fields are pruned instead)
            if isinstance(value, dict) and "properties" not in node:
                out[key] = structural(value)
        elif key in ("anyOf", "oneOf", "allOf", "not"):
            if _only_required(value):
                out[key] = value
        else:
            out[key] = value
    kind = out.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        if sorted(kinds) == ["integer", "string"]:
            del out["type"]
            out["x-kubernetes-int-or-string"] = True
        elif len(kinds) == 1:
            out["type"] = kinds[0]
        else:
            del out["type"]
        if "null" in kind:
            out["nullable"] = True
    if out.get("type") == "array" and "items" not in out:
        out["items"] = {"x-kubernetes-preserve-unknown-fields": True}  # a CRD array must say what it holds
    untyped = "type" not in out and not out.get("x-kubernetes-int-or-string")
    open_object = out.get("type") == "object" and "properties" not in out and "additionalProperties" not in out
    if untyped or open_object:
        out["x-kubernetes-preserve-unknown-fields"] = True
    return out


def crd_for(api_version: str, kind: str, schema: Doc) -> Doc:
    group, version = api_version.split("/")
    plural = CRD_PLURALS[(api_version, kind)]
    root = structural(schema)
    root.pop("title", None)
    props = root.setdefault("properties", {})
    # At the root a CRD may only say that these exist; the API server fills and checks them itself.
    props["apiVersion"] = {"type": "string"}
    props["kind"] = {"type": "string"}
    props["metadata"] = {"type": "object"}
    root["required"] = [r for r in root.get("required", []) if r not in ("apiVersion", "kind", "metadata")]
    if not root["required"]:
        del root["required"]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List"},
            "versions": [{"name": version, "served": True, "storage": True, "schema": {"openAPIV3Schema": root}}],
        },
    }


def crds_from_schemas() -> list[Doc]:
    from testsupport.k8s import SCHEMA_DIR, SCHEMAS

    return [
        crd_for(api_version, kind, json.loads((SCHEMA_DIR / SCHEMAS[(api_version, kind)]).read_text()))
        for (api_version, kind) in sorted(SCHEMAS)
    ]


def install_crds(plane: ControlPlane, timeout: float = 60.0) -> list[str]:
    """Create the CRDs of every custom kind the manifests use and wait until each is served."""
    crds = crds_from_schemas()
    plane.apply(crds)
    names = [c["metadata"]["name"] for c in crds]
    for name in names:
        plane.kubectl("wait", "--for=condition=Established", f"crd/{name}", f"--timeout={int(timeout)}s")
    return names


# -- what 1.20 cannot take -------------------------------------------------------------------------
@dataclass(frozen=True)
class NewerField:
    """A field of the manifests that Kubernetes 1.20 does not know: it is taken out before the manifests
    go to this server, and stays covered by the offline validation (kubernetes-validate for 1.33)."""

    kind: str
    path: tuple[str, ...]
    since: str
    why: str


NEWER_THAN_SERVER: tuple[NewerField, ...] = (
    NewerField(
        "StatefulSet",
        ("spec", "persistentVolumeClaimRetentionPolicy"),
        "1.23",
        "keeps the bot's state volumes when it is scaled to 0 or deleted (alpha in 1.23, GA in 1.32); "
        "1.20 keeps them anyway, which is what Retain asks for",
    ),
)


def for_server(docs: Iterable[Doc]) -> list[Doc]:
    """The rendered objects without the fields listed in NEWER_THAN_SERVER."""
    out: list[Doc] = []
    for doc in docs:
        doc = copy.deepcopy(doc)
        for newer in NEWER_THAN_SERVER:
            if doc.get("kind") != newer.kind:
                continue
            node: Any = doc
            for key in newer.path[:-1]:
                node = node.get(key, {}) if isinstance(node, dict) else {}
            if isinstance(node, dict):
                node.pop(newer.path[-1], None)
        out.append(doc)
    return out


def apply_site(plane: ControlPlane, namespace: str, overlay: str = "laptop", **labels: str) -> list[Doc]:
    """One site as Argo CD would sync it (the rendered overlay, server-side apply), in its own namespace."""
    from testsupport.k8s import render

    plane.ensure_crds()
    plane.create_namespace(namespace, labels or None)
    docs = for_server(in_namespace(render(overlay), namespace))
    plane.apply(docs)
    return docs
