"""The test API server's costs: its build (from the cache's record) and a rebuild check with the cache
warm, then control plane starts and stops, each in a fresh directory, as the session fixture does them.

    python bench/kube_apiserver.py [--runs N]

Prints figures; asserts nothing. Needs `make kube-apiserver` first.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))

from testsupport.kube_apiserver import ControlPlane, kube_binaries, load_build_module  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    build = load_build_module()
    built = build.find_built()
    if built is None:
        sys.exit(f"not built: run `make kube-apiserver` ({build.last_failure() or 'no build yet'})")
    info = built.info
    print(f"binaries: {built.bin_dir}")
    print(f"last build from this cache ({info['go']}):")
    for step, seconds in info["seconds"].items():
        print(f"  {step:<12} {seconds:>7.1f} s")
    print("  sizes: " + ", ".join(f"{name} {mb} MB" for name, mb in info["sizes_mb"].items()))

    started = time.perf_counter()
    subprocess.run([sys.executable, str(build.__file__)], check=True, capture_output=True)
    print(f"`tools/kube/build.py` with the binaries cached: {time.perf_counter() - started:.2f} s")

    binaries = kube_binaries()
    samples: dict[str, list[float]] = {"etcd": [], "apiserver_ready": [], "controller_manager_ready": [], "stop": []}
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="hfo-kube-bench-") as tmp:
            plane = ControlPlane(binaries, Path(tmp)).start()
            for key in ("etcd", "apiserver_ready", "controller_manager_ready"):
                samples[key].append(plane.timings[key])
            stopping = time.perf_counter()
            plane.stop()
            samples["stop"].append(time.perf_counter() - stopping)
    print(f"control plane, {args.runs} runs (seconds from start; median, max):")
    for key, values in samples.items():
        print(f"  {key:<26} {statistics.median(values):6.2f}  {max(values):6.2f}")


if __name__ == "__main__":
    main()
