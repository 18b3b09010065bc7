"""Airfoil commands of ``surrogates``: ``generate airfoil``.

Registered on the ``generate`` group of :mod:`surrogates.cli` by :func:`register`.
"""

from __future__ import annotations

import time

import click


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


def _generate_airfoil_command():
    from surrogates.cli import _fail_cleanly, _read_toml, config_from

    @click.command("airfoil")
    @click.option("--out", "out", required=True, type=click.Path(file_okay=False),
                  help="Folder to create (one .vtu per sample + index.nc).")
    @click.option("--config", "config_path", type=click.Path(dir_okay=False),
                  help="TOML file with AirfoilDataConfig fields.")
    @click.option("--family", type=click.Choice(["naca4", "cst"]), help="Shape family [naca4].")
    @click.option("--n-shapes", type=int, help="Number of shapes [8].")
    @click.option("--conditions-per-shape", type=int, help="Angles of attack per shape [4].")
    @click.option("--alpha", help="Angle of attack in degrees: a range LO,HI drawn uniformly "
                                  "[-4,10], or a list a,b,c (a 2-list: [a,b]) run for every shape.")
    @click.option("--mach", help="Mach range LO,HI, one draw per shape [0,0.5].")
    @click.option("--reynolds", help="Reynolds range LO,HI, log-uniform per shape [1e6,6e6].")
    @click.option("--x-transition", type=float,
                  help="Boundary-layer trip, chord fraction (0: fully turbulent) [free "
                       "transition].")
    @click.option("--panels", "n_panels", type=int, help="Panels per shape (even) [160].")
    @click.option("--farfield-radius", type=float, help="Far-field radius in chords [20].")
    @click.option("--growth", type=float, help="Mesh size growth per chord of distance [0.3].")
    @click.option("--seed", type=int, help="Random seed [0].")
    @click.option("--overwrite", is_flag=True, help="Replace the samples of an existing folder.")
    @_fail_cleanly
    def generate_airfoil(out, config_path, alpha, mach, reynolds, overwrite, **flags) -> None:
        """Potential flows (panel method, Karman-Tsien, boundary-layer drag) around random
        NACA 4-digit or CST airfoils on triangular meshes: a folder of .vtu files (velocity,
        cp, implicit_distance) with index.nc (alpha, mach, reynolds -> cl, cd, cm)."""
        from surrogates.data.airfoil import AirfoilDataConfig, generate_airfoil_dataset

        table = _read_toml(config_path)
        alpha_value = _range_or_list(alpha, "--alpha", allow_list=True)
        if isinstance(alpha_value, list):
            flags["alpha_values"] = alpha_value
        else:
            flags["alpha_range"] = alpha_value
        flags["mach_range"] = _range_or_list(mach, "--mach")
        flags["reynolds_range"] = _range_or_list(reynolds, "--reynolds")
        config = config_from(AirfoilDataConfig, table, flags)
        started = time.perf_counter()
        path = generate_airfoil_dataset(config, out, overwrite=overwrite)
        from surrogates.data.airfoil import open_airfoil_dataset

        ds = open_airfoil_dataset(path)
        idx = ds.index
        click.echo(f"wrote {path}: {len(ds)} samples ({config.n_shapes} {config.family} shapes, "
                   f"{int(idx.attrs['n_dropped'])} supercritical dropped), "
                   f"{int(idx['n_nodes'].min())}-{int(idx['n_nodes'].max())} nodes per mesh, "
                   f"cl {float(idx['cl'].min()):.3f}..{float(idx['cl'].max()):.3f}, "
                   f"cd {float(idx['cd'].min()):.4f}..{float(idx['cd'].max()):.4f}, "
                   f"in {time.perf_counter() - started:.1f} s")

    return generate_airfoil


def register(generate: click.Group) -> None:
    """Add ``airfoil`` to the ``generate`` group."""
    generate.add_command(_generate_airfoil_command())
