"""The workload images' references, read from the one place that sets them, the `images:` list of
k8s/base/kustomization.yaml, and rendered the way kustomize renders them: newName, then :newTag, then
@digest. `make images` tags its builds with them; the Terraform module reads the same list
(terraform/modules/hybrid-failover) for the standby to pull at boot.

    python tools/images/refs.py            # every image, one per line
    python tools/images/refs.py hfo-bot    # one image, by its name in the manifests
    python tools/images/refs.py --tag hfo-bot   # what to tag a build with (no digest: a build has none yet)
    python tools/images/refs.py --check    # exit 1 while the placeholder owner is still set
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
KUSTOMIZATION = REPO_ROOT / "k8s" / "base" / "kustomization.yaml"
PLACEHOLDER_OWNER = "your-github-user"


def images(path: Path = KUSTOMIZATION) -> dict[str, dict[str, Any]]:
    entries = yaml.safe_load(path.read_text(encoding="utf-8")).get("images") or []
    return {str(e["name"]): e for e in entries}


def ref(entry: dict[str, Any], *, with_digest: bool = True) -> str:
    out = str(entry.get("newName", entry["name"]))
    if entry.get("newTag") is not None:
        out += f":{entry['newTag']}"
    if with_digest and entry.get("digest"):
        out += f"@{entry['digest']}"
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print the workload images' references (k8s/base/kustomization.yaml).")
    parser.add_argument("name", nargs="?", help="one image, by its name in the manifests (hfo-bot, hfo-site)")
    parser.add_argument("--tag", action="store_true", help="the reference to tag a build with (no digest)")
    parser.add_argument("--check", action="store_true", help="fail while an image still names the placeholder owner")
    parser.add_argument("--kustomization", type=Path, default=KUSTOMIZATION, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    found = images(args.kustomization)
    if args.check:
        placeholders = [ref(e) for e in found.values() if PLACEHOLDER_OWNER in ref(e)]
        if placeholders:
            print(
                f"error: {', '.join(placeholders)} still name the placeholder owner {PLACEHOLDER_OWNER}: set your "
                f"registry in k8s/base/kustomization.yaml first (docs/walkthrough.md step 2)",
                file=sys.stderr,
            )
            return 1
        return 0
    if args.name is not None:
        if args.name not in found:
            print(
                f"error: no image named {args.name!r} in {args.kustomization} (known: {', '.join(found)})",
                file=sys.stderr,
            )
            return 2
        print(ref(found[args.name], with_digest=not args.tag))
        return 0
    for entry in found.values():
        print(ref(entry, with_digest=not args.tag))
    return 0


if __name__ == "__main__":
    sys.exit(main())
