"""Physics-informed commands: ``solve pig``, and ``evaluate`` / ``predict`` of solve folders
(kind ``"pinn"``)."""

from __future__ import annotations

import json

import click

from surrogates.cli import options as opt
from surrogates.cli.family import Family
from surrogates.models.pinn.defaults import help_table

_PIG_ONLY = {"n_gaussians", "sigma_init", "mean_init", "cutoff"}


def _pig(key: str, missing: str = "off") -> str:
    """The PIG model setting ``key`` per problem, for --help."""
    return help_table(key, source="model", models=("pig",), missing=missing)


@click.command("pig")
@click.option("--pde", required=True,
              type=click.Choice(["helmholtz", "klein-gordon", "allen-cahn", "flow-mixing"]),
              help="Problem with a reference solution (surrogates.models.pinn.problems).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Output folder: solution.nc, solution.png, summary.json, parameters.")
@click.option("--model", type=click.Choice(["pig", "pinn"]), default="pig", show_default=True,
              help="Physics-informed Gaussians, or the plain tanh-MLP PINN baseline.")
@opt.config_option("TOML with tables [problem] (factory arguments, e.g. a1, a2), [train] "
               "(surrogates.models.pinn.train arguments) and [model] (PIG / MLP arguments).")
@click.option("--a1", type=float, help="Helmholtz: wavenumber factor in x [4]; --a1 10 --a2 10 "
                                        "switches to that problem's own defaults (6400 "
                                        "Gaussians of width 0.025 on a grid, cut-off 5, "
                                        "boundary weight 100, lr 3e-3 -> 3e-5).")
@click.option("--a2", type=float, help="Helmholtz: wavenumber factor in y [1].")
@click.option("--steps", type=int, help=f"Optimizer steps [{help_table('n_steps')}].")
@click.option("--collocation", type=int,
              help=f"Residual points per step [{help_table('n_collocation')}].")
@click.option("--optimizer", type=click.Choice(["adam", "lbfgs"]), help="[adam].")
@click.option("--lr", type=float, help=f"Adam learning rate [{help_table('lr')}].")
@click.option("--lr-final", type=float,
              help="Decay the Adam learning rate exponentially to this by the last step; "
                   f"equal to --lr keeps it constant [{help_table('lr_final')}].")
@click.option("--gaussians", type=int,
              help=f"PIG: number of Gaussians [{_pig('n_gaussians')}].")
@click.option("--sigma", type=float, help="PIG: initial width in the [-1, 1] box "
                                          f"[{_pig('sigma_init')}].")
@click.option("--mean-init", type=click.Choice(["uniform", "grid"]),
              help="PIG: initial means, uniform random or on a regular grid (needs m**d "
                   "Gaussians) ["
                   f"{_pig('mean_init', 'uniform')}].")
@click.option("--cutoff", type=float,
              help="PIG: sum only Gaussians within this many widths of a point (faster with "
                   "thousands of narrow Gaussians; 5 keeps the truncation below 4e-6) "
                   f"[{_pig('cutoff')}].")
@click.option("--boundary-weight", type=float,
              help=f"Weight of the boundary/initial terms [{help_table('boundary_weight')}].")
@click.option("--causal-chunks", type=int,
              help="Causal training weights over this many time chunks (time-dependent PDEs; "
                   f"1 is the plain mean residual) [{help_table('causal_chunks')}].")
@click.option("--causal-eps", type=float,
              help=f"Tolerance of the causal weights [{help_table('causal_eps')}].")
@click.option("--seed", type=int, help="Seed [0].")
@click.option("--dtype", type=click.Choice(["float32", "float64"]), help="[float32].")
@click.option("--grid", "n_grid", type=int,
              help="Points per axis of the output grid [flow-mixing 41, others 101].")
@opt.overwrite_option("an existing output folder")
@opt.fail_cleanly
def solve_pig(pde, out_dir, model, config_path, a1, a2, steps, collocation, optimizer, lr,
              lr_final, gaussians, sigma, mean_init, cutoff, boundary_weight, causal_chunks,
              causal_eps, seed, dtype, n_grid, overwrite) -> None:
    """Train a PIG (or PINN) on one PDE; write the solution on a grid, a plot and the error.

    Every setting not given defaults to the best that benchmarks/pig_vs_pinn.py found for this
    --pde and --model (surrogates/models/pinn/defaults.py, which names each figure): PIG on
    Helmholtz (4, 1) reaches relative L2 3.0e-3 in about 40 s on one core, Klein-Gordon 0.105,
    Allen-Cahn 7.3e-2 (about 2 min), flow mixing 2.5e-2 (about 3 min).
    """
    from surrogates.models.pinn import train
    from surrogates.models.pinn.problems import PROBLEMS
    from surrogates.runs.pinn import solve_to_folder

    table = opt.read_toml(config_path)
    unknown = set(table) - {"problem", "train", "model"}
    if unknown:
        raise opt.InputError(f"unknown tables {sorted(unknown)}; valid: [problem], [train], "
                             "[model]", "--config")
    pde_key = pde.replace("-", "_")
    problem = {**opt.kwargs_from(PROBLEMS[pde_key], table.get("problem", {}), "problem"),
               **opt.given({"a1": a1, "a2": a2})}
    if problem and pde != "helmholtz" and ({"a1", "a2"} & set(problem)):
        raise click.UsageError("--a1 / --a2 apply to --pde helmholtz only")
    model_kwargs = {**table.get("model", {}),
                    **opt.given({"n_gaussians": gaussians, "sigma_init": sigma,
                             "mean_init": mean_init, "cutoff": cutoff})}
    if model == "pinn" and (_PIG_ONLY & set(model_kwargs)):
        raise click.UsageError(
            "--gaussians / --sigma / --mean-init / --cutoff apply to --model pig only")
    if pde == "helmholtz" and (causal_chunks is not None or causal_eps is not None):
        raise click.UsageError("--causal-chunks / --causal-eps apply to time-dependent PDEs only")
    flags = {"n_steps": steps, "n_collocation": collocation, "optimizer": optimizer, "lr": lr,
             "lr_final": lr_final, "boundary_weight": boundary_weight,
             "causal_chunks": causal_chunks, "causal_eps": causal_eps, "seed": seed,
             "dtype": dtype}
    train_kwargs = {**opt.kwargs_from(train, table.get("train", {}), "train",
                                      skip=("problem", "model", "model_kwargs")),
                    **opt.given(flags)}
    if model_kwargs:
        train_kwargs["model_kwargs"] = model_kwargs
    summary = solve_to_folder(pde_key, out_dir, model=model,
                              problem_kwargs=problem, train_kwargs=train_kwargs, n_grid=n_grid,
                              overwrite=overwrite)
    click.echo(f"{pde} with {model}: relative L2 error {summary['relative_l2']:.3e} against the "
               f"reference, {summary['wall_time_s']:.1f} s of training; wrote {out_dir}")


@click.command("evaluate")
@opt.run_argument
@click.option("--grid", "n_grid", type=int,
              help="Points per axis of the evaluation grid [the grid it was solved on].")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Output folder [RUN_DIR/evaluation].")
@opt.fail_cleanly
def evaluate_pinn(run_dir, n_grid, out_dir) -> None:
    """Relative L2 and maximum error of a solved folder against the problem's reference."""
    from surrogates.runs.pinn import evaluate_solution

    metrics = evaluate_solution(run_dir, n_grid=n_grid, eval_dir=out_dir)
    click.echo(json.dumps(metrics, indent=2))
    click.echo(f"wrote {out_dir or f'{run_dir}/evaluation'}")


@click.command("predict")
@opt.run_argument
@click.option("--grid", "n_grid", type=int, default=101, show_default=True,
              help="Points per axis of the output grid.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="netCDF file with the solution u on the grid.")
@opt.overwrite_option("OUT if it exists")
@opt.fail_cleanly
def predict_pinn(run_dir, n_grid, out, overwrite) -> None:
    """The solution of a solved folder on a tensor grid over the problem's box (netCDF)."""
    from surrogates.runs.pinn import predict_solution

    path = predict_solution(run_dir, out, n_grid=n_grid, overwrite=overwrite)
    click.echo(f"wrote {path}")


FAMILY = Family(
    name="pinn", kinds=("pinn",),
    solve=(solve_pig,), evaluate=evaluate_pinn, predict=predict_pinn,
    example=(
        "solve pig --pde helmholtz --out {dir}/run --steps 5 --collocation 64 --gaussians 10 "
        "--grid 11",
        "evaluate {dir}/run",
        "predict {dir}/run --grid 9 --out {dir}/u.nc",
    ),
)
