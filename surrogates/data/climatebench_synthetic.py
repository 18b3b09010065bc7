r"""A synthetic stand-in for ClimateBench: the same files and layout
(:mod:`surrogates.data.climatebench`), made from a documented toy physics so every emulator can be
trained and evaluated without the real data. Datasets carry ``synthetic = 1`` and say so in
their title.

Physics: a two-layer energy-balance model (Held et al. 2010; Geoffroy et al. 2013),

.. math::

    C\,\dot T = F - \lambda T - \gamma (T - T_d), \qquad C_d\,\dot T_d = \gamma (T - T_d),

driven by greenhouse-gas forcing (:math:`5.35\ln(C/C_0)` with the CO2 concentration from
cumulative emissions through a constant airborne fraction, Myhre et al. 1998, and a CH4 term) and
negative aerosol forcing from the SO2/BC totals; fixed spatial response patterns per output
variable (polar amplification for ``tas``), a local aerosol response, and spatially correlated
AR(1) internal variability per member (see :func:`synthetic_experiment`).

References
----------
.. [1] I. M. Held et al., "Probing the fast and slow components of global warming by returning
   abruptly to preindustrial forcing", J. Climate 23 (2010) 2418-2427.
.. [2] O. Geoffroy et al., "Transient climate response in a two-layer energy-balance model.
   Part I", J. Climate 26 (2013) 1841-1857.
.. [3] G. Myhre et al., "New estimates of radiative forcing due to well mixed greenhouse
   gases", GRL 25 (1998) 2715-2718.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from surrogates.data.climatebench import (
    _LONG_NAMES,
    ALL_EXPERIMENTS,
    INPUT_UNITS,
    MAP_INPUTS,
    OUTPUT_UNITS,
    OUTPUT_VARIABLES,
    PRECIPITATION,
    SECONDS_PER_DAY,
    global_mean,
)
from surrogates.data.common import check_memory, output_lock, provenance_attrs, write_netcdf


@dataclass(frozen=True)
class SyntheticClimateBenchConfig:
    """A toy climate with ClimateBench's layout (see :func:`generate_synthetic`).

    Attributes
    ----------
    n_lat, n_lon : int
        Grid (cell-centred latitudes, longitudes from 0 deg).
    members : int
        Ensemble members (independent internal variability).
    start_year : int
        First year written for the historical experiments (the physics always starts in 1850).
    variability : float
        Scale of the internal variability (0 switches it off; 1 = defaults below).
    local_aerosol : float
        Scale of the local (non-pattern-scalable) aerosol effects on the outputs (0 = off).
    seed : int
    """

    n_lat: int = 12
    n_lon: int = 16
    members: int = 3
    start_year: int = 1850
    variability: float = 1.0
    local_aerosol: float = 1.0
    seed: int = 0

    def __post_init__(self):
        for name in ("n_lat", "n_lon", "members"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 2 - (
                    name == "members"):
                raise ValueError(f"{name} must be an integer >= {2 - (name == 'members')}, "
                                 f"got {value!r}")
        if not 1850 <= self.start_year <= 2010:
            raise ValueError(f"start_year must lie in 1850..2010, got {self.start_year}")
        for name in ("variability", "local_aerosol"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be finite and >= 0, got {value!r}")


#: Energy-balance parameters (Geoffroy et al. 2013, multi-model mean, rounded).
EBM = {"C": 8.0, "C_d": 100.0, "lambda": 1.2, "gamma": 0.7}  # W yr m-2 K-1, W m-2 K-1
_AIRBORNE_FRACTION = 0.45
_GTCO2_PER_PPM = 7.81
_CO2_PI, _CH4_PI, _CH4_LIFETIME, _PPB_PER_GTCH4 = 278.0, 722.0, 9.0, 1000.0 / 2.78
_SO2_FORCING, _BC_FORCING = -1.0 / 100.0, 0.25 / 8.0  # W m-2 per Tg yr-1 (global totals)

# Piecewise-linear emission scenarios: (year, value) knots.
_HIST_CO2 = [(1850, 2.0), (1950, 6.0), (1980, 20.0), (2014, 38.0)]
_HIST_CH4 = [(1850, 0.03), (1950, 0.15), (2014, 0.38)]
_HIST_SO2 = [(1850, 2.0), (1950, 50.0), (1980, 130.0), (2014, 100.0)]
_HIST_BC = [(1850, 1.0), (1950, 4.0), (2014, 8.0)]
_SSP = {  # CO2 GtCO2/yr, CH4 GtCH4/yr, SO2 and BC Tg/yr global totals
    "ssp126": ([(2015, 38.0), (2050, 10.0), (2080, -5.0), (2100, -8.0)],
               [(2015, 0.38), (2100, 0.15)], [(2015, 100.0), (2100, 12.0)],
               [(2015, 8.0), (2100, 2.5)]),
    "ssp245": ([(2015, 38.0), (2050, 42.0), (2100, 10.0)],
               [(2015, 0.38), (2040, 0.42), (2100, 0.25)], [(2015, 100.0), (2100, 35.0)],
               [(2015, 8.0), (2100, 4.0)]),
    "ssp370": ([(2015, 38.0), (2100, 85.0)], [(2015, 0.38), (2100, 0.65)],
               [(2015, 100.0), (2050, 115.0), (2100, 90.0)], [(2015, 8.0), (2100, 9.0)]),
    "ssp585": ([(2015, 38.0), (2050, 80.0), (2100, 125.0)],
               [(2015, 0.38), (2070, 0.6), (2100, 0.5)], [(2015, 100.0), (2100, 25.0)],
               [(2015, 8.0), (2100, 4.0)]),
}


def _knots(knots, years) -> np.ndarray:
    x, y = zip(*knots, strict=True)
    return np.interp(years, x, y)


def _emissions(experiment: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Years since 1850 and global emissions (CO2 per year, CH4, SO2, BC) of an experiment."""
    hist_years = np.arange(1850, 2015)
    hist = {"CO2": _knots(_HIST_CO2, hist_years), "CH4": _knots(_HIST_CH4, hist_years),
            "SO2": _knots(_HIST_SO2, hist_years), "BC": _knots(_HIST_BC, hist_years)}
    if experiment in ("historical", "hist-GHG", "hist-aer"):
        if experiment == "hist-GHG":
            hist["SO2"], hist["BC"] = (np.full_like(hist[k], hist[k][0]) for k in ("SO2", "BC"))
        if experiment == "hist-aer":
            hist["CO2"] = np.zeros_like(hist["CO2"])
            hist["CH4"] = np.full_like(hist["CH4"], hist["CH4"][0])
        return hist_years, hist
    years = np.arange(1850, 2101)
    future = np.arange(2015, 2101)
    return years, {k: np.concatenate([hist[k], _knots(knots, future)])
                   for k, knots in zip(("CO2", "CH4", "SO2", "BC"), _SSP[experiment],
                                       strict=True)}


def energy_balance(forcing, *, C: float = EBM["C"], C_d: float = EBM["C_d"],
                   lam: float = EBM["lambda"], gamma: float = EBM["gamma"]) -> np.ndarray:
    r"""Global-mean surface warming of the two-layer energy-balance model, yearly steps.

    .. math::

        C \frac{dT}{dt} = F - \lambda T - \gamma (T - T_d), \qquad
        C_d \frac{dT_d}{dt} = \gamma (T - T_d),

    integrated with forward Euler, :math:`\Delta t` = 1 yr, from :math:`T = T_d = 0`
    (stable while :math:`\Delta t (\lambda + \gamma) < C`). ``forcing`` in W m-2 per year;
    returns :math:`T` in K at the end of each year.
    """
    forcing = np.asarray(forcing, dtype=float)
    if (lam + gamma) >= C:
        raise ValueError(f"yearly Euler steps are unstable for lambda + gamma = {lam + gamma} "
                         f">= C = {C}")
    t, t_d, out = 0.0, 0.0, np.empty_like(forcing)
    for i, f in enumerate(forcing):
        t, t_d = t + (f - lam * t - gamma * (t - t_d)) / C, t_d + gamma * (t - t_d) / C_d
        out[i] = t
    return out


def forcing_from_emissions(emissions: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    r"""Effective radiative forcing (W m-2) and cumulative CO2 (GtCO2) from yearly emissions.

    * CO2: concentration :math:`c = c_0 + f_a E_{cum} / 7.81` ppm (airborne fraction
      :math:`f_a = 0.45`, 7.81 GtCO2 per ppm, :math:`c_0 = 278` ppm), forcing
      :math:`5.35 \ln(c / c_0)` (Myhre et al. 1998).
    * CH4: one box, :math:`dM/dt = 359.7 (E + E_n) - M/\tau` ppb with :math:`\tau` = 9 yr and
      natural emissions :math:`E_n` holding :math:`M_0` = 722 ppb; forcing
      :math:`0.036 (\sqrt M - \sqrt{M_0})`.
    * Aerosols: :math:`-0.01 S + 0.03125 B` for global SO2 and BC totals in Tg yr-1 (SO2 cools,
      BC warms; net negative in every scenario here).
    """
    cumulative = np.cumsum(emissions["CO2"])
    c = _CO2_PI + _AIRBORNE_FRACTION * cumulative / _GTCO2_PER_PPM
    f_co2 = 5.35 * np.log(c / _CO2_PI)
    natural = _CH4_PI / (_CH4_LIFETIME * _PPB_PER_GTCH4)
    m, ch4 = _CH4_PI, np.empty_like(cumulative)
    for i, e in enumerate(emissions["CH4"]):
        m = m + _PPB_PER_GTCH4 * (e + natural) - m / _CH4_LIFETIME
        ch4[i] = m
    f_ch4 = 0.036 * (np.sqrt(ch4) - np.sqrt(_CH4_PI))
    f_aer = _SO2_FORCING * emissions["SO2"] + _BC_FORCING * emissions["BC"]
    return f_co2 + f_ch4 + f_aer, cumulative


def synthetic_grid(n_lat: int, n_lon: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell-centred latitudes (deg, south to north) and longitudes (deg from 0)."""
    return (-90.0 + (np.arange(n_lat) + 0.5) * 180.0 / n_lat,
            np.arange(n_lon) * 360.0 / n_lon)


def _blob(lat, lon, lat0, lon0, width) -> np.ndarray:
    dlon = (lon[None, :] - lon0 + 180.0) % 360.0 - 180.0
    return np.exp(-((lat[:, None] - lat0) ** 2 + dlon ** 2) / (2 * width ** 2))


def response_patterns(lat, lon) -> dict[str, np.ndarray]:
    r"""Fixed patterns :math:`p_v(\varphi, \lambda)` per output, per K of global warming.

    ``tas``: :math:`0.6 + 1.8 \sin^2\varphi + 0.15 \cos\lambda`, rescaled so that its weighted
    global mean is exactly 1 (polar amplification; global-mean tas = T).
    ``diurnal_temperature_range``: :math:`-0.05 + 0.04 \cos\lambda` K/K.
    ``pr``: :math:`0.03 + 0.08 \cos(2\varphi)\,` mm day-1 K-1 (wet tropics get wetter).
    ``pr90``: :math:`0.1 + 0.15 \cos^2\varphi` mm day-1 K-1.
    """
    phi, lam = np.deg2rad(lat)[:, None], np.deg2rad(lon)[None, :]
    tas = 0.6 + 1.8 * np.sin(phi) ** 2 + 0.15 * np.cos(lam)
    tas = tas / global_mean(tas, lat)
    ones = np.ones((lat.size, lon.size))
    return {"tas": tas, "diurnal_temperature_range": -0.05 + 0.04 * np.cos(lam) * ones,
            "pr": 0.03 + 0.08 * np.cos(2 * phi) * ones, "pr90": 0.1 + 0.15 * np.cos(phi) ** 2
            * ones}


#: Local response per unit of the normalised SO2 emission map (tas K, dtr K, pr, pr90 mm/day).
_LOCAL_AEROSOL = {"tas": -0.8, "diurnal_temperature_range": -0.3, "pr": -0.15, "pr90": -0.3}
#: Internal-variability standard deviations (tas K, dtr K, pr, pr90 mm/day) and AR(1) lag-1.
_NOISE = {"tas": 0.25, "diurnal_temperature_range": 0.05, "pr": 0.06, "pr90": 0.15}
_AR1 = 0.5


def _smooth_noise(rng: np.random.Generator, shape, n_lat: int, n_lon: int) -> np.ndarray:
    """White noise smoothed by a Gaussian of 1.5 cells (periodic in longitude), unit variance."""
    white = rng.standard_normal((*shape, n_lat, n_lon))
    k = np.arange(-3, 4)
    kernel = np.exp(-k ** 2 / (2 * 1.5 ** 2))
    kernel /= np.sqrt((kernel ** 2).sum())
    out = sum(w * np.roll(white, s, axis=-1) for s, w in zip(k, kernel, strict=True))
    padded = np.concatenate([out[..., :1, :].repeat(3, -2), out, out[..., -1:, :].repeat(3, -2)],
                            axis=-2)
    out = sum(w * padded[..., 3 + s:3 + s + n_lat, :] for s, w in zip(k, kernel, strict=True))
    return out / out.std()


def synthetic_experiment(experiment: str, config: SyntheticClimateBenchConfig,
                         rng: np.random.Generator) -> tuple[xr.Dataset, xr.Dataset]:
    r"""Inputs and outputs datasets of one synthetic experiment (ClimateBench layout).

    Aerosol maps: the global SO2/BC totals spread over two fixed emission regions (a western
    one declining after 1980 and an eastern one growing), so the maps change shape over time.
    Outputs (anomalies; precipitation stored in kg m-2 s-1 like ClimateBench):

    .. math::

        y_v(t, x) = p_v(x)\, T(t) + a\, \ell_v\, s(t, x) + \sigma_v \epsilon_{v}(t, x),
        \qquad \epsilon(t) = 0.5\, \epsilon(t-1) + \sqrt{1 - 0.5^2}\, \eta(t),

    with :math:`T` from :func:`energy_balance` driven by :func:`forcing_from_emissions`,
    :math:`p_v` from :func:`response_patterns`, :math:`s` the SO2 map smoothed and scaled to a
    maximum of 1 at 100 Tg yr-1 global emissions, :math:`a` = ``local_aerosol``, and
    :math:`\eta` spatially correlated unit noise per member scaled by ``variability``.
    """
    years, emissions = _emissions(experiment)
    forcing, cumulative = forcing_from_emissions(emissions)
    temperature = energy_balance(forcing)
    keep = years >= (config.start_year if years[-1] < 2015 else 2015)
    years, temperature, cumulative = years[keep], temperature[keep], cumulative[keep]
    emissions = {k: v[keep] for k, v in emissions.items()}
    lat, lon = synthetic_grid(config.n_lat, config.n_lon)
    west, east = _blob(lat, lon, 45.0, 280.0, 18.0), _blob(lat, lon, 30.0, 100.0, 18.0)
    share = np.clip((years - 1980) / 120.0, 0.0, 1.0)[:, None, None] * 0.7 + 0.15
    shape = (1 - share) * west / west.sum() + share * east / east.sum()
    maps = {k: emissions[k][:, None, None] * shape for k in MAP_INPUTS}
    local = maps["SO2"] / (100.0 * shape.max())
    patterns = response_patterns(lat, lon)
    n_t = years.size
    outputs = {}
    for name in OUTPUT_VARIABLES:
        mean = patterns[name][None] * temperature[:, None, None] \
            + config.local_aerosol * _LOCAL_AEROSOL[name] * local
        noise = _smooth_noise(rng, (config.members, n_t), config.n_lat, config.n_lon)
        for t in range(1, n_t):
            noise[:, t] = _AR1 * noise[:, t - 1] + np.sqrt(1 - _AR1 ** 2) * noise[:, t]
        field = mean[None] + config.variability * _NOISE[name] * noise
        if name in PRECIPITATION:
            field = field / SECONDS_PER_DAY
        outputs[name] = field
    attrs = provenance_attrs("two-layer energy-balance toy (synthetic ClimateBench)",
                             dataclasses.asdict(config),
                             f"SYNTHETIC ClimateBench-shaped data ({experiment}): toy two-layer "
                             "energy-balance model, not CMIP6/NorESM2 output")
    attrs.update(synthetic=1, experiment=experiment)
    grid = {"latitude": ("latitude", lat, {"units": "degrees_north"}),
            "longitude": ("longitude", lon, {"units": "degrees_east"})}
    inputs = xr.Dataset(
        {"CO2": ("time", cumulative, {"units": INPUT_UNITS["CO2"],
                                      "long_name": _LONG_NAMES["CO2"]}),
         "CH4": ("time", emissions["CH4"], {"units": INPUT_UNITS["CH4"],
                                            "long_name": _LONG_NAMES["CH4"]}),
         **{k: (("time", "latitude", "longitude"), maps[k], {"units": INPUT_UNITS[k],
                                                             "long_name": _LONG_NAMES[k]})
            for k in MAP_INPUTS}},
        coords={"time": years.astype(np.int64), **grid}, attrs=attrs)
    units = {**OUTPUT_UNITS, "pr": "kg m-2 s-1", "pr90": "kg m-2 s-1"}
    out = xr.Dataset(
        {k: (("member", "time", "lat", "lon"), v, {"units": units[k],
                                                   "long_name": _LONG_NAMES[k]})
         for k, v in outputs.items()},
        coords={"member": np.arange(config.members), "time": years.astype(np.int64),
                "lat": ("lat", lat, {"units": "degrees_north"}),
                "lon": ("lon", lon, {"units": "degrees_east"})}, attrs=attrs)
    return inputs, out


def generate_synthetic(out_dir: str | os.PathLike,
                       config: SyntheticClimateBenchConfig | None = None, *,
                       experiments: Sequence[str] = ALL_EXPERIMENTS,
                       overwrite: bool = False) -> Path:
    """Write a synthetic ClimateBench folder (``inputs_<exp>.nc``, ``outputs_<exp>.nc``).

    Every file is labelled ``synthetic = 1`` with a title saying so. Seeded: the same
    configuration writes the same data.

    Raises
    ------
    FileExistsError
        If a file exists and ``overwrite`` is False.
    ValueError
        For an unknown experiment name.
    """
    config = config or SyntheticClimateBenchConfig()
    unknown = set(experiments) - set(ALL_EXPERIMENTS)
    if unknown:
        raise ValueError(f"unknown experiments {sorted(unknown)}; known: {list(ALL_EXPERIMENTS)}")
    out_dir = Path(out_dir)
    # about 250 years of ten fields per member (outputs, aerosol maps, noise), in float64
    check_memory(10 * 8 * 251 * config.members * config.n_lat * config.n_lon,
                 f"{config.members} members on {config.n_lat} x {config.n_lon} cells",
                 "lower --n-lat, --n-lon or --members")
    with output_lock(out_dir):  # a second writer of the folder is refused
        out_dir.mkdir(parents=True, exist_ok=True)
        for experiment in experiments:
            rng = np.random.default_rng([config.seed, ALL_EXPERIMENTS.index(experiment)])
            inputs, outputs = synthetic_experiment(experiment, config, rng)
            write_netcdf(inputs, out_dir / f"inputs_{experiment}.nc", overwrite=overwrite)
            write_netcdf(outputs, out_dir / f"outputs_{experiment}.nc", overwrite=overwrite)
    return out_dir
