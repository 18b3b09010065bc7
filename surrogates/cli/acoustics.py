"""Room-acoustics commands of ``surrogates``: ``generate wave2d|wave3d`` and ``train deeponet``.

Registered on the groups of :mod:`surrogates.cli` by :func:`register`; ``surrogates evaluate``
dispatches DeepONet runs to :func:`evaluate_command`.
"""

from __future__ import annotations

import time

import click


def _generate_command(dim: int):
    """``surrogates generate wave{dim}d``."""
    from surrogates.cli import _fail_cleanly, _read_toml, config_from

    default_size, default_t = ("2 x 2", 0.01) if dim == 2 else ("1 x 1 x 1", 0.005)
    options = [
        click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
                     help="netCDF file to write."),
        click.option("--config", "config_path", type=click.Path(dir_okay=False),
                     help="TOML file with WaveDataConfig fields (dim is implied)."),
        click.option("--size", type=float, nargs=dim, help=f"Room sides in m [{default_size}]."),
        click.option("--spacing", type=float, help="Grid spacing in m [0.05]."),
        click.option("--absorption", type=float,
                     help="Normal-incidence absorption coefficient of the walls, 0 = rigid [0.1]."),
        click.option("--n-sources", type=int, help="Source positions (samples) [64]."),
        click.option("--source-margin", type=float, help="Smallest source-wall distance, m [0.4]."),
        click.option("--n-receivers", type=int, help="Receivers (same for all samples) [4]."),
        click.option("--t-max", type=float, help=f"Last output time in s [{default_t}]."),
        click.option("--n-times", type=int, help="Output frames [41]."),
        click.option("--pulse-width", type=float, help="Gaussian pulse sigma in m [0.2]."),
        click.option("--amplitude", type=float, help="Pulse peak in Pa [1.0]."),
        click.option("--order", type=click.Choice(["2", "4"]), help="Spatial order [4]."),
        click.option("--seed", type=int, help="Seed of the positions [0]."),
        click.option("--batch-size", type=int, help="Sources per solver call [16]."),
        click.option("--dtype", type=click.Choice(["float64", "float32"]),
                     help="Solver precision [float64]."),
        click.option("--overwrite", is_flag=True, help="Replace OUT if it exists."),
    ]

    def command(out, config_path, overwrite, order, size, **flags) -> None:
        from surrogates.data.acoustics_generate import WaveDataConfig, generate_wave_dataset

        table = _read_toml(config_path)
        if table.get("dim", dim) != dim:
            raise click.BadParameter(f"the file says dim = {table['dim']}, but this command "
                                     f"generates {dim}D fields", param_hint="--config")
        flags.update(dim=dim, order=None if order is None else int(order),
                     size=list(size) if size else None)
        config = config_from(WaveDataConfig, table, flags)
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
    command = _fail_cleanly(command)
    for option in reversed(options):
        command = option(command)
    return click.command(f"wave{dim}d")(command)


def _train_deeponet_command():
    from surrogates.cli import _fail_cleanly, _fit_options, _read_toml, config_from

    @click.command("deeponet")
    @click.argument("data_path", type=click.Path(dir_okay=False, exists=True))
    @click.option("--out", "run_dir", required=True, type=click.Path(file_okay=False),
                  help="Run folder to create.")
    @click.option("--config", "config_path", type=click.Path(dir_okay=False),
                  help="TOML with tables [data] (DeepONetDataSpec), [model] (DeepONet "
                       "arguments) and [train] (TrainConfig).")
    @click.option("--branch", type=click.Choice(["pulse", "coordinates"]),
                  help="Branch input: the initial pulse on a sensor grid or the source "
                       "position [pulse].")
    @click.option("--sensors-per-axis", type=int, help="Pulse sensors per axis [7].")
    @click.option("--points-per-sample", type=int,
                  help="Random space-time points per source and epoch [2000].")
    @click.option("--network", type=click.Choice(["mlp", "modified"]), help="[modified].")
    @click.option("--activation", type=click.Choice(["tanh", "sine"]), help="[tanh].")
    @click.option("--n-basis", type=int, help="Basis functions p [100].")
    @click.option("--width", type=int, help="Hidden width of branch and trunk [128].")
    @click.option("--depth", type=int, help="Hidden layers of branch and trunk [3].")
    @click.option("--fourier-features", type=int, help="Trunk Fourier frequencies [2].")
    @click.option("--overwrite", is_flag=True, help="Replace an existing run folder.")
    @_fit_options
    @_fail_cleanly
    def train_deeponet_command(data_path, run_dir, config_path, branch, sensors_per_axis,
                               points_per_sample, network, activation, n_basis, width, depth,
                               fourier_features, overwrite, resume, **train_flags):
        """DeepONet from a source to its whole pressure field (room acoustics).

        DATA is a dataset from `surrogates generate wave2d|wave3d`. Defaults: 300 epochs,
        batches of 8 sources, Adam lr 1e-3 with cosine decay, MSE in Pa^2.
        """
        from surrogates.runs.acoustics import DeepONetDataSpec, train_deeponet
        from surrogates.training import TrainConfig

        table = _read_toml(config_path)
        data = config_from(DeepONetDataSpec, table.get("data", {}), {
            "path": data_path, "branch": branch, "sensors_per_axis": sensors_per_axis,
            "points_per_sample": points_per_sample})
        model = dict(table.get("model", {}))
        for key, value in (("network", network), ("activation", activation),
                           ("n_basis", n_basis), ("fourier_features", fourier_features)):
            if value is not None:
                model[key] = value
        if width is not None or depth is not None:
            hidden = [width or 128] * (depth or 3)
            model.update(branch_hidden=hidden, trunk_hidden=hidden)
        defaults = {"epochs": 300, "batch_size": 8, "lr": 1e-3, "loss": "mse"}
        train_config = config_from(TrainConfig, {**defaults, **table.get("train", {})},
                                   train_flags)
        result = train_deeponet(data, run_dir, model_config=model, train_config=train_config,
                                overwrite=overwrite, resume=resume)
        click.echo(f"trained {len(result.history)} epochs; best validation MSE "
                   f"{result.best_validation_loss:.4e} Pa^2 at epoch {result.best_epoch}; run "
                   f"in {run_dir}")

    return train_deeponet_command


def evaluate_command(run_dir, data_path, split, out) -> None:
    """``surrogates evaluate`` for a DeepONet acoustics run: print and write the metrics."""
    from surrogates.runs.acoustics import evaluate_deeponet_run

    result = evaluate_deeponet_run(run_dir, data_path, split=split, out_dir=out)
    f = result["field"]
    click.echo(f"{result['n_samples']} held-out sources ({split}): field RMSE "
               f"{f['rmse_pa']:.4f} Pa, relative L2 {f['rel_l2']:.4f}")
    if "receivers" in result:
        rms = ", ".join(f"{v:.4f}" for v in result["receivers"]["rmse_pa"])
        click.echo(f"receiver RMSE (Pa): {rms}")
    t = result["timing"]
    click.echo(f"whole field: DeepONet {1e3 * t['deeponet_s_per_field']:.2f} ms, solver "
               f"{1e3 * t['solver_s_per_field']:.2f} ms ({t['speedup']:.2f}x); with the trunk "
               f"basis precomputed {1e3 * t['deeponet_cached_s_per_field']:.3f} ms "
               f"({t['speedup_cached']:.1f}x)")
    if "speedup_receivers" in t:
        click.echo(f"receiver series only: DeepONet "
                   f"{1e6 * t['deeponet_receivers_s_per_source']:.1f} us per source "
                   f"({t['speedup_receivers']:.0f}x the solver's whole-field run)")
    click.echo(f"wrote {out}")


def register(generate: click.Group, train: click.Group) -> None:
    """Add the acoustics commands to the ``generate`` and ``train`` groups."""
    generate.add_command(_generate_command(2))
    generate.add_command(_generate_command(3))
    train.add_command(_train_deeponet_command())
