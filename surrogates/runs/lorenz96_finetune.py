r"""A-posteriori fine-tuning of a Lorenz-96 closure through unrolled hybrid steps.

Offline ("a-priori") training fits the closure :math:`c_\theta(X)` to the subgrid forcing at
single instants. Inside the hybrid model its errors feed back through the dynamics, so a closure
with a good offline score can still drift or blow up. A-posteriori training minimises the error
of the hybrid trajectory itself over a short window of ``n_frames`` saved frames:

.. math::

    \mathcal{L}(\theta) = \frac{1}{n K} \sum_{m=1}^{n} \big\| \Phi_\theta^{(m)}(X(t_0); F)
    - X(t_0 + m\,\Delta t_{save}) \big\|^2,

where :math:`\Phi_\theta^{(m)}` is ``m`` frames of :class:`operators.mno.HybridLorenz96`
(``substeps`` RK4 or Euler steps of ``dt`` per frame, :math:`\Delta t_{save}` = ``substeps * dt``),
differentiated through every step (backpropagation through time). Windows start at every
``stride``-th frame of the training trajectories; the validation split scores the same loss.

It starts from a trained closure run folder and writes a new run folder whose ``model.pt`` is the
fine-tuned closure (so ``surrogates evaluate`` and ``surrogates export`` treat it as any closure
run); the unrolled model's checkpoints and history are in its ``unrolled/`` subfolder.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from operators.base import OperatorModel, build, load_model, save_model
from operators.mno import HybridLorenz96
from surrogates.data.common import (
    PairDataset,
    dataset_config,
    open_netcdf,
    split_samples,
)
from surrogates.runs.folder import prepare_run_dir, write_run_config
from surrogates.runs.operators import DataSpec, load_run
from surrogates.training import MODEL_NAME, TrainConfig, TrainResult, fit

#: Default optimisation: a short, gentle fine-tuning of an already trained closure, as in
#: benchmarks/mno_lorenz96.py (2 epochs, batch 64, lr 3e-4, MSE).
DEFAULT_TRAIN = TrainConfig(epochs=2, batch_size=64, lr=3e-4, loss="mse")

#: Closure classes that can be fine-tuned (they have trainable weights and no history).
TRAINABLE_CLOSURES = ("MNOClosure", "LocalMLPClosure", "PolynomialClosure")


@dataclass(frozen=True)
class UnrollConfig:
    """The window the hybrid is unrolled over.

    Attributes
    ----------
    n_frames : int
        Saved frames predicted per window (the unroll length).
    dt_factor : int
        Hybrid step = ``dt_factor`` times the data's solver ``dt``; must divide the data's
        ``save_every`` (``substeps = save_every / dt_factor`` steps per frame).
    scheme : {"rk4", "euler"}
    stride : int
        Frames between the starts of consecutive windows.
    """

    n_frames: int = 4
    dt_factor: int = 10
    scheme: str = "rk4"
    stride: int = 5

    def __post_init__(self):
        for name in ("n_frames", "dt_factor", "stride"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.scheme not in ("rk4", "euler"):
            raise ValueError(f"scheme must be 'rk4' or 'euler', got {self.scheme!r}")


class UnrolledHybrid(OperatorModel):
    r"""The hybrid model unrolled over ``n_frames`` frames, as a trainable operator.

    ``forward(x)`` takes ``x (B, 2, K)``: channel 0 is :math:`X(t_0)`, channel 1 the forcing
    ``F`` (constant along ``k``), and returns the hybrid's frames :math:`X(t_0 + m\,\Delta
    t_{save})`, ``m = 1 .. n_frames``, as ``(B, n_frames, K)`` (units of ``X``).

    Parameters
    ----------
    closure_class : str
        Registered closure class (e.g. ``"MNOClosure"``).
    closure_config : dict
        Its constructor arguments.
    dt : float
        Hybrid step in model time units.
    substeps : int
        Hybrid steps per saved frame.
    n_frames : int
        Frames predicted.
    scheme : {"rk4", "euler"}
    """

    def __init__(self, *, closure_class: str, closure_config: dict[str, Any], dt: float,
                 substeps: int, n_frames: int, scheme: str = "rk4") -> None:
        super().__init__()
        self.hybrid = HybridLorenz96(build(closure_class, closure_config))
        if self.hybrid.history:
            raise ValueError("closures with history cannot be fine-tuned a posteriori yet")
        self.dt, self.substeps, self.n_frames, self.scheme = dt, substeps, n_frames, scheme

    @property
    def closure(self) -> torch.nn.Module:
        """The closure being trained."""
        return self.hybrid.closure

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3 or x.shape[1] != 2:
            raise ValueError(f"UnrolledHybrid expects (B, 2, K) = (X(t0), F), got "
                             f"{tuple(x.shape)}")
        frames = self.hybrid.rollout(x[:, 0], x[:, 1, 0], self.dt, self.n_frames * self.substeps,
                                     save_every=self.substeps, scheme=self.scheme)
        return frames[:, 1:]


def unrolled_windows(ds: xr.Dataset, samples: np.ndarray, n_frames: int, stride: int
                     ) -> PairDataset:
    """Windows ``((X(t0), F), X(t0 + 1 .. t0 + n_frames))`` of the given samples (float32).

    Returns a :class:`~surrogates.data.common.PairDataset` with inputs ``(N, 2, K)`` and targets
    ``(N, n_frames, K)``, windows starting at frames ``0, stride, 2 stride, ...``.
    """
    X = ds["X"].isel(sample=samples).transpose("sample", "time", "k").values
    F = np.broadcast_to(ds["F"].isel(sample=samples).values, (len(samples),))
    starts = np.arange(0, X.shape[1] - n_frames, stride)
    if len(starts) == 0:
        raise ValueError(f"trajectories of {X.shape[1]} frames are too short for windows of "
                         f"{n_frames} frames")
    inputs = np.stack([np.stack([X[:, s], np.broadcast_to(F[:, None], X[:, s].shape)], axis=1)
                       for s in starts], axis=1).reshape(-1, 2, X.shape[2])
    targets = np.stack([X[:, s + 1:s + 1 + n_frames] for s in starts],
                       axis=1).reshape(-1, n_frames, X.shape[2])
    return PairDataset(torch.as_tensor(inputs, dtype=torch.float32),
                       torch.as_tensor(targets, dtype=torch.float32))


def finetune_closure(source_run: str | os.PathLike, run_dir: str | os.PathLike, *,
                     unroll: UnrollConfig = UnrollConfig(),
                     train_config: TrainConfig | None = None,
                     data_path: str | os.PathLike | None = None, overwrite: bool = False,
                     resume: bool = False) -> TrainResult:
    """Fine-tune the closure of ``source_run`` through unrolled hybrid steps into ``run_dir``.

    Parameters
    ----------
    source_run : path-like
        A closure run folder (``surrogates train mno | local-mlp | polynomial``).
    run_dir : path-like
        New run folder: ``model.pt`` is the fine-tuned closure, ``run_config.json`` records the
        source run, the unroll window and the optimisation; ``unrolled/`` holds the checkpoints.
    unroll : UnrollConfig
    train_config : TrainConfig, optional
        Optimisation of the window loss (default :data:`DEFAULT_TRAIN`: 5 epochs of Adam at
        3e-4, MSE).
    data_path : path-like, optional
        Dataset of trajectories (default: the source run's); split with the source run's
        fractions and seed, so the test trajectories stay unseen.
    overwrite, resume : bool
        Replace an existing ``run_dir`` / continue it from its checkpoint.

    Returns
    -------
    TrainResult
        The history of the window loss (units of ``X`` squared with ``loss="mse"``).

    Raises
    ------
    ValueError
        If the source run is not a trainable closure, or the data's ``save_every`` is not a
        multiple of ``unroll.dt_factor``.
    """
    train_config = train_config or DEFAULT_TRAIN
    closure, source = load_run(source_run)
    if source["model_class"] not in TRAINABLE_CLOSURES:
        raise ValueError(f"{source_run} holds a {source['model_class']}; a-posteriori "
                         f"fine-tuning takes one of {', '.join(TRAINABLE_CLOSURES)}")
    spec = DataSpec(**source["data"])
    if data_path is not None:
        spec = dataclasses.replace(spec, path=str(data_path))
    ds = open_netcdf(spec.path)
    data_config = dataset_config(ds)
    save_every = int(data_config["save_every"])
    if save_every % unroll.dt_factor:
        raise ValueError(f"dt_factor {unroll.dt_factor} must divide the data's save_every "
                         f"{save_every}")
    run_dir = Path(run_dir)
    prepare_run_dir(run_dir, overwrite, resume)
    model = UnrolledHybrid(closure_class=source["model_class"],
                           closure_config=source["model_config"],
                           dt=float(data_config["dt"]) * unroll.dt_factor,
                           substeps=save_every // unroll.dt_factor, n_frames=unroll.n_frames,
                           scheme=unroll.scheme)
    model.closure.load_state_dict(closure.state_dict())
    splits = split_samples(ds.sizes["sample"], spec.fractions, seed=spec.split_seed)
    train, validation = (unrolled_windows(ds, splits[name], unroll.n_frames, unroll.stride)
                         for name in ("train", "validation"))
    (run_dir / "unrolled").mkdir(exist_ok=True)
    result = fit(model, train, validation, train_config, run_dir / "unrolled", resume=resume)
    save_model(load_model(run_dir / "unrolled" / MODEL_NAME).closure, run_dir / MODEL_NAME)
    write_run_config(run_dir, "closure", {
        "model_class": source["model_class"], "model_config": source["model_config"],
        "data": dataclasses.asdict(spec), "train": dataclasses.asdict(train_config),
        "a_posteriori": {"source_run": str(source_run), **dataclasses.asdict(unroll),
                         "best_epoch": result.best_epoch,
                         "best_validation_loss": result.best_validation_loss}})
    return result
