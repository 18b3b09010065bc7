"""Room-acoustics commands: ``generate wave2d|wave3d``, ``train deeponet``, and ``evaluate`` /
``predict`` of DeepONet runs (kind ``"deeponet_acoustics"``)."""

from __future__ import annotations

import time

import click

from surrogates.cli import options as opt
from surrogates.cli.family import Family
from surrogates.cli.operators import CALIBRATE
from surrogates.data.acoustics_generate import WaveDataConfig
from surrogates.runs.acoustics import DeepONetDataSpec


def _generate_command(dim: int) -> click.Command:
    """``surrogates generate wave{dim}d``."""
    default_size, default_t = ("2 x 2", "0.01") if dim == 2 else ("1 x 1 x 1", "0.005")
    options = [
        click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
                     help="netCDF file to write."),
        opt.config_option("TOML file with WaveDataConfig fields (dim is implied)."),
        *opt.fields_options(WaveDataConfig, {
            "size": ("Room sides in m", {"type": float, "nargs": dim, "shown": default_size}),
            "spacing": "Grid spacing in m",
            "absorption": "Normal-incidence absorption coefficient of the walls, 0 = rigid",
            "n_sources": "Source positions (samples)",
            "source_margin": "Smallest source-wall distance, m",
            "n_receivers": "Receivers (same for all samples)",
            "t_max": ("Last output time in s", {"type": float, "shown": default_t}),
            "n_times": "Output frames",
            "pulse_width": "Gaussian pulse sigma in m",
            "amplitude": "Pulse peak in Pa",
            "order": ("Spatial order", {"type": click.Choice(["2", "4"])}),
            "seed": "Seed of the positions",
            "batch_size": "Sources per solver call",
            "dtype": ("Solver precision", {"type": click.Choice(["float64", "float32"])}),
        }),
        opt.overwrite_option("OUT if it exists"),
    ]

    def command(out, config_path, overwrite, order, size, **flags) -> None:
        from surrogates.data.acoustics_generate import generate_wave_dataset

        table = opt.read_toml(config_path)
        if table.get("dim", dim) != dim:
            raise click.BadParameter(f"the file says dim = {table['dim']}, but this command "
                                     f"generates {dim}D fields", param_hint="--config")
        flags.update(dim=dim, order=None if order is None else int(order),
                     size=list(size) if size else None)
        config = opt.config_from(WaveDataConfig, table, flags)
        started = time.perf_counter()
        path = generate_wave_dataset(config, out, overwrite=overwrite)
        shape = " x ".join(str(round(s / config.spacing) + 1) for s in config.size)
        click.echo(f"wrote {path}: {config.n_sources} sources, {config.n_times} frames on "
                   f"{shape} nodes in {time.perf_counter() - started:.1f} s")

    command.__name__ = f"generate_wave{dim}d"
    command.__doc__ = (
        f"{dim}D room acoustics: pressure fields of Gaussian pulses at random source positions "
        "(FDTD reference solver, batched over sources), as a netCDF dataset for `surrogates "
        "train deeponet`.")
    return click.command(f"wave{dim}d")(opt.option_group(options)(opt.fail_cleanly(command)))


#: ``train deeponet`` defaults (the TrainConfig fields they replace).
DEEPONET_TRAIN = {"epochs": 300, "batch_size": 8, "lr": 1e-3, "loss": "mse"}


@click.command("deeponet")
@click.argument("data_path", type=click.Path())
@click.option("--out", "run_dir", required=True, type=click.Path(file_okay=False),
              help="Run folder to create.")
@opt.config_option("TOML with tables [data] (DeepONetDataSpec), [model] (DeepONet arguments) and "
               "[train] (TrainConfig).")
@opt.option_group(opt.fields_options(DeepONetDataSpec, {
    "branch": ("Branch input: the initial pulse on a sensor grid or the source position",
               {"type": click.Choice(["pulse", "coordinates"])}),
    "sensors_per_axis": "Pulse sensors per axis",
    "points_per_sample": "Random space-time points per source and epoch",
}))
@click.option("--members", type=click.IntRange(min=1), default=1, show_default=True,
              help="Train a deep ensemble of this many DeepONets (seeds seed, seed+1, ...) in "
                   "member-* subfolders; evaluate and predict use their mean and spread.")
@CALIBRATE
@click.option("--network", type=click.Choice(["mlp", "modified"]), help="[modified].")
@click.option("--activation", type=click.Choice(["tanh", "sine"]), help="[tanh].")
@click.option("--n-basis", type=int, help="Basis functions p [100].")
@click.option("--width", type=int, help="Hidden width of branch and trunk [128].")
@click.option("--depth", type=int, help="Hidden layers of branch and trunk [3].")
@click.option("--fourier-features", type=int, help="Trunk Fourier frequencies [2].")
@opt.overwrite_option("an existing run folder")
@opt.fit_options(DEEPONET_TRAIN)
@opt.fail_cleanly
def train_deeponet(data_path, run_dir, config_path, branch, sensors_per_axis, points_per_sample,
                   members, calibration, network, activation, n_basis, width, depth,
                   fourier_features, overwrite, resume, **train_flags):
    """DeepONet from a source to its whole pressure field (room acoustics).

    DATA is a dataset from `surrogates generate wave2d|wave3d`; the loss is the MSE in Pa^2.
    --calibrate draws its sources from the training split (at least 19) and fits one conformal
    scale per output time on their whole fields.
    """
    from surrogates.runs.acoustics import train_deeponet as train
    from surrogates.runs.acoustics import train_deeponet_ensemble

    table = opt.read_toml(config_path)
    data = opt.config_from(DeepONetDataSpec, table.get("data", {}), {
        "path": data_path, "branch": branch, "sensors_per_axis": sensors_per_axis,
        "points_per_sample": points_per_sample, "calibration": calibration})
    model = dict(table.get("model", {}))
    for key, value in (("network", network), ("activation", activation),
                       ("n_basis", n_basis), ("fourier_features", fourier_features)):
        if value is not None:
            model[key] = value
    if width is not None or depth is not None:
        hidden = [width or 128] * (depth or 3)
        model.update(branch_hidden=hidden, trunk_hidden=hidden)
    train_config = opt.train_config_from(table, train_flags, DEEPONET_TRAIN)
    common = {"model_config": model, "train_config": train_config, "overwrite": overwrite,
              "resume": resume}
    result = (train_deeponet_ensemble(data, run_dir, n_members=members, **common)
              if members > 1 else train(data, run_dir, **common))
    opt.echo_training(result, run_dir, train_config.seed, "validation MSE", "Pa^2")
    if data.calibration:
        click.echo(f"calibrated per-time conformal intervals on {run_dir}/calibration.json")


@click.command("evaluate")
@opt.run_argument
@opt.evaluate_options()
@opt.fail_cleanly
def evaluate_deeponet(run_dir, data_path, split, out_dir) -> None:
    """Whole fields of held-out sources: RMSE in Pa and relative L2 over the field and per
    receiver, and the time per field against the solver's."""
    from surrogates.runs.acoustics import evaluate_deeponet_run

    result = evaluate_deeponet_run(run_dir, data_path, split=split, out_dir=out_dir)
    f = result["field"]
    members = f" (mean of {result['n_members']} members)" if result["n_members"] > 1 else ""
    click.echo(f"{result['n_samples']} held-out sources ({split}): field RMSE{members} "
               f"{f['rmse_pa']:.4f} Pa, relative L2 {f['rel_l2']:.4f}")
    if "receivers" in result:
        rms = ", ".join(f"{v:.4f}" for v in result["receivers"]["rmse_pa"])
        click.echo(f"receiver RMSE (Pa): {rms}")
    opt.echo_uq_block(result.get("uq"))
    t = result["timing"]
    click.echo(f"whole field: DeepONet {1e3 * t['deeponet_s_per_field']:.2f} ms, solver "
               f"{1e3 * t['solver_s_per_field']:.2f} ms ({t['speedup']:.2f}x); with the trunk "
               f"basis precomputed {1e3 * t['deeponet_cached_s_per_field']:.3f} ms "
               f"({t['speedup_cached']:.1f}x)")
    if "speedup_receivers" in t:
        click.echo(f"receiver series only: DeepONet "
                   f"{1e6 * t['deeponet_receivers_s_per_source']:.1f} us per source "
                   f"({t['speedup_receivers']:.0f}x the solver's whole-field run)")
    click.echo(f"wrote {out_dir or f'{run_dir}/evaluation'}")


def _predict(run_dir, data_path, out, split, overwrite):
    from surrogates.runs.acoustics import predict_deeponet_run

    return predict_deeponet_run(run_dir, out, data_path, split=split, overwrite=overwrite)


predict_deeponet = opt.file_predictor(
    _predict, "Whole pressure fields of a dataset split's sources, written to netCDF.",
    "netCDF file: pressure, pressure_reference and, for an ensemble or a calibrated run, "
    "pressure_std on (sample, time, *axes).",
    data_help="Acoustic dataset [the training dataset].")


FAMILY = Family(
    name="acoustics", kinds=("deeponet_acoustics",),
    generate=(_generate_command(2), _generate_command(3)), train=(train_deeponet,),
    evaluate=evaluate_deeponet, predict=predict_deeponet,
    example=(
        "generate wave2d --out {dir}/wave.nc --size 1 1 --spacing 0.1 --n-sources 30 "
        "--n-times 5 --t-max 0.002 --n-receivers 2 --source-margin 0.3",
        "train deeponet {dir}/wave.nc --out {dir}/run --epochs 1 --width 16 --depth 1 "
        "--n-basis 8 --points-per-sample 64 --sensors-per-axis 3 --members 2 --calibrate 0.8",
        "evaluate {dir}/run",
        "predict {dir}/run --out {dir}/fields.nc",
    ),
)
