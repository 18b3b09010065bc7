"""Helpers shared by the benchmark scripts: best-of-n timing and a description of the machine.

The scripts run as ``python benchmarks/<name>.py``, so this module is imported by its plain name
(the script's folder is first on ``sys.path``); they put the repository root on ``sys.path``
before importing it.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from surrogates.data.common import write_json


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


def write_results(result: dict[str, Any], path: str | os.PathLike, **machine: Any) -> None:
    """Write ``result`` plus the machine (:func:`machine_info` with ``machine`` extras) and the
    date as JSON to ``path`` (atomically), and say so."""
    write_json({**result, "machine": machine_info(**machine),
                "date": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, path)
    print(f"wrote {path}")
