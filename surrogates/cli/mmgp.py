"""MMGP commands of ``surrogates``: ``train mmgp`` and ``predict``.

Registered on the groups of :mod:`surrogates.cli` by :func:`register`; ``surrogates evaluate``
dispatches MMGP runs (``run_config.json`` kind ``"mmgp"``) to :func:`evaluate_command`.
"""

from __future__ import annotations

import time

import click


def _names(text: str | None, option: str) -> list[str] | None:
    if text is None:
        return None
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names and option != "--fields":
        raise click.BadParameter(f"expected comma-separated names, got {text!r}",
                                 param_hint=option)
    return names


def _train_mmgp_command():
    from surrogates.cli import _fail_cleanly, _read_toml, config_from

    @click.command("mmgp")
    @click.option("--data", "data", required=True, type=click.Path(file_okay=False, exists=True),
                  help="Dataset folder from `surrogates generate airfoil`.")
    @click.option("--out", "run_dir", required=True, type=click.Path(file_okay=False),
                  help="Run folder to create.")
    @click.option("--config", "config_path", type=click.Path(dir_okay=False),
                  help="TOML file with MMGPRunConfig fields.")
    @click.option("--morpher",
                  type=click.Choice(["rbf", "elasticity", "elasticity-online", "tutte"]),
                  help="Mesh morphing onto the common support; elasticity-online: elasticity "
                       "for training meshes, the shape POD for new ones [rbf].")
    @click.option("--fields", help="Point fields to learn, comma-separated ('' for none) [cp].")
    @click.option("--scalars", help="Scalar outputs, comma-separated [cl,cd].")
    @click.option("--inputs", help="Scalar inputs, comma-separated [alpha,mach,reynolds].")
    @click.option("--n-train", type=int, help="Training samples used [all of the split].")
    @click.option("--test-fraction", type=float,
                  help="Fraction of the shapes held out for testing [0.2].")
    @click.option("--restarts", type=int, help="GP hyperparameter restarts [3].")
    @click.option("--max-iter", type=int, help="GP optimiser iterations [200].")
    @click.option("--seed", type=int, help="Seed of the split and the restarts [0].")
    @click.option("--overwrite", is_flag=True, help="Replace an existing run folder.")
    @_fail_cleanly
    def train_mmgp_command(data, run_dir, config_path, fields, scalars, inputs, overwrite,
                           **flags):
        """Mesh-morphing Gaussian process (MMGP) on an airfoil mesh dataset.

        Every mesh is morphed onto a common support (the first training mesh); the morphed
        coordinates and the transferred fields are compressed by POD and one GP per scalar and
        field mode is fitted on shape modes + scalar inputs. Whole shapes are held out for the
        test split, which `surrogates evaluate RUN` scores.
        """
        from surrogates.runs.airfoil import MMGPRunConfig, train_mmgp

        table = _read_toml(config_path)
        flags.update(data=data, fields=_names(fields, "--fields"),
                     scalars=_names(scalars, "--scalars"), inputs=_names(inputs, "--inputs"))
        config = config_from(MMGPRunConfig, table, flags)
        started = time.perf_counter()
        run = train_mmgp(config, run_dir, overwrite=overwrite)
        click.echo(f"fitted MMGP ({config.morpher} morphing) on {run['n_train']} samples "
                   f"({run['n_support_nodes']} support nodes, {run['n_shape_modes']} shape "
                   f"modes) in {time.perf_counter() - started:.1f} s; {run['n_test']} test "
                   f"samples held out; run in {run_dir}")

    return train_mmgp_command


def evaluate_command(run_dir, data_path, split, out) -> None:
    """``surrogates evaluate`` for an MMGP run: print the table and write the metrics."""
    from surrogates.runs.airfoil import evaluate_mmgp_run, metrics_table

    if split == "validation":
        raise click.UsageError("MMGP runs have train and test splits only (or 'all')")
    result = evaluate_mmgp_run(run_dir, data_path, split=split, out_dir=out)
    click.echo(f"{result['n_samples']} {split} samples; MMGP fitted on {result['n_train']} in "
               f"{result['fit_seconds']:.1f} s; predict {result['predict_seconds_per_mesh']:.3f}"
               f" s per mesh (morphing included)")
    click.echo(metrics_table(result["metrics"]))
    click.echo(f"wrote {out}")


def _predict_command():
    from surrogates.cli import _fail_cleanly

    @click.command("predict")
    @click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
    @click.option("--mesh", "mesh_path", required=True, type=click.Path(dir_okay=False,
                                                                        exists=True),
                  help="Mesh to predict on (.vtu with tagged wall and far field).")
    @click.option("--alpha", type=float, help="Angle of attack in degrees.")
    @click.option("--mach", type=float, help="Free-stream Mach number.")
    @click.option("--reynolds", type=float, help="Chord Reynolds number.")
    @click.option("--input", "extra", multiple=True, metavar="NAME=VALUE",
                  help="Any other scalar input of the run (repeatable).")
    @click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
                  help="Mesh file to write with <field>_mean and <field>_std point fields.")
    @click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
    @_fail_cleanly
    def predict(run_dir, mesh_path, alpha, mach, reynolds, extra, out, overwrite) -> None:
        """Predict with an MMGP run on a new mesh: fields with their standard deviation (written
        to OUT) and scalars with their standard deviation (printed)."""
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
                raise click.BadParameter(f"expected NAME=VALUE, got {item!r}",
                                         param_hint="--input")
        result = predict_mesh(run_dir, mesh_path, inputs, out, overwrite=overwrite)
        for name, (mean, std) in result["scalars"].items():
            click.echo(f"{name} = {mean:.6g} +/- {std:.3g} (1 std)")
        click.echo(f"wrote {out} with {', '.join(result['fields'])} "
                   f"({result['seconds']:.3f} s)")

    return predict


def register(train: click.Group, main: click.Group) -> None:
    """Add ``train mmgp`` and (when no other exists) the top-level ``predict`` command."""
    train.add_command(_train_mmgp_command())
    if "predict" not in main.commands:
        main.add_command(_predict_command())
