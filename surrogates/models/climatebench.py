r"""ClimateBench emulators: linear pattern scaling, a PCA + Gaussian-process emulator and an FNO
ensemble (run folders and scores: :mod:`surrogates.runs.climatebench`).

Every emulator maps the forcers of an experiment (an :func:`~surrogates.data.climatebench.
open_experiment` dataset: ``CO2, CH4 (time)``, ``SO2, BC (time, lat, lon)``) to the four output
fields on ``(time, lat, lon)`` (member means), and follows one interface:

* ``fit(train)`` with ``train`` a mapping experiment -> dataset (inputs and outputs);
* ``predict(inputs) -> xarray.Dataset`` (``predict(inputs, return_std=True)`` also returns a
  dataset of predictive standard deviations where the model has one);
* ``save(run_dir)`` and ``load(run_dir)`` without pickle (NumPy ``.npz``, JSON, torch
  ``state_dict``\ s read with ``weights_only=True``).

"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from surrogates.data.climatebench import (
    MAP_INPUTS,
    OUTPUT_UNITS,
    OUTPUT_VARIABLES,
    global_mean,
    member_mean,
)
from surrogates.data.common import PairDataset, load_npz
from surrogates.models.gp import BatchedExactGP


# --------------------------------------------------------------------------------- data tables
@dataclass
class ClimateTable:
    """Training examples (one per experiment-year, outputs averaged over members) as arrays."""

    co2: np.ndarray  # (n,)
    ch4: np.ndarray  # (n,)
    maps: np.ndarray  # (n, 2, lat, lon): SO2, BC
    outputs: np.ndarray  # (n, 4, lat, lon) in OUTPUT_VARIABLES order
    experiment: np.ndarray  # (n,) names
    year: np.ndarray  # (n,)
    lat: np.ndarray
    lon: np.ndarray


def input_arrays(ds: xr.Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(CO2 (n,), CH4 (n,), maps (n, 2, lat, lon))`` of an experiment's forcers, loaded."""
    missing = [v for v in ("CO2", "CH4", *MAP_INPUTS) if v not in ds]
    if missing:
        raise ValueError(f"the inputs lack {missing}; they have {sorted(ds.data_vars)}")
    maps = np.stack([ds[v].transpose("time", "lat", "lon").values for v in MAP_INPUTS], axis=1)
    return ds["CO2"].values.astype(float), ds["CH4"].values.astype(float), maps.astype(float)


def stack_experiments(datasets: Mapping[str, xr.Dataset]) -> ClimateTable:
    """Concatenate experiments into a :class:`ClimateTable` (member means of the outputs)."""
    if not datasets:
        raise ValueError("no training experiments given")
    parts: dict[str, list] = {k: [] for k in ("co2", "ch4", "maps", "outputs", "exp", "year")}
    lat = lon = None
    for name, ds in datasets.items():
        ds = member_mean(ds)
        co2, ch4, maps = input_arrays(ds)
        outputs = np.stack([ds[v].transpose("time", "lat", "lon").values
                            for v in OUTPUT_VARIABLES], axis=1)
        if lat is None:
            lat, lon = ds["lat"].values, ds["lon"].values
        elif outputs.shape[-2:] != (lat.size, lon.size):
            raise ValueError(f"experiment {name} has grid {outputs.shape[-2:]}, the others "
                             f"{(lat.size, lon.size)}")
        for key, value in (("co2", co2), ("ch4", ch4), ("maps", maps), ("outputs", outputs),
                           ("exp", np.full(co2.size, name)), ("year", ds["time"].values)):
            parts[key].append(value)
    cat = {k: np.concatenate(v) for k, v in parts.items()}
    return ClimateTable(cat["co2"], cat["ch4"], cat["maps"], cat["outputs"], cat["exp"],
                        cat["year"], lat, lon)


def _as_dataset(fields: np.ndarray, inputs: xr.Dataset, suffix: str = "") -> xr.Dataset:
    """``(n_t, 4, lat, lon)`` -> dataset of the outputs on the inputs' coordinates."""
    coords = {"time": inputs["time"].values, "lat": inputs["lat"].values,
              "lon": inputs["lon"].values}
    return xr.Dataset({v: (("time", "lat", "lon"), fields[:, i],
                           {"units": OUTPUT_UNITS[v], "long_name": f"emulated {v}{suffix}"})
                       for i, v in enumerate(OUTPUT_VARIABLES)}, coords=coords)


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    np.savez(path, **{k: np.asarray(v) for k, v in arrays.items()})


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    return load_npz(path, "fitted parameters")


# ------------------------------------------------------------------------------ pattern scaling
class PatternScaling:
    r"""Linear pattern scaling (Mitchell 2003; ClimateBench's strongest tas baseline).

    Two linear regressions on the training experiments, fitted by least squares:

    .. math::

        \hat T(t) = a + b\, \mathrm{CO_2}(t), \qquad
        \hat y_v(t, x) = c_v(x) + d_v(x)\, \hat T(t),

    the first from cumulative CO2 emissions (GtCO2) to the global-mean tas :math:`T` (K), the
    second per grid cell and output variable on the training experiments' global-mean tas. A
    prediction uses only CO2: it never sees the target experiment's temperature.
    """

    name = "pattern-scaling"

    def __init__(self) -> None:
        self.coef_: dict[str, np.ndarray] | None = None

    def fit(self, train: Mapping[str, xr.Dataset]) -> PatternScaling:
        """Fit both regressions on the training experiments (member means)."""
        table = stack_experiments(train)
        t_global = global_mean(table.outputs[:, 0], table.lat)
        b, a = np.polyfit(table.co2, t_global, 1)
        design = np.stack([np.ones_like(t_global), t_global], axis=1)
        coef, *_ = np.linalg.lstsq(design, table.outputs.reshape(len(t_global), -1), rcond=None)
        shape = table.outputs.shape[1:]
        self.coef_ = {"a": np.array(a), "b": np.array(b), "intercept": coef[0].reshape(shape),
                      "slope": coef[1].reshape(shape), "lat": table.lat, "lon": table.lon}
        return self

    def _check(self) -> dict[str, np.ndarray]:
        if self.coef_ is None:
            raise ValueError("the emulator is not fitted: call fit(train) or load(run_dir)")
        return self.coef_

    def global_tas(self, co2) -> np.ndarray:
        """:math:`\\hat T = a + b\\, \\mathrm{CO_2}` in K for cumulative CO2 in GtCO2."""
        c = self._check()
        return c["a"] + c["b"] * np.asarray(co2, dtype=float)

    def predict(self, inputs: xr.Dataset) -> xr.Dataset:
        """Output fields ``(time, lat, lon)`` from the CO2 series of ``inputs``."""
        c = self._check()
        t_hat = self.global_tas(inputs["CO2"].values)
        fields = c["intercept"][None] + c["slope"][None] * t_hat[:, None, None, None]
        return _as_dataset(fields, inputs)

    def save(self, run_dir: str | os.PathLike) -> None:
        _save_npz(Path(run_dir) / "pattern_scaling.npz", **self._check())

    @classmethod
    def load(cls, run_dir: str | os.PathLike, config: Mapping[str, Any] | None = None
             ) -> PatternScaling:
        model = cls()
        model.coef_ = _load_npz(Path(run_dir) / "pattern_scaling.npz")
        return model


# ---------------------------------------------------------------------------- Gaussian process
#: leave-out calibrations of :class:`ClimateGPConfig`
CALIBRATIONS = ("experiment", "loo", "none")


@dataclass
class ClimateGPConfig:
    """Settings of :class:`ClimateGP`.

    Attributes
    ----------
    n_aerosol_pcs : int
        Principal components kept of each aerosol map (SO2, BC).
    n_output_pcs : int
        Principal components kept of each output variable.
    iterations : int
        Optimiser iterations on the exact marginal likelihood (L-BFGS iterations, or Adam
        steps with ``optimizer="adam"``).
    lr : float
        Adam learning rate (``optimizer="adam"`` only).
    optimizer : {"adam", "lbfgs"}
        ``"adam"`` (default) at ``lr`` = 0.05 for ``iterations`` steps, or ``"lbfgs"``
        (strong-Wolfe line search), which converges the marginal likelihood in a few dozen
        iterations. Measured on the demo's synthetic grid (16 x 24, stride 2, 100 iterations,
        ssp245 2080-2100; ``calibration="experiment"`` for both): Adam gave total NRMSE tas
        0.118, pr 0.511, pr90 0.386 and 90 % coverage 0.90-0.95 in 27 s; L-BFGS 0.156, 0.756,
        0.670 and 0.87-0.92 in 34 s, and 5x the fit time at 24 x 32 (the higher likelihood
        overfits the scores of the six training scenarios). With too few Adam steps (60 from
        the default start) the noise-dominated score GPs still interpolate their noise
        (amplitudes 4-6 on unit-variance scores, log marginal likelihood 200-300 nats below
        the optimum) and the 90 % intervals cover 0.98-0.99: the leave-one-experiment-out
        ``calibration`` corrects that amplitude.
    train_stride : int
        Use every ``train_stride``-th training year (exact GPs cost O(n^3)).
    seed : int
    truncation_variance : bool
        Add the per-cell PCA truncation residual variance of the training fields to the
        predictive variance (:class:`ClimateGP`); False: the GP variance inside the PC subspace
        only, which under-covers (the truncation error is 31-58 % of the test MSE).
    calibration : {"experiment", "loo", "none"}
        Leave-out rescaling of each score GP's amplitudes and noise after the fit
        (:meth:`surrogates.models.gp.BatchedExactGP.calibrate_amplitude`, method
        ``"marginal"``: the per-year leave-out z-scores get unit variance).
        ``"experiment"`` (default) leaves out one training experiment at a time, like the test,
        which is a scenario the GP has not seen. ``"loo"`` leaves out one year at a time.
        ``"none"`` keeps the marginal-likelihood fit. With fewer than two training experiments,
        ``"experiment"`` does nothing.
    """

    n_aerosol_pcs: int = 5
    n_output_pcs: int = 5
    iterations: int = 150
    lr: float = 0.05
    optimizer: str = "adam"
    train_stride: int = 1
    seed: int = 0
    truncation_variance: bool = True
    calibration: str = "experiment"

    def __post_init__(self):
        for name in ("n_aerosol_pcs", "n_output_pcs", "iterations", "train_stride"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.optimizer not in ("lbfgs", "adam"):
            raise ValueError(f"optimizer must be 'lbfgs' or 'adam', got {self.optimizer!r}")
        if self.calibration not in CALIBRATIONS:
            raise ValueError(f"calibration must be one of {CALIBRATIONS}, got "
                             f"{self.calibration!r}")


def _pca(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and the first ``k`` principal directions ``(k, features)`` of rows ``x``."""
    from sklearn.decomposition import PCA

    k = min(k, x.shape[0], x.shape[1])
    pca = PCA(n_components=k, svd_solver="full").fit(x)
    return pca.mean_, pca.components_


def _old_state_hyperparameters(state: Mapping[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """Hyperparameters of a run folder written before :class:`BatchedExactGP` (``gp_state.pt``:
    gpytorch's default softplus constraints, noise >= 1e-4, ``ScaleKernel(Linear)``)."""
    def soft(key):
        return torch.nn.functional.softplus(state[key]).double().numpy()

    return {"lengthscale": soft("covar_module.kernels.0.base_kernel.raw_lengthscale")[:, 0],
            "outputscale": soft("covar_module.kernels.0.raw_outputscale"),
            "noise": soft("likelihood.noise_covar.raw_noise")[:, 0] + 1e-4,
            "linear_variance": soft("covar_module.kernels.1.raw_outputscale")
            * soft("covar_module.kernels.1.base_kernel.raw_variance")[:, 0, 0],
            "mean_constant": state["mean_module.raw_constant"].double().numpy()}


class ClimateGP:
    r"""Gaussian-process emulator on PCA-reduced inputs and outputs (after ClimateBench's GP).

    Design:

    * inputs per year: CO2, CH4 and the first ``n_aerosol_pcs`` principal-component scores of
      the SO2 and BC maps (PCA fitted on the training years), each standardised;
    * outputs: the member-mean maps of each variable, reduced by PCA to ``n_output_pcs`` scores
      per variable, each standardised; reconstruction
      :math:`\hat y_v(x) = \mu_v(x) + \sum_k s_{vk} z_{vk} e_{vk}(x)`;
    * one exact GP per output score (:class:`surrogates.models.gp.BatchedExactGP`, each with its
      own hyperparameters, one restart), prior mean constant, kernel
      :math:`\sigma_1^2 k_{5/2}(r) + v\, x^\top x'` (ARD Matern-5/2 plus linear, so forcing
      trends extrapolate linearly), Gaussian noise, fitted by L-BFGS (``iterations``; or Adam,
      ``optimizer="adam"``) on the exact marginal likelihood in float64, with exact Cholesky
      solves at every size (gpytorch's conjugate-gradient path let the noise collapse,
      REFERENCES.md). An unconverged fit is not a neutral approximation: it leaves the
      noise-dominated scores interpolated with a large amplitude, and the intervals too wide
      (:class:`ClimateGPConfig`, ``optimizer``);
    * leave-one-experiment-out amplitude calibration (``calibration``): each score GP's
      amplitudes and noise are scaled by one factor, so that its leave-out z-scores on the
      training years have unit variance. The mean does not change;
    * predictive variance per cell, from independent scores plus the PCA truncation residual:

      .. math::

          \mathrm{Var}\,\hat y_v(x) = \sum_k s_{vk}^2 \sigma_{vk}^2 e_{vk}(x)^2
              + \rho_v(x), \qquad
          \rho_v(x) = \frac1n \sum_{i=1}^n \Big(y_{iv}(x) - \mu_v(x)
              - \sum_k z_{ivk} s_{vk} e_{vk}(x)\Big)^2,

      :math:`\sigma_{vk}^2` the GP predictive variance of score :math:`k` (noise included) and
      :math:`\rho_v` the mean squared residual of projecting the ``n`` training fields onto
      their ``n_output_pcs`` components (units of the output squared). The GP cannot see the
      part of a field outside the PC subspace, so without :math:`\rho_v`
      (``truncation_variance=False``) the intervals miss it. :math:`\rho_v` is an in-sample
      estimate (the PCA was fitted on these fields), so it slightly underestimates the
      truncation error of new fields.
    """

    name = "climate-gp"

    def __init__(self, config: ClimateGPConfig | None = None) -> None:
        self.config = config or ClimateGPConfig()
        self.params_: dict[str, np.ndarray] | None = None
        self._gp: BatchedExactGP | None = None

    def _features(self, co2, ch4, maps) -> np.ndarray:
        p = self.params_
        n = maps.shape[0]
        scores = [(maps[:, i].reshape(n, -1) - p[f"aer_mean_{i}"]) @ p[f"aer_comp_{i}"].T
                  for i in range(maps.shape[1])]
        x = np.concatenate([np.stack([co2, ch4], axis=1), *scores], axis=1)
        return (x - p["x_mean"]) / p["x_std"]

    def _gp_kwargs(self) -> dict[str, Any]:
        cfg = self.config
        return {"n_restarts": 1, "max_iter": cfg.iterations, "optimizer": cfg.optimizer,
                "lr": cfg.lr, "seed": cfg.seed, "min_noise": 1e-6, "mean": "constant",
                "linear": True}

    def fit(self, train: Mapping[str, xr.Dataset]) -> ClimateGP:
        """Fit the PCAs, the truncation residual variances and the GPs on the training
        experiments."""
        cfg = self.config
        table = stack_experiments(train)
        keep = np.arange(0, table.co2.size, cfg.train_stride)
        n = keep.size
        maps, outputs = table.maps[keep], table.outputs[keep]
        p: dict[str, np.ndarray] = {"lat": table.lat, "lon": table.lon}
        for i in range(maps.shape[1]):
            p[f"aer_mean_{i}"], p[f"aer_comp_{i}"] = _pca(maps[:, i].reshape(n, -1),
                                                          cfg.n_aerosol_pcs)
        p["x_mean"], p["x_std"] = np.zeros(1), np.ones(1)
        self.params_ = p
        raw = self._features(table.co2[keep], table.ch4[keep], maps)
        p["x_mean"], p["x_std"] = raw.mean(0), raw.std(0) + 1e-12
        x = (raw - p["x_mean"]) / p["x_std"]
        targets = []
        for v in range(outputs.shape[1]):
            flat = outputs[:, v].reshape(n, -1)
            mean, comp = _pca(flat, cfg.n_output_pcs)
            z = (flat - mean) @ comp.T
            p[f"out_mean_{v}"], p[f"out_comp_{v}"] = mean, comp
            p[f"out_resid_var_{v}"] = np.mean((flat - mean - z @ comp) ** 2, axis=0)
            p[f"out_scale_{v}"] = z.std(0) + 1e-12
            targets.append(z / p[f"out_scale_{v}"])
        y = np.concatenate(targets, axis=1)  # (n, n_scores)
        p["train_x"], p["train_y"] = x, y.T
        self._gp = BatchedExactGP(**self._gp_kwargs()).fit(x, y)
        groups = {"experiment": table.experiment[keep], "loo": np.arange(n)}.get(cfg.calibration)
        if groups is not None and np.unique(groups).size >= 2:
            p["calibration_factor"] = self._gp.calibrate_amplitude(groups, method="marginal")
        else:
            p["calibration_factor"] = np.ones(y.shape[1])
        return self

    def predict(self, inputs: xr.Dataset, return_std: bool = False):
        """Mean fields (and, with ``return_std``, predictive standard deviations) per year."""
        if self.params_ is None or self._gp is None:
            raise ValueError("the emulator is not fitted: call fit(train) or load(run_dir)")
        p = self.params_
        co2, ch4, maps = input_arrays(inputs)
        mean, std = self._gp.predict(self._features(co2, ch4, maps), return_std=True)
        n_t, shape = mean.shape[0], maps.shape[-2:]
        fields, stds, start = [], [], 0
        for v in range(len(OUTPUT_VARIABLES)):
            comp, scale = p[f"out_comp_{v}"], p[f"out_scale_{v}"]
            k = comp.shape[0]
            fields.append((p[f"out_mean_{v}"] + (mean[:, start:start + k] * scale) @ comp)
                          .reshape(n_t, *shape))
            s2 = (std[:, start:start + k] ** 2 * scale ** 2) @ comp ** 2
            if self.config.truncation_variance and f"out_resid_var_{v}" in p:
                s2 = s2 + p[f"out_resid_var_{v}"]
            stds.append(np.sqrt(s2).reshape(n_t, *shape))
            start += k
        out = _as_dataset(np.stack(fields, axis=1), inputs)
        if return_std:
            return out, _as_dataset(np.stack(stds, axis=1), inputs, " (predictive std)")
        return out

    def save(self, run_dir: str | os.PathLike) -> None:
        """Write ``gp_params.npz``: PCAs, standardisations and the GP's arrays (prefix
        ``gp_``)."""
        if self.params_ is None or self._gp is None:
            raise ValueError("nothing to save: the emulator is not fitted")
        gp = {f"gp_{k}": v for k, v in self._gp.get_arrays().items() if k not in ("X", "Y")}
        _save_npz(Path(run_dir) / "gp_params.npz", **self.params_, **gp)

    @classmethod
    def load(cls, run_dir: str | os.PathLike, config: Mapping[str, Any] | None = None
             ) -> ClimateGP:
        """Rebuild from ``gp_params.npz`` (and, for run folders written before the GP arrays
        were saved there, the gpytorch ``gp_state.pt``, read with ``weights_only=True``)."""
        run_dir = Path(run_dir)
        model = cls(ClimateGPConfig(**(config or {})))
        arrays = _load_npz(run_dir / "gp_params.npz")
        hyper = {k.removeprefix("gp_"): arrays.pop(k) for k in list(arrays)
                 if k.startswith("gp_")}
        if not hyper:
            state = torch.load(run_dir / "gp_state.pt", map_location="cpu", weights_only=True)
            hyper = _old_state_hyperparameters(state)
        model.params_ = arrays
        model._gp = BatchedExactGP.from_arrays(
            {"X": arrays["train_x"], "Y": arrays["train_y"].T, **hyper}, **model._gp_kwargs())
        return model


# ------------------------------------------------------------------------------- FNO ensemble
@dataclass
class ClimateFNOConfig:
    r"""Settings of :class:`FNOEnsembleEmulator` (the model is ``operators.fno.FNO``).

    Attributes
    ----------
    members : int
        Ensemble size M (member m is seeded ``seed + m``).
    window : int
        Years of aerosol maps per example (the target year and ``window - 1`` before it).
    n_modes : list of int
        Fourier modes along (lat, lon).
    hidden_channels, n_layers : int
    lat_padding : float
        Domain padding along latitude (not periodic); longitude is periodic.
    validation_fraction : float
        Training years held out (seeded, same for all members) for model selection.
    seed : int
    internal_variability : bool
        Add the internal variability of the member-mean target, :math:`\sigma^2(x) / M`, to
        the ensemble spread in ``predict(return_std=True)`` (:class:`FNOEnsembleEmulator`);
        False: the seed spread only, which covers 8-29 % of a 90 % interval.
    """

    members: int = 5
    window: int = 5
    n_modes: list[int] = dataclasses.field(default_factory=lambda: [12, 16])
    hidden_channels: int = 24
    n_layers: int = 3
    lat_padding: float = 0.25
    validation_fraction: float = 0.1
    seed: int = 0
    internal_variability: bool = True

    def __post_init__(self):
        for name in ("members", "window", "hidden_channels", "n_layers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        self.n_modes = [int(m) for m in self.n_modes]
        if len(self.n_modes) != 2:
            raise ValueError(f"n_modes needs two entries (lat, lon), got {self.n_modes}")
        if not 0 <= self.validation_fraction < 1:
            raise ValueError(f"validation_fraction must lie in [0, 1), got "
                             f"{self.validation_fraction}")


def window_inputs(co2: np.ndarray, ch4: np.ndarray, maps: np.ndarray, window: int) -> np.ndarray:
    r"""FNO input channels per year ``t``: SO2 and BC at :math:`t - w + 1, \dots, t`, then
    CO2(t) and CH4(t) broadcast as constant maps: ``(n_t, 2 w + 2, lat, lon)``.

    Years before the first of the experiment repeat its first maps (edge padding).
    """
    n_t = maps.shape[0]
    lagged = [maps[np.clip(np.arange(n_t) - lag, 0, None)] for lag in range(window)]
    channels = [lag[:, i] for i in range(maps.shape[1]) for lag in lagged]
    ones = np.ones(maps.shape[-2:])
    channels += [co2[:, None, None] * ones, ch4[:, None, None] * ones]
    return np.stack(channels, axis=1).astype(np.float32)


def internal_variance(datasets: Mapping[str, xr.Dataset]) -> tuple[np.ndarray, int]:
    r"""Internal variability of the outputs: the per-cell variance across members, pooled.

    .. math::

        \hat\sigma^2_v(x) = \frac{\sum_e \sum_t \sum_{m=1}^{M_e} (y_{etmv}(x)
            - \bar y_{etv}(x))^2}{\sum_e T_e (M_e - 1)},

    over the experiments :math:`e` with :math:`M_e \ge 2` members (years :math:`t`), in the
    outputs' units squared. A mean of :math:`M` members then scatters around the forced
    response with variance :math:`\hat\sigma^2_v(x) / M`.

    Returns
    -------
    variance : ndarray, shape (4, lat, lon)
        In ``OUTPUT_VARIABLES`` order; zeros when no experiment has two members.
    members : int
        The median member count :math:`M` of the experiments (1 without a ``member`` dim).
    """
    total, dof, counts = 0.0, 0, []
    for ds in datasets.values():
        m = ds.sizes.get("member", 1)
        counts.append(m)
        if m < 2:
            continue
        y = np.stack([ds[v].transpose("member", "time", "lat", "lon").values
                      for v in OUTPUT_VARIABLES], axis=2)  # (M, T, 4, lat, lon)
        total = total + np.sum((y - y.mean(0)) ** 2, axis=(0, 1))
        dof += y.shape[1] * (m - 1)
    if not counts:
        raise ValueError("no experiments given")
    if dof == 0:
        first = next(iter(datasets.values()))
        shape = (len(OUTPUT_VARIABLES), first.sizes["lat"], first.sizes["lon"])
        return np.zeros(shape), int(np.median(counts))
    return total / dof, int(np.median(counts))


class FNOEnsembleEmulator:
    r"""M Fourier neural operators with different seeds, plus the target's internal variability.

    Each member is ``operators.fno.FNO`` (built by :func:`operators.base.build` inside a
    :class:`~operators.normalization.NormalizedOperator`, so that it works in physical units
    and every channel is standardised on the training years) mapping :func:`window_inputs`
    to the four output fields of the window's last year, trained by
    :func:`surrogates.training.fit` (best validation checkpoint kept). Predictions: the member
    mean; :meth:`predict_members` gives all members.

    Uncertainty: the members differ by seed only, so their spread :math:`s^2_\text{ens}` is
    model uncertainty; the target, a mean of :math:`M` members of a chaotic climate, also
    scatters by the internal variability :math:`\hat\sigma^2 / M` (:func:`internal_variance`
    of the training experiments, saved as ``internal_variance.npz``), which no seed spread
    sees. ``predict(return_std=True)`` returns

    .. math::

        \mathrm{std}_v(t, x) = \sqrt{s^2_{\text{ens},v}(t, x) + \hat\sigma^2_v(x) / M}

    (the first term alone with ``internal_variability=False``).
    """

    name = "climate-fno"

    def __init__(self, config: ClimateFNOConfig | None = None, train_config=None) -> None:
        from surrogates.training import TrainConfig

        self.config = config or ClimateFNOConfig()
        self.train_config = train_config or TrainConfig(epochs=40, batch_size=16, lr=2e-3,
                                                        loss="mse", show_progress=False)
        self.models: list = []
        self.internal_variance_: np.ndarray | None = None
        self.target_members_ = 1

    def model_config(self, n_lat: int, n_lon: int) -> dict[str, Any]:
        cfg = self.config
        return {"model_class": "FNO", "model_config": {
            "in_channels": 2 * cfg.window + 2, "out_channels": len(OUTPUT_VARIABLES),
            "n_modes": [min(cfg.n_modes[0], n_lat), min(cfg.n_modes[1], n_lon)],
            "hidden_channels": cfg.hidden_channels, "n_layers": cfg.n_layers,
            "domain_padding": [cfg.lat_padding, 0.0]}}

    def fit(self, train: Mapping[str, xr.Dataset], run_dir: str | os.PathLike) -> \
            FNOEnsembleEmulator:
        """Train the M members into ``run_dir/member_<m>``."""
        from operators.base import build, load_model
        from surrogates.training import fit

        cfg = self.config
        xs, ys = [], []
        for ds in train.values():
            ds = member_mean(ds)
            co2, ch4, maps = input_arrays(ds)
            xs.append(window_inputs(co2, ch4, maps, cfg.window))
            ys.append(np.stack([ds[v].transpose("time", "lat", "lon").values
                                for v in OUTPUT_VARIABLES], axis=1).astype(np.float32))
        x, y = torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))
        order = np.random.default_rng(cfg.seed).permutation(len(x))
        n_val = int(round(cfg.validation_fraction * len(x)))
        val, tr = np.sort(order[:n_val]), np.sort(order[n_val:])
        train_set = PairDataset(x[tr], y[tr])
        val_set = PairDataset(x[val], y[val]) if n_val else None
        self.internal_variance_, self.target_members_ = internal_variance(train)
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        _save_npz(Path(run_dir) / "internal_variance.npz", variance=self.internal_variance_,
                  members=np.array(self.target_members_))
        self.models = []
        for m in range(cfg.members):
            torch.manual_seed(cfg.seed + m)
            model = build("NormalizedOperator", self.model_config(*x.shape[-2:]))
            model.fit_normalizers(train_set.inputs, train_set.targets)
            member_dir = Path(run_dir) / f"member_{m}"
            fit(model, train_set, val_set,
                dataclasses.replace(self.train_config, seed=cfg.seed + m), member_dir)
            self.models.append(load_model(member_dir / "model.pt"))
        return self

    @torch.no_grad()
    def predict_members(self, inputs: xr.Dataset) -> np.ndarray:
        """All members' fields ``(M, n_t, 4, lat, lon)``."""
        if not self.models:
            raise ValueError("the emulator is not fitted: call fit(train, run_dir) or load")
        co2, ch4, maps = input_arrays(inputs)
        x = torch.from_numpy(window_inputs(co2, ch4, maps, self.config.window))
        return np.stack([m.eval()(x).double().numpy() for m in self.models])

    def predict(self, inputs: xr.Dataset, return_std: bool = False):
        """Ensemble-mean fields (and, with ``return_std``, the predictive standard deviation:
        ensemble spread plus internal variability, see the class docstring)."""
        members = self.predict_members(inputs)
        mean = _as_dataset(members.mean(0), inputs)
        if not return_std:
            return mean
        var = members.var(0, ddof=1 if len(members) > 1 else 0)
        if self.config.internal_variability and self.internal_variance_ is not None:
            var = var + self.internal_variance_[None] / self.target_members_
        return mean, _as_dataset(np.sqrt(var), inputs, " (ensemble and internal std)")

    def save(self, run_dir: str | os.PathLike) -> None:
        """Members and ``internal_variance.npz`` are saved during :meth:`fit`."""

    @classmethod
    def load(cls, run_dir: str | os.PathLike, config: Mapping[str, Any] | None = None
             ) -> FNOEnsembleEmulator:
        from operators.base import load_model

        emulator = cls(ClimateFNOConfig(**(config or {})))
        emulator.models = [load_model(Path(run_dir) / f"member_{m}" / "model.pt")
                           for m in range(emulator.config.members)]
        path = Path(run_dir) / "internal_variance.npz"
        if path.is_file():  # run folders of earlier versions have the seed spread only
            arrays = _load_npz(path)
            emulator.internal_variance_ = arrays["variance"]
            emulator.target_members_ = int(arrays["members"])
        return emulator
