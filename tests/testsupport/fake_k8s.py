"""A small, faithful fake of the Kubernetes API surface the site uses, served over real HTTP.

Surface: GET and PATCH of apps/v1 Deployments and StatefulSets and of their ``scale``
subresource (autoscaling/v1 Scale), in one namespace. Behaviour kept faithful to the API server:

- bearer-token authentication (401), RBAC by verb, resource and resourceName (403 with the
  API's wording), 404 NotFound Status objects;
- PATCH content types: merge-patch and strategic-merge-patch apply RFC 7386 merge semantics;
  json-patch with an object body is a 400; other media types 415;
- a patch that carries ``metadata.resourceVersion`` is a precondition: 409 Conflict when stale;
- every write, and every status change made by the "controller", bumps the shared
  resourceVersion; spec changes bump ``metadata.generation``;
- omitted zero-valued status fields (the API's ``omitempty``);
- a lazy controller: after a scale-up, pods become ready ``ready_after_s`` later; after a
  scale-down, a Deployment reports them in ``terminatingReplicas`` and a StatefulSet keeps
  counting them in ``replicas`` for ``terminate_after_s``.

Every request is logged (method, path), so tests can count calls.
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

KINDS = {"deployments": "Deployment", "statefulsets": "StatefulSet"}
_PATH = re.compile(
    r"^/apis/apps/v1/namespaces/(?P<ns>[a-z0-9-]+)/(?P<plural>deployments|statefulsets)/(?P<name>[a-z0-9.-]+)"
    r"(?P<scale>/scale)?/?$"
)


@dataclass
class _Obj:
    plural: str
    name: str
    namespace: str
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


def _status_obj(code: int, reason: str, message: str, name: str | None = None, plural: str | None = None):
    doc: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if name is not None:
        doc["details"] = {"name": name, "group": "apps", "kind": plural}
    return code, doc


class FakeKubernetes:
    def __init__(
        self,
        namespace: str = "hfo",
        token: str = "fake-token-0123456789",  # noqa: S107 - the fake API server's own test token
        ready_after_s: float = 0.1,
        terminate_after_s: float = 0.2,
        service_account: str = "system:serviceaccount:hfo:hfo-site",
    ) -> None:
        self.namespace = namespace
        self.token = token
        self.ready_after_s = ready_after_s
        self.terminate_after_s = terminate_after_s
        self.service_account = service_account
        self.objects: dict[tuple[str, str], _Obj] = {}
        self.rules: set[tuple[str, str, str]] = set()  # (verb, resource, name) allowed
        self.requests: list[tuple[str, str]] = []
        self.resource_version = 1000
        self.conflicts_to_inject = 0
        self.lock = threading.Lock()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    # -- test setup ----------------------------------------------------------------------------
    def add(
        self, plural: str, name: str, replicas: int, annotations: dict[str, str] | None = None, grant: bool = True
    ) -> None:
        """An object whose pods already match ``replicas``; ``grant`` writes the Role rules for it."""
        with self.lock:
            obj = _Obj(plural, name, self.namespace, replicas, dict(annotations or {}))
            obj.ready = obj.present = replicas
            self.objects[(plural, name)] = obj
            if grant:
                for verb in ("get", "patch"):
                    self.rules.add((verb, plural, name))
                    self.rules.add((verb, f"{plural}/scale", name))

    def revoke(self, verb: str, resource: str, name: str) -> None:
        with self.lock:
            self.rules.discard((verb, resource, name))

    def inject_conflicts(self, count: int) -> None:
        """The next ``count`` writes find the object changed by someone else (409)."""
        with self.lock:
            self.conflicts_to_inject = count

    def calls(self, method: str | None = None, contains: str = "") -> int:
        with self.lock:
            return sum(1 for m, p in self.requests if (method is None or m == method) and contains in p)

    def obj(self, plural: str, name: str) -> _Obj:
        with self.lock:
            self._advance()
            return copy.deepcopy(self.objects[(plural, name)])

    def set_replicas_behind_our_back(self, plural: str, name: str, replicas: int) -> None:
        """Another writer (Argo CD, a human) changes the size."""
        with self.lock:
            self._set_replicas(self.objects[(plural, name)], replicas)

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
    def _bump(self) -> str:
        self.resource_version += 1
        return str(self.resource_version)

    def _set_replicas(self, obj: _Obj, replicas: int) -> None:
        now = time.monotonic()
        if replicas != obj.replicas:
            obj.generation += 1
        if replicas > obj.present:
            obj.present = replicas
            obj.ready_at = now + self.ready_after_s
        elif replicas < obj.present:
            gone = obj.present - replicas
            obj.present = replicas
            obj.ready = min(obj.ready, replicas)
            obj.terminating += gone
            obj.gone_at = now + self.terminate_after_s
        obj.replicas = replicas
        self._bump()

    def _advance(self) -> None:
        now = time.monotonic()
        for obj in self.objects.values():
            if obj.ready_at is not None and now >= obj.ready_at:
                obj.ready = obj.present
                obj.ready_at = None
                self._bump()
            if obj.gone_at is not None and now >= obj.gone_at:
                obj.terminating = 0
                obj.gone_at = None
                self._bump()

    # -- representations -----------------------------------------------------------------------
    def _metadata(self, obj: _Obj) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "name": obj.name,
            "namespace": obj.namespace,
            "uid": obj.uid,
            "resourceVersion": str(self.resource_version),
            "generation": obj.generation,
            "creationTimestamp": "2026-11-23T15:00:00Z",
            "labels": {"app": obj.name},
        }
        if obj.annotations:
            meta["annotations"] = dict(obj.annotations)
        return meta

    def _object_doc(self, obj: _Obj) -> dict[str, Any]:
        status: dict[str, Any] = {"observedGeneration": obj.generation}
        counted = obj.present + (obj.terminating if obj.plural == "statefulsets" else 0)
        fields = {"replicas": counted, "readyReplicas": obj.ready, "availableReplicas": obj.ready}
        if obj.plural == "deployments":
            fields["updatedReplicas"] = obj.present
        else:
            fields["currentReplicas"] = counted
        status.update({k: v for k, v in fields.items() if v})  # omitempty
        if obj.plural == "statefulsets":
            status["replicas"] = counted  # not omitempty in StatefulSetStatus
        if obj.plural == "deployments":
            # a pointer field: present (even when 0) on clusters that report terminating pods
            status["terminatingReplicas"] = obj.terminating
        spec: dict[str, Any] = {
            "replicas": obj.replicas,
            "selector": {"matchLabels": {"app": obj.name}},
            "template": {
                "metadata": {"labels": {"app": obj.name}},
                "spec": {"containers": [{"name": "bot", "image": "example/bot:1"}]},
            },
        }
        if obj.plural == "statefulsets":
            spec["serviceName"] = obj.name
        return {
            "kind": KINDS[obj.plural],
            "apiVersion": "apps/v1",
            "metadata": self._metadata(obj),
            "spec": spec,
            "status": status,
        }

    def _scale_doc(self, obj: _Obj) -> dict[str, Any]:
        meta = self._metadata(obj)
        meta.pop("labels", None)
        meta.pop("annotations", None)
        meta.pop("generation", None)
        counted = obj.present + (obj.terminating if obj.plural == "statefulsets" else 0)
        # autoscaling/v1: spec.replicas is omitempty, status.replicas is always present.
        spec: dict[str, Any] = {"replicas": obj.replicas} if obj.replicas else {}
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": meta,
            "spec": spec,
            "status": {"replicas": counted, "selector": f"app={obj.name}"},
        }

    # -- request handling ----------------------------------------------------------------------
    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.requests.append((method, path.split("?")[0]))
            self._advance()
            return self._handle(method, path.split("?")[0], headers, body)

    def _handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        if headers.get("authorization") != f"Bearer {self.token}":
            return _status_obj(401, "Unauthorized", "Unauthorized")
        match = _PATH.match(path)
        if match is None:
            return _status_obj(404, "NotFound", "the server could not find the requested resource")
        plural, name, is_scale = match["plural"], match["name"], bool(match["scale"])
        resource = f"{plural}/scale" if is_scale else plural
        verb = {"GET": "get", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}.get(method)
        if verb is None:
            return _status_obj(405, "MethodNotAllowed", f"the server does not allow this method on {resource}")
        if match["ns"] != self.namespace or (verb, resource, name) not in self.rules:  # the Role is namespaced
            return _status_obj(
                403,
                "Forbidden",
                f'{plural}.apps "{name}" is forbidden: User "{self.service_account}" cannot {verb} resource '
                f'"{resource}" in API group "apps" in the namespace "{match["ns"]}"',
                name,
                plural,
            )
        obj = self.objects.get((plural, name))
        if obj is None:
            return _status_obj(404, "NotFound", f'{plural}.apps "{name}" not found', name, plural)
        if verb == "get":
            return 200, self._scale_doc(obj) if is_scale else self._object_doc(obj)
        if verb != "patch":
            return _status_obj(405, "MethodNotAllowed", "the fake implements get and patch only")
        return self._patch(obj, is_scale, headers.get("content-type", ""), body)

    def _patch(self, obj: _Obj, is_scale: bool, content_type: str, body: bytes) -> tuple[int, dict[str, Any]]:
        ctype = content_type.split(";")[0].strip()
        try:
            patch = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return _status_obj(400, "BadRequest", "the body of the request was in an unknown format")
        if ctype == "application/json-patch+json":
            if not isinstance(patch, list):
                return _status_obj(
                    400, "BadRequest", "json: cannot unmarshal object into Go value of type []handlers.jsonPatchOp"
                )
            return _status_obj(415, "UnsupportedMediaType", "json-patch lists are not implemented by this fake")
        if ctype not in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
            return _status_obj(415, "UnsupportedMediaType", f"the media type {ctype!r} is not supported for patch")
        if not isinstance(patch, dict):
            return _status_obj(400, "BadRequest", "a merge patch must be a JSON object")
        if self.conflicts_to_inject > 0:
            self.conflicts_to_inject -= 1
            self._bump()  # another writer got there first
        precondition = (patch.get("metadata") or {}).get("resourceVersion")
        if precondition is not None and precondition != str(self.resource_version):
            kind = f"{obj.plural}.apps"
            return _status_obj(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {kind} "{obj.name}": the object has been modified; '
                "please apply your changes to the latest version and try again",
                obj.name,
                obj.plural,
            )
        current = self._scale_doc(obj) if is_scale else self._object_doc(obj)
        merged = _merge(current, patch)
        replicas = (merged.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            return _status_obj(422, "Invalid", f"spec.replicas: Invalid value: {replicas!r}: must be >= 0")
        if not is_scale:
            annotations = (merged.get("metadata") or {}).get("annotations") or {}
            if not all(isinstance(v, str) for v in annotations.values()):
                return _status_obj(400, "BadRequest", "metadata.annotations values must be strings")
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
