"""Links between the docs resolve (files and heading anchors, as GitHub computes them), and every
repository path the docs name exists."""

from __future__ import annotations

import re
from pathlib import Path

from testsupport.docs import anchors, doc_paths, links, read, rel, slug
from testsupport.tools import REPO_ROOT

# A repository path: a top-level directory of this project, then at least one more component.
_TOP = "lambda|drill|healthcheck|protocol|bot|k8s|argocd|terraform|tests|bench|docs|tools|mk|requirements|build"
_PATH = re.compile(rf"(?<![\w/.$<-])((?:{_TOP})/[\w./*-]*[\w/*])")
# Paths the docs name on purpose although they are not in the repository.
NOT_IN_GIT = {
    "build/lambda/hfo-watchdog.zip": "made by `make lambda-zip`",
    "build/lambda/wheels": "made by `make lambda-zip`",
    "build/lambda/": "made by `make lambda-zip`",
    "build/bench/timeline.png": "made by `make bench-failover`",
    "build/bench/flap.png": "made by `make bench-failover`",
}


def test_slugs_follow_github() -> None:
    assert (
        slug("Both sites report the bot running (`both_running`)") == "both-sites-report-the-bot-running-both_running"
    )
    assert slug("The bot (`StatefulSet/bot`)") == "the-bot-statefulsetbot"
    assert slug("7. Bootstrap the standby") == "7-bootstrap-the-standby"
    assert slug("IAM (least privilege, `aws_iam_policy_document`)") == "iam-least-privilege-aws_iam_policy_document"


def test_relative_links_resolve() -> None:
    problems = []
    count = 0
    for page in doc_paths():
        for link in links(page):
            count += 1
            target = (page.parent / link.target).resolve() if link.target else page
            if not target.exists():
                problems.append(f"{link.path}:{link.line}: {link.target} does not exist")
                continue
            if link.anchor and target.suffix == ".md" and link.anchor not in anchors(target):
                problems.append(f"{link.path}:{link.line}: {rel(target)} has no heading #{link.anchor}")
    assert count >= 100, "the link reader found far fewer links than the docs hold"
    assert not problems, "\n".join(problems)


def named_paths(page: Path) -> set[str]:
    return {m.group(1) for m in _PATH.finditer(read(page))}


def test_paths_named_in_the_docs_exist() -> None:
    problems = []
    for page in doc_paths():
        for path in sorted(named_paths(page)):
            if "*" in path or path in NOT_IN_GIT or path.rstrip("/") in NOT_IN_GIT:
                continue
            if not (REPO_ROOT / path).exists():
                problems.append(f"{rel(page)} names {path}, which does not exist")
    assert not problems, "\n".join(problems)
    assert {"k8s/base/secrets/sealedsecret-site.yaml", "terraform/examples/quickstart"} <= named_paths(
        REPO_ROOT / "docs/security.md"
    ) | named_paths(REPO_ROOT / "docs/runbook.md")
