"""A container registry on 127.0.0.1 for tests of what reads image manifests (`hfo doctor`).

It speaks the part of the OCI distribution API a pull starts with, the way public registries
(ghcr.io, Docker Hub) answer an anonymous client: a manifest request without a token gets `401` and a
`WWW-Authenticate: Bearer realm=...,service=...,scope=...` challenge; the realm hands out a pull token;
with it, a multi-platform image (what `docker buildx build --platform a,b` pushes) answers an image
index listing one manifest per platform (plus the attestation manifest buildx adds, platform
unknown/unknown), and a single-platform image (a plain `docker build` and push) an image manifest
whose config blob names its os and architecture. An unknown tag is `404 MANIFEST_UNKNOWN`.
Plain HTTP, as docker itself uses for a registry on loopback.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Registry:
    images: dict[tuple[str, str], tuple[list[str], bool]] = field(
        default_factory=dict
    )  # (repo, tag) -> platforms, index
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    requests: list[str] = field(default_factory=list)
    _server: http.server.ThreadingHTTPServer | None = None

    def publish(self, repository: str, tag: str, platforms: list[str], *, index: bool = True) -> None:
        self.images[(repository, tag)] = (platforms, index)

    def start(self, port: int = 0) -> Registry:
        registry = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def send(self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def error(self, status: int, code: str, headers: dict[str, str] | None = None) -> None:
                body = json.dumps({"errors": [{"code": code, "message": code.lower()}]}).encode()
                self.send(status, body, "application/json", headers)

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                registry.requests.append(url.path)
                if url.path == "/token":
                    body = json.dumps({"token": registry.token, "access_token": registry.token}).encode()
                    self.send(200, body, "application/json")
                    return
                if not url.path.startswith("/v2/"):
                    self.error(404, "NOT_FOUND")
                    return
                name, _, rest = url.path[4:].rpartition("/manifests/")
                kind = "manifests"
                if not name:
                    name, _, rest = url.path[4:].rpartition("/blobs/")
                    kind = "blobs"
                host = f"127.0.0.1:{self.server.server_address[1]}"
                if self.headers.get("Authorization") != f"Bearer {registry.token}":
                    challenge = f'Bearer realm="http://{host}/token",service="{host}",scope="repository:{name}:pull"'
                    self.error(401, "UNAUTHORIZED", {"WWW-Authenticate": challenge})
                    return
                docs = registry.documents(name)
                if kind == "blobs" or rest.startswith("sha256:"):
                    found = docs.get(rest)
                    if found is None:
                        self.error(404, "BLOB_UNKNOWN" if kind == "blobs" else "MANIFEST_UNKNOWN")
                        return
                    self.send(200, found[0], found[1], {"Docker-Content-Digest": rest})
                    return
                entry = registry.images.get((name, rest))
                if entry is None:
                    self.error(404, "MANIFEST_UNKNOWN")
                    return
                top = registry.top(name, rest)
                self.send(200, top[0], top[1], {"Docker-Content-Digest": _digest(top[0])})

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def host(self) -> str:
        assert self._server is not None
        return f"127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # -- documents

    @staticmethod
    def _single(platform: str) -> tuple[bytes, bytes]:
        os_name, arch = platform.split("/")[:2]
        config = json.dumps(
            {"architecture": arch, "os": os_name, "rootfs": {"type": "layers", "diff_ids": []}}
        ).encode()
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST,
                "config": {"mediaType": CONFIG, "digest": _digest(config), "size": len(config)},
                "layers": [],
            }
        ).encode()
        return manifest, config

    def documents(self, name: str) -> dict[str, tuple[bytes, str]]:
        """Every manifest and config blob of a repository, by digest."""
        docs: dict[str, tuple[bytes, str]] = {}
        for (repo, _), (platforms, _) in self.images.items():
            if repo != name:
                continue
            for platform in platforms:
                manifest, config = self._single(platform)
                docs[_digest(manifest)] = (manifest, MANIFEST)
                docs[_digest(config)] = (config, CONFIG)
        return docs

    def top(self, name: str, tag: str) -> tuple[bytes, str]:
        platforms, index = self.images[(name, tag)]
        if not index:
            return self._single(platforms[0])[0], MANIFEST
        manifests = []
        for platform in platforms:
            manifest, _ = self._single(platform)
            os_name, arch = platform.split("/")[:2]
            manifests.append(
                {"mediaType": MANIFEST, "digest": _digest(manifest), "size": len(manifest),
                 "platform": {"architecture": arch, "os": os_name}}
            )  # fmt: skip
        attestation = b'{"schemaVersion": 2}'
        manifests.append(
            {"mediaType": MANIFEST, "digest": _digest(attestation), "size": len(attestation),
             "platform": {"architecture": "unknown", "os": "unknown"},
             "annotations": {"vnd.docker.reference.type": "attestation-manifest"}}
        )  # fmt: skip
        return json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests}).encode(), INDEX
