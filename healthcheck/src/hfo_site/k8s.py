"""The Kubernetes API through the official client: configuration, typed reads, clear errors.

Only the calls the site needs: get a Deployment or StatefulSet (status and annotations), get and
patch its scale subresource, patch its annotations. Every write is a JSON merge patch that
carries the resourceVersion it was based on, so a concurrent change answers 409 Conflict
instead of being overwritten.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from hfo_site.backends.base import ConflictError, WorkloadError
from hfo_site.config import ConfigError, WorkloadRef

MERGE_PATCH = "application/merge-patch+json"


def make_api_client(request_timeout_s: float = 5.0) -> Any:
    """An ApiClient: in-cluster service account when running in a Pod, else KUBECONFIG."""
    from kubernetes import client, config

    configuration = client.Configuration()
    try:
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=configuration)
        else:
            # KUBECONFIG is read here, not when the library was imported.
            config.load_kube_config(config_file=os.environ.get("KUBECONFIG"), client_configuration=configuration)
    except (config.ConfigException, OSError, ValueError) as exc:
        raise ConfigError(
            "HFO_BACKEND",
            "kubernetes: neither an in-cluster service account nor a usable KUBECONFIG "
            f"({type(exc).__name__}: {str(exc)[:200]})",
        ) from None
    configuration.retries = 0  # our own loops retry, with their own bounds
    api = client.ApiClient(configuration)
    api.hfo_request_timeout = request_timeout_s  # type: ignore[attr-defined]
    return api


@dataclass(frozen=True)
class WorkloadView:
    """What one read of a Deployment/StatefulSet tells."""

    ref: WorkloadRef
    resource_version: str
    spec_replicas: int
    status_replicas: int
    ready_replicas: int
    terminating_replicas: int | None  # None when the cluster does not report it
    annotations: dict[str, str]


def _rbac_hint(namespace: str, ref: WorkloadRef, verb: str, resource: str) -> str:
    return (
        f"forbidden: the site's service account cannot {verb} {resource} {ref.name!r} in namespace "
        f"{namespace!r}; its Role needs verbs get and patch on {ref.kind}s and {ref.kind}s/scale with "
        f"resourceNames [{ref.name}] (docs/site.md#rbac)"
    )


def explain(exc: Exception, namespace: str, ref: WorkloadRef, verb: str, resource: str) -> WorkloadError:
    """Turn a client exception into a WorkloadError that says what to fix."""
    from kubernetes.client.exceptions import ApiException

    if isinstance(exc, ApiException):
        status = exc.status
        if status == 404:
            return WorkloadError(
                f"{ref} not found in namespace {namespace!r} (check HFO_K8S_WORKLOADS and HFO_K8S_NAMESPACE)", 404
            )
        if status == 403:
            return WorkloadError(_rbac_hint(namespace, ref, verb, resource), 403)
        if status == 401:
            return WorkloadError("unauthorized: the Kubernetes API refused the service account token", 401)
        if status == 409:
            return ConflictError(f"{ref} was modified concurrently (409 Conflict)", 409)
        return WorkloadError(f"{verb} {resource} {ref}: Kubernetes API answered {status} {exc.reason}", status)
    return WorkloadError(f"{verb} {resource} {ref}: no usable answer from the Kubernetes API ({type(exc).__name__})")


class WorkloadApi:
    """Synchronous calls (the official client is blocking): run them in a worker thread."""

    def __init__(self, api_client: Any, namespace: str) -> None:
        from kubernetes import client

        self._apps = client.AppsV1Api(api_client)
        self.namespace = namespace
        self._timeout = getattr(api_client, "hfo_request_timeout", 5.0)

    def _call(self, ref: WorkloadRef, verb: str, resource: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, _request_timeout=self._timeout, **kwargs)
        except Exception as exc:
            raise explain(exc, self.namespace, ref, verb, resource) from None

    def read(self, ref: WorkloadRef) -> WorkloadView:
        fn = (
            self._apps.read_namespaced_deployment
            if ref.kind == "deployment"
            else self._apps.read_namespaced_stateful_set
        )
        obj = self._call(ref, "get", f"{ref.kind}s", fn, ref.name, self.namespace)
        status = obj.status
        return WorkloadView(
            ref=ref,
            resource_version=obj.metadata.resource_version,
            spec_replicas=int(obj.spec.replicas if obj.spec.replicas is not None else 1),
            status_replicas=int((status and status.replicas) or 0),
            ready_replicas=int((status and status.ready_replicas) or 0),
            terminating_replicas=getattr(status, "terminating_replicas", None) if status else None,
            annotations=dict(obj.metadata.annotations or {}),
        )

    def read_scale(self, ref: WorkloadRef) -> tuple[int, str]:
        """(spec.replicas, resourceVersion) of the scale subresource."""
        fn = (
            self._apps.read_namespaced_deployment_scale
            if ref.kind == "deployment"
            else self._apps.read_namespaced_stateful_set_scale
        )
        scale = self._call(ref, "get", f"{ref.kind}s/scale", fn, ref.name, self.namespace)
        return int(scale.spec.replicas or 0), scale.metadata.resource_version

    def patch_scale(self, ref: WorkloadRef, replicas: int, resource_version: str) -> None:
        fn = (
            self._apps.patch_namespaced_deployment_scale
            if ref.kind == "deployment"
            else self._apps.patch_namespaced_stateful_set_scale
        )
        body = {"metadata": {"resourceVersion": resource_version}, "spec": {"replicas": replicas}}
        self._call(ref, "patch", f"{ref.kind}s/scale", fn, ref.name, self.namespace, body, _content_type=MERGE_PATCH)

    def patch_annotation(self, ref: WorkloadRef, key: str, value: str, resource_version: str) -> None:
        fn = (
            self._apps.patch_namespaced_deployment
            if ref.kind == "deployment"
            else self._apps.patch_namespaced_stateful_set
        )
        body = {"metadata": {"resourceVersion": resource_version, "annotations": {key: value}}}
        self._call(ref, "patch", f"{ref.kind}s", fn, ref.name, self.namespace, body, _content_type=MERGE_PATCH)


class ConfigMapApi:
    """Read and merge-patch one ConfigMap's data (the shard settings the agent owns, hfo_site.shards).
    Same rules as WorkloadApi: every write carries the resourceVersion it read."""

    def __init__(self, api_client: Any, namespace: str, name: str) -> None:
        from kubernetes import client

        self._core = client.CoreV1Api(api_client)
        self.namespace = namespace
        self.name = name
        self._timeout = getattr(api_client, "hfo_request_timeout", 5.0)

    def _error(self, exc: Exception, verb: str) -> WorkloadError:
        from kubernetes.client.exceptions import ApiException

        where = f"ConfigMap {self.name!r} in namespace {self.namespace!r}"
        if isinstance(exc, ApiException):
            if exc.status == 404:
                return WorkloadError(
                    f"{where} not found: it ships with the bot (k8s/base/bot/shards-configmap.yaml); "
                    "check HFO_SHARDS_CONFIGMAP",
                    404,
                )
            if exc.status == 403:
                return WorkloadError(
                    f"forbidden: the site's service account cannot {verb} {where}; its Role needs verbs get and "
                    f"patch on configmaps with resourceNames [{self.name}] (docs/kubernetes.md#shard-aware-scaling)",
                    403,
                )
            if exc.status == 409:
                return ConflictError(f"{where} was modified concurrently (409 Conflict)", 409)
            return WorkloadError(f"{verb} {where}: Kubernetes API answered {exc.status} {exc.reason}", exc.status)
        return WorkloadError(f"{verb} {where}: no usable answer from the Kubernetes API ({type(exc).__name__})")

    def read(self) -> tuple[dict[str, str], str]:
        """(data, resourceVersion)."""
        try:
            obj = self._core.read_namespaced_config_map(self.name, self.namespace, _request_timeout=self._timeout)
        except Exception as exc:
            raise self._error(exc, "get") from None
        return dict(obj.data or {}), obj.metadata.resource_version

    def patch_data(self, data: dict[str, str], resource_version: str) -> None:
        body = {"metadata": {"resourceVersion": resource_version}, "data": data}
        try:
            self._core.patch_namespaced_config_map(
                self.name, self.namespace, body, _content_type=MERGE_PATCH, _request_timeout=self._timeout
            )
        except Exception as exc:
            raise self._error(exc, "patch") from None
