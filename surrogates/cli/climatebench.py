"""ClimateBench commands of ``surrogates``: ``generate climatebench-synthetic`` and
``train pattern-scaling|climate-gp|climate-fno``.

Registered on the groups of :mod:`surrogates.cli` by :func:`register`; ``surrogates evaluate``
dispatches runs whose ``run_config.json`` has ``"kind" == RUN_KIND`` to :func:`evaluate_command`.
"""

from __future__ import annotations

import time

import click

#: ``run_config.json["kind"]`` of ClimateBench emulator runs.
RUN_KIND = "climatebench"


def _generate_command():
    from surrogates.cli import _fail_cleanly, _read_toml, config_from

    @click.command("climatebench-synthetic")
    @click.option("--out", "out", required=True, type=click.Path(file_okay=False),
                  help="Folder to write inputs_<exp>.nc / outputs_<exp>.nc into.")
    @click.option("--config", "config_path", type=click.Path(dir_okay=False),
                  help="TOML file with SyntheticClimateBenchConfig fields.")
    @click.option("--n-lat", type=int, help="Latitudes [12].")
    @click.option("--n-lon", type=int, help="Longitudes [16].")
    @click.option("--members", type=int, help="Ensemble members [3].")
    @click.option("--start-year", type=int, help="First historical year written [1850].")
    @click.option("--variability", type=float, help="Internal-variability scale, 0 = off [1].")
    @click.option("--local-aerosol", type=float, help="Local aerosol effects, 0 = off [1].")
    @click.option("--seed", type=int, help="Seed [0].")
    @click.option("--overwrite", is_flag=True, help="Replace existing files.")
    @_fail_cleanly
    def generate_climatebench(out, config_path, overwrite, **flags) -> None:
        """SYNTHETIC ClimateBench-shaped data from a toy two-layer energy-balance model.

        Writes the ClimateBench layout (six training experiments and ssp245) for tests and
        demos; the files are labelled synthetic and are not CMIP6 output.
        """
        from surrogates.data.climatebench_synthetic import (
            SyntheticClimateBenchConfig,
            generate_synthetic,
        )

        config = config_from(SyntheticClimateBenchConfig, _read_toml(config_path), flags)
        started = time.perf_counter()
        path = generate_synthetic(out, config, overwrite=overwrite)
        click.echo(f"wrote synthetic ClimateBench data to {path}: {config.members} members on "
                   f"{config.n_lat} x {config.n_lon} cells in "
                   f"{time.perf_counter() - started:.1f} s")

    return generate_climatebench


def _common(func):
    for option in reversed([
        click.option("--data", "data_path", required=True,
                     type=click.Path(file_okay=False, exists=True),
                     help="ClimateBench folder (inputs_<exp>.nc, outputs_<exp>.nc)."),
        click.option("--out", "run_dir", required=True, type=click.Path(file_okay=False),
                     help="Run folder to create."),
        click.option("--overwrite", is_flag=True, help="Replace an existing run folder."),
    ]):
        func = option(func)
    return func


def _report(run_dir, emulator) -> None:
    click.echo(f"trained {emulator.name}; run in {run_dir} (score it with `surrogates "
               f"evaluate {run_dir}`)")


def _train_pattern_scaling():
    from surrogates.cli import _fail_cleanly

    @click.command("pattern-scaling")
    @_common
    @_fail_cleanly
    def train_pattern_scaling(data_path, run_dir, overwrite) -> None:
        """Linear pattern scaling: cumulative CO2 -> global tas -> per-cell regressions."""
        from surrogates.runs.climatebench import train_emulator

        _report(run_dir, train_emulator("pattern-scaling", data_path, run_dir,
                                        overwrite=overwrite))

    return train_pattern_scaling


def _train_gp():
    from surrogates.cli import _fail_cleanly, _read_toml, config_from

    @click.command("climate-gp")
    @_common
    @click.option("--config", "config_path", type=click.Path(dir_okay=False),
                  help="TOML file with ClimateGPConfig fields.")
    @click.option("--n-aerosol-pcs", type=int, help="PCs per aerosol map [5].")
    @click.option("--n-output-pcs", type=int, help="PCs per output variable [5].")
    @click.option("--iterations", type=int, help="Adam steps on the marginal likelihood [150].")
    @click.option("--lr", type=float, help="Adam learning rate [0.05].")
    @click.option("--train-stride", type=int, help="Use every n-th training year [1].")
    @click.option("--seed", type=int, help="Seed [0].")
    @_fail_cleanly
    def train_climate_gp(data_path, run_dir, overwrite, config_path, **flags) -> None:
        """Exact GPs (gpytorch, Cholesky) on PCA scores of aerosol maps + CO2/CH4."""
        from surrogates.models.climatebench import ClimateGPConfig
        from surrogates.runs.climatebench import train_emulator

        config = config_from(ClimateGPConfig, _read_toml(config_path), flags)
        _report(run_dir, train_emulator("climate-gp", data_path, run_dir, config=config,
                                        overwrite=overwrite))

    return train_climate_gp


def _train_fno():
    from surrogates.cli import _fail_cleanly, _fit_options, _read_toml, config_from

    @click.command("climate-fno")
    @_common
    @click.option("--config", "config_path", type=click.Path(dir_okay=False),
                  help="TOML with tables [model] (ClimateFNOConfig) and [train] (TrainConfig).")
    @click.option("--members", type=int, help="Ensemble members [5].")
    @click.option("--window", type=int, help="Years of aerosol maps per example [5].")
    @click.option("--modes", "n_modes", type=int, nargs=2, help="Fourier modes (lat, lon) "
                                                                "[12 16].")
    @click.option("--width", "hidden_channels", type=int, help="Hidden channels [24].")
    @click.option("--layers", "n_layers", type=int, help="Fourier layers [3].")
    @_fit_options
    @_fail_cleanly
    def train_climate_fno(data_path, run_dir, overwrite, config_path, members, window, n_modes,
                          hidden_channels, n_layers, resume, **train_flags) -> None:
        """Ensemble of FNOs (different seeds) from aerosol maps + CO2/CH4 to the output fields.

        Defaults: 40 epochs, batches of 16, Adam lr 2e-3 with cosine decay, MSE on
        standardised outputs.
        """
        from surrogates.models.climatebench import ClimateFNOConfig
        from surrogates.runs.climatebench import train_emulator
        from surrogates.training import TrainConfig

        if resume:
            raise click.UsageError("--resume is not supported for ensembles; train a new run")
        table = _read_toml(config_path)
        config = config_from(ClimateFNOConfig, table.get("model", {}), {
            "members": members, "window": window, "n_modes": list(n_modes) if n_modes else None,
            "hidden_channels": hidden_channels, "n_layers": n_layers})
        defaults = {"epochs": 40, "batch_size": 16, "lr": 2e-3, "loss": "mse"}
        train_config = config_from(TrainConfig, {**defaults, **table.get("train", {})},
                                   train_flags)
        _report(run_dir, train_emulator("climate-fno", data_path, run_dir, config=config,
                                        train_config=train_config, overwrite=overwrite))

    return train_climate_fno


def evaluate_command(run_dir, data_path, out) -> None:
    """``surrogates evaluate`` for a ClimateBench run: print the NRMSE table, write metrics.json.

    ``data_path`` defaults to the run's training data folder; ``out`` to ``RUN_DIR/evaluation``.
    """
    from pathlib import Path

    from surrogates.runs.climatebench import evaluate_run, format_table

    result = evaluate_run(run_dir, data_path, out)
    for experiment, entry in result["experiments"].items():
        click.echo(f"{experiment}, member mean, {result['years'][0]}-{result['years'][1]}:")
        click.echo(format_table({result["emulator"]: entry["nrmse"]}))
        for var, s in entry.get("uq", {}).items():
            click.echo(f"  {var}: CRPS {s['crps']:.4g}, {s['level']:.0%} interval coverage "
                       f"{s['coverage']:.3f}")
    click.echo(f"wrote {Path(out) if out else Path(run_dir) / 'evaluation'}/metrics.json")


def register(generate: click.Group, train: click.Group) -> None:
    """Add the ClimateBench commands to the ``generate`` and ``train`` groups."""
    generate.add_command(_generate_command())
    train.add_command(_train_pattern_scaling())
    train.add_command(_train_gp())
    train.add_command(_train_fno())
