"""Command-line pieces shared by the families that train operators on gridded netCDF data
(:mod:`.darcy` and :mod:`.lorenz96`, on :mod:`surrogates.runs.operators`): the data options,
training and its report, and the ``predict`` and ``export`` commands of their run folders."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click

from surrogates.cli import options as opt

STREAM = click.option("--stream", is_flag=True, default=None,
                      help="Read batches lazily from disk (dask) instead of loading the data: "
                           "for datasets or shard sets larger than memory.")


CALIBRATE = click.option(
    "--calibrate", "calibration", type=click.FloatRange(0, 1, min_open=True, max_open=True),
    help="Hold this fraction of the training samples out of the fit and calibrate split-"
         "conformal 90 / 95 % intervals on them (marginal and whole-field); evaluate and "
         "predict then use them [off].")


MEMBERS = click.option("--members", type=click.IntRange(min=1), default=1, show_default=True,
                       help="Train a deep ensemble of this many models (seeds seed, seed+1, ...) "
                            "in member-* subfolders; evaluate and predict add their spread.")


def training_options(defaults: dict[str, Any] | None = None) -> Any:
    """``--calibrate``, ``--stream`` and the optimisation flags
    (:func:`~surrogates.cli.options.fit_options`, with the command's ``defaults``)."""
    return opt.option_group([CALIBRATE, STREAM, opt.fit_options(defaults)])


def data_options(default_targets: str, default_inputs: str = "X",
                 default_dims: str = "k") -> Any:
    """Options naming the dataset, the run folder, the TOML file and the variables."""
    return lambda func: opt.apply(func, [
        click.option("--data", "data_path", required=True, type=click.Path(dir_okay=False),
                     help="netCDF dataset (e.g. from `surrogates generate`)."),
        click.option("--out", "run_dir", required=True, type=click.Path(file_okay=False),
                     help="Run folder to create."),
        click.option("--config", "config_path", type=click.Path(dir_okay=False),
                     help="TOML with tables [data], [model] (model arguments) and [train] "
                          "(TrainConfig)."),
        click.option("--inputs", help=f"Comma-separated input variables [{default_inputs}]."),
        click.option("--targets", help=f"Comma-separated target variables "
                                        f"[{default_targets}]."),
        click.option("--spatial-dims", help=f"Comma-separated grid dims [{default_dims}]."),
        opt.overwrite_option("an existing run folder"),
    ])


def data_spec(table: dict[str, Any], data_path, inputs, targets, spatial_dims,
              default_targets: str, lead: int | None = None, history: int | None = None):
    """:class:`~surrogates.runs.operators.DataSpec` from the TOML ``[data]`` table and flags."""
    from surrogates.runs.operators import DataSpec

    data_table = {"targets": default_targets.split(","), **table.get("data", {})}
    return opt.config_from(DataSpec, data_table, {
        "path": data_path, "inputs": opt.names(inputs, "--inputs"),
        "targets": opt.names(targets, "--targets"),
        "spatial_dims": opt.names(spatial_dims, "--spatial-dims"), "lead": lead,
        "history": history})


def train_and_report(data, run_dir, model_class, model, train_flags, table, resume, overwrite,
                     normalization="wrap", members: int = 1,
                     train_defaults: dict[str, Any] | None = None) -> None:
    """Train one model (or an ensemble of ``members``) into ``run_dir`` and print a summary."""
    from surrogates.runs.operators import train_operator

    if train_flags.pop("stream", None):
        data = dataclasses.replace(data, stream=True)
    calibration = train_flags.pop("calibration", None)
    if calibration is not None:
        data = dataclasses.replace(data, calibration=calibration)
    train_config = opt.train_config_from(table, train_flags, train_defaults)
    common = {"model_class": model_class, "model_config": model, "train_config": train_config,
              "overwrite": overwrite, "resume": resume, "normalization": normalization}
    if members > 1:
        from surrogates.runs.operators import train_ensemble

        result = train_ensemble(data, run_dir, n_members=members, **common)
    else:
        result = train_operator(data, run_dir, **common)
    opt.echo_training(result, run_dir, train_config.seed)


def _predict(run_dir, data_path, out, split, overwrite):
    from surrogates.runs.operators import predict_run

    return predict_run(run_dir, data_path, out, split=split, overwrite=overwrite)


predict_operator = opt.file_predictor(
    _predict, "Predict the targets of a dataset split with an operator or closure run (netCDF).",
    "netCDF file: each target, its _reference and, for ensembles, its _std.", split="all")


_FORMATS = {"onnx": ".onnx", "torch": ".pt2", "aoti": ".pt2", "torchscript": ".pt"}


@click.command("export")
@opt.run_argument
@click.option("--format", "fmt", type=click.Choice(list(_FORMATS)), default="onnx",
              show_default=True,
              help="onnx (ONNX Runtime: C, C++, Fortran; closures only), torch (torch.export "
                   "program), aoti (AOTInductor package: compiled C++), or torchscript "
                   "(deprecated).")
@click.option("--out", "out", type=click.Path(dir_okay=False),
              help="Output file [RUN_DIR/closure.onnx, .pt2 or .pt; RUN_DIR/operator.pt2].")
@click.option("--example-K", "example_K", type=int, default=36, show_default=True,
              help="Closures: ring size used for tracing (the exported axes stay dynamic).")
@opt.overwrite_option("existing files")
@opt.fail_cleanly
def export_model(run_dir, fmt, out, example_K, overwrite) -> None:
    """Export a trained closure or operator for a host program, with a JSON sidecar describing
    its contract.

    Closures: input "X" (batch, K) float32, output "closure" (batch, K), the correction to
    dX/dt (1/MTU). Operators (torch and aoti): input "x" (batch, channels, *grid), output "y",
    traced on one sample of the run's dataset, the batch axis dynamic.
    """
    from surrogates import coupling
    from surrogates.runs.folder import CLOSURE_MODEL_CLASSES
    from surrogates.runs.operators import load_run

    model, config = load_run(run_dir)
    closure = config["model_class"] in CLOSURE_MODEL_CLASSES
    if closure:
        writers = {"onnx": coupling.export_onnx, "torch": coupling.export_torch,
                   "aoti": coupling.export_aoti, "torchscript": coupling.export_torchscript}
        path = writers[fmt](model, out or Path(run_dir) / f"closure{_FORMATS[fmt]}",
                            example_K=example_K, overwrite=overwrite)
    else:
        if fmt not in ("torch", "aoti"):
            raise click.ClickException(f"{run_dir} holds a {config['model_class']} operator: "
                                       "export it with --format torch or aoti (ONNX and "
                                       "TorchScript are for the Lorenz-96 closures)")
        writer = coupling.export_torch if fmt == "torch" else coupling.export_aoti
        path = writer(model, out or Path(run_dir) / "operator.pt2",
                      example_shape=_example_shape(config), overwrite=overwrite)
    click.echo(f"wrote {path} and {path}.json")


def _example_shape(config: dict[str, Any]) -> tuple[int, ...]:
    """``(1, channels, *grid)`` of one sample of an operator run's dataset."""
    from surrogates.data.shards import open_dataset
    from surrogates.runs.operators import DataSpec

    spec = DataSpec(**config["data"])
    with open_dataset(spec.path, lazy=True) as ds:
        return (1, len(spec.inputs) * (spec.history + 1),
                *(int(ds.sizes[d]) for d in spec.spatial_dims))
