"""Input checks shared by the reference solvers."""

from __future__ import annotations

import numpy as np


def check_dtype(dtype) -> np.dtype:
    """``dtype`` as a NumPy float dtype; only float64 and float32 are solver precisions.

    Raises
    ------
    ValueError
        For anything else, naming what was given.
    """
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}") from None
    if dt not in (np.float64, np.float32):
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    return dt
