"""Helpers shared by the benchmark scripts: best-of-n timing and a description of the machine.

The scripts run as ``python benchmarks/<name>.py``, so this module is imported by its plain name
(the script's folder is first on ``sys.path``).
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np


def best_time(fn: Callable[[], Any], repeats: int) -> tuple[float, list[float], Any]:
    """Run ``fn`` ``repeats`` times: ``(fastest seconds, all seconds, last return value)``."""
    times, out = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - started)
    return min(times), times, out


def machine_info(**extra: Any) -> dict[str, Any]:
    """Platform, CPU count, library versions, thread settings and load, plus ``extra``."""
    return {"platform": platform.platform(), "processor": platform.processor(),
            "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "numpy": np.__version__, "jax": jax.__version__, "jax_backend": jax.default_backend(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "load_average_at_end": list(os.getloadavg()), **extra}
