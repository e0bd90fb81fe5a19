"""The benchmark's simulator lives in bench/failover (beside its entry point, not in a shipped
package): put bench/ on the import path for these tests."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))
