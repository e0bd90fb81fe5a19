"""Write the benchmark's saved results into the docs: the full table in docs/benchmarks.md and
the summary in README.md, each between its markers. `make bench-failover-docs` runs it on
bench/failover/results/default.json; tests/bench/test_docs.py checks both are what it writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from failover import table

REPO = Path(__file__).resolve().parents[2]
BENCHMARKS = REPO / "docs" / "benchmarks.md"
README = REPO / "README.md"
RESULTS = Path(__file__).with_name("results") / "default.json"
OURS, SEED = "ours", "seed"


class DocsError(ValueError):
    pass


def section(text: str, name: str) -> tuple[int, int]:
    start, end = f"<!-- begin generated bench {name} -->\n", f"<!-- end generated bench {name} -->"
    i, j = text.find(start), text.find(end)
    if i < 0 or j < i:
        raise DocsError(f"markers {start.strip()} ... {end} not found")
    return i + len(start), j


def replace_section(text: str, name: str, body: str) -> str:
    i, j = section(text, name)
    return text[:i] + body.rstrip("\n") + "\n" + text[j:]


def meta(doc: dict[str, Any]) -> str:
    price = doc["price"]
    return (
        f"`make bench-failover`, seed {doc['seed']}, {doc['runs']} runs per trace; heartbeats"
        f" {doc['heartbeats']}; EC2 at {price['usd_per_hour']} USD/h ({price['instance_type']},"
        f" {price['region']}, from tools/cost/prices.toml). Policies:\n\n"
        + "\n".join(f"- {text}" for text in doc["policies"].values())
        + "\n"
    )


def render(doc: dict[str, Any]) -> tuple[str, str]:
    rows = doc["rows"]
    full = meta(doc) + "\n" + table.markdown(rows) + "\n"
    summary = table.summary(rows, OURS, SEED) + "\n"
    return full, summary


def load(path: Path = RESULTS) -> dict[str, Any]:
    try:
        doc: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DocsError(f"cannot read the results {path}: {exc}") from None
    return doc


def write(path: Path = RESULTS) -> list[Path]:
    full, summary = render(load(path))
    BENCHMARKS.write_text(replace_section(BENCHMARKS.read_text(), "results", full))
    README.write_text(replace_section(README.read_text(), "summary", summary))
    return [BENCHMARKS, README]
