"""Airfoil commands: ``generate airfoil``, ``train mmgp``, and ``evaluate`` / ``predict`` of
MMGP runs (kind ``"mmgp"``)."""

from __future__ import annotations

import time

import click

from surrogates.cli import options as opt
from surrogates.cli.family import Family
from surrogates.data.airfoil import AirfoilDataConfig
from surrogates.runs.airfoil import MMGPRunConfig


def _range_or_list(text: str | None, param: str, allow_list: bool = False):
    """``"LO,HI"`` or ``"LO HI"`` -> (lo, hi); with ``allow_list``, ``"[a,b]"``, ``"a;b"`` or
    any comma list of other than two numbers -> list."""
    if text is None:
        return None
    body = text.strip()
    as_list = body.startswith("[") or ";" in body
    body = body.strip("[]").replace(";", ",").replace(" ", ",")
    try:
        values = [float(v) for v in body.split(",") if v]
    except ValueError:
        raise click.BadParameter(f"expected numbers, got {text!r}", param_hint=param) from None
    if allow_list and (as_list or len(values) != 2):
        if not values:
            raise click.BadParameter(f"empty list {text!r}", param_hint=param)
        return list(values)
    if len(values) != 2:
        raise click.BadParameter(f"expected LO,HI (two numbers), got {text!r}", param_hint=param)
    return tuple(values)


@click.command("airfoil")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Folder to create (one .vtu per sample + index.nc).")
@opt.config_option("TOML file with AirfoilDataConfig fields.")
@opt.option_group(opt.fields_options(AirfoilDataConfig, {
    "family": ("Shape family", {"type": click.Choice(["naca4", "cst"])}),
    "n_shapes": "Number of shapes",
    "conditions_per_shape": "Angles of attack per shape",
}))
@click.option("--alpha", help="Angle of attack in degrees: a range LO,HI drawn uniformly "
                              "[-4,10], or a list a,b,c (a 2-list: [a,b]) run for every shape.")
@click.option("--mach", help="Mach range LO,HI, one draw per shape [0,0.5].")
@click.option("--reynolds", help="Reynolds range LO,HI, log-uniform per shape [1e6,6e6].")
@opt.option_group(opt.fields_options(AirfoilDataConfig, {
    "x_transition": ("Boundary-layer trip, chord fraction (0: fully turbulent)",
                     {"type": float, "shown": "free transition"}),
    "n_panels": ("Panels per shape (even)", {"decls": ("--panels",)}),
    "farfield_radius": "Far-field radius in chords",
    "growth": "Mesh size growth per chord of distance",
    "seed": "Random seed",
}))
@opt.overwrite_option("the samples of an existing folder")
@opt.fail_cleanly
def generate_airfoil(out, config_path, alpha, mach, reynolds, overwrite, **flags) -> None:
    """Potential flows (panel method, Karman-Tsien, boundary-layer drag) around random NACA
    4-digit or CST airfoils on triangular meshes: a folder of .vtu files (velocity, cp,
    implicit_distance) with index.nc (alpha, mach, reynolds -> cl, cd, cm)."""
    from surrogates.data.airfoil import generate_airfoil_dataset, open_airfoil_dataset

    table = opt.read_toml(config_path)
    alpha_value = _range_or_list(alpha, "--alpha", allow_list=True)
    flags["alpha_values" if isinstance(alpha_value, list) else "alpha_range"] = alpha_value
    flags["mach_range"] = _range_or_list(mach, "--mach")
    flags["reynolds_range"] = _range_or_list(reynolds, "--reynolds")
    config = opt.config_from(AirfoilDataConfig, table, flags)
    started = time.perf_counter()
    path = generate_airfoil_dataset(config, out, overwrite=overwrite)
    ds = open_airfoil_dataset(path)
    idx = ds.index
    click.echo(f"wrote {path}: {len(ds)} samples ({config.n_shapes} {config.family} shapes, "
               f"{int(idx.attrs['n_dropped'])} supercritical dropped), "
               f"{int(idx['n_nodes'].min())}-{int(idx['n_nodes'].max())} nodes per mesh, "
               f"cl {float(idx['cl'].min()):.3f}..{float(idx['cl'].max()):.3f}, "
               f"cd {float(idx['cd'].min()):.4f}..{float(idx['cd'].max()):.4f}, "
               f"in {time.perf_counter() - started:.1f} s")


@click.command("mmgp")
@click.option("--data", "data", required=True, type=click.Path(file_okay=False, exists=True),
              help="Dataset folder from `surrogates generate airfoil`.")
@click.option("--out", "run_dir", required=True, type=click.Path(file_okay=False),
              help="Run folder to create.")
@opt.config_option("TOML file with MMGPRunConfig fields.")
@opt.option_group(opt.fields_options(MMGPRunConfig, {
    "morpher": ("Mesh morphing onto the common support; elasticity-online: elasticity for "
                "training meshes, the shape POD for new ones",
                {"type": click.Choice(["rbf", "elasticity", "elasticity-online", "tutte"])}),
    "fields": ("Point fields to learn, comma-separated ('' for none)", {"type": str}),
    "scalars": ("Scalar outputs, comma-separated", {"type": str}),
    "inputs": ("Scalar inputs, comma-separated", {"type": str}),
    "n_train": ("Training samples used", {"type": int, "shown": "all of the split"}),
    "test_fraction": "Fraction of the shapes held out for testing",
    "restarts": "GP hyperparameter restarts",
    "max_iter": "GP optimiser iterations",
    "seed": "Seed of the split and the restarts",
}))
@opt.overwrite_option("an existing run folder")
@opt.fail_cleanly
def train_mmgp(data, run_dir, config_path, fields, scalars, inputs, overwrite, **flags):
    """Mesh-morphing Gaussian process (MMGP) on an airfoil mesh dataset.

    Every mesh is morphed onto a common support (the first training mesh); the morphed
    coordinates and the transferred fields are compressed by POD and one GP per scalar and
    field mode is fitted on shape modes + scalar inputs. Whole shapes are held out for the
    test split, which `surrogates evaluate RUN` scores.
    """
    from surrogates.runs.airfoil import train_mmgp as train

    table = opt.read_toml(config_path)
    flags.update(data=data, fields=opt.names(fields, "--fields", allow_empty=True),
                 scalars=opt.names(scalars, "--scalars"), inputs=opt.names(inputs, "--inputs"))
    config = opt.config_from(MMGPRunConfig, table, flags)
    started = time.perf_counter()
    run = train(config, run_dir, overwrite=overwrite)
    click.echo(f"fitted MMGP ({config.morpher} morphing) on {run['n_train']} samples "
               f"({run['n_support_nodes']} support nodes, {run['n_shape_modes']} shape "
               f"modes) in {time.perf_counter() - started:.1f} s; {run['n_test']} test "
               f"samples held out; run in {run_dir}")


@click.command("evaluate")
@opt.run_argument
@opt.evaluate_options(splits=("train", "test", "all"),
                  data_help="Dataset folder to evaluate on [the training dataset].")
@opt.fail_cleanly
def evaluate_mmgp(run_dir, data_path, split, out_dir) -> None:
    """Scalar and field errors of an MMGP run on held-out shapes, with interval coverage."""
    from surrogates.runs.airfoil import evaluate_mmgp_run, metrics_table

    result = evaluate_mmgp_run(run_dir, data_path, split=split, out_dir=out_dir)
    click.echo(f"{result['n_samples']} {split} samples; MMGP fitted on {result['n_train']} in "
               f"{result['fit_seconds']:.1f} s; predict {result['predict_seconds_per_mesh']:.3f}"
               f" s per mesh (morphing included)")
    click.echo(metrics_table(result["metrics"]))
    opt.echo_uq_block(result.get("uq"))
    click.echo(f"wrote {out_dir or f'{run_dir}/evaluation'}")


@click.command("predict")
@opt.run_argument
@click.option("--mesh", "mesh_path", required=True, type=click.Path(dir_okay=False, exists=True),
              help="Mesh to predict on (.vtu with tagged wall and far field).")
@click.option("--alpha", type=float, help="Angle of attack in degrees.")
@click.option("--mach", type=float, help="Free-stream Mach number.")
@click.option("--reynolds", type=float, help="Chord Reynolds number.")
@click.option("--input", "extra", multiple=True, metavar="NAME=VALUE",
              help="Any other scalar input of the run (repeatable).")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="Mesh file to write with <field>_mean and <field>_std point fields.")
@opt.overwrite_option("OUT if it exists")
@opt.fail_cleanly
def predict_mmgp(run_dir, mesh_path, alpha, mach, reynolds, extra, out, overwrite) -> None:
    """Predict with an MMGP run on a new mesh: fields with their standard deviation (written to
    OUT) and scalars with their standard deviation (printed)."""
    from surrogates.runs.airfoil import predict_mesh

    inputs = {k: v for k, v in (("alpha", alpha), ("mach", mach), ("reynolds", reynolds))
              if v is not None}
    for item in extra:
        name, sep, value = item.partition("=")
        try:
            inputs[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise click.BadParameter(f"expected NAME=VALUE, got {item!r}", param_hint="--input")
    result = predict_mesh(run_dir, mesh_path, inputs, out, overwrite=overwrite)
    for name, (mean, std) in result["scalars"].items():
        click.echo(f"{name} = {mean:.6g} +/- {std:.3g} (1 std)")
    click.echo(f"wrote {out} with {', '.join(result['fields'])} ({result['seconds']:.3f} s)")


FAMILY = Family(
    name="airfoil", kinds=("mmgp",),
    generate=(generate_airfoil,), train=(train_mmgp,),
    evaluate=evaluate_mmgp, predict=predict_mmgp,
    example=(
        "generate airfoil --out {dir}/foils --n-shapes 5 --conditions-per-shape 2 --panels 60 "
        "--farfield-radius 5 --growth 0.6",
        "train mmgp --data {dir}/foils --out {dir}/run --restarts 1 --max-iter 20 "
        "--test-fraction 0.4",
        "evaluate {dir}/run",
        "predict {dir}/run --mesh {dir}/foils/sample_00000.vtu --alpha 2 --mach 0.2 "
        "--reynolds 3e6 --out {dir}/prediction.vtu",
    ),
)
