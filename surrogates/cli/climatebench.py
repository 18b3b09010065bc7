"""ClimateBench commands: ``generate climatebench-synthetic``, ``train
pattern-scaling|climate-gp|climate-fno``, and ``evaluate`` / ``predict`` of emulator runs (kind
``"climatebench"``)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from surrogates.cli import options as opt
from surrogates.cli.family import Family
from surrogates.data.climatebench_synthetic import SyntheticClimateBenchConfig
from surrogates.models.climatebench import ClimateFNOConfig, ClimateGPConfig


@click.command("climatebench-synthetic")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Folder to write inputs_<exp>.nc / outputs_<exp>.nc into.")
@opt.config_option("TOML file with SyntheticClimateBenchConfig fields.")
@opt.option_group(opt.fields_options(SyntheticClimateBenchConfig, {
    "n_lat": "Latitudes",
    "n_lon": "Longitudes",
    "members": "Ensemble members",
    "start_year": "First historical year written",
    "variability": "Internal-variability scale, 0 = off",
    "local_aerosol": "Local aerosol effects, 0 = off",
    "seed": "Seed",
}))
@opt.overwrite_option("existing files")
@opt.fail_cleanly
def generate_climatebench(out, config_path, overwrite, **flags) -> None:
    """SYNTHETIC ClimateBench-shaped data from a toy two-layer energy-balance model.

    Writes the ClimateBench layout (six training experiments and ssp245) for tests and demos;
    the files are labelled synthetic and are not CMIP6 output.
    """
    from surrogates.data.climatebench_synthetic import generate_synthetic

    config = opt.config_from(SyntheticClimateBenchConfig, opt.read_toml(config_path), flags)
    started = time.perf_counter()
    path = generate_synthetic(out, config, overwrite=overwrite)
    click.echo(f"wrote synthetic ClimateBench data to {path}: {config.members} members on "
               f"{config.n_lat} x {config.n_lon} cells in {time.perf_counter() - started:.1f} s")


_RUN = opt.option_group([
    click.option("--data", "data_path", required=True,
                 type=click.Path(file_okay=False, exists=True),
                 help="ClimateBench folder (inputs_<exp>.nc, outputs_<exp>.nc)."),
    click.option("--out", "run_dir", required=True, type=click.Path(file_okay=False),
                 help="Run folder to create."),
    opt.overwrite_option("an existing run folder"),
])


def _report(run_dir, emulator) -> None:
    click.echo(f"trained {emulator.name}; run in {run_dir} (score it with `surrogates "
               f"evaluate {run_dir}`)")


@click.command("pattern-scaling")
@_RUN
@opt.fail_cleanly
def train_pattern_scaling(data_path, run_dir, overwrite) -> None:
    """Linear pattern scaling: cumulative CO2 -> global tas -> per-cell regressions."""
    from surrogates.runs.climatebench import train_emulator

    _report(run_dir, train_emulator("pattern-scaling", data_path, run_dir, overwrite=overwrite))


@click.command("climate-gp")
@_RUN
@opt.config_option("TOML file with ClimateGPConfig fields.")
@opt.option_group(opt.fields_options(ClimateGPConfig, {
    "n_aerosol_pcs": "PCs per aerosol map",
    "n_output_pcs": "PCs per output variable",
    "iterations": "Adam steps on the marginal likelihood",
    "lr": "Adam learning rate",
    "train_stride": "Use every n-th training year",
    "seed": "Seed",
}))
@opt.fail_cleanly
def train_climate_gp(data_path, run_dir, overwrite, config_path, **flags) -> None:
    """Exact GPs (gpytorch, Cholesky) on PCA scores of aerosol maps + CO2/CH4."""
    from surrogates.runs.climatebench import train_emulator

    config = opt.config_from(ClimateGPConfig, opt.read_toml(config_path), flags)
    _report(run_dir, train_emulator("climate-gp", data_path, run_dir, config=config,
                                    overwrite=overwrite))


#: ``train climate-fno`` defaults (the TrainConfig fields they replace).
CLIMATE_FNO_TRAIN = {"epochs": 40, "batch_size": 16, "lr": 2e-3, "loss": "mse"}


@click.command("climate-fno")
@_RUN
@opt.config_option("TOML with tables [model] (ClimateFNOConfig) and [train] (TrainConfig).")
@opt.option_group(opt.fields_options(ClimateFNOConfig, {
    "members": "Ensemble members",
    "window": "Years of aerosol maps per example",
    "n_modes": ("Fourier modes (lat, lon)", {"decls": ("--modes",), "nargs": 2}),
    "hidden_channels": ("Hidden channels", {"decls": ("--width",)}),
    "n_layers": ("Fourier layers", {"decls": ("--layers",)}),
}))
@opt.fit_options(CLIMATE_FNO_TRAIN)
@opt.fail_cleanly
def train_climate_fno(data_path, run_dir, overwrite, config_path, n_modes, resume,
                      members, window, hidden_channels, n_layers, **train_flags) -> None:
    """Ensemble of FNOs (different seeds) from aerosol maps + CO2/CH4 to the output fields, MSE
    on standardised outputs."""
    from surrogates.runs.climatebench import train_emulator

    if resume:
        raise click.UsageError("--resume is not supported for ensembles; train a new run")
    table = opt.read_toml(config_path)
    config = opt.config_from(ClimateFNOConfig, table.get("model", {}), {
        "members": members, "window": window, "n_modes": list(n_modes) if n_modes else None,
        "hidden_channels": hidden_channels, "n_layers": n_layers})
    train_config = opt.train_config_from(table, train_flags, CLIMATE_FNO_TRAIN)
    _report(run_dir, train_emulator("climate-fno", data_path, run_dir, config=config,
                                    train_config=train_config, overwrite=overwrite))


@click.command("evaluate")
@opt.run_argument
@click.option("--data", "data_path", type=click.Path(file_okay=False),
              help="ClimateBench folder [the training data].")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Output folder [RUN_DIR/evaluation].")
@opt.fail_cleanly
def evaluate_emulator(run_dir, data_path, out_dir) -> None:
    """ClimateBench's NRMSE (spatial, global, total) of an emulator on the test experiment, and
    its uncertainty scores."""
    from surrogates.runs.climatebench import evaluate_run, format_table

    result = evaluate_run(run_dir, data_path, out_dir)
    for experiment, entry in result["experiments"].items():
        click.echo(f"{experiment}, member mean, {result['years'][0]}-{result['years'][1]}:")
        click.echo(format_table({result["emulator"]: entry["nrmse"]}))
        for var, s in entry.get("uq", {}).items():
            click.echo(f"  {var}: CRPS {s['crps']:.4g}, {s['level']:.0%} interval coverage "
                       f"{s['coverage']:.3f}")
    click.echo(f"wrote {Path(out_dir) if out_dir else Path(run_dir) / 'evaluation'}"
               "/metrics.json")


@click.command("predict")
@opt.run_argument
@click.option("--data", "data_path", type=click.Path(file_okay=False),
              help="ClimateBench folder with the experiment's inputs [the training data].")
@click.option("--experiment", default="ssp245", show_default=True,
              help="Experiment whose inputs_<experiment>.nc drives the emulator.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="netCDF file: the output fields and, for the GP and the FNO ensemble, "
                   "<field>_std.")
@opt.overwrite_option("OUT if it exists")
@opt.fail_cleanly
def predict_emulator(run_dir, data_path, experiment, out, overwrite) -> None:
    """An emulator's output fields for one experiment's forcing, with their std, to netCDF."""
    from surrogates.runs.climatebench import predict_emulator_run

    path = predict_emulator_run(run_dir, out, data_dir=data_path, experiment=experiment,
                                overwrite=overwrite)
    click.echo(f"wrote {path}")


FAMILY = Family(
    name="climatebench", kinds=("climatebench",),
    generate=(generate_climatebench,),
    train=(train_pattern_scaling, train_climate_gp, train_climate_fno),
    evaluate=evaluate_emulator, predict=predict_emulator,
    example=(
        "generate climatebench-synthetic --out {dir}/cb --n-lat 4 --n-lon 6 --members 2",
        "train climate-gp --data {dir}/cb --out {dir}/run --iterations 5 --n-aerosol-pcs 2 "
        "--n-output-pcs 2",
        "evaluate {dir}/run",
        "predict {dir}/run --out {dir}/ssp245.nc",
    ),
)
