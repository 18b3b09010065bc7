"""Input checks shared by the reference solvers."""

from __future__ import annotations

import operator

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


def check_int(value, name: str, minimum: int) -> int:
    """``value`` as an ``int`` of at least ``minimum`` (``bool`` refused); ``ValueError`` else."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    try:
        i = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if i < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {i}")
    return i


def check_positive(value, name: str) -> float:
    """``value`` as a finite ``float > 0`` (``bool`` and non-numbers refused); ``ValueError``
    else."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")
    return float(value)
