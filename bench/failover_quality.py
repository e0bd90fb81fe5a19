"""Failover-quality benchmark: replay health histories through the real decision engine and
compare our policy (defaults, tuned for speed) with the seed tutorial's, side by side.

Prints one table (per trace and policy: time to the failover decision, time to bot back, total
downtime, false failovers, EC2 starts, EC2 running minutes and their cost, seconds with two bots)
and writes a timeline plot (PNG) of one trace under one policy. Deterministic for a given seed.
docs/benchmarks.md explains the model, the definitions and how to read both.

    python bench/failover_quality.py [--runs N] [--seed S] [--traces a,b] [--plot-trace NAME]
                                     [--plot-policy NAME] [--out PATH] [--argocd-on-path]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the `failover` package lives beside this script

from failover.cli import main

if __name__ == "__main__":
    sys.exit(main())
