"""Scores, one module per kind of comparison (NumPy; inputs in physical units):
:mod:`.regression` (relative L2, RMSE, R^2), :mod:`.uq` (CRPS, NLL, coverage, spread-skill, PIT),
:mod:`.conformal` (split-conformal recalibration), :mod:`.pde` (PDEBench rollout metrics),
:mod:`.mesh` (MMGP scores on per-mesh fields), :mod:`.dynamics` (skill by lead, valid
prediction time, climate statistics), :mod:`.climatebench` (ClimateBench NRMSE) and
:mod:`.acoustics` (field and receiver errors).

The names of the 0.x module ``surrogates.metrics`` (``relative_l2``, ``rmse``, ``r2_score``,
``summary``) still resolve here, with a :class:`DeprecationWarning`, for one release.
"""

import importlib
import warnings

_REGRESSION = ("relative_l2", "rmse", "r2_score", "summary")


def __getattr__(name):
    if name not in _REGRESSION:
        raise AttributeError(f"module 'surrogates.metrics' has no attribute {name!r}")
    warnings.warn(f"surrogates.metrics.{name} moved to surrogates.metrics.regression.{name}; "
                  "the old name goes away in the next release", DeprecationWarning,
                  stacklevel=2)
    return getattr(importlib.import_module("surrogates.metrics.regression"), name)
