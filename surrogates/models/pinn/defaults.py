r"""Per-problem default settings of ``surrogates solve pig``: the best settings that
``benchmarks/pig_vs_pinn.py`` found for each problem and model.

A physics-informed fit depends on the weight of its boundary terms and on its learning-rate
schedule far more than a data fit does, and the best values differ between problems and
models (issue 20: Helmholtz (4, 1) at the earlier generic defaults -- 100 Gaussians, 1000 steps,
boundary weight 1, constant learning rate -- reached relative L2 0.43, at the benchmark's settings
3.0e-3). :data:`DEFAULTS` holds, for every ``(problem, model)``, the
:func:`surrogates.models.pinn.train` arguments, the model's constructor arguments and the
evaluation grid, each row with the benchmark figure it reproduces. :func:`default_settings`
resolves them (with :data:`VARIANTS` for benchmarked problem arguments, e.g. Helmholtz (10, 10));
:func:`surrogates.runs.pinn.solve_to_folder` applies them under the user's own settings, and
``surrogates solve pig --help`` prints them (:func:`help_table`).

Origin of every row: ``benchmarks/pig_vs_pinn.py`` (docstring table and ``CASES``; figures in
``benchmarks/results/pig_vs_pinn.json``, run of 2026-11-30 on one shared CPU core, 1024
collocation points resampled every step, float32, seed 0). The benchmark trains each model at a
small set of (boundary weight, learning rate, final / initial learning rate) and reports its best;
the rows below are those bests, ``lr_final = lr x decay``:

=====================  =====  =====================================  =========================
problem                model  settings                               relative L2 (wall, 1 core)
=====================  =====  =====================================  =========================
helmholtz (4, 1)       pig    400 Gaussians, sigma 0.1; 2000 steps,  3.04e-3 (41 s)
                              w 1.08, lr 1e-2 -> 1e-4
helmholtz (4, 1)       pinn   3 x 64 tanh; 2000 steps, w 3.6e-3,     6.56e-2 (18 s)
                              lr 1e-3 constant
helmholtz (10, 10)     pig    6400 Gaussians, sigma 0.025, grid      8.74e-2 (178 s)
                              means, cut-off 5; w 100, 3e-3 -> 3e-5
helmholtz (10, 10)     pinn   w 100, lr 1e-3 constant                1.00 (fails at every
                                                                     setting tried)
klein-gordon           pig    100 Gaussians, sigma 0.5; 2000 steps,  0.105 (17 s)
                              w 100, lr 1e-2 -> 1e-4
klein-gordon           pinn   w 100, lr 1e-3 constant                0.162 (20 s)
allen-cahn             pig    400 Gaussians, sigma 0.1; 6000 steps,  7.31e-2 (124 s)
                              causal (32 chunks, eps 3), w 100,
                              lr 1e-2 -> 1e-4
allen-cahn             pinn   causal (32, 3), 6000 steps, w 1,       0.734 (48 s)
                              lr 1e-3 -> 1e-5
flow-mixing            pig    1728 Gaussians (12^3 grid), sigma      2.52e-2 (192 s, 41^3
                              0.1; causal (32, 1), w 100,            evaluation grid)
                              lr 3e-2 -> 9e-3
flow-mixing            pinn   causal (32, 1), w 1, lr 1e-2 constant  0.123 (14 s)
=====================  =====  =====================================  =========================

(w = ``boundary_weight``; Helmholtz weights are relative to the residual divided by the source
amplitude, ``Problem.residual_scale``.) Wall times vary by about +-30 % on the shared core.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DEFAULTS", "VARIANTS", "Settings", "default_settings", "help_table"]


@dataclass(frozen=True)
class Settings:
    """Default settings of one ``(problem, model)``.

    Attributes
    ----------
    train : dict
        :func:`surrogates.models.pinn.train` keyword arguments (without ``model_kwargs``).
    model : dict
        Constructor arguments of :class:`operators.pig.PIG` or :class:`operators.pig.MLP`.
    n_grid : int
        Points per axis of the evaluation grid (the benchmark's).
    origin : str
        The benchmark row and figure these settings reproduce.
    """

    train: dict = field(default_factory=dict)
    model: dict = field(default_factory=dict)
    n_grid: int = 101
    origin: str = ""


_BENCH = "benchmarks/pig_vs_pinn.py"
_COMMON = {"n_collocation": 1024, "optimizer": "adam", "dtype": "float32", "seed": 0}
_PINN = {"hidden": (64, 64, 64)}

#: ``(problem, model) -> Settings``; problem names as in
#: :data:`surrogates.models.pinn.problems.PROBLEMS`, models ``"pig"`` and ``"pinn"``.
DEFAULTS: dict[tuple[str, str], Settings] = {
    ("helmholtz", "pig"): Settings(
        {**_COMMON, "n_steps": 2000, "boundary_weight": 1.08, "lr": 1e-2, "lr_final": 1e-4},
        {"n_gaussians": 400, "sigma_init": 0.1},
        origin=f"{_BENCH}, Helmholtz (4, 1): relative L2 3.04e-3 in 41 s"),
    ("helmholtz", "pinn"): Settings(
        {**_COMMON, "n_steps": 2000, "boundary_weight": 3.6e-3, "lr": 1e-3, "lr_final": None},
        dict(_PINN), origin=f"{_BENCH}, Helmholtz (4, 1): relative L2 6.56e-2 in 18 s"),
    ("klein_gordon", "pig"): Settings(
        {**_COMMON, "n_steps": 2000, "boundary_weight": 100.0, "lr": 1e-2, "lr_final": 1e-4},
        {"n_gaussians": 100, "sigma_init": 0.5},
        origin=f"{_BENCH}, Klein-Gordon: relative L2 0.105 in 17 s"),
    ("klein_gordon", "pinn"): Settings(
        {**_COMMON, "n_steps": 2000, "boundary_weight": 100.0, "lr": 1e-3, "lr_final": None},
        dict(_PINN), origin=f"{_BENCH}, Klein-Gordon: relative L2 0.162 in 20 s"),
    ("allen_cahn", "pig"): Settings(
        {**_COMMON, "n_steps": 6000, "causal_chunks": 32, "causal_eps": 3.0,
         "boundary_weight": 100.0, "lr": 1e-2, "lr_final": 1e-4},
        {"n_gaussians": 400, "sigma_init": 0.1},
        origin=f"{_BENCH}, Allen-Cahn (causal): relative L2 7.31e-2 in 124 s"),
    ("allen_cahn", "pinn"): Settings(
        {**_COMMON, "n_steps": 6000, "causal_chunks": 32, "causal_eps": 3.0,
         "boundary_weight": 1.0, "lr": 1e-3, "lr_final": 1e-5},
        dict(_PINN), origin=f"{_BENCH}, Allen-Cahn (causal): relative L2 0.734 in 48 s"),
    ("flow_mixing", "pig"): Settings(
        {**_COMMON, "n_steps": 2000, "causal_chunks": 32, "causal_eps": 1.0,
         "boundary_weight": 100.0, "lr": 3e-2, "lr_final": 9e-3},
        {"n_gaussians": 1728, "sigma_init": 0.1, "mean_init": "grid"}, n_grid=41,
        origin=f"{_BENCH}, flow mixing (causal): relative L2 2.52e-2 in 192 s (41^3 grid)"),
    ("flow_mixing", "pinn"): Settings(
        {**_COMMON, "n_steps": 2000, "causal_chunks": 32, "causal_eps": 1.0,
         "boundary_weight": 1.0, "lr": 1e-2, "lr_final": None},
        dict(_PINN), n_grid=41,
        origin=f"{_BENCH}, flow mixing (causal): relative L2 0.123 in 14 s (41^3 grid)"),
}

#: Benchmarked problem arguments with settings of their own:
#: ``(problem, model, ((argument, value), ...)) -> Settings``. Other arguments get the
#: problem's row of :data:`DEFAULTS`.
VARIANTS: dict[tuple[str, str, tuple], Settings] = {
    ("helmholtz", "pig", (("a1", 10.0), ("a2", 10.0))): Settings(
        {**_COMMON, "n_steps": 2000, "boundary_weight": 100.0, "lr": 3e-3, "lr_final": 3e-5},
        {"n_gaussians": 6400, "sigma_init": 0.025, "mean_init": "grid", "cutoff": 5.0},
        origin=f"{_BENCH}, Helmholtz (10, 10): relative L2 8.74e-2 in 178 s"),
    ("helmholtz", "pinn", (("a1", 10.0), ("a2", 10.0))): Settings(
        {**_COMMON, "n_steps": 2000, "boundary_weight": 100.0, "lr": 1e-3, "lr_final": None},
        dict(_PINN), origin=f"{_BENCH}, Helmholtz (10, 10): relative L2 1.00 (the PINN fails "
                            "at every setting tried)"),
}

#: Arguments of the benchmarked problems, as :func:`default_settings` compares them.
_PROBLEM_DEFAULTS = {"helmholtz": {"a1": 4.0, "a2": 1.0}}


def _key(name: str) -> str:
    return name.replace("-", "_")


def default_settings(problem: str, model: str = "pig",
                     problem_kwargs: dict[str, Any] | None = None) -> Settings:
    """The default :class:`Settings` of ``problem`` (a ``PROBLEMS`` name; ``-`` or ``_``) and
    ``model`` (``"pig"``, ``"pinn"`` or ``"mlp"``), for the given problem arguments.

    A row of :data:`VARIANTS` applies when every one of its arguments equals the resolved
    problem argument (``problem_kwargs`` over the factory's benchmarked defaults); otherwise
    the problem's row of :data:`DEFAULTS`. Returns a deep copy, safe to modify.

    Raises
    ------
    ValueError
        For a problem or model without defaults.
    """
    name, kind = _key(problem), {"mlp": "pinn"}.get(model, model)
    if (name, kind) not in DEFAULTS:
        known = sorted({p for p, _ in DEFAULTS})
        raise ValueError(f"no default settings for problem {problem!r} and model {model!r}; "
                         f"problems: {known}, models: 'pig', 'pinn'")
    given = {**_PROBLEM_DEFAULTS.get(name, {}), **(problem_kwargs or {})}
    for (p, m, args), settings in VARIANTS.items():
        if p == name and m == kind and all(
                k in given and float(given[k]) == float(v) for k, v in args):
            return copy.deepcopy(settings)
    return copy.deepcopy(DEFAULTS[name, kind])


def _shown(value) -> str:
    if value is None:
        return "off"
    if isinstance(value, float | int) and not isinstance(value, bool):
        return f"{value:g}"
    if isinstance(value, tuple | list):
        return "x".join(str(v) for v in value)
    return str(value)


def help_table(key: str, *, source: str = "train", models: tuple[str, ...] = ("pig", "pinn"),
               missing: str = "off") -> str:
    """The default of ``key`` (a ``train`` or, with ``source="model"``, a model setting) per
    problem, for ``--help``: ``"helmholtz 2000, klein-gordon 2000, allen-cahn 6000, ..."``;
    one value when all problems share it; ``"pig: ...; pinn: ..."`` where the models differ
    (``missing`` where a row does not set ``key``, ``"off"`` for None)."""
    texts = {}
    for model in models:
        values = {p: (s.train if source == "train" else s.model).get(key, missing)
                  for (p, m), s in DEFAULTS.items() if m == model}
        if len(set(map(_shown, values.values()))) == 1:
            texts[model] = _shown(next(iter(values.values())))
        else:
            texts[model] = ", ".join(f"{p.replace('_', '-')} {_shown(v)}"
                                     for p, v in values.items())
    if len(set(texts.values())) == 1:
        return next(iter(texts.values()))
    return "; ".join(f"{model}: {text}" for model, text in texts.items())
