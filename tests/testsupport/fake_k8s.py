"""A fake of the one thing the real test API server (kube-apiserver 1.20.2, testsupport/kube_apiserver.py)
cannot do: report ``status.terminatingReplicas`` on a Deployment.

Clusters from Kubernetes 1.33 on (K3s 1.33 included, the version users run) count the Pods of a Deployment
that are still shutting down in that field, and the agent's stop returns as soon as it is 0 instead of
waiting out its whole stop grace. 1.20 does not know the field, so only this fake can show that path.
Everything else the fake used to imitate (StatefulSets, the scale subresource, RBAC, 401/403/404, 409 on a
stale resourceVersion, Pods becoming ready) is tested against the real server now.

Surface, kept faithful to the API server: GET and merge-PATCH of one namespace's apps/v1 Deployments and
of their ``scale`` subresource (autoscaling/v1 Scale), bearer-token authentication (401), 404 NotFound
Status objects, ``metadata.resourceVersion`` in a patch as a precondition (409 when stale), a shared
resourceVersion bumped by every write and status change, omitted zero-valued status fields. A lazy
"controller": after a scale-up the Pods are ready ``ready_after_s`` later; after a scale-down they are
reported in ``terminatingReplicas`` (always present, even when 0, as a pointer field) for
``terminate_after_s``. Every request is logged (method, path), so tests can count calls.
"""

from __future__ import annotations

import copy
import http.server
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

_PATH = re.compile(
    r"^/apis/apps/v1/namespaces/(?P<ns>[a-z0-9-]+)/deployments/(?P<name>[a-z0-9.-]+)(?P<scale>/scale)?/?$"
)


@dataclass
class _Deployment:
    name: str
    replicas: int
    annotations: dict[str, str]
    uid: str = field(default_factory=lambda: str(uuid.uuid4()))
    generation: int = 1
    ready: int = 0
    present: int = 0  # pods not terminating
    terminating: int = 0
    ready_at: float | None = None
    gone_at: float | None = None


def _merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value)
    return result


def _status(code: int, reason: str, message: str) -> tuple[int, dict[str, Any]]:
    doc = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
           "reason": reason, "code": code}  # fmt: skip
    return code, doc


class FakeKubernetes:
    def __init__(
        self,
        namespace: str = "hfo",
        token: str = "fake-token-0123456789",  # noqa: S107 - the fake API server's own test token
        ready_after_s: float = 0.1,
        terminate_after_s: float = 0.2,
    ) -> None:
        self.namespace = namespace
        self.token = token
        self.ready_after_s = ready_after_s
        self.terminate_after_s = terminate_after_s
        self.objects: dict[str, _Deployment] = {}
        self.requests: list[tuple[str, str]] = []
        self.resource_version = 1000
        self.lock = threading.Lock()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    # -- test setup ----------------------------------------------------------------------------
    def add(self, name: str, replicas: int, annotations: dict[str, str] | None = None) -> None:
        """A Deployment whose pods already match ``replicas``."""
        with self.lock:
            obj = _Deployment(name, replicas, dict(annotations or {}))
            obj.ready = obj.present = replicas
            self.objects[name] = obj

    def calls(self, method: str | None = None, contains: str = "") -> int:
        with self.lock:
            return sum(1 for m, p in self.requests if (method is None or m == method) and contains in p)

    def obj(self, name: str) -> _Deployment:
        with self.lock:
            self._advance()
            return copy.deepcopy(self.objects[name])

    def kubeconfig(self) -> str:
        return json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
                "users": [{"name": "sa", "user": {"token": self.token}}],
                "contexts": [
                    {"name": "fake", "context": {"cluster": "fake", "user": "sa", "namespace": self.namespace}}
                ],
                "current-context": "fake",
            }
        )

    # -- the controller ------------------------------------------------------------------------
    def _bump(self) -> None:
        self.resource_version += 1

    def _set_replicas(self, obj: _Deployment, replicas: int) -> None:
        now = time.monotonic()
        if replicas != obj.replicas:
            obj.generation += 1
        if replicas > obj.present:
            obj.present = replicas
            obj.ready_at = now + self.ready_after_s
        elif replicas < obj.present:
            obj.terminating += obj.present - replicas
            obj.present = replicas
            obj.ready = min(obj.ready, replicas)
            obj.gone_at = now + self.terminate_after_s
        obj.replicas = replicas
        self._bump()

    def _advance(self) -> None:
        now = time.monotonic()
        for obj in self.objects.values():
            if obj.ready_at is not None and now >= obj.ready_at:
                obj.ready, obj.ready_at = obj.present, None
                self._bump()
            if obj.gone_at is not None and now >= obj.gone_at:
                obj.terminating, obj.gone_at = 0, None
                self._bump()

    # -- representations -----------------------------------------------------------------------
    def _metadata(self, obj: _Deployment) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "name": obj.name,
            "namespace": self.namespace,
            "uid": obj.uid,
            "resourceVersion": str(self.resource_version),
            "generation": obj.generation,
            "creationTimestamp": "2026-11-23T15:00:00Z",
            "labels": {"app": obj.name},
        }
        if obj.annotations:
            meta["annotations"] = dict(obj.annotations)
        return meta

    def _object_doc(self, obj: _Deployment) -> dict[str, Any]:
        fields = {"replicas": obj.present, "readyReplicas": obj.ready, "availableReplicas": obj.ready,
                  "updatedReplicas": obj.present}  # fmt: skip
        status: dict[str, Any] = {"observedGeneration": obj.generation, **{k: v for k, v in fields.items() if v}}
        status["terminatingReplicas"] = obj.terminating  # a pointer field: present even when 0 (1.33+)
        spec = {
            "replicas": obj.replicas,
            "selector": {"matchLabels": {"app": obj.name}},
            "template": {
                "metadata": {"labels": {"app": obj.name}},
                "spec": {"containers": [{"name": "bot", "image": "example/bot:1"}]},
            },
        }
        return {"kind": "Deployment", "apiVersion": "apps/v1", "metadata": self._metadata(obj), "spec": spec,
                "status": status}  # fmt: skip

    def _scale_doc(self, obj: _Deployment) -> dict[str, Any]:
        meta = {k: v for k, v in self._metadata(obj).items() if k not in ("labels", "annotations", "generation")}
        spec: dict[str, Any] = {"replicas": obj.replicas} if obj.replicas else {}  # omitempty
        return {"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": meta, "spec": spec,
                "status": {"replicas": obj.present, "selector": f"app={obj.name}"}}  # fmt: skip

    # -- request handling ----------------------------------------------------------------------
    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        with self.lock:
            path = path.split("?")[0]
            self.requests.append((method, path))
            self._advance()
            if headers.get("authorization") != f"Bearer {self.token}":
                return _status(401, "Unauthorized", "Unauthorized")
            match = _PATH.match(path)
            if match is None or match["ns"] != self.namespace:
                return _status(404, "NotFound", "the server could not find the requested resource")
            obj = self.objects.get(match["name"])
            if obj is None:
                return _status(404, "NotFound", f'deployments.apps "{match["name"]}" not found')
            is_scale = bool(match["scale"])
            if method == "GET":
                return 200, self._scale_doc(obj) if is_scale else self._object_doc(obj)
            if method != "PATCH" or headers.get("content-type", "").split(";")[0] != "application/merge-patch+json":
                return _status(405, "MethodNotAllowed", "this fake implements GET and merge-patch PATCH only")
            return self._patch(obj, is_scale, body)

    def _patch(self, obj: _Deployment, is_scale: bool, body: bytes) -> tuple[int, dict[str, Any]]:
        try:
            patch = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return _status(400, "BadRequest", "the body of the request was in an unknown format")
        precondition = (patch.get("metadata") or {}).get("resourceVersion")
        if precondition is not None and precondition != str(self.resource_version):
            return _status(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on deployments.apps "{obj.name}": the object has been modified; '
                "please apply your changes to the latest version and try again",
            )
        merged = _merge(self._scale_doc(obj) if is_scale else self._object_doc(obj), patch)
        replicas = (merged.get("spec") or {}).get("replicas", 0)
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            return _status(422, "Invalid", f"spec.replicas: Invalid value: {replicas!r}: must be >= 0")
        if not is_scale:
            annotations = (merged.get("metadata") or {}).get("annotations") or {}
            if annotations != obj.annotations:
                obj.annotations = dict(annotations)
                self._bump()
        if replicas != obj.replicas:
            self._set_replicas(obj, replicas)
        return 200, self._scale_doc(obj) if is_scale else self._object_doc(obj)

    def _handler_class(self) -> type[http.server.BaseHTTPRequestHandler]:
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, doc = fake.handle(self.command, self.path, headers, body)
                out = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = _serve
            do_PATCH = _serve
            do_PUT = _serve
            do_DELETE = _serve

        return Handler

    def start(self) -> FakeKubernetes:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@contextmanager
def fake_kubernetes(**kw: Any) -> Iterator[FakeKubernetes]:
    fake = FakeKubernetes(**kw).start()
    try:
        yield fake
    finally:
        fake.close()
