"""Darcy-flow and gridded-operator commands: ``generate darcy``, ``train fno|mgno``, and
``evaluate`` / ``predict`` / ``export`` of operator runs (kind ``"operator"``).

``train fno`` and ``train mgno`` train on any netCDF dataset of gridded fields (their
defaults suit Lorenz-96 and Darcy data respectively); their run folders are operator runs.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from surrogates.cli import operators as gridded
from surrogates.cli import options as opt
from surrogates.cli.family import Family
from surrogates.data.darcy import DarcyDataConfig

_DATA_OPTIONS = opt.fields_options(DarcyDataConfig, {
    "n_samples": "Number of fields",
    "n": ("Cells a side", {"decls": ("--n",)}),
    "coefficient": ("Permeability: 12/3 thresholded GRF or exp(GRF)",
                    {"type": click.Choice(["piecewise", "lognormal"])}),
    "seed": "Seed of the permeabilities",
    "f": ("Constant forcing (PDEBench's beta)", {"decls": ("--f",)}),
    "tol": ("Relative residual of the solver", {"type": float, "shown": "1e-10 float64"}),
    "batch_size": "Fields solved at once",
    "dtype": ("Precision", {"type": click.Choice(["float64", "float32"])}),
})


@click.command("darcy")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Output netCDF file (a, u over sample, y, x).")
@click.option("--pdebench", "pdebench_path", type=click.Path(),
              help="Also write PDEBench's 2D DarcyFlow HDF5 layout to this file, or, for an "
                   "existing folder, to 2D_DarcyFlow_beta{f}_Train.hdf5 in it.")
@opt.config_option("TOML file with DarcyDataConfig fields.")
@opt.option_group(_DATA_OPTIONS)
@opt.overwrite_option()
@opt.shard_options
@opt.fail_cleanly
def generate_darcy(out, pdebench_path, config_path, overwrite, shard, n_shards, resume,
                   **flags) -> None:
    """Darcy flow -div(a grad u) = f on the unit square (u = 0 on the walls): random a, u."""
    from surrogates.data.common import refuse_existing, write_netcdf
    from surrogates.data.darcy import generate_darcy as generate
    from surrogates.data.pdebench import pdebench_darcy_file_name, write_pdebench_darcy

    config = opt.config_from(DarcyDataConfig, opt.read_toml(config_path), flags)
    if pdebench_path is not None and (shard is not None or n_shards is not None):
        raise click.UsageError("--pdebench writes one file: it does not combine with --shard "
                               "or --shards")
    try:
        if opt.generate_sharded(generate, config, out, shard, n_shards, resume, overwrite):
            return
    except RuntimeError as err:  # DarcyConvergenceError: one line, exit code 1
        raise click.ClickException(str(err)) from err
    if pdebench_path is not None and Path(pdebench_path).is_dir():
        pdebench_path = Path(pdebench_path) / pdebench_darcy_file_name(config.f)
    for path in (out, pdebench_path):  # fail before solving, not after
        if path is not None:
            refuse_existing(path, overwrite, lock=True)
    started = time.perf_counter()
    try:
        ds = generate(config)
    except RuntimeError as err:  # DarcyConvergenceError: one line, exit code 1
        raise click.ClickException(str(err)) from err
    write_netcdf(ds, out, overwrite=overwrite)
    click.echo(f"wrote {out}: {dict(ds.sizes)}, PCG iterations {int(ds['iterations'].min())}-"
               f"{int(ds['iterations'].max())}, in {time.perf_counter() - started:.1f} s")
    if pdebench_path is not None:
        write_pdebench_darcy(pdebench_path, ds["a"].values, ds["u"].values, config.f,
                             overwrite=overwrite)
        click.echo(f"wrote {pdebench_path}: nu ({config.n_samples}, {config.n}, {config.n}), "
                   f"tensor ({config.n_samples}, 1, {config.n}, {config.n})")


@click.command("fno")
@gridded.data_options("subgrid_forcing")
@click.option("--modes", type=int, help="Fourier modes kept per dim [16].")
@click.option("--width", type=int, help="Hidden channels [32].")
@click.option("--layers", type=int, help="Fourier layers [4].")
@click.option("--positional-embedding", type=click.Choice(["grid", "none"]),
              help="Append grid coordinates to the input [none: periodic, shift-invariant].")
@click.option("--domain-padding", type=float, help="Padding fraction for non-periodic data [0].")
@gridded.MEMBERS
@gridded.training_options()
@opt.fail_cleanly
def train_fno(data_path, run_dir, config_path, inputs, targets, spatial_dims, overwrite, modes,
              width, layers, positional_embedding, domain_padding, members, resume,
              **train_flags):
    """Fourier neural operator (1D/2D/3D from the number of spatial dims)."""
    table = opt.read_toml(config_path)
    data = gridded.data_spec(table, data_path, inputs, targets, spatial_dims, "subgrid_forcing")
    model = opt.model_table(table, {"n_modes": [16] * len(data.spatial_dims),
                                "hidden_channels": 32, "n_layers": 4,
                                "positional_embedding": None},
                        {"hidden_channels": width, "n_layers": layers,
                         "domain_padding": domain_padding})
    if modes is not None:
        model["n_modes"] = [modes] * len(data.spatial_dims)
    if positional_embedding is not None:
        model["positional_embedding"] = None if positional_embedding == "none" else "grid"
    gridded.train_and_report(data, run_dir, "FNO", model, train_flags, table, resume, overwrite,
                             members=members)


#: ``train mgno`` defaults: the MgNO paper's recipe as run by benchmarks/mgno_darcy.py (H1 loss,
#: Adam with weight decay 1e-4, OneCycle to lr 1e-3, batch 8, 25 epochs: relative L2 0.031 on
#: 64^2 Darcy at the default size).
MGNO_TRAIN = {"loss": "relative_h1", "weight_decay": 1e-4, "scheduler": "onecycle",
              "batch_size": 8, "epochs": 25, "lr": 1e-3}


@click.command("mgno")
@gridded.data_options("u", default_inputs="a", default_dims="y,x")
@click.option("--width", type=int, help="Hidden channels [24].")
@click.option("--layers", type=int, help="MgNO layers [4].")
@click.option("--levels", type=int, help="Largest number of V-cycle levels [5].")
@click.option("--padding-mode", type=click.Choice(["zeros", "circular", "reflect"]),
              help="Boundary condition: zeros = Dirichlet, circular = periodic, reflect = "
                   "Neumann [zeros].")
@gridded.MEMBERS
@gridded.training_options(MGNO_TRAIN)
@opt.fail_cleanly
def train_mgno(data_path, run_dir, config_path, inputs, targets, spatial_dims, overwrite, width,
               layers, levels, padding_mode, members, resume, **train_flags):
    """Multigrid neural operator (1D/2D from the number of spatial dims).

    Defaults suit `surrogates generate darcy` data: inputs a, targets u, spatial dims y,x; the
    training defaults are the MgNO paper's recipe (H1 loss, OneCycle, weight decay 1e-4).
    """
    table = opt.read_toml(config_path)
    table.setdefault("data", {}).setdefault("inputs", ["a"])
    table["data"].setdefault("spatial_dims", ["y", "x"])
    data = gridded.data_spec(table, data_path, inputs, targets, spatial_dims, "u")
    model = opt.model_table(table, {"n_dims": len(data.spatial_dims)},
                        {"hidden_channels": width, "n_layers": layers, "levels": levels,
                         "padding_mode": padding_mode})
    gridded.train_and_report(data, run_dir, "MgNO", model, train_flags, table, resume, overwrite,
                             members=members, train_defaults=MGNO_TRAIN)


@click.command("evaluate")
@opt.run_argument
@opt.evaluate_options()
@opt.fail_cleanly
def evaluate_operator(run_dir, data_path, split, out_dir) -> None:
    """Scores of an operator run on a dataset split: relative L2, RMSE and R^2 per target
    (metrics.json), parity, snapshot and training-curve plots."""
    from surrogates.runs.operators import evaluate_run

    result = evaluate_run(run_dir, data_path, split=split, out_dir=out_dir)
    click.echo(json.dumps(result["overall"], indent=2))
    opt.echo_uq_block(result.get("uq"))
    click.echo(f"wrote {out_dir or f'{run_dir}/evaluation'}")


FAMILY = Family(
    name="darcy", kinds=("operator",),
    generate=(generate_darcy,), train=(train_fno, train_mgno),
    evaluate=evaluate_operator, predict=gridded.predict_operator, export=gridded.export_model,
    example=(
        "generate darcy --out {dir}/darcy.nc --n-samples 60 --n 16",
        "train mgno --data {dir}/darcy.nc --out {dir}/run --epochs 1 --width 4 --layers 1 "
        "--levels 2 --batch-size 8 --calibrate 0.5",
        "evaluate {dir}/run",
        "predict {dir}/run --split test --out {dir}/prediction.nc",
    ),
)
