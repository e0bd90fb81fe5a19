"""Point every Argo CD Application and AppProject of this repository, and the Terraform root you deploy,
at your fork, in one command:

    python3 argocd/set_repo_url.py https://github.com/alice/hybrid-failover.git

The URL appears in the root Applications, the child Applications, the projects' sourceRepos and the
bootstrap copies, and in the module source of terraform/examples/quickstart/main.tf; this rewrites every
occurrence of the current URL (read from clusters/aws/root.yaml) and nothing else. tests/k8s check
afterwards that exactly one repository URL is used everywhere.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ARGOCD_DIR = Path(__file__).resolve().parent
QUICKSTART_MAIN = ARGOCD_DIR.parent / "terraform" / "examples" / "quickstart" / "main.tf"
GIT_URL = re.compile(r"^(https://[A-Za-z0-9.-]+(:\d+)?/\S+|ssh://\S+@?[A-Za-z0-9.-]+\S*|git@[A-Za-z0-9.-]+:\S+)$")
REPO_LINE = re.compile(r"^\s*repoURL:\s*(\S+)\s*$", re.M)


def current_url(argocd_dir: Path) -> str:
    match = REPO_LINE.search((argocd_dir / "clusters" / "aws" / "root.yaml").read_text())
    if not match:
        raise SystemExit("error: no repoURL in clusters/aws/root.yaml")
    return match.group(1)


def rewrite(argocd_dir: Path, old: str, new: str) -> dict[Path, int]:
    token = re.compile(r"(?<![\w./:@-])" + re.escape(old) + r"(?![\w./-])")
    changed: dict[Path, int] = {}
    for path in sorted(argocd_dir.rglob("*.yaml")):
        text = path.read_text()
        updated, count = token.subn(new, text)
        if count:
            path.write_text(updated)
            changed[path] = count
    return changed


def rewrite_module_source(main_tf: Path, old: str, new: str) -> int:
    """The quickstart's `source = "git::<url>//terraform/modules/hybrid-failover?ref=..."`."""
    if not main_tf.is_file():
        return 0
    text = main_tf.read_text()
    updated, count = re.subn(r'(?<="git::)' + re.escape(old) + r"(?=//)", new, text)
    if count:
        main_tf.write_text(updated)
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Set the Git repository URL Argo CD syncs from.")
    parser.add_argument("url", help="your fork, e.g. https://github.com/alice/hybrid-failover.git")
    parser.add_argument("--dir", type=Path, default=ARGOCD_DIR, help=argparse.SUPPRESS)
    parser.add_argument("--quickstart", type=Path, default=QUICKSTART_MAIN, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    new = args.url.strip()
    if not GIT_URL.match(new):
        print(
            f"error: {new!r} is not a Git URL (use https://host/owner/repo.git, ssh://... or git@host:owner/repo.git)",
            file=sys.stderr,
        )
        return 2
    old = current_url(args.dir)
    if old == new:
        print(f"already set to {new}")
        return 0
    changed = rewrite(args.dir, old, new)
    for path, count in changed.items():
        print(f"{path.relative_to(args.dir)}: {count}")
    if rewrite_module_source(args.quickstart, old, new):
        print(f"{args.quickstart.name} of terraform/examples/quickstart: 1")
        changed[args.quickstart] = 1
    print(
        f"{old} -> {new} in {len(changed)} files; commit and push them before `terraform apply` and Argo CD's bootstrap"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
