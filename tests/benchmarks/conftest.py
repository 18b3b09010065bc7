"""The benchmark scripts run as ``python benchmarks/<name>.py`` and import their helpers by plain
name (``bench_utils``, ``roofline``), so the tests put ``benchmarks/`` first on ``sys.path``."""

import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))
