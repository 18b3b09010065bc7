"""Run folders, one module per problem family, on the contract of :mod:`.folder`.

The names of the 0.x module ``surrogates.runs`` (``train_operator``, ``evaluate_run``, ...)
still resolve here, with a :class:`DeprecationWarning`, for one release.
"""

import importlib
import warnings

#: 0.x name of ``surrogates.runs`` -> the module that holds it now.
_MOVED = {
    "DataSpec": "surrogates.runs.operators",
    "ENSEMBLE_CLASS": "surrogates.runs.operators",
    "train_operator": "surrogates.runs.operators",
    "load_run": "surrogates.runs.operators",
    "train_ensemble": "surrogates.runs.operators",
    "fit_polynomial_closure": "surrogates.runs.lorenz96",
    "prepare_run_dir": "surrogates.runs.folder",
    "RUN_CONFIG_NAME": "surrogates.runs.folder",
}


def _evaluate_run(run_dir, data_path=None, *, split="test", out_dir=None, overwrite=True,
                  hybrid=None, compare=()):
    """0.x ``evaluate_run``: the offline scores and, with ``hybrid``, the hybrid evaluation."""
    if hybrid is None:
        from surrogates.runs.operators import evaluate_run

        return evaluate_run(run_dir, data_path, split=split, out_dir=out_dir,
                            overwrite=overwrite)
    from surrogates.runs.lorenz96 import evaluate_closure_run

    return evaluate_closure_run(run_dir, data_path, split=split, out_dir=out_dir,
                                hybrid=hybrid, compare=compare)


def __getattr__(name):
    if name == "evaluate_run":
        new = ("surrogates.runs.operators.evaluate_run (offline) or "
               "surrogates.runs.lorenz96.evaluate_closure_run (with the hybrid model)")
        value = _evaluate_run
    elif name in _MOVED:
        new = f"{_MOVED[name]}.{name}"
        value = getattr(importlib.import_module(_MOVED[name]), name)
    else:
        raise AttributeError(f"module 'surrogates.runs' has no attribute {name!r}")
    warnings.warn(f"surrogates.runs.{name} moved to {new}; the old name goes away in the next "
                  "release", DeprecationWarning, stacklevel=2)
    return value
