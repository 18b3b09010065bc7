"""Lorenz-96 commands: ``generate lorenz96``, ``train mno|local-mlp|polynomial|next-state-fno``,
``finetune``, and ``evaluate`` / ``predict`` / ``export`` of closure runs (kind ``"closure"``).
"""

from __future__ import annotations

import json
import time

import click

from surrogates.cli import operators as gridded
from surrogates.cli import options as opt
from surrogates.cli.family import Family
from surrogates.data.lorenz96 import Lorenz96DataConfig
from surrogates.runs.lorenz96 import HybridEvaluationConfig
from surrogates.runs.lorenz96_finetune import DEFAULT_TRAIN, UnrollConfig

_DATA_OPTIONS = opt.fields_options(Lorenz96DataConfig, {
    "n_samples": "Number of trajectories",
    "K": ("Slow variables", {"decls": ("--K",)}),
    "J": ("Fast variables per slow one", {"decls": ("--J",)}),
    "I": ("Third-tier variables per fast one; 0 = two-tier", {"decls": ("--I",)}),
    "F": ("Forcing F", {"decls": ("--F",)}),
    "F_range": ("Draw F per sample from [LO, HI]", {"decls": ("--F-range",),
                                                     "type": (float, float)}),
    "h": "Coupling h",
    "b": "Spatial-scale ratio b",
    "c": "Time-scale ratio c",
    "dt": "RK4 step in model time units",
    "n_steps": "Steps after spin-up",
    "save_every": "Save every N-th step",
    "spinup_steps": "Steps discarded first",
    "seed": "Seed of the initial states",
    "dtype": ("Precision", {"type": click.Choice(["float64", "float32"])}),
    "batch_size": "Samples integrated at once",
})


@click.command("lorenz96")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Output netCDF file.")
@opt.config_option("TOML file with Lorenz96DataConfig fields.")
@opt.option_group(_DATA_OPTIONS)
@click.option("--no-fast", is_flag=True, default=None, help="Do not store Y (and Z).")
@opt.overwrite_option("OUT if it exists")
@opt.shard_options
@opt.fail_cleanly
def generate_lorenz96(out, config_path, no_fast, overwrite, shard, n_shards, resume,
                      **flags) -> None:
    """Multiscale Lorenz-96 trajectories with their exact subgrid forcing."""
    from surrogates.data.common import refuse_existing, write_netcdf
    from surrogates.data.lorenz96 import generate_lorenz96 as generate

    if no_fast:
        flags["store_fast"] = False
    config = opt.config_from(Lorenz96DataConfig, opt.read_toml(config_path), flags)
    if opt.generate_sharded(generate, config, out, shard, n_shards, resume, overwrite):
        return
    refuse_existing(out, overwrite, lock=True)  # fail before the integration, not after
    started = time.perf_counter()
    ds = generate(config)
    write_netcdf(ds, out, overwrite=overwrite)
    click.echo(f"wrote {out}: {dict(ds.sizes)} in {time.perf_counter() - started:.1f} s")


# ------------------------------------------------------------------------------- closures
_TARGETS = "closure_target"
_NOTE = ("The default target `closure_target` (RK4-step-averaged) suits a forward-Euler hybrid "
         "model; train on `subgrid_forcing` for an RK4 hybrid.")
_HISTORY = click.option("--history", type=click.IntRange(min=0),
                        help="Past saved frames of X given to the closure as extra channels "
                             "[0]; evaluate it with --dt-factor equal to the data's save_every.")
#: Closure model and training defaults: the settings of benchmarks/mno_lorenz96.py (MNO 16
#: channels, 2 layers; 12 epochs, batch 128, lr 3e-3), whose MNO hybrid keeps a valid forecast
#: for 2.51 MTU at K = 36 against 0.99 for coarse physics.
FOURIER_MODEL = {"hidden_channels": 16, "n_layers": 2}
CLOSURE_TRAIN = {"epochs": 12, "batch_size": 128, "lr": 3e-3}
_FOURIER = opt.option_group([
    click.option("--modes", type=int, help="Fourier modes kept [16]."),
    click.option("--width", type=int,
                 help=f"Hidden channels [{FOURIER_MODEL['hidden_channels']}]."),
    click.option("--layers", type=int, help=f"Fourier layers [{FOURIER_MODEL['n_layers']}]."),
])


def _fourier(width, layers, modes) -> dict:
    return {"hidden_channels": width, "n_layers": layers,
            "n_modes": None if modes is None else [modes]}


@click.command("mno", epilog=_NOTE)
@gridded.data_options(_TARGETS)
@_FOURIER
@_HISTORY
@gridded.MEMBERS
@gridded.training_options(CLOSURE_TRAIN)
@opt.fail_cleanly
def train_mno(data_path, run_dir, config_path, inputs, targets, spatial_dims, overwrite, modes,
              width, layers, history, members, resume, **train_flags):
    """Multiscale-neural-operator closure of Lorenz-96: X -> subgrid tendency, on any K."""
    table = opt.read_toml(config_path)
    data = gridded.data_spec(table, data_path, inputs, targets, spatial_dims, _TARGETS,
                             history=history)
    model = opt.model_table(table, FOURIER_MODEL, _fourier(width, layers, modes))
    gridded.train_and_report(data, run_dir, "MNOClosure", model, train_flags, table, resume,
                             overwrite, normalization="scalar", members=members,
                             train_defaults=CLOSURE_TRAIN)


@click.command("local-mlp", epilog=_NOTE)
@gridded.data_options(_TARGETS)
@click.option("--stencil", type=int, help="Neighbours on each side seen by the MLP [0: local].")
@click.option("--width", type=int, help="Hidden channels [32].")
@_HISTORY
@gridded.MEMBERS
@gridded.training_options(CLOSURE_TRAIN)
@opt.fail_cleanly
def train_local_mlp(data_path, run_dir, config_path, inputs, targets, spatial_dims, overwrite,
                    stencil, width, history, members, resume, **train_flags):
    """Local (pointwise or stencil) MLP closure of Lorenz-96, a baseline for the MNO."""
    table = opt.read_toml(config_path)
    data = gridded.data_spec(table, data_path, inputs, targets, spatial_dims, _TARGETS,
                             history=history)
    model = opt.model_table(table, {}, {"stencil": stencil, "hidden_channels": width})
    gridded.train_and_report(data, run_dir, "LocalMLPClosure", model, train_flags, table,
                             resume, overwrite, normalization="scalar", members=members,
                             train_defaults=CLOSURE_TRAIN)


@click.command("polynomial", epilog=_NOTE)
@gridded.data_options(_TARGETS)
@click.option("--degree", type=int, default=3, show_default=True, help="Polynomial degree.")
@opt.fail_cleanly
def train_polynomial(data_path, run_dir, config_path, inputs, targets, spatial_dims, overwrite,
                     degree):
    """Cubic polynomial closure in X_k (Wilks 2005), fitted by least squares."""
    from surrogates.runs.lorenz96 import fit_polynomial_closure

    table = opt.read_toml(config_path)
    data = gridded.data_spec(table, data_path, inputs, targets, spatial_dims, _TARGETS)
    result = fit_polynomial_closure(data, run_dir, degree=degree, overwrite=overwrite)
    click.echo(f"fitted coefficients {result['coefficients']} (training R^2 "
               f"{result['train_r2']:.4f}); run in {run_dir}")


@click.command("next-state-fno")
@gridded.data_options("X")
@click.option("--lead", type=int, default=1, show_default=True,
              help="Saved frames between input and target: the emulator's step.")
@_FOURIER
@gridded.training_options(CLOSURE_TRAIN)
@opt.fail_cleanly
def train_next_state_fno(data_path, run_dir, config_path, inputs, targets, spatial_dims, overwrite,
                         lead, modes, width, layers, resume, **train_flags):
    """Pure data-driven baseline for the MNO: an FNO from X(t) to X(t + lead frames), no physics.

    `surrogates evaluate` iterates it against the resolved solver like the hybrid closures.
    """
    table = opt.read_toml(config_path)
    data = gridded.data_spec(table, data_path, inputs, targets, spatial_dims, "X", lead=lead)
    model = opt.model_table(table, FOURIER_MODEL, _fourier(width, layers, modes))
    gridded.train_and_report(data, run_dir, "NextStateFNO", model, train_flags, table, resume,
                             overwrite, normalization="scalar", train_defaults=CLOSURE_TRAIN)


#: ``finetune`` defaults: the fields of ``DEFAULT_TRAIN`` that differ from TrainConfig's.
_FINETUNE_TRAIN = {"epochs": DEFAULT_TRAIN.epochs, "batch_size": DEFAULT_TRAIN.batch_size,
                   "lr": DEFAULT_TRAIN.lr, "loss": DEFAULT_TRAIN.loss}
_UNROLL_OPTIONS = opt.fields_options(UnrollConfig, {
    "n_frames": ("Saved frames per unrolled window", {"decls": ("--frames",)}),
    "dt_factor": "Hybrid step = this times the data's dt",
    "scheme": ("Hybrid time stepping", {"type": click.Choice(["rk4", "euler"])}),
    "stride": "Frames between window starts",
})


@click.command("finetune")
@click.argument("source_run", type=click.Path(file_okay=False, exists=True))
@click.option("--out", "run_dir", required=True, type=click.Path(file_okay=False),
              help="Run folder to create for the fine-tuned closure.")
@click.option("--data", "data_path", type=click.Path(dir_okay=False),
              help="Trajectories to train on [the source run's dataset].")
@opt.config_option("TOML with tables [unroll] (UnrollConfig) and [train] (TrainConfig).")
@opt.option_group(_UNROLL_OPTIONS)
@opt.overwrite_option("an existing run folder")
@opt.fit_options(_FINETUNE_TRAIN)
@opt.fail_cleanly
def finetune(source_run, run_dir, data_path, config_path, n_frames, dt_factor, scheme, stride,
             overwrite, resume, **train_flags) -> None:
    """A-posteriori fine-tuning: train a closure run through unrolled hybrid steps.

    The loss is the error of the hybrid trajectory over a short window against the resolved
    trajectory; the result is a closure run folder for `evaluate` and `export`.
    """
    from surrogates.runs.lorenz96_finetune import finetune_closure

    table = opt.read_toml(config_path)
    unroll = opt.config_from(UnrollConfig, table.get("unroll", {}),
                         {"n_frames": n_frames, "dt_factor": dt_factor, "scheme": scheme,
                          "stride": stride})
    train_config = opt.train_config_from(table, train_flags, _FINETUNE_TRAIN)
    result = finetune_closure(source_run, run_dir, unroll=unroll, train_config=train_config,
                              data_path=data_path, overwrite=overwrite, resume=resume)
    click.echo(f"fine-tuned {len(result.history)} epochs; best window loss "
               f"{result.best_validation_loss:.4e} at epoch {result.best_epoch}; run in {run_dir}")


# ------------------------------------------------------------------------------- evaluate
_HYBRID_OPTIONS = opt.fields_options(HybridEvaluationConfig, {
    "scheme": ("Hybrid time stepping", {"type": click.Choice(["euler", "rk4"])}),
    "forecast_mtu": "Short-range horizon in MTU",
    "climate_mtu": "Long-run horizon in MTU",
    "dt_factor": "Hybrid step = this times the data's dt",
})


@click.command("evaluate")
@opt.run_argument
@opt.evaluate_options()
@click.option("--compare", "compare", multiple=True, type=click.Path(file_okay=False),
              help="Other closure run folders to score in the same hybrid tables.")
@opt.option_group(_HYBRID_OPTIONS)
@opt.fail_cleanly
def evaluate_closure(run_dir, data_path, split, out_dir, compare, **hybrid_flags) -> None:
    """Offline scores of a Lorenz-96 closure run, and the closure inside the hybrid model.

    The hybrid model runs from the split's initial conditions against the fully resolved solver
    (with coarse physics alone as a baseline): skill by lead time, valid prediction time,
    climate statistics, stability and cost.
    """
    from surrogates.runs.lorenz96 import evaluate_closure_run

    hybrid = opt.config_from(HybridEvaluationConfig, {}, hybrid_flags)
    result = evaluate_closure_run(run_dir, data_path, split=split, out_dir=out_dir,
                                  hybrid=hybrid, compare=compare)
    click.echo(json.dumps(result["overall"], indent=2))
    if "ensemble" in result:
        click.echo(f"closure ensemble: {json.dumps(result['ensemble'])}")
    opt.echo_uq_block(result.get("uq"))
    for name, entry in result["hybrid"]["models"].items():
        climate = entry.get("climate", {})
        click.echo(f"hybrid {name}: stable {entry['stable_fraction']:.0%}, VPT "
                   f"{entry.get('vpt_mean', float('nan')):.2f} MTU, Hellinger "
                   f"{climate.get('hellinger', float('nan')):.3f}, "
                   f"{entry['speedup']:.2f}x the speed of the resolved solver")
        if "ensemble" in entry:
            scores = entry["ensemble"]
            click.echo(f"  ensemble of {scores['n_members']}: CRPS {scores['crps_mean']:.3f}, "
                       f"spread-skill {scores['spread_skill_mean']:.2f} (1 = calibrated)")
    click.echo(f"wrote {out_dir or f'{run_dir}/evaluation'}")


FAMILY = Family(
    name="lorenz96", kinds=("closure",),
    generate=(generate_lorenz96,),
    train=(train_mno, train_local_mlp, train_polynomial, train_next_state_fno),
    commands=(finetune,),
    evaluate=evaluate_closure, predict=gridded.predict_operator, export=gridded.export_model,
    example=(
        "generate lorenz96 --out {dir}/l96.nc --n-samples 6 --K 8 --J 4 --n-steps 200 "
        "--spinup-steps 50 --save-every 5",
        "train mno --data {dir}/l96.nc --out {dir}/run --epochs 1 --modes 4 --width 8 "
        "--layers 1 --batch-size 16",
        "evaluate {dir}/run --forecast-mtu 0.2 --climate-mtu 0.5",
        "export {dir}/run --format onnx --example-K 8",
    ),
)
