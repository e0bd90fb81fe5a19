"""Every Mermaid diagram in README.md and docs/ parses with Mermaid's own parser (the library GitHub
and GitLab render ```mermaid fences with), run in Node from `make docs-mermaid`. A diagram that does
not parse shows up on the forge as an error box instead of a picture."""

from __future__ import annotations

import json
import re
import subprocess

from testsupport.docs import MERMAID_DIR, all_blocks
from testsupport.tools import REPO_ROOT, require_tool, which

CHECK = REPO_ROOT / "tests" / "docs" / "mermaid" / "check.mjs"


def parse(diagrams: list[str]) -> list[dict[str, object]]:
    node = which("node")
    require_tool("mermaid (npm package)", str(MERMAID_DIR / "node_modules" / "mermaid"), "run `make docs-mermaid`")
    proc = subprocess.run(
        [node, "--input-type=module", "-e", CHECK.read_text(encoding="utf-8")],
        cwd=MERMAID_DIR,  # an evaluated module resolves `mermaid` from the working directory
        input=json.dumps(diagrams),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def test_every_mermaid_diagram_parses() -> None:
    diagrams = [b for b in all_blocks() if b.lang == "mermaid"]
    architecture = [b for b in diagrams if b.path == "docs/architecture.md"]
    assert len(architecture) == 2, "architecture.md shows the parts and the failover sequence"
    # a broken diagram must be told apart, or the check proves nothing
    results = parse([b.text for b in diagrams] + ["sequenceDiagram\n    A->>B: one; two\n"])
    *ours, canary = results
    assert not canary["ok"], "the parser accepted a statement split by ';': it checks nothing"
    problems = [f"{b.where}: {r['error']}" for b, r in zip(diagrams, ours, strict=True) if not r["ok"]]
    assert not problems, "\n".join(problems)
    kinds = {r["type"] for b, r in zip(diagrams, ours, strict=True) if b.path == "docs/architecture.md"}
    assert kinds == {"flowchart-v2", "sequence"}


def test_sequence_participants_are_declared() -> None:
    """Mermaid creates an undeclared participant silently: a typo in a message's sender or receiver
    would draw a new lifeline instead of failing."""
    for b in all_blocks():
        if b.lang != "mermaid" or not b.text.lstrip().startswith("sequenceDiagram"):
            continue
        declared = set(re.findall(r"^\s*(?:participant|actor)\s+(\w+)", b.text, re.M))
        used = set()
        for m in re.finditer(r"^\s*(\w+)\s*(?:-{1,2}(?:>>|>|x|\)))\s*(\w+)\s*:", b.text, re.M):
            used |= {m.group(1), m.group(2)}
        for m in re.finditer(r"^\s*Note over (\w+)(?:,\s*(\w+))?", b.text, re.M):
            used |= {x for x in m.groups() if x}
        assert used and used <= declared, f"{b.where}: undeclared participants {sorted(used - declared)}"
