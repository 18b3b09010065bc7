r"""Physics-informed training (PIG and PINN) on small declarative PDE problems, in JAX.

A :class:`Problem` is a box, a pointwise PDE residual written with JAX derivatives of a scalar
function of one point, a list of :class:`Condition` s (boundary, initial, periodic, ...) and a
reference solution. :func:`train` minimises the physics-informed loss

.. math::

    \mathcal{L}(\theta) = \frac{1}{n_r}\sum_{j} \frac{\lvert \mathcal{R}[u_\theta](\mathbf{x}_j)
      \rvert^2}{s_r^2}
      + \lambda \sum_{c} \omega_c \frac{1}{n_c}\sum_{j}
        \lvert \mathcal{B}_c[u_\theta](\mathbf{x}^c_j) - g_c(\mathbf{x}^c_j)\rvert^2

(:math:`\lambda` = ``boundary_weight``, :math:`\omega_c` = ``Condition.weight``, :math:`s_r` =
``Problem.residual_scale``, 1 by default; optionally with causal weights over time, see
:mod:`surrogates.models.pinn.losses`, where the loss, :func:`diff` and the samplers live) for a
Physics-Informed Gaussians model or the plain-MLP PINN baseline of :mod:`operators.pig`, and
:func:`evaluate` scores the result on a grid by the relative L2 error
:math:`\lVert u_\theta - u_{\rm ref}\rVert_2 / \lVert u_{\rm ref}\rVert_2`.

Adding a PDE takes a few lines. For example :math:`-u'' = \pi^2 \sin(\pi x)` on
:math:`[0, 1]` with :math:`u(0) = u(1) = 0` (exact solution :math:`\sin(\pi x)`)::

    import jax.numpy as jnp
    import numpy as np
    from surrogates.models.pinn import Condition, Problem, boundary_sampler, diff, train

    poisson = Problem(
        name="poisson1d", lower=(0.0,), upper=(1.0,), coords=("x",),
        residual=lambda u, x: -diff(u, x, 0, 0) - jnp.pi**2 * jnp.sin(jnp.pi * x[0]),
        conditions=(Condition("dirichlet", points=np.array([[0.0], [1.0]])),),
        reference=lambda pts: np.sin(np.pi * pts[:, 0]),
    )
    result = train(poisson, "pig", n_steps=500, n_collocation=128,
                   model_kwargs={"n_gaussians": 16})

Conventions: one point is an array ``x`` of shape ``(d,)`` in the order of ``Problem.coords``;
time-dependent problems put time first (``("t", "x")``, ``("t", "x", "y")``). A residual may
return a scalar or a small vector (all entries are squared and averaged). Derivatives: use
:func:`diff` (nested forward-mode ``jax.jvp``, cheap in low dimensions; closed form for a
PIG, see :meth:`operators.pig.PIG.derivative`) or ``jax.grad`` / ``jax.hessian`` of ``u``.

The problems with reference solutions (Helmholtz, Klein-Gordon, Allen-Cahn, flow mixing) are in
:mod:`surrogates.models.pinn.problems`, their best training settings (the defaults of
``surrogates solve pig``) in :mod:`surrogates.models.pinn.defaults`. :class:`Problem` and
:class:`Condition` are defined in :mod:`surrogates.models.pinn.spec`, :class:`TrainResult`,
:func:`predict` and :func:`evaluate` in :mod:`surrogates.models.pinn.evaluation`; this module
re-exports them.

Precision: float32 by default; ``dtype="float64"`` runs the whole training inside
``with jax.enable_x64(True):`` (the global JAX configuration is never changed). Results are
reproducible: the same arguments and seed give bit-identical parameters on the same machine.

References
----------
.. [1] N. Kang, J. Oh, Y. Hong and E. Park, "PIG: Physics-Informed Gaussians as Adaptive
   Parametric Mesh Representations", ICLR 2025 (arXiv:2412.05994).
.. [2] M. Raissi, P. Perdikaris and G. E. Karniadakis, "Physics-informed neural networks",
   J. Comput. Phys. 378, 686-707, 2019.
.. [3] S. Wang, Y. Teng and P. Perdikaris, "Understanding and mitigating gradient flow
   pathologies in physics-informed neural networks", SIAM J. Sci. Comput. 43, A3055, 2021
   (Helmholtz and Klein-Gordon benchmarks).
.. [4] J. Cho, S. Nam, H. Yang, S.-B. Yun, Y. Hong and E. Park, "Separable physics-informed
   neural networks", NeurIPS 2023 (flow mixing).
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from operators.pig import MLP, PIG, model_to_dict
from surrogates.models.pinn.evaluation import EvalResult, TrainResult, evaluate, predict
from surrogates.models.pinn.losses import (
    boundary_sampler,
    diff,
    face_sampler,
    physics_loss,
    sample_batch,
    uniform_sampler,
)
from surrogates.models.pinn.spec import Condition, Problem, _check_points  # noqa: F401

__all__ = [
    "Condition",
    "EvalResult",
    "Problem",
    "TrainResult",
    "boundary_sampler",
    "diff",
    "evaluate",
    "face_sampler",
    "predict",
    "train",
    "uniform_sampler",
]

# ----------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------


def _make_model(problem: Problem, model, dtype: str, model_kwargs: dict | None):
    if isinstance(model, PIG | MLP):
        if model_kwargs:
            raise ValueError("model_kwargs only apply when model is given by name")
        if model.lower != problem.lower or model.upper != problem.upper:
            raise ValueError(
                f"the model's box {model.lower}..{model.upper} differs from the problem's "
                f"{problem.lower}..{problem.upper}"
            )
        return dataclasses.replace(model, dtype=dtype)
    kwargs = dict(model_kwargs or {})
    if "dtype" in kwargs:
        raise ValueError("give the precision as train(..., dtype=...), not in model_kwargs")
    if model == "pig":
        return PIG(problem.lower, problem.upper, dtype=dtype, **kwargs)
    if model in ("pinn", "mlp"):
        return MLP(problem.lower, problem.upper, dtype=dtype, **kwargs)
    raise ValueError(f"model must be 'pig', 'pinn' or a PIG/MLP instance, got {model!r}")


def _warn_overflow(net, params, step: int) -> None:
    """Warn when a PIG with a cut-off drops Gaussians from a full neighbour list."""
    if getattr(net, "cutoff", None) is None:
        return
    over = net.neighbour_overflow(params)
    if over:
        warnings.warn(
            f"step {step}: the fullest cell of the PIG's neighbour grid overlaps {over} more "
            f"Gaussians than its list holds (neighbours={net.neighbours}); they are left out "
            "there. Pass a larger model_kwargs['neighbours'].", RuntimeWarning, stacklevel=3)


def train(
    problem: Problem,
    model: str | PIG | MLP = "pig",
    *,
    n_steps: int = 1000,
    n_collocation: int = 1024,
    resample: bool = True,
    optimizer: str = "adam",
    lr: float | None = None,
    lr_final: float | None = None,
    seed: int = 0,
    boundary_weight: float = 1.0,
    causal_chunks: int | None = None,
    causal_eps: float = 1.0,
    dtype: str = "float32",
    model_kwargs: dict | None = None,
    eval_every: int | None = None,
    n_eval: int = 4096,
    progress: bool | None = None,
) -> TrainResult:
    r"""Fit a PIG or PINN to ``problem`` by minimising the physics-informed loss.

    Loss: mean squared residual at ``n_collocation`` points uniform in the box, plus
    ``boundary_weight`` :math:`\times` ``Condition.weight`` :math:`\times` the mean squared
    error of each condition (module docstring). One step -- sampling the points (when
    ``resample``), the loss, its gradient and the optimizer update -- is a single
    ``jax.jit``-compiled function.

    Parameters
    ----------
    problem : Problem
    model : {"pig", "pinn"} or PIG or MLP, default "pig"
        A name builds the model on the problem's box with ``model_kwargs`` (see
        :class:`operators.pig.PIG`, :class:`operators.pig.MLP`); an instance must have the
        problem's box (its ``dtype`` is replaced by ``dtype``).
    n_steps : int, default 1000
        Optimizer steps (L-BFGS: iterations, each with its own line search).
    n_collocation : int, default 1024
        Residual points per step.
    resample : bool, default True
        Draw new collocation and condition points at every step (from a PRNG key split off
        the seed); otherwise draw them once.
    optimizer : {"adam", "lbfgs"}, default "adam"
        ``optax.adam(lr)``, or ``optax.lbfgs`` with its zoom line search (``lr`` None: step
        length from the line search alone). With resampling, each L-BFGS iteration sees new
        points; its curvature pairs then mix batches, which works in practice (the PIG paper
        trains Helmholtz so) but is not monotone.
    lr : float, optional
        Learning rate; default 1e-2 for PIG and 1e-3 for the PINN with Adam, None for L-BFGS.
    lr_final : float, optional
        Adam only: decay the learning rate exponentially from ``lr`` at the first step to
        ``lr_final`` at the last, :math:`\eta_i = \eta_0 (\eta_{\rm final}/\eta_0)^{i/n}`;
        None keeps it constant. A decaying rate removes the noise floor that resampled points
        and a constant step leave on the final error.
    seed : int, default 0
        Seeds the initialisation, the points and the evaluation points.
    boundary_weight : float, default 1.0
        :math:`\lambda`, ``>= 0``.
    causal_chunks : int, optional
        Causal training (Wang, Sankaran & Perdikaris 2022; :mod:`surrogates.models.pinn.losses`):
        weight the residual of ``causal_chunks`` equal time chunks by
        :math:`w_i = \exp(-\varepsilon \sum_{k<i} \mathcal{L}_k)`. Needs time as the first
        coordinate (``Problem.coords[0] == "t"``). None: plain mean residual.
    causal_eps : float, default 1.0
        :math:`\varepsilon > 0` of the causal weights.
    dtype : {"float32", "float64"}, default "float32"
    model_kwargs : dict, optional
        Constructor arguments of the model (e.g. ``{"n_gaussians": 800, "sigma_init": 0.1}``).
    eval_every : int, optional
        Steps between error evaluations; default ``max(1, n_steps // 20)``.
    n_eval : int, default 4096
        Fixed random points (uniform in the box) for the error history; 0 disables it.
    progress : bool, optional
        tqdm progress bar; default on only when stderr is a terminal.

    Returns
    -------
    TrainResult

    Raises
    ------
    ValueError
        On an unknown model or optimizer name, non-positive sizes, negative weights, a bad
        dtype, a model whose box differs from the problem's, or a non-finite loss.
    """
    if not isinstance(problem, Problem):
        raise ValueError(f"problem must be a Problem, got {type(problem).__name__}")
    for name, v, lo in (("n_steps", n_steps, 1), ("n_collocation", n_collocation, 1),
                        ("n_eval", n_eval, 0), ("seed", seed, 0)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    if optimizer not in ("adam", "lbfgs"):
        raise ValueError(f"optimizer must be 'adam' or 'lbfgs', got {optimizer!r}")
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    if not (math.isfinite(boundary_weight) and boundary_weight >= 0):
        raise ValueError(f"boundary_weight must be finite and >= 0, got {boundary_weight!r}")
    for name, v in (("lr", lr), ("lr_final", lr_final)):
        if v is not None and not (math.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be finite and > 0, got {v!r}")
    if causal_chunks is not None:
        if isinstance(causal_chunks, bool) or not isinstance(causal_chunks, int | np.integer) \
                or causal_chunks < 1:
            raise ValueError(f"causal_chunks must be a positive integer, got {causal_chunks!r}")
        if problem.coords[0] != "t":
            raise ValueError(
                f"causal weights need time as the first coordinate, but problem "
                f"{problem.name!r} has coordinates {problem.coords}")
    if not (math.isfinite(causal_eps) and causal_eps > 0):
        raise ValueError(f"causal_eps must be finite and > 0, got {causal_eps!r}")
    if lr_final is not None and optimizer != "adam":
        raise ValueError("lr_final (a decaying learning rate) applies to optimizer='adam' only")
    eval_every = max(1, n_steps // 20) if eval_every is None else eval_every
    if isinstance(eval_every, bool) or not isinstance(eval_every, int) or eval_every < 1:
        raise ValueError(f"eval_every must be a positive integer, got {eval_every!r}")
    net = _make_model(problem, model, dtype, model_kwargs)
    if lr is None and optimizer == "adam":
        lr = 1e-2 if isinstance(net, PIG) else 1e-3
    if optimizer == "adam":
        schedule = lr if lr_final is None else optax.exponential_decay(
            lr, transition_steps=n_steps, decay_rate=lr_final / lr)
        opt = optax.adam(schedule)
    else:
        opt = optax.lbfgs(learning_rate=lr)
    config = {"problem": problem.name, "model": model_to_dict(net), "n_steps": n_steps,
              "n_collocation": n_collocation, "resample": resample, "optimizer": optimizer,
              "lr": lr, "lr_final": lr_final, "seed": seed, "boundary_weight": boundary_weight,
              "causal_chunks": causal_chunks, "causal_eps": causal_eps,
              "dtype": dtype, "eval_every": eval_every, "n_eval": n_eval}

    eval_pts = np.random.default_rng(seed).uniform(problem.lower, problem.upper,
                                                   size=(n_eval, problem.dim))
    u_ref = problem.reference(eval_pts) if (n_eval and problem.reference is not None) else None
    show = sys.stderr.isatty() if progress is None else bool(progress)

    with jax.enable_x64(dtype == "float64"):
        jd = jnp.dtype(dtype)
        loss = physics_loss(problem, net, boundary_weight, causal_chunks, causal_eps)
        k_init, k_pts = jax.random.split(jax.random.key(seed))
        params = net.init(k_init)
        opt_state = opt.init(params)
        batch0 = sample_batch(problem, k_pts, n_collocation, jd)

        @jax.jit
        def step(params, opt_state, key, batch):
            key, sub = jax.random.split(key)
            if resample:
                batch = sample_batch(problem, sub, n_collocation, jd)

            def value_fn(p):
                return loss(p, batch)

            value, grads = jax.value_and_grad(value_fn)(params)
            if optimizer == "lbfgs":
                updates, opt_state = opt.update(grads, opt_state, params, value=value,
                                                grad=grads, value_fn=value_fn)
            else:
                updates, opt_state = opt.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, key, value

        predict_fn = jax.jit(jax.vmap(net.apply, in_axes=(None, 0)))
        eval_x = jnp.asarray(eval_pts, jd)

        def rel_err(p):
            if u_ref is None:
                return float("nan")
            pred = np.asarray(predict_fn(p, eval_x), np.float64)
            return float(np.linalg.norm(pred - u_ref) / np.linalg.norm(u_ref))

        losses, eval_steps, errs = [], [0], []
        t0 = time.perf_counter()
        errs.append(rel_err(params))
        key = k_pts
        desc = f"{problem.name}/{type(net).__name__}"
        bar = tqdm(range(1, n_steps + 1), disable=not show, desc=desc)
        for i in bar:
            params, opt_state, key, value = step(params, opt_state, key, batch0)
            losses.append(value)
            if i % eval_every == 0 or i == n_steps:
                lv = float(value)
                if not math.isfinite(lv):
                    raise ValueError(
                        f"loss became non-finite ({lv}) by step {i}; lower lr (now {lr}) or "
                        "use dtype='float64'"
                    )
                eval_steps.append(i)
                errs.append(rel_err(params))
                _warn_overflow(net, params, i)
                bar.set_postfix(loss=f"{lv:.3e}", rel_l2=f"{errs[-1]:.3e}")
        loss_arr = np.asarray(jax.device_get(jnp.stack(losses)), np.float64)
        wall = time.perf_counter() - t0
        params_np = jax.tree_util.tree_map(np.asarray, jax.device_get(params))
    history = {"step": np.arange(n_steps), "loss": loss_arr,
               "eval_step": np.asarray(eval_steps), "rel_l2": np.asarray(errs)}
    return TrainResult(params_np, net, problem.name, history, wall, config)
