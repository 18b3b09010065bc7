"""The ``surrogates`` command: generate, train, solve, evaluate, predict, export, demo.

Every command takes flags and, optionally, ``--config FILE.toml`` whose keys map onto the same
dataclass fields as the flags (flags win). The resolved configuration is saved with the output:
in the netCDF attributes of generated data, and in ``run_config.json`` of a run folder.

The commands come from one table, :data:`FAMILIES`: each row (a
:class:`~surrogates.cli.family.Family`, defined in ``surrogates/cli/<family>.py``) adds its
commands under ``generate``, ``train`` and ``solve``, and ``evaluate``, ``predict`` and
``export`` hand a run folder to the row whose kinds hold the folder's ``run_config.json`` kind.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import click

from surrogates.cli import acoustics, airfoil, climatebench, darcy, lorenz96, pde1d, pinn
from surrogates.cli.family import RUN_VERBS, Family, run_verb
from surrogates.cli.options import config_from, fail_cleanly

__all__ = ["FAMILIES", "Family", "config_from", "main"]

#: Every problem family, in the order of ``surrogates --help``.
FAMILIES: tuple[Family, ...] = (lorenz96.FAMILY, pde1d.FAMILY, darcy.FAMILY, acoustics.FAMILY,
                                climatebench.FAMILY, airfoil.FAMILY, pinn.FAMILY)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="surrogates")
def main() -> None:
    """Scientific surrogate models: reference solvers, datasets, neural operators, evaluation."""


@main.group()
def generate() -> None:
    """Run a reference solver and write a dataset (written atomically).

    lorenz96 and darcy write one netCDF4 file (darcy also PDEBench's 2D Darcy HDF5 layout with
    --pdebench), or shards of it (--shard I/N or --shards N: OUT.shard-I-of-N.nc, which
    `surrogates train --data OUT` reads back as one dataset); advection, burgers and
    diffusion-reaction write PDEBench 1D HDF5 files, one per parameter value.
    """


@main.group()
def train() -> None:
    """Train a model on a dataset; writes a run folder."""


@main.group()
def solve() -> None:
    """Solve a PDE with a physics-informed model (no data needed)."""


@main.command()
@click.option("--out", "out_dir", default="surrogates-demo", show_default=True,
              type=click.Path(file_okay=False), help="Report folder to create.")
@click.option("--overwrite", is_flag=True, help="Replace the report folder if it exists.")
@click.option("--quick", is_flag=True, help="A smaller run (seconds) for smoke tests.")
@fail_cleanly
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


def _attach(families: tuple[Family, ...]) -> None:
    groups = {"generate": generate, "train": train, "solve": solve}
    for family in families:
        for verb, group in groups.items():
            for command in getattr(family, verb):
                if command.name in group.commands:
                    raise RuntimeError(f"two families define `{verb} {command.name}`")
                group.add_command(command)
        for command in family.commands:
            main.add_command(command)
    for verb in RUN_VERBS:
        main.add_command(run_verb(verb, families))


_attach(FAMILIES)

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
