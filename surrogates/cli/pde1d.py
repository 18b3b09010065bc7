"""PDEBench 1D commands: ``generate advection|burgers|diffusion-reaction``, ``train rollout``,
and ``evaluate`` / ``predict`` of rollout runs (kind ``"pde_rollout"``)."""

from __future__ import annotations

import time

import click

from surrogates.cli import options as opt
from surrogates.cli.family import Family
from surrogates.cli.operators import CALIBRATE
from surrogates.data.pdebench_generate import PDE1DGenerateConfig
from surrogates.runs.pde1d import PDEBenchDataSpec

_VALUES = {
    "advection": "advection speeds beta, one file each, e.g. 0.1,0.4,1.0",
    "burgers": "viscosities nu (diffusivity nu/pi), one file each, e.g. 0.001,0.01,0.1",
    "diffusion-reaction": "diffusivities nu; one file per (nu, rho) pair, e.g. 0.5,2.0",
}
_DOCS = {
    "advection": "PDEBench 1D advection u_t + beta u_x = 0: one HDF5 file per beta.",
    "burgers": "PDEBench 1D Burgers u_t + (u^2/2)_x = (nu/pi) u_xx: one HDF5 file per nu.",
    "diffusion-reaction": "PDEBench 1D diffusion-reaction u_t = nu u_xx + rho u(1-u): one "
                          "HDF5 file per (nu, rho).",
}


def _generate_command(pde: str) -> click.Command:
    """``surrogates generate PDE``: PDEBench HDF5 files from the 1D finite-volume solvers."""
    t_end, n_frames = {"diffusion-reaction": (1.0, 101)}.get(pde, (2.0, 201))
    options = [
        click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
                     help="Output folder (created if missing); files get PDEBench's names."),
        opt.config_option("TOML file with PDE1DGenerateConfig fields (pde is implied)."),
        click.option("--values", help=f"Comma-separated {_VALUES[pde]}."),
    ]
    if pde == "diffusion-reaction":
        options.append(click.option("--rho", help="Comma-separated reaction rates rho [1.0]."))
    options += opt.fields_options(PDE1DGenerateConfig, {
        "n_samples": "Samples per file",
        "N": ("Cells", {"decls": ("--N",)}),
        "n_frames": ("Frames per sample", {"type": int, "shown": str(n_frames)}),
        "t_end": ("Time of the last frame", {"type": float, "shown": f"{t_end:g}"}),
        "seed": "Seed of the initial conditions, the same in every file",
        "cfl": "Courant number",
        "batch_size": "Samples integrated at once",
        "dtype": ("Precision of the computation; files store float32",
                  {"type": click.Choice(["float32", "float64"])}),
    })
    options.append(opt.overwrite_option("existing files"))

    def command(out_dir, config_path, values, overwrite, rho=None, **flags) -> None:
        from surrogates.data.pdebench_generate import generate_pdebench

        try:  # every input error as one line (exit code 1)
            table = opt.read_toml(config_path)
            if table.get("pde", pde) != pde:
                raise click.BadParameter(f"the file says pde = {table['pde']!r}, but this "
                                         f"command generates {pde}", param_hint="--config")
            table["pde"] = pde
            flags["values"] = opt.float_list(values, "--values")
            flags["rho"] = opt.float_list(rho, "--rho")
            if "values" not in table and flags["values"] is None:
                raise click.UsageError(f"give --values ({_VALUES[pde]}) or 'values' in "
                                       "--config")
            config = opt.config_from(PDE1DGenerateConfig, table, flags)
        except click.UsageError as err:
            raise click.ClickException(err.format_message()) from err
        started = time.perf_counter()
        paths = generate_pdebench(config, out_dir, overwrite=overwrite)
        for path in paths:
            click.echo(f"wrote {path}: tensor ({config.n_samples}, {config.n_frames}, "
                       f"{config.N})")
        click.echo(f"{len(paths)} file(s) in {time.perf_counter() - started:.1f} s")

    command.__name__ = f"generate_{pde.replace('-', '_')}"
    command.__doc__ = (f"{_DOCS[pde]}\n\nThe same --seed gives the same initial conditions in "
                       "every file.")
    return click.command(pde)(opt.option_group(options)(opt.fail_cleanly(command)))


#: ``train rollout`` defaults (CAPE's recipe; the TrainConfig fields they replace).
ROLLOUT_TRAIN = {"epochs": 40, "batch_size": 8, "lr": 3e-3, "scheduler": "step", "step_size": 8,
                 "gamma": 0.5}
_ROLLOUT_KEYS = {"context", "warmup_epochs", "aux_weight", "step_normalization"}
_MEMBERS = click.option("--members", type=click.IntRange(min=1), default=1, show_default=True,
                       help="Train a deep ensemble of this many rollout models (seeds seed, "
                            "seed+1, ...) in member-* subfolders; evaluate and predict use "
                            "their mean and spread.")


@click.command("rollout")
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option("--out", "run_dir", required=True, type=click.Path(file_okay=False),
              help="Run folder to create.")
@click.option("--model", type=click.Choice(["cape-fno", "cape-unet", "fno", "unet"]),
              default="cape-fno", show_default=True, help="One-step model.")
@opt.config_option("TOML with tables [data] (PDEBenchDataSpec), [model] (model arguments, e.g. "
               "base_config, width), [rollout] (context, warmup_epochs, aux_weight, "
               "step_normalization) and [train] (TrainConfig).")
@opt.option_group(opt.fields_options(PDEBenchDataSpec, {
    "reduced_resolution": "PDEBench stride in x",
    "reduced_resolution_t": "PDEBench stride in time",
}))
@_MEMBERS
@CALIBRATE
@click.option("--context", type=int, help="Frames the model sees [1].")
@click.option("--warmup-epochs", type=int, help="Epochs on CAPE's auxiliary loss alone "
                                                "[2 for CAPE models, else 0].")
@click.option("--step-normalization", type=click.Choice(["frame", "initial"]),
              help="Divide each step's error by that frame's norm (CAPE) or by the first "
                   "frame's (decaying solutions) [initial for Burgers files, else frame].")
@opt.overwrite_option("an existing run folder")
@opt.fit_options(ROLLOUT_TRAIN)
@opt.fail_cleanly
def train_rollout(files, run_dir, model, config_path, reduced_resolution, reduced_resolution_t,
                  members, calibration, context, warmup_epochs, step_normalization, overwrite,
                  resume, **train_flags):
    """Autoregressive solver on PDEBench 1D files (one per parameter value), CAPE curriculum.

    FILES are PDEBench HDF5 files of one PDE, e.g. from `surrogates generate advection`. The
    model maps the last --context frames (and, for CAPE models, the PDE parameters) to the next
    frame; training moves from teacher forcing to full rollouts (Takamoto et al. 2023).
    --calibrate draws its trajectories from each file's training samples and fits one conformal
    scale per lead time on their full rollouts (at least 19 trajectories in all).
    """
    from surrogates.runs.pde1d import train_rollout, train_rollout_ensemble

    table = opt.read_toml(config_path)
    data = opt.config_from(PDEBenchDataSpec, table.get("data", {}), {
        "paths": list(files), "reduced_resolution": reduced_resolution,
        "reduced_resolution_t": reduced_resolution_t, "calibration": calibration})
    train_config = opt.train_config_from(table, train_flags, ROLLOUT_TRAIN)
    rollout = {**table.get("rollout", {}),
               **{k: v for k, v in (("context", context), ("warmup_epochs", warmup_epochs),
                                    ("step_normalization", step_normalization))
                  if v is not None}}
    unknown = set(rollout) - _ROLLOUT_KEYS
    if unknown:
        raise click.BadParameter(f"unknown keys {sorted(unknown)} in [rollout]",
                                 param_hint="--config")
    common = {"model": model, "model_config": table.get("model"), "train_config": train_config,
              "overwrite": overwrite, "resume": resume, **rollout}
    result = (train_rollout_ensemble(data, run_dir, n_members=members, **common)
              if members > 1 else train_rollout(data, run_dir, **common))
    opt.echo_training(result, run_dir, train_config.seed, "validation rollout loss")
    if data.calibration:
        click.echo(f"calibrated per-lead conformal intervals on {run_dir}/calibration.json")


def _files(data_path: str | None) -> list[str] | None:
    return [p.strip() for p in data_path.split(",")] if data_path else None


_DATA_HELP = ("Comma-separated PDEBench files [the training files]; files of parameter values "
              "never trained on need --split all.")


@click.command("evaluate")
@opt.run_argument
@opt.evaluate_options(data_help=_DATA_HELP)
@opt.fail_cleanly
def evaluate_rollout(run_dir, data_path, split, out_dir) -> None:
    """Full autoregressive rollouts of a rollout run scored with PDEBench's metrics, overall and
    per parameter value (held-out values: --split all)."""
    from surrogates.runs.pde1d import evaluate_rollout_run

    result = evaluate_rollout_run(run_dir, _files(data_path), split=split, out_dir=out_dir)
    for key, scores in [("overall", result["overall"]), *result["by_parameter"].items()]:
        click.echo(f"{key}: nRMSE {scores['nrmse']:.4f}, RMSE {scores['rmse']:.4g}, max "
                   f"error {scores['max_error']:.4g} ({scores['n_samples']} samples)")
    opt.echo_uq_block(result.get("uq"))
    _echo_by_lead(result["uq"]["u"])
    click.echo(f"wrote {out_dir or f'{run_dir}/evaluation'}")


def _echo_by_lead(report) -> None:
    """One line on how the spread follows the error from the first to the last lead."""
    lead = report["by_lead"]
    rmse = lead["rmse"]
    for name in ("spread", "calibrated_spread"):
        if name in lead:
            corr = lead[f"{name}_rmse_correlation"]
            click.echo(f"by lead: RMSE {rmse[0]:.4g} -> {rmse[-1]:.4g}, "
                       f"{name.replace('_', ' ')} {lead[name][0]:.4g} -> {lead[name][-1]:.4g} "
                       f"(correlation across lead "
                       f"{'n/a' if corr is None else format(corr, '.3f')})")
    calibrated = report.get("calibrated", {}).get("by_group", {}).get("0.9")
    if calibrated:
        click.echo(f"calibrated 90 % coverage by lead: {calibrated['coverage'][0]:.3f} (first) "
                   f"-> {calibrated['coverage'][-1]:.3f} (last)")


def _predict(run_dir, data_path, out, split, overwrite):
    from surrogates.runs.pde1d import predict_rollout_run

    return predict_rollout_run(run_dir, out, _files(data_path), split=split, overwrite=overwrite)


predict_rollout = opt.file_predictor(
    _predict, "Full autoregressive rollouts of a split of PDEBench files, written to netCDF.",
    "netCDF file: u (the rollouts), u_reference and, for an ensemble or a calibrated run, u_std "
    "on (sample, time, x).", data_help=_DATA_HELP)


FAMILY = Family(
    name="pde1d", kinds=("pde_rollout",),
    generate=tuple(_generate_command(pde) for pde in _VALUES),
    train=(train_rollout,),
    evaluate=evaluate_rollout, predict=predict_rollout,
    example=(
        "generate advection --out {dir}/pde --values 0.4 --n-samples 10 --N 32 --n-frames 11",
        "train rollout {dir}/pde/1D_Advection_Sols_beta0.4.hdf5 --out {dir}/run --model fno "
        "--epochs 1 --batch-size 4 --members 2",
        "evaluate {dir}/run",
        "predict {dir}/run --out {dir}/rollouts.nc",
    ),
)
