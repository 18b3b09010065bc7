"""The ``surrogates`` command: generate, train, solve, evaluate, export, demo.

Every command takes flags and, optionally, ``--config FILE.toml`` whose keys map onto the same
dataclass fields as the flags (flags win). The resolved configuration is saved with the output:
in the netCDF attributes of generated data, and in ``run_config.json`` of a training run.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import time
import tomllib
from pathlib import Path
from typing import Any, TypeVar

import click

T = TypeVar("T")


def _read_toml(path: str | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError as err:
        raise click.BadParameter(f"no config file at {path}", param_hint="--config") from err
    except tomllib.TOMLDecodeError as err:
        raise click.BadParameter(f"{path} is not valid TOML: {err}",
                                 param_hint="--config") from err


def config_from(cls: type[T], table: dict[str, Any], overrides: dict[str, Any]) -> T:
    """Build dataclass ``cls`` from a TOML table, then flags that were given (not None)."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(table) - names
    if unknown:
        raise click.BadParameter(f"unknown keys {sorted(unknown)} for {cls.__name__}; valid keys: "
                                 f"{sorted(names)}", param_hint="--config")
    values = {**table, **{k: v for k, v in overrides.items() if v is not None}}
    try:
        return cls(**values)
    except (TypeError, ValueError) as err:
        raise click.UsageError(str(err)) from err


def _fail_cleanly(func):
    """Turn the library's documented errors into one-line CLI errors (exit code 1)."""
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (FileExistsError, FileNotFoundError, ValueError, KeyError) as err:
            raise click.ClickException(str(err)) from err
    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="surrogates")
def main() -> None:
    """Scientific surrogate models: reference solvers, datasets, neural operators, evaluation."""


# --------------------------------------------------------------------------- generate
@main.group()
def generate() -> None:
    """Run a reference solver and write a dataset (written atomically).

    lorenz96 and darcy write one netCDF4 file (darcy also PDEBench's 2D Darcy HDF5 layout with
    --pdebench), or shards of it (--shard I/N or --shards N: OUT.shard-I-of-N.nc, which
    `surrogates train --data OUT` reads back as one dataset); advection, burgers and
    diffusion-reaction write PDEBench 1D HDF5 files, one per parameter value.
    """


def _shard_options(func):
    """--shard I/N, --shards N and --resume for generators that support sharding."""
    for option in reversed([
        click.option("--shard", "shard", help="Write only shard I of N (e.g. 3/64): samples "
                     "of one contiguous block, to OUT.shard-I-of-N.nc (for job arrays)."),
        click.option("--shards", "n_shards", type=click.IntRange(min=1),
                     help="Write all N shards, one after another, to OUT.shard-I-of-N.nc."),
        click.option("--resume", is_flag=True, help="With --shard/--shards: keep shards whose "
                     "files exist and validate, generate the rest."),
    ]):
        func = option(func)
    return func


def _generate_sharded(generate_fn, config, out, shard, n_shards, resume, overwrite) -> bool:
    """Write the requested shards; False when no sharding was asked for."""
    from surrogates.data.shards import generate_shards, parse_shard

    if shard is None and n_shards is None:
        if resume:
            raise click.UsageError("--resume applies to --shard / --shards")
        return False
    if shard is not None and n_shards is not None:
        raise click.UsageError("give --shard I/N (one shard) or --shards N (all), not both")
    index, count = parse_shard(shard) if shard is not None else (None, n_shards)
    started = time.perf_counter()
    written = generate_shards(generate_fn, config, dataclasses.asdict(config), out, count,
                              indices=None if index is None else [index], resume=resume,
                              overwrite=overwrite)
    for path, new in written:
        click.echo(f"{'wrote' if new else 'kept (complete)'} {path}")
    click.echo(f"{sum(new for _, new in written)} shard(s) written in "
               f"{time.perf_counter() - started:.1f} s")
    return True


@generate.command("lorenz96")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Output netCDF file.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="TOML file with Lorenz96DataConfig fields.")
@click.option("--n-samples", type=int, help="Number of trajectories [32].")
@click.option("--K", "K", type=int, help="Slow variables [36].")
@click.option("--J", "J", type=int, help="Fast variables per slow one [10].")
@click.option("--I", "I", type=int, help="Third-tier variables per fast one; 0 = two-tier [0].")
@click.option("--F", "F", type=float, help="Forcing F [10].")
@click.option("--F-range", "F_range", type=(float, float), help="Draw F per sample from [LO, HI].")
@click.option("--h", type=float, help="Coupling h [1].")
@click.option("--b", type=float, help="Spatial-scale ratio b [10].")
@click.option("--c", type=float, help="Time-scale ratio c [10].")
@click.option("--dt", type=float, help="RK4 step in model time units [0.005].")
@click.option("--n-steps", type=int, help="Steps after spin-up [2000].")
@click.option("--save-every", type=int, help="Save every N-th step [10].")
@click.option("--spinup-steps", type=int, help="Steps discarded first [2000].")
@click.option("--seed", type=int, help="Seed of the initial states [0].")
@click.option("--dtype", type=click.Choice(["float64", "float32"]), help="Precision [float64].")
@click.option("--no-fast", is_flag=True, default=None, help="Do not store Y (and Z).")
@click.option("--batch-size", type=int, help="Samples integrated at once [256].")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
@_shard_options
@_fail_cleanly
def generate_lorenz96(out, config_path, no_fast, overwrite, shard, n_shards, resume,
                      **flags) -> None:
    """Multiscale Lorenz-96 trajectories with their exact subgrid forcing."""
    from surrogates.data.lorenz96 import Lorenz96DataConfig, generate_lorenz96
    from surrogates.data.common import refuse_existing, write_netcdf

    if no_fast:
        flags["store_fast"] = False
    config = config_from(Lorenz96DataConfig, _read_toml(config_path), flags)
    if _generate_sharded(generate_lorenz96, config, out, shard, n_shards, resume, overwrite):
        return
    refuse_existing(out, overwrite)  # fail before the integration, not after
    started = time.perf_counter()
    ds = generate_lorenz96(config)
    write_netcdf(ds, out, overwrite=overwrite)
    click.echo(f"wrote {out}: {dict(ds.sizes)} in {time.perf_counter() - started:.1f} s")


def _float_list(value: str | None, option: str) -> tuple[float, ...] | None:
    """Parse a comma-separated list of numbers (``"0.1,0.4,1"``); None stays None."""
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    try:
        return tuple(float(v) for v in items)
    except ValueError:
        raise click.BadParameter(f"expected comma-separated numbers such as 0.1,0.4,1.0, got "
                                 f"{value!r}", param_hint=option) from None


_PDE1D_VALUES = {
    "advection": "advection speeds beta, one file each, e.g. 0.1,0.4,1.0",
    "burgers": "viscosities nu (diffusivity nu/pi), one file each, e.g. 0.001,0.01,0.1",
    "diffusion-reaction": "diffusivities nu; one file per (nu, rho) pair, e.g. 0.5,2.0",
}
_PDE1D_DOCS = {
    "advection": "PDEBench 1D advection u_t + beta u_x = 0: one HDF5 file per beta.",
    "burgers": "PDEBench 1D Burgers u_t + (u^2/2)_x = (nu/pi) u_xx: one HDF5 file per nu.",
    "diffusion-reaction": "PDEBench 1D diffusion-reaction u_t = nu u_xx + rho u(1-u): one "
                          "HDF5 file per (nu, rho).",
}


def _pde1d_command(pde: str):
    """``surrogates generate PDE``: PDEBench HDF5 files from the 1D finite-volume solvers."""
    t_end, n_frames = {"diffusion-reaction": (1.0, 101)}.get(pde, (2.0, 201))
    options = [
        click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
                     help="Output folder (created if missing); files get PDEBench's names."),
        click.option("--config", "config_path", type=click.Path(dir_okay=False),
                     help="TOML file with PDE1DGenerateConfig fields (pde is implied)."),
        click.option("--values", help=f"Comma-separated {_PDE1D_VALUES[pde]}."),
    ]
    if pde == "diffusion-reaction":
        options.append(click.option("--rho", help="Comma-separated reaction rates rho [1.0]."))
    options += [
        click.option("--n-samples", type=int, help="Samples per file [100]."),
        click.option("--N", "N", type=int, help="Cells [1024]."),
        click.option("--n-frames", type=int, help=f"Frames per sample [{n_frames}]."),
        click.option("--t-end", type=float, help=f"Time of the last frame [{t_end}]."),
        click.option("--seed", type=int, help="Seed of the initial conditions, the same in "
                                              "every file [0]."),
        click.option("--cfl", type=float, help="Courant number [0.4]."),
        click.option("--batch-size", type=int, help="Samples integrated at once [128]."),
        click.option("--dtype", type=click.Choice(["float32", "float64"]),
                     help="Precision of the computation; files store float32 [float32]."),
        click.option("--overwrite", is_flag=True, help="Replace existing files."),
    ]

    def command(out_dir, config_path, values, overwrite, rho=None, **flags) -> None:
        from surrogates.data.pdebench_generate import PDE1DGenerateConfig, generate_pdebench

        try:  # every input error as one line (exit code 1)
            table = _read_toml(config_path)
            if table.get("pde", pde) != pde:
                raise click.BadParameter(f"the file says pde = {table['pde']!r}, but this "
                                         f"command generates {pde}", param_hint="--config")
            table["pde"] = pde
            flags["values"] = _float_list(values, "--values")
            flags["rho"] = _float_list(rho, "--rho")
            if "values" not in table and flags["values"] is None:
                raise click.UsageError(f"give --values ({_PDE1D_VALUES[pde]}) or 'values' in "
                                       "--config")
            config = config_from(PDE1DGenerateConfig, table, flags)
        except click.UsageError as err:
            raise click.ClickException(err.format_message()) from err
        started = time.perf_counter()
        paths = generate_pdebench(config, out_dir, overwrite=overwrite)
        for path in paths:
            click.echo(f"wrote {path}: tensor ({config.n_samples}, {config.n_frames}, "
                       f"{config.N})")
        click.echo(f"{len(paths)} file(s) in {time.perf_counter() - started:.1f} s")

    command.__name__ = f"generate_{pde.replace('-', '_')}"
    command.__doc__ = (f"{_PDE1D_DOCS[pde]}\n\nThe same --seed gives the same initial "
                       "conditions in every file.")
    command = _fail_cleanly(command)
    for option in reversed(options):
        command = option(command)
    return generate.command(pde)(command)


generate_advection = _pde1d_command("advection")
generate_burgers = _pde1d_command("burgers")
generate_diffusion_reaction = _pde1d_command("diffusion-reaction")


@generate.command("darcy")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Output netCDF file (a, u over sample, y, x).")
@click.option("--pdebench", "pdebench_path", type=click.Path(),
              help="Also write PDEBench's 2D DarcyFlow HDF5 layout to this file, or, for an "
                   "existing folder, to 2D_DarcyFlow_beta{f}_Train.hdf5 in it.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="TOML file with DarcyDataConfig fields.")
@click.option("--n-samples", type=int, help="Number of fields [100].")
@click.option("--n", "n", type=int, help="Cells a side [64].")
@click.option("--coefficient", type=click.Choice(["piecewise", "lognormal"]),
              help="Permeability: 12/3 thresholded GRF or exp(GRF) [piecewise].")
@click.option("--seed", type=int, help="Seed of the permeabilities [0].")
@click.option("--f", "f", type=float, help="Constant forcing (PDEBench's beta) [1.0].")
@click.option("--tol", type=float, help="Relative residual of the solver [1e-10 float64].")
@click.option("--batch-size", type=int, help="Fields solved at once [64].")
@click.option("--dtype", type=click.Choice(["float64", "float32"]), help="Precision [float64].")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
@_shard_options
@_fail_cleanly
def generate_darcy(out, pdebench_path, config_path, overwrite, shard, n_shards, resume,
                   **flags) -> None:
    """Darcy flow -div(a grad u) = f on the unit square (u = 0 on the walls): random a, u."""
    from surrogates.data.common import refuse_existing, write_netcdf
    from surrogates.data.darcy import DarcyDataConfig, generate_darcy
    from surrogates.data.pdebench import pdebench_darcy_file_name, write_pdebench_darcy

    config = config_from(DarcyDataConfig, _read_toml(config_path), flags)
    if pdebench_path is not None and (shard is not None or n_shards is not None):
        raise click.UsageError("--pdebench writes one file: it does not combine with --shard "
                               "or --shards")
    try:
        if _generate_sharded(generate_darcy, config, out, shard, n_shards, resume, overwrite):
            return
    except RuntimeError as err:  # DarcyConvergenceError: one line, exit code 1
        raise click.ClickException(str(err)) from err
    if pdebench_path is not None and Path(pdebench_path).is_dir():
        pdebench_path = Path(pdebench_path) / pdebench_darcy_file_name(config.f)
    for path in (out, pdebench_path):  # fail before solving, not after
        if path is not None:
            refuse_existing(path, overwrite)
    started = time.perf_counter()
    try:
        ds = generate_darcy(config)
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


# --------------------------------------------------------------------------- train
@main.group()
def train() -> None:
    """Train an operator on a dataset file; writes a run folder."""


def _data_options(default_targets: str):
    """Options naming the dataset, the run folder, the TOML file and the variables."""
    def decorate(func):
        for option in reversed([
            click.option("--data", "data_path", required=True, type=click.Path(dir_okay=False),
                         help="netCDF dataset (e.g. from `surrogates generate`)."),
            click.option("--out", "run_dir", required=True, type=click.Path(file_okay=False),
                         help="Run folder to create."),
            click.option("--config", "config_path", type=click.Path(dir_okay=False),
                         help="TOML with tables [data], [model] (model arguments) and [train] "
                              "(TrainConfig)."),
            click.option("--inputs", help="Comma-separated input variables [X]."),
            click.option("--targets", help=f"Comma-separated target variables "
                                            f"[{default_targets}]."),
            click.option("--spatial-dims", help="Comma-separated grid dims [k]."),
            click.option("--overwrite", is_flag=True, help="Replace an existing run folder."),
        ]):
            func = option(func)
        return func
    return decorate


def _fit_options(func):
    """Options of the optimisation (TrainConfig fields) and of resuming."""
    for option in reversed([
        click.option("--epochs", type=int, help="Epochs [50]."),
        click.option("--batch-size", type=int, help="Global batch size: under torchrun the "
                                                     "sum over processes [32]."),
        click.option("--lr", type=float, help="Learning rate [1e-3]."),
        click.option("--weight-decay", type=float, help="Weight decay [0]."),
        click.option("--optimizer", type=click.Choice(["adam", "adamw"])),
        click.option("--scheduler", type=click.Choice(["cosine", "step", "onecycle", "none"])),
        click.option("--loss", type=click.Choice(["relative_l2", "relative_h1", "mse"])),
        click.option("--patience", type=int, help="Early-stopping patience in epochs [off]."),
        click.option("--grad-clip", type=float, help="Clip the gradient norm to this [off]."),
        click.option("--seed", type=int, help="Seed of weights and batches [0]."),
        click.option("--device", help="auto, cpu, cuda, cuda:1, ... [auto]; under torchrun "
                                      "each process takes cuda:LOCAL_RANK."),
        click.option("--amp", is_flag=True, default=None,
                     help="Mixed precision (float16 autocast + GradScaler); CUDA only."),
        click.option("--resume", is_flag=True, help="Continue the run in --out from its "
                                                     "checkpoint."),
    ]):
        func = option(func)
    return func


def _data_spec(table: dict[str, Any], data_path, inputs, targets, spatial_dims,
               default_targets: str, lead: int | None = None, history: int | None = None):
    from surrogates.runs.operators import DataSpec

    def split(value):
        return None if value is None else [v.strip() for v in value.split(",") if v.strip()]

    data_table = {"targets": default_targets.split(","), **table.get("data", {})}
    return config_from(DataSpec, data_table, {
        "path": data_path, "inputs": split(inputs), "targets": split(targets),
        "spatial_dims": split(spatial_dims), "lead": lead, "history": history})


def _model_table(table: dict[str, Any], defaults: dict[str, Any],
                 flags: dict[str, Any]) -> dict[str, Any]:
    """Model arguments: defaults, then the TOML [model] table, then flags that were given."""
    return {**defaults, **table.get("model", {}),
            **{k: v for k, v in flags.items() if v is not None}}


def _train(data, run_dir, model_class, model, train_flags, table, resume, overwrite,
           normalization="wrap", members: int = 1) -> None:
    from surrogates.runs.operators import train_ensemble, train_operator
    from surrogates.training import TrainConfig

    if train_flags.pop("stream", None):
        data = dataclasses.replace(data, stream=True)
    train_config = config_from(TrainConfig, table.get("train", {}), train_flags)
    if members > 1:
        results = train_ensemble(data, run_dir, n_members=members, model_class=model_class,
                                 model_config=model, train_config=train_config,
                                 overwrite=overwrite, resume=resume, normalization=normalization)
        losses = ", ".join(f"{r.best_validation_loss:.4e}" for r in results)
        click.echo(f"trained an ensemble of {members} (seeds {train_config.seed}.."
                   f"{train_config.seed + members - 1}); best validation losses {losses}; "
                   f"run in {run_dir}")
        return
    result = train_operator(data, run_dir, model_class=model_class, model_config=model,
                            train_config=train_config, overwrite=overwrite, resume=resume,
                            normalization=normalization)
    click.echo(f"trained {len(result.history)} epochs; best validation loss "
               f"{result.best_validation_loss:.4e} at epoch {result.best_epoch}; run in {run_dir}")


_HISTORY = click.option("--history", type=click.IntRange(min=0),
                        help="Past saved frames of X given to the closure as extra channels "
                             "[0]; evaluate it with --dt-factor equal to the data's save_every.")
_STREAM = click.option("--stream", is_flag=True, default=None,
                       help="Read batches lazily from disk (dask) instead of loading the data: "
                            "for datasets or shard sets larger than memory.")
_MEMBERS = click.option("--members", type=click.IntRange(min=1), default=1, show_default=True,
                        help="Train an ensemble of this many closures (seeds seed, seed+1, ...).")


@train.command("fno")
@_data_options("subgrid_forcing")
@click.option("--modes", type=int, help="Fourier modes kept per dim [16].")
@click.option("--width", type=int, help="Hidden channels [32].")
@click.option("--layers", type=int, help="Fourier layers [4].")
@click.option("--positional-embedding", type=click.Choice(["grid", "none"]),
              help="Append grid coordinates to the input [none: periodic, shift-invariant].")
@click.option("--domain-padding", type=float, help="Padding fraction for non-periodic data [0].")
@_STREAM
@_fit_options
@_fail_cleanly
def train_fno(data_path, run_dir, config_path, inputs, targets, spatial_dims, overwrite, modes,
              width, layers, positional_embedding, domain_padding, resume, **train_flags):
    """Fourier neural operator (1D/2D/3D from the number of spatial dims)."""
    table = _read_toml(config_path)
    data = _data_spec(table, data_path, inputs, targets, spatial_dims, "subgrid_forcing")
    model = _model_table(table, {"n_modes": [16] * len(data.spatial_dims),
                                 "hidden_channels": 32, "n_layers": 4,
                                 "positional_embedding": None},
                         {"hidden_channels": width, "n_layers": layers,
                          "domain_padding": domain_padding})
    if modes is not None:
        model["n_modes"] = [modes] * len(data.spatial_dims)
    if positional_embedding is not None:
        model["positional_embedding"] = None if positional_embedding == "none" else "grid"
    _train(data, run_dir, "FNO", model, train_flags, table, resume, overwrite)


@train.command("mgno")
@_data_options("u")
@click.option("--width", type=int, help="Hidden channels [24].")
@click.option("--layers", type=int, help="MgNO layers [4].")
@click.option("--levels", type=int, help="Largest number of V-cycle levels [5].")
@click.option("--padding-mode", type=click.Choice(["zeros", "circular", "reflect"]),
              help="Boundary condition: zeros = Dirichlet, circular = periodic, reflect = "
                   "Neumann [zeros].")
@_STREAM
@_fit_options
@_fail_cleanly
def train_mgno(data_path, run_dir, config_path, inputs, targets, spatial_dims, overwrite, width,
               layers, levels, padding_mode, resume, **train_flags):
    """Multigrid neural operator (1D/2D from the number of spatial dims).

    Defaults suit `surrogates generate darcy` data: inputs a, targets u, spatial dims y,x; the
    MgNO paper trains with --loss relative_h1.
    """
    table = _read_toml(config_path)
    table.setdefault("data", {}).setdefault("inputs", ["a"])
    table["data"].setdefault("spatial_dims", ["y", "x"])
    data = _data_spec(table, data_path, inputs, targets, spatial_dims, "u")
    model = _model_table(table, {"n_dims": len(data.spatial_dims)},
                         {"hidden_channels": width, "n_layers": layers, "levels": levels,
                          "padding_mode": padding_mode})
    _train(data, run_dir, "MgNO", model, train_flags, table, resume, overwrite)


_CLOSURE_TARGETS = "closure_target"
_CLOSURE_NOTE = ("The default target `closure_target` (RK4-step-averaged) suits a forward-Euler "
                 "hybrid model; train on `subgrid_forcing` for an RK4 hybrid.")


@train.command("mno")
@_data_options(_CLOSURE_TARGETS)
@click.option("--modes", type=int, help="Fourier modes kept [16].")
@click.option("--width", type=int, help="Hidden channels [32].")
@click.option("--layers", type=int, help="Fourier layers [4].")
@_HISTORY
@_MEMBERS
@_STREAM
@_fit_options
@_fail_cleanly
def train_mno(data_path, run_dir, config_path, inputs, targets, spatial_dims, overwrite, modes,
              width, layers, history, members, resume, **train_flags):
    """Multiscale-neural-operator closure of Lorenz-96: X -> subgrid tendency, on any K."""
    table = _read_toml(config_path)
    data = _data_spec(table, data_path, inputs, targets, spatial_dims, _CLOSURE_TARGETS,
                      history=history)
    model = _model_table(table, {}, {"hidden_channels": width, "n_layers": layers,
                                     "n_modes": None if modes is None else [modes]})
    _train(data, run_dir, "MNOClosure", model, train_flags, table, resume, overwrite,
           normalization="scalar", members=members)


@train.command("local-mlp")
@_data_options(_CLOSURE_TARGETS)
@click.option("--stencil", type=int, help="Neighbours on each side seen by the MLP [0: local].")
@click.option("--width", type=int, help="Hidden channels [32].")
@_HISTORY
@_MEMBERS
@_STREAM
@_fit_options
@_fail_cleanly
def train_local_mlp(data_path, run_dir, config_path, inputs, targets, spatial_dims, overwrite,
                    stencil, width, history, members, resume, **train_flags):
    """Local (pointwise or stencil) MLP closure of Lorenz-96, a baseline for the MNO."""
    table = _read_toml(config_path)
    data = _data_spec(table, data_path, inputs, targets, spatial_dims, _CLOSURE_TARGETS,
                      history=history)
    model = _model_table(table, {}, {"stencil": stencil, "hidden_channels": width})
    _train(data, run_dir, "LocalMLPClosure", model, train_flags, table, resume, overwrite,
           normalization="scalar", members=members)


@train.command("polynomial")
@_data_options(_CLOSURE_TARGETS)
@click.option("--degree", type=int, default=3, show_default=True, help="Polynomial degree.")
@_fail_cleanly
def train_polynomial(data_path, run_dir, config_path, inputs, targets, spatial_dims, overwrite,
                     degree):
    """Cubic polynomial closure in X_k (Wilks 2005), fitted by least squares."""
    from surrogates.runs.operators import fit_polynomial_closure

    table = _read_toml(config_path)
    data = _data_spec(table, data_path, inputs, targets, spatial_dims, _CLOSURE_TARGETS)
    result = fit_polynomial_closure(data, run_dir, degree=degree, overwrite=overwrite)
    click.echo(f"fitted coefficients {result['coefficients']} (training R^2 "
               f"{result['train_r2']:.4f}); run in {run_dir}")


@train.command("next-state-fno")
@_data_options("X")
@click.option("--lead", type=int, default=1, show_default=True,
              help="Saved frames between input and target: the emulator's step.")
@click.option("--modes", type=int, help="Fourier modes kept [16].")
@click.option("--width", type=int, help="Hidden channels [32].")
@click.option("--layers", type=int, help="Fourier layers [4].")
@_STREAM
@_fit_options
@_fail_cleanly
def train_next_state_fno(data_path, run_dir, config_path, inputs, targets, spatial_dims, overwrite,
                         lead, modes, width, layers, resume, **train_flags):
    """Pure data-driven baseline for the MNO: an FNO from X(t) to X(t + lead frames), no physics.

    `surrogates evaluate` iterates it against the resolved solver like the hybrid closures.
    """
    table = _read_toml(config_path)
    data = _data_spec(table, data_path, inputs, targets, spatial_dims, "X", lead=lead)
    model = _model_table(table, {}, {"hidden_channels": width, "n_layers": layers,
                                     "n_modes": None if modes is None else [modes]})
    _train(data, run_dir, "NextStateFNO", model, train_flags, table, resume, overwrite,
           normalization="scalar")


@train.command("rollout")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, exists=True))
@click.option("--out", "run_dir", required=True, type=click.Path(file_okay=False),
              help="Run folder to create.")
@click.option("--model", type=click.Choice(["cape-fno", "cape-unet", "fno", "unet"]),
              default="cape-fno", show_default=True, help="One-step model.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="TOML with tables [data] (PDEBenchDataSpec), [model] (model arguments, e.g. "
                   "base_config, width), [rollout] (context, warmup_epochs, aux_weight, "
                   "step_normalization) and [train] (TrainConfig).")
@click.option("--reduced-resolution", type=int, help="PDEBench stride in x [1].")
@click.option("--reduced-resolution-t", type=int, help="PDEBench stride in time [1].")
@click.option("--context", type=int, help="Frames the model sees [1].")
@click.option("--warmup-epochs", type=int, help="Epochs on CAPE's auxiliary loss alone "
                                                "[2 for CAPE models, else 0].")
@click.option("--step-normalization", type=click.Choice(["frame", "initial"]),
              help="Divide each step's error by that frame's norm (CAPE) or by the first "
                   "frame's (decaying solutions, e.g. viscous Burgers) [frame].")
@click.option("--overwrite", is_flag=True, help="Replace an existing run folder.")
@_fit_options
@_fail_cleanly
def train_rollout_command(files, run_dir, model, config_path, reduced_resolution,
                          reduced_resolution_t, context, warmup_epochs, step_normalization,
                          overwrite, resume, **train_flags):
    """Autoregressive solver on PDEBench 1D files (one per parameter value), CAPE curriculum.

    FILES are PDEBench HDF5 files of one PDE, e.g. from `surrogates generate advection`. The
    model maps the last --context frames (and, for CAPE models, the PDE parameters) to the next
    frame; training moves from teacher forcing to full rollouts (Takamoto et al. 2023).
    Defaults: 40 epochs, batch 8, Adam lr 3e-3, StepLR halving every 8 epochs.
    """
    from surrogates.runs.pde1d import PDEBenchDataSpec, train_rollout
    from surrogates.training import TrainConfig

    table = _read_toml(config_path)
    data = config_from(PDEBenchDataSpec, table.get("data", {}), {
        "paths": list(files), "reduced_resolution": reduced_resolution,
        "reduced_resolution_t": reduced_resolution_t})
    defaults = {"epochs": 40, "batch_size": 8, "lr": 3e-3, "scheduler": "step", "step_size": 8,
                "gamma": 0.5}
    train_config = config_from(TrainConfig, {**defaults, **table.get("train", {})}, train_flags)
    rollout = {**table.get("rollout", {}),
               **{k: v for k, v in (("context", context), ("warmup_epochs", warmup_epochs),
                                    ("step_normalization", step_normalization))
                  if v is not None}}
    unknown = set(rollout) - {"context", "warmup_epochs", "aux_weight", "step_normalization"}
    if unknown:
        raise click.BadParameter(f"unknown keys {sorted(unknown)} in [rollout]",
                                 param_hint="--config")
    result = train_rollout(data, run_dir, model=model, model_config=table.get("model"),
                           train_config=train_config, overwrite=overwrite, resume=resume,
                           **rollout)
    click.echo(f"trained {len(result.history)} epochs; best validation rollout loss "
               f"{result.best_validation_loss:.4e} at epoch {result.best_epoch}; run in {run_dir}")


for _command in (train_mno, train_local_mlp, train_polynomial):
    _command.help = f"{_command.help}\n\n{_CLOSURE_NOTE}"


# --------------------------------------------------------------------------- finetune
@main.command()
@click.argument("source_run", type=click.Path(file_okay=False, exists=True))
@click.option("--out", "run_dir", required=True, type=click.Path(file_okay=False),
              help="Run folder to create for the fine-tuned closure.")
@click.option("--data", "data_path", type=click.Path(dir_okay=False),
              help="Trajectories to train on [the source run's dataset].")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="TOML with tables [unroll] (UnrollConfig) and [train] (TrainConfig).")
@click.option("--frames", "n_frames", type=int, help="Saved frames per unrolled window [4].")
@click.option("--dt-factor", type=int, help="Hybrid step = this times the data's dt [10].")
@click.option("--scheme", type=click.Choice(["rk4", "euler"]), help="Hybrid time stepping [rk4].")
@click.option("--stride", type=int, help="Frames between window starts [5].")
@click.option("--overwrite", is_flag=True, help="Replace an existing run folder.")
@_fit_options
@_fail_cleanly
def finetune(source_run, run_dir, data_path, config_path, n_frames, dt_factor, scheme, stride,
             overwrite, resume, **train_flags) -> None:
    """A-posteriori fine-tuning: train a closure run through unrolled hybrid steps.

    The loss is the error of the hybrid trajectory over a short window against the resolved
    trajectory; the result is a closure run folder for `evaluate` and `export`. Defaults: 5
    epochs, lr 3e-4, MSE.
    """
    from surrogates.runs.lorenz96_finetune import DEFAULT_TRAIN, UnrollConfig, finetune_closure
    from surrogates.training import TrainConfig

    table = _read_toml(config_path)
    unroll = config_from(UnrollConfig, table.get("unroll", {}),
                         {"n_frames": n_frames, "dt_factor": dt_factor, "scheme": scheme,
                          "stride": stride})
    train_config = config_from(TrainConfig, {**dataclasses.asdict(DEFAULT_TRAIN),
                                             **table.get("train", {})}, train_flags)
    result = finetune_closure(source_run, run_dir, unroll=unroll, train_config=train_config,
                              data_path=data_path, overwrite=overwrite, resume=resume)
    click.echo(f"fine-tuned {len(result.history)} epochs; best window loss "
               f"{result.best_validation_loss:.4e} at epoch {result.best_epoch}; run in {run_dir}")


# --------------------------------------------------------------------------- solve
@main.group()
def solve() -> None:
    """Solve a PDE with a physics-informed model (no data needed)."""


@solve.command("pig")
@click.option("--pde", required=True,
              type=click.Choice(["helmholtz", "klein-gordon", "allen-cahn", "flow-mixing"]),
              help="Problem with a reference solution (surrogates.models.pinn.problems).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Output folder: solution.nc, solution.png, summary.json, parameters.")
@click.option("--model", type=click.Choice(["pig", "pinn"]), default="pig", show_default=True,
              help="Physics-informed Gaussians, or the plain tanh-MLP PINN baseline.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="TOML with tables [problem] (factory arguments, e.g. a1, a2), [train] "
                   "(surrogates.models.pinn.train arguments) and [model] (PIG / MLP arguments).")
@click.option("--a1", type=float, help="Helmholtz: wavenumber factor in x [4].")
@click.option("--a2", type=float, help="Helmholtz: wavenumber factor in y [1].")
@click.option("--steps", type=int, help="Optimizer steps [1000].")
@click.option("--collocation", type=int, help="Residual points per step [1024].")
@click.option("--optimizer", type=click.Choice(["adam", "lbfgs"]), help="[adam].")
@click.option("--lr", type=float, help="Adam learning rate [1e-2 PIG, 1e-3 PINN].")
@click.option("--lr-final", type=float,
              help="Decay the Adam learning rate exponentially to this by the last step [off].")
@click.option("--gaussians", type=int, help="PIG: number of Gaussians [100].")
@click.option("--sigma", type=float, help="PIG: initial width in the [-1, 1] box [0.1].")
@click.option("--mean-init", type=click.Choice(["uniform", "grid"]),
              help="PIG: initial means, uniform random or on a regular grid [uniform].")
@click.option("--cutoff", type=float,
              help="PIG: sum only Gaussians within this many widths of a point (faster with "
                   "thousands of narrow Gaussians; 5 keeps the truncation below 4e-6) [off].")
@click.option("--boundary-weight", type=float, help="Weight of the boundary/initial terms [1].")
@click.option("--causal-chunks", type=int,
              help="Causal training weights over this many time chunks (time-dependent PDEs) "
                   "[off].")
@click.option("--causal-eps", type=float, help="Tolerance of the causal weights [1].")
@click.option("--seed", type=int, help="Seed [0].")
@click.option("--dtype", type=click.Choice(["float32", "float64"]), help="[float32].")
@click.option("--grid", "n_grid", type=int, default=101, show_default=True,
              help="Points per axis of the output grid.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output folder.")
@_fail_cleanly
def solve_pig(pde, out_dir, model, config_path, a1, a2, steps, collocation, optimizer, lr,
              lr_final, gaussians, sigma, mean_init, cutoff, boundary_weight, causal_chunks,
              causal_eps, seed, dtype, n_grid, overwrite) -> None:
    """Train a PIG (or PINN) on one PDE; write the solution on a grid, a plot and the error."""
    from surrogates.runs.pinn import solve_to_folder

    table = _read_toml(config_path)
    problem = {**table.get("problem", {}),
               **{k: v for k, v in (("a1", a1), ("a2", a2)) if v is not None}}
    if problem and pde != "helmholtz" and ({"a1", "a2"} & set(problem)):
        raise click.UsageError("--a1 / --a2 apply to --pde helmholtz only")
    model_kwargs = {**table.get("model", {}),
                    **{k: v for k, v in (("n_gaussians", gaussians), ("sigma_init", sigma),
                                         ("mean_init", mean_init), ("cutoff", cutoff))
                       if v is not None}}
    if model == "pinn" and ({"n_gaussians", "sigma_init", "mean_init", "cutoff"}
                            & set(model_kwargs)):
        raise click.UsageError(
            "--gaussians / --sigma / --mean-init / --cutoff apply to --model pig only")
    if pde == "helmholtz" and (causal_chunks is not None or causal_eps is not None):
        raise click.UsageError("--causal-chunks / --causal-eps apply to time-dependent PDEs only")
    flags = {"n_steps": steps, "n_collocation": collocation, "optimizer": optimizer, "lr": lr,
             "lr_final": lr_final, "boundary_weight": boundary_weight,
             "causal_chunks": causal_chunks, "causal_eps": causal_eps, "seed": seed,
             "dtype": dtype}
    train_kwargs = {**table.get("train", {}), **{k: v for k, v in flags.items() if v is not None}}
    if model_kwargs:
        train_kwargs["model_kwargs"] = model_kwargs
    summary = solve_to_folder(pde.replace("-", "_"), out_dir, model=model,
                              problem_kwargs=problem, train_kwargs=train_kwargs, n_grid=n_grid,
                              overwrite=overwrite)
    click.echo(f"{pde} with {model}: relative L2 error {summary['relative_l2']:.3e} against the "
               f"reference, {summary['wall_time_s']:.1f} s of training; wrote {out_dir}")


# --------------------------------------------------------------------------- evaluate
@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--data", "data_path", type=click.Path(dir_okay=False),
              help="Dataset to evaluate on [the training dataset]; for rollout runs a "
                   "comma-separated list of PDEBench files.")
@click.option("--split", default="test", show_default=True,
              type=click.Choice(["train", "validation", "test", "all"]))
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Output folder [RUN_DIR/evaluation].")
@click.option("--compare", "compare", multiple=True, type=click.Path(file_okay=False),
              help="Closure runs: other closure run folders to score in the same hybrid tables.")
@click.option("--scheme", type=click.Choice(["euler", "rk4"]),
              help="Closure runs: hybrid time stepping [euler].")
@click.option("--forecast-mtu", type=float, help="Closure runs: short-range horizon [2].")
@click.option("--climate-mtu", type=float, help="Closure runs: long-run horizon [20].")
@click.option("--dt-factor", type=int,
              help="Closure runs: hybrid step = this times the data's dt [1].")
@_fail_cleanly
def evaluate(run_dir, data_path, split, out_dir, compare, scheme, forecast_mtu,
             climate_mtu, dt_factor) -> None:
    """Metrics (JSON) and plots (PNG) of a trained run on a dataset split.

    For a Lorenz-96 closure run it also runs the hybrid model from the split's initial
    conditions against the fully resolved solver (with coarse physics alone as a baseline):
    skill by lead time, valid prediction time, climate statistics, stability and cost. For a
    rollout run (`surrogates train rollout`) it scores full autoregressive rollouts with
    PDEBench's metrics, overall and per parameter value (held-out values: --split all). For
    a DeepONet acoustics run (`surrogates train deeponet`) it predicts whole fields of
    held-out sources: RMSE in Pa and relative L2 over the field and per receiver, and the
    time per field against the solver's.
    """
    from surrogates.runs.lorenz96 import CLOSURE_CLASSES, HybridEvaluationConfig
    from surrogates.runs.operators import RUN_CONFIG_NAME, evaluate_run

    out = Path(out_dir) if out_dir else Path(run_dir) / "evaluation"
    hybrid = None
    config_path = Path(run_dir) / RUN_CONFIG_NAME
    if config_path.is_file() and json.loads(config_path.read_text()).get("kind") == "pde_rollout":
        from surrogates.runs.pde1d import evaluate_rollout_run

        files = [p.strip() for p in data_path.split(",")] if data_path else None
        result = evaluate_rollout_run(run_dir, files, split=split, out_dir=out)
        for key, scores in [("overall", result["overall"]), *result["by_parameter"].items()]:
            click.echo(f"{key}: nRMSE {scores['nrmse']:.4f}, RMSE {scores['rmse']:.4g}, max "
                       f"error {scores['max_error']:.4g} ({scores['n_samples']} samples)")
        click.echo(f"wrote {out}")
        return
    kind = json.loads(config_path.read_text()).get("kind") if config_path.is_file() else None
    if kind == "deeponet_acoustics":
        from surrogates.cli.acoustics import evaluate_command

        evaluate_command(run_dir, data_path, split, out)
        return
    if kind == "climatebench":
        from surrogates.cli.climatebench import evaluate_command

        evaluate_command(run_dir, data_path, out)
        return
    if kind == "mmgp":
        from surrogates.cli.mmgp import evaluate_command

        evaluate_command(run_dir, data_path, split, out)
        return
    if (config_path.is_file()
            and json.loads(config_path.read_text())["model_class"] in CLOSURE_CLASSES):
        hybrid = config_from(HybridEvaluationConfig, {}, {
            "scheme": scheme, "forecast_mtu": forecast_mtu, "climate_mtu": climate_mtu,
            "dt_factor": dt_factor})
    result = evaluate_run(run_dir, data_path, split=split, out_dir=out, hybrid=hybrid,
                          compare=compare)
    click.echo(json.dumps(result["overall"], indent=2))
    if "ensemble" in result:
        click.echo(f"closure ensemble: {json.dumps(result['ensemble'])}")
    for name, entry in result.get("hybrid", {}).get("models", {}).items():
        climate = entry.get("climate", {})
        click.echo(f"hybrid {name}: stable {entry['stable_fraction']:.0%}, VPT "
                   f"{entry.get('vpt_mean', float('nan')):.2f} MTU, Hellinger "
                   f"{climate.get('hellinger', float('nan')):.3f}, "
                   f"{entry['speedup']:.2f}x the speed of the resolved solver")
        if "ensemble" in entry:
            scores = entry["ensemble"]
            click.echo(f"  ensemble of {scores['n_members']}: CRPS {scores['crps_mean']:.3f}, "
                       f"spread-skill {scores['spread_skill_mean']:.2f} (1 = calibrated)")
    click.echo(f"wrote {out}")


# --------------------------------------------------------------------------- export
@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["onnx", "torchscript"]), default="onnx",
              show_default=True, help="ONNX (ONNX Runtime: C, C++, Fortran) or TorchScript "
                                      "(LibTorch).")
@click.option("--out", "out", type=click.Path(dir_okay=False),
              help="Output file [RUN_DIR/closure.onnx or RUN_DIR/closure.pt].")
@click.option("--example-K", "example_K", type=int, default=36, show_default=True,
              help="Ring size used for tracing (the exported axes stay dynamic).")
@click.option("--overwrite", is_flag=True, help="Replace existing files.")
@_fail_cleanly
def export(run_dir, fmt, out, example_K, overwrite) -> None:
    """Export a trained closure for a host model, with a JSON sidecar describing its contract.

    Input "X" (batch, K) float32, output "closure" (batch, K): the correction to dX/dt (1/MTU).
    """
    from surrogates.coupling import export_onnx, export_torchscript
    from surrogates.runs.lorenz96 import CLOSURE_CLASSES
    from surrogates.runs.operators import load_run

    model, config = load_run(run_dir)
    if config["model_class"] not in CLOSURE_CLASSES:
        raise click.ClickException(f"{run_dir} holds a {config['model_class']}; export is for "
                                   f"the closures {', '.join(CLOSURE_CLASSES)}")
    default = Path(run_dir) / ("closure.onnx" if fmt == "onnx" else "closure.pt")
    writer = export_onnx if fmt == "onnx" else export_torchscript
    path = writer(model, out or default, example_K=example_K, overwrite=overwrite)
    click.echo(f"wrote {path} and {path}.json")


# --------------------------------------------------------------------------- demo
@main.command()
@click.option("--out", "out_dir", default="surrogates-demo", show_default=True,
              type=click.Path(file_okay=False), help="Report folder to create.")
@click.option("--overwrite", is_flag=True, help="Replace the report folder if it exists.")
@click.option("--quick", is_flag=True, help="A smaller run (seconds) for smoke tests.")
@_fail_cleanly
def demo(out_dir, overwrite, quick) -> None:
    """End to end on CPU in a few minutes: Lorenz-96 data -> FNO closure -> evaluation report."""
    from surrogates.demo.main import run_demo

    out = Path(out_dir)
    if out.exists():
        if not overwrite:
            raise click.ClickException(f"{out} exists; pass --overwrite to replace it or choose "
                                       "another --out")
        shutil.rmtree(out)
    report = run_demo(out, quick=quick)
    click.echo(report.read_text())
    click.echo(f"report written to {out.resolve()}")


from surrogates.cli import acoustics as cli_acoustics  # noqa: E402
from surrogates.cli import airfoil as cli_airfoil  # noqa: E402
from surrogates.cli import climatebench as cli_climate  # noqa: E402

cli_acoustics.register(generate, train)
cli_airfoil.register(generate)
cli_climate.register(generate, train)

from surrogates.cli import mmgp as cli_mmgp  # noqa: E402

cli_mmgp.register(train, main)

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
