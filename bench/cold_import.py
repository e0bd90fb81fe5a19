"""Cold import of the watchdog's Lambda handler module, as a Lambda cold start pays it.

Each sample is a fresh interpreter (`python -c`), timing `import hfo_watchdog.handlers` inside
it, with HFO_TRACING false and true. Baseline, measured the same way in the same run: importing
`json` (what any Python function pays). Variants are interleaved so machine load hits all alike.

    python bench/cold_import.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CHILD = "import time; t = time.perf_counter(); import {module}; print(round((time.perf_counter() - t) * 1000, 3))"

VARIANTS = {
    "baseline: import json": ("json", {}),
    "handlers, HFO_TRACING=false": ("hfo_watchdog.handlers", {"HFO_TRACING": "false"}),
    "handlers, HFO_TRACING=true": ("hfo_watchdog.handlers", {"HFO_TRACING": "true"}),
}


def sample(module: str, extra_env: dict[str, str]) -> tuple[float, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HFO_", "POWERTOOLS_"))}
    env.update(extra_env)
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", CHILD.format(module=module)], env=env, capture_output=True, text=True, check=True
    )
    wall_ms = (time.perf_counter() - started) * 1000
    return float(out.stdout.strip().splitlines()[-1]), wall_ms


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10, method="inclusive")[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    imports: dict[str, list[float]] = {name: [] for name in VARIANTS}
    walls: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for module, env in VARIANTS.values():  # warm the OS file cache once
        sample(module, env)
    for _ in range(args.runs):
        for name, (module, env) in VARIANTS.items():
            imp, wall = sample(module, env)
            imports[name].append(imp)
            walls[name].append(wall)
    base = statistics.median(imports["baseline: import json"])
    print(f"cold import, {args.runs} fresh interpreters per variant (python {sys.version.split()[0]})")
    print(f"{'variant':<30} {'import median':>14} {'import p90':>11} {'x json':>8} {'process median':>15}")
    results = {}
    for name in VARIANTS:
        med = statistics.median(imports[name])
        results[name] = {"import_median_ms": med, "import_p90_ms": p90(imports[name])}
        print(
            f"{name:<30} {med:>11.1f} ms {p90(imports[name]):>8.1f} ms {med / base:>7.0f}x "
            f"{statistics.median(walls[name]):>12.1f} ms"
        )
    off = statistics.median(imports["handlers, HFO_TRACING=false"])
    on = statistics.median(imports["handlers, HFO_TRACING=true"])
    print(f"tracing costs {on - off:.0f} ms more at cold start ({on / off:.1f}x the import without it)")
    print(json.dumps({"cold_import": results}))


if __name__ == "__main__":
    main()
