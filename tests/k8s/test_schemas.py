"""Custom resources (Application, AppProject, SealedSecret, ServiceMonitor, HelmChart) and the Tailscale
Ingress annotations pass the schemas kept in k8s/schemas; and each schema refuses the mistakes it is there
to catch, so a green run means something."""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest
from testsupport.k8s import (
    SCHEMA_DIR,
    SCHEMAS,
    TAILSCALE_INGRESS_SCHEMA,
    Doc,
    all_docs,
    bootstrap_docs,
    find,
    ident,
    render,
    schema_files_for,
)

pytestmark = pytest.mark.k8s


@functools.cache
def validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / name).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def errors(name: str, doc: Doc) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator(name).iter_errors(doc)]


def test_every_schema_file_is_used_and_documented() -> None:
    files = {p.name for p in SCHEMA_DIR.glob("*.schema.json")}
    assert files == set(SCHEMAS.values()) | {TAILSCALE_INGRESS_SCHEMA}
    readme = (SCHEMA_DIR / "README.md").read_text()
    for name in files:
        assert f"`{name}`" in readme, f"{name} has no source/version row in k8s/schemas/README.md"
        assert "Written for hybrid-failover from" in json.loads((SCHEMA_DIR / name).read_text())["$comment"]


def test_every_custom_resource_passes_its_schema() -> None:
    checked: dict[str, int] = {}
    for source, doc in all_docs():
        for name in schema_files_for(doc):
            problems = errors(name, doc)
            assert not problems, f"{source}: {ident(doc)} fails {name}: {problems}"
            checked[name] = checked.get(name, 0) + 1
    # every schema was exercised by at least one real object
    assert set(checked) == set(SCHEMAS.values()) | {TAILSCALE_INGRESS_SCHEMA}, checked


def _app() -> Doc:
    return copy.deepcopy(find(render("argocd-laptop"), "Application", "hfo"))


def _set(path: str, value: Any) -> Callable[[Doc], None]:
    def apply(doc: Doc) -> None:
        keys = path.split(".")
        target = doc
        for k in keys[:-1]:
            target = target[int(k)] if isinstance(target, list) else target[k]
        last = keys[-1]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value

    return apply


def _del(path: str) -> Callable[[Doc], None]:
    def apply(doc: Doc) -> None:
        *parents, last = path.split(".")
        target = doc
        for k in parents:
            target = target[k]
        del target[last]

    return apply


MISTAKES: list[tuple[str, Callable[[], Doc], Callable[[Doc], None]]] = [
    ("application.schema.json", _app, _set("spec.syncPolicy.syncOptions", ["RespectIgnoreDifference=true"])),
    ("application.schema.json", _app, _set("spec.syncPolicy.retry.backoff.factor", "2x")),
    ("application.schema.json", _app, _set("spec.syncPolicy.retry.backoff.maxDuration", "1 minute")),
    ("application.schema.json", _app, _set("spec.syncPolicy.automated.selfheal", True)),
    ("application.schema.json", _app, _set("spec.ignoreDifferences", [{"kind": "StatefulSet", "name": "bot"}])),
    ("application.schema.json", _app, _del("spec.project")),
    ("application.schema.json", _app, _set("spec.destination", {"namespace": "hfo"})),
    (
        "appproject.schema.json",
        lambda: copy.deepcopy(find(render("argocd-projects"), "AppProject", "hfo")),
        _set("spec.sourceRepos", []),
    ),
    (
        "sealedsecret.schema.json",
        lambda: copy.deepcopy(find(render("laptop"), "SealedSecret", "hfo-bot-token")),
        _set("spec.encryptedData", {}),
    ),
    (
        "servicemonitor.schema.json",
        lambda: copy.deepcopy(find(render("monitoring-laptop"), "ServiceMonitor", "hfo-site")),
        _set("spec.endpoints.0.interval", "15 seconds"),
    ),
    (
        "servicemonitor.schema.json",
        lambda: copy.deepcopy(find(render("monitoring-laptop"), "ServiceMonitor", "hfo-site")),
        _del("spec.selector"),
    ),
    (
        "helmchart.schema.json",
        lambda: copy.deepcopy(next(d for d in bootstrap_docs() if d["kind"] == "HelmChart")),
        _del("spec.version"),
    ),
    (
        "helmchart.schema.json",
        lambda: copy.deepcopy(next(d for d in bootstrap_docs() if d["kind"] == "HelmChart")),
        _set("spec.version", "9.x"),
    ),
    (
        TAILSCALE_INGRESS_SCHEMA,
        lambda: copy.deepcopy(find(render("laptop"), "Ingress", "hfo-health")),
        _set("metadata.annotations", {"tailscale.com/funel": "true"}),
    ),
    (
        TAILSCALE_INGRESS_SCHEMA,
        lambda: copy.deepcopy(find(render("laptop"), "Ingress", "hfo-health")),
        _set("metadata.annotations", {"tailscale.com/funnel": "yes"}),
    ),
    (
        TAILSCALE_INGRESS_SCHEMA,
        lambda: copy.deepcopy(find(render("laptop"), "Ingress", "hfo-health")),
        _set("spec.tls.0.hosts", ["hfo-laptop", "hfo-aws"]),
    ),
    (
        TAILSCALE_INGRESS_SCHEMA,
        lambda: copy.deepcopy(find(render("laptop"), "Ingress", "hfo-health")),
        _set("spec.tls.0.hosts", ["hfo-laptop.tail1234.ts.net"]),
    ),
    (
        TAILSCALE_INGRESS_SCHEMA,
        lambda: copy.deepcopy(find(render("laptop"), "Ingress", "hfo-health")),
        _set("spec.rules.0.http.paths.0.pathType", "Exact"),
    ),
]


@pytest.mark.parametrize(("schema", "make", "mutate"), MISTAKES, ids=[f"{m[0]}-{i}" for i, m in enumerate(MISTAKES)])
def test_schema_refuses_a_realistic_mistake(
    schema: str, make: Callable[[], Doc], mutate: Callable[[Doc], None]
) -> None:
    doc = make()
    assert not errors(schema, doc), "the unmutated object must pass"
    mutate(doc)
    assert errors(schema, doc), f"{schema} accepted a broken object"
