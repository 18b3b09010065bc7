"""Bad input, hostile files and faults, run as a family over every row of ``FAMILIES`` (issue 20).

Each case starts from a valid baseline, built once per module from the family's ``example``
lines (its data and its run folder), breaks one thing, runs the command line and asserts that
it ends in one clear line naming the problem (exit code 1, no traceback) and that nothing was
lost. The kinds of case:

- ``value``: non-finite values, dt <= 0 and unstable steps, zero, negative and absurd sizes
  (refused up front with the memory they would need);
- ``mismatch``: wrong variables or dims, data of another family, meshes missing fields or of
  another topology;
- ``file``: missing, empty, truncated, wrong-format files and folders where files should be;
- ``hostile``: checkpoints carrying pickles (which must not run), malformed or huge JSON, HDF5
  datasets with an enormous declared shape, TOML with unknown keys or wrong types, mesh names
  of a dataset index that point outside the dataset folder;
- ``fault``: kill -9 during ``generate`` (sharded and not) and ``train`` (nothing half-written
  under a final name; ``--resume`` gives the uninterrupted result bit for bit), two writers on
  one output (the second refused by a lock);
- ``overwrite``: ``--overwrite`` on a run folder that holds a file the user put there.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import meshio
import numpy as np
import pytest
import torch
import xarray as xr
from click.testing import CliRunner

from surrogates.cli import FAMILIES, main

FAMILY = {family.name: family for family in FAMILIES}
MARKER = "pickle-ran.txt"


# ------------------------------------------------------------------ baselines
def _verb(line: str) -> str:
    return shlex.split(line)[0]


def _train_line(name: str) -> str:
    return next(line for line in FAMILY[name].example if _verb(line) in ("train", "solve"))


def _invoke(args: list[str]):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


class Baselines:
    """Each family's example data and run, made on first use, shared by the module's cases."""

    def __init__(self, root: Path):
        self.root = root
        self.done: dict[str, int] = {}

    def get(self, name: str, upto: str) -> Path:
        """The folder holding the family's example outputs up to its data (``upto="data"``)
        or its run folder ``run`` too (``"run"``)."""
        family = FAMILY[name]
        lines = family.example
        stop = lines.index(_train_line(name)) + (upto == "run")
        base = self.root / name
        base.mkdir(exist_ok=True)
        for i in range(self.done.get(name, 0), stop):
            result = _invoke(shlex.split(lines[i].format(dir=base)))
            assert result.exit_code == 0, f"{lines[i]}\n{result.output}"
            self.done[name] = i + 1
        return base


@pytest.fixture(scope="module")
def baselines(tmp_path_factory) -> Baselines:
    return Baselines(tmp_path_factory.mktemp("baselines"))


# ------------------------------------------------------------------ command lines
def set_option(args: list[str], option: str, *values: str) -> list[str]:
    """``args`` with ``option`` set to ``values`` (replacing its values, or appended)."""
    args = list(args)
    if option in args:
        i = args.index(option)
        n = 1
        while i + n < len(args) and not args[i + n].startswith("--"):
            n += 1
        args[i:i + n] = [option, *values]
    else:
        args += [option, *values]
    return args


def generate_args(name: str, tmp: Path, *options: str) -> list[str]:
    """The family's first example line (generate or solve) writing into ``tmp``."""
    args = shlex.split(FAMILY[name].example[0].format(dir=tmp))
    for option, value in zip(options[::2], options[1::2], strict=True):
        args = set_option(args, option, *value.split())
    return args


def train_args(name: str, base: Path, tmp: Path, data: Path | None = None) -> list[str]:
    """The family's train (or solve) line on the baseline data, writing ``tmp/run``;
    ``data`` replaces the dataset path."""
    line = _train_line(name).replace("{dir}/run", str(tmp / "run"))
    args = shlex.split(line.format(dir=base))
    if data is not None:
        old = data_path(name, base)
        args = [str(data) if a == str(old) else a for a in args]
    return args


def data_path(name: str, base: Path) -> Path:
    """The dataset (file or folder) that the family's train line reads."""
    line = _train_line(name).replace("{dir}/run", "RUN")
    token = next(t for t in shlex.split(line) if t.startswith("{dir}/"))
    return Path(token.format(dir=base))


def copy_run(base: Path, tmp: Path) -> Path:
    run = tmp / "run"
    shutil.copytree(base / "run", run)
    return run


def run_line(name: str, verb: str, run: Path, base: Path) -> list[str]:
    """The family's example ``evaluate`` / ``predict`` line on ``run``, its inputs from the
    baseline ``base``, its ``--out`` beside ``run``."""
    line = next(line for line in FAMILY[name].example if _verb(line) == verb)
    args = shlex.split(line.replace("{dir}/run", str(run)).format(dir=base))
    if "--out" in args:
        args = set_option(args, "--out", str(run.parent / Path(args[args.index("--out") + 1]).name))
    return args


# ------------------------------------------------------------------ broken files
def write_truncated(source: Path, path: Path) -> Path:
    data = source.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    return path


def write_pickle_bomb(path: Path, marker: Path) -> Path:
    """A torch checkpoint whose loading would create ``marker`` (``torch.save`` pickles any
    object; ``torch.load`` without ``weights_only`` would run its ``__reduce__``)."""

    class Bomb:
        def __reduce__(self):
            return (Path.write_text, (marker, "the pickle ran"))

    torch.save({"state_dict": Bomb()}, path)
    return path


def write_object_npz(path: Path, marker: Path) -> Path:
    """An ``.npz`` whose arrays are pickled objects (np.load(allow_pickle=True) would run it)."""

    class Bomb:
        def __reduce__(self):
            return (Path.write_text, (marker, "the pickle ran"))

    arrays = np.empty(1, dtype=object)
    arrays[0] = Bomb()
    with open(path, "wb") as f:
        np.savez(f, everything=arrays)
    return path


def edit_netcdf(source: Path, path: Path, edit: Callable[[xr.Dataset], xr.Dataset]) -> Path:
    with xr.open_dataset(source) as ds:
        edited = edit(ds.load())
    edited.to_netcdf(path)
    return path


def with_nan(ds: xr.Dataset, name: str) -> xr.Dataset:
    values = ds[name].values.copy()
    values.flat[3] = np.nan
    return ds.assign({name: (ds[name].dims, values, ds[name].attrs)})


def copy_data(name: str, base: Path, tmp: Path) -> Path:
    source = data_path(name, base)
    target = tmp / source.name
    (shutil.copytree if source.is_dir() else shutil.copy)(source, target)
    return target


def huge_hdf5(path: Path) -> Path:
    """A PDEBench-shaped file whose ``tensor`` declares 10^6 x 10^3 x 10^4 floats (40 TB) and
    stores none of them (chunked, nothing written): a reader must look before it loads."""
    with h5py.File(path, "w") as f:
        f.create_dataset("tensor", shape=(10**6, 10**3, 10**4), dtype="f4",
                         chunks=(1, 1, 1024))
        f.create_dataset("x-coordinate", data=np.linspace(0, 1, 10**4, dtype="f4"))
        f.create_dataset("t-coordinate", data=np.linspace(0, 1, 10**3 + 1, dtype="f4"))
        f.attrs["beta"] = 0.4
    return path


def write_index_names(folder: Path, names: dict[int, str]) -> None:
    """Point some meshes of an airfoil dataset's ``index.nc`` at other names."""
    index = folder / "index.nc"
    with xr.open_dataset(index) as ds:
        ds = ds.load()
    var = next(v for v in ds.variables if v in ("mesh_file", "file", "mesh"))
    values = ds[var].values.astype(object)
    for i, new in names.items():
        values[i] = new
    ds[var] = (ds[var].dims, values.astype(str), ds[var].attrs)
    index.unlink()
    ds.to_netcdf(index)


# ------------------------------------------------------------------ the cases
@dataclass(frozen=True)
class Case:
    """``make(tmp, base)`` breaks one thing and returns the command line; the run must fail
    with exit code 1 and ``expect`` (case-insensitive) in its last line. ``needs``: the
    baseline the case starts from (``"none"``, ``"data"`` or ``"run"``). ``after(tmp, base)``
    checks that nothing was lost."""

    family: str
    kind: str
    name: str
    make: Callable[[Path, Path], list[str]]
    expect: str
    needs: str = "none"
    after: Callable[[Path, Path], None] | None = None

    @property
    def id(self) -> str:
        return f"{self.family}-{self.kind}-{self.name}"


def gen(family: str, name: str, options: tuple[str, ...], expect: str) -> Case:
    """A generate (or solve) line with one option changed."""
    return Case(family, "value", name, lambda tmp, base: generate_args(family, tmp, *options),
                expect, after=lambda tmp, base: _nothing_written(tmp))


def _nothing_written(tmp: Path) -> None:
    left = [str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file()]
    assert not left, f"a refused command left {left}"


def train_on(family: str, kind: str, name: str, make_data: Callable[[Path, Path], Path],
             expect: str) -> Case:
    """The train line on a broken dataset made by ``make_data(tmp, base)``."""
    def make(tmp: Path, base: Path) -> list[str]:
        return train_args(family, base, tmp, make_data(tmp, base))
    return Case(family, kind, name, make, expect, needs="data",
                after=lambda tmp, base: _no_run(tmp))


def _no_run(tmp: Path) -> None:
    run = tmp / "run"
    assert not (run / "model.pt").exists() and not (run / "run_config.json").exists()


def on_run(family: str, kind: str, name: str, verb: str,
           break_run: Callable[[Path, Path], list[str] | None], expect: str,
           after: Callable[[Path, Path], None] | None = None) -> Case:
    """``verb`` (evaluate / predict) on a copy of the baseline run that ``break_run(run, base)``
    has broken; it may return the command line (else the example's line is used)."""
    def make(tmp: Path, base: Path) -> list[str]:
        run = copy_run(base, tmp)
        args = break_run(run, base)
        return args if args is not None else run_line(family, verb, run, base)
    return Case(family, kind, name, make, expect, needs="run", after=after)


def _no_marker(tmp: Path, base: Path) -> None:
    assert not (tmp / MARKER).exists(), "a pickle in a hostile file ran"


CHECKPOINTS = {  # the file of a run folder that holds the trained weights (in a member of an
    # ensemble run)
    "lorenz96": "model.pt", "pde1d": "model.pt", "darcy": "model.pt", "acoustics": "model.pt",
    "climatebench": "gp_params.npz", "airfoil": "model/arrays.npz", "pinn": "params.npz",
}


def _checkpoint(run: Path, family: str) -> Path:
    """The weights file of ``run`` (the first member's in an ensemble run)."""
    return min(run.rglob(CHECKPOINTS[family]))


def _pickled_checkpoint(family: str) -> Case:
    def make(run: Path, base: Path) -> None:
        path = _checkpoint(run, family)
        writer = write_pickle_bomb if path.suffix == ".pt" else write_object_npz
        writer(path, run.parent / MARKER)
    expect = "pickle" if CHECKPOINTS[family].endswith(".pt") else "object"
    return on_run(family, "hostile", "pickled-checkpoint", "evaluate", make, expect, _no_marker)


def _truncated_checkpoint(family: str) -> Case:
    def make(run: Path, base: Path) -> None:
        path = _checkpoint(run, family)
        write_truncated(base / path.relative_to(run.parent), path)
    return on_run(family, "file", "truncated-checkpoint", "evaluate", make, "damaged")


def _checkpoint_is_a_folder(family: str) -> Case:
    def make(run: Path, base: Path) -> None:
        path = _checkpoint(run, family)
        path.unlink()
        path.mkdir()
    return on_run(family, "file", "checkpoint-is-a-folder", "evaluate", make, "is a directory")


def _malformed_run_config(family: str) -> Case:
    def make(run: Path, base: Path) -> None:
        (run / "run_config.json").write_text('{"kind": "' + FAMILY[family].kinds[0] + '", ')
    return on_run(family, "hostile", "malformed-run-config", "evaluate", make, "not valid JSON")


def _huge_run_config(family: str) -> Case:
    def make(run: Path, base: Path) -> None:
        config = json.loads((run / "run_config.json").read_text())
        config["padding"] = "x" * (17 * 2**20)
        (run / "run_config.json").write_text(json.dumps(config))
    return on_run(family, "hostile", "huge-run-config", "evaluate", make, "too large")


def _toml(family: str, name: str, text: str, expect: str) -> Case:
    def make(tmp: Path, base: Path) -> list[str]:
        (tmp / "bad.toml").write_text(text)
        return [*train_args(family, base, tmp), "--config", str(tmp / "bad.toml")]
    return Case(family, "hostile", name, make, expect, needs="data",
                after=lambda tmp, base: _no_run(tmp))


TOML_UNKNOWN = {  # a TOML that a family's train (or solve) line reads, with an unknown key
    "lorenz96": "[train]\nepocs = 3\n", "pde1d": "[train]\nepocs = 3\n",
    "darcy": "[model]\nwidht = 3\n", "acoustics": "[train]\nepocs = 3\n",
    "climatebench": "iteratons = 3\n", "airfoil": "restart = 2\n",
    "pinn": "[train]\nstesp = 3\n",
}
TOML_WRONG_TYPE = {  # keys that the example line does not set (flags win over the file)
    "lorenz96": "[train]\nlr = \"fast\"\n", "pde1d": "[train]\nlr = \"fast\"\n",
    "darcy": "[train]\nweight_decay = \"none\"\n", "acoustics": "[train]\nlr = [1, 2]\n",
    "climatebench": "lr = \"five\"\n", "airfoil": "seed = 1.5\n",
    "pinn": "[train]\nn_steps = \"five\"\n",
}


def _overwrite_keeps_user_files(family: str) -> Case:
    def make(tmp: Path, base: Path) -> list[str]:
        run = copy_run(base, tmp)
        (run / "my-notes.txt").write_text("mine")
        return [*train_args(family, base, tmp), "--overwrite"]

    def after(tmp: Path, base: Path) -> None:
        assert (tmp / "run" / "my-notes.txt").read_text() == "mine"
        assert (tmp / "run" / "run_config.json").is_file()
    return Case(family, "overwrite", "user-file", make, "my-notes.txt", needs="run", after=after)


def _locked_run(family: str) -> Case:
    holder: list[subprocess.Popen] = []

    def make(tmp: Path, base: Path) -> list[str]:
        copy_run(base, tmp)
        proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        holder.append(proc)
        (tmp / ".run.lock").write_text(f"{proc.pid}\n")
        return [*train_args(family, base, tmp), "--overwrite"]

    def after(tmp: Path, base: Path) -> None:
        for proc in holder:
            proc.kill()
            proc.wait()
        assert (tmp / "run" / "run_config.json").read_bytes() == \
            (base / "run" / "run_config.json").read_bytes()
    return Case(family, "fault", "second-writer", make, "locked by process", needs="run",
                after=after)


def _locked_output(family: str, output: str) -> Case:
    """A generate line whose output a live process holds the lock of."""
    holder: list[subprocess.Popen] = []

    def make(tmp: Path, base: Path) -> list[str]:
        proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        holder.append(proc)
        (tmp / f".{output}.lock").write_text(f"{proc.pid}\n")
        return generate_args(family, tmp)

    def after(tmp: Path, base: Path) -> None:
        for proc in holder:
            proc.kill()
            proc.wait()
        assert not (tmp / output).exists()
        assert (tmp / f".{output}.lock").is_file(), "another process's lock was removed"
    return Case(family, "fault", "second-generate", make, "locked by process", after=after)


CASES: list[Case] = [_locked_output("lorenz96", "l96.nc"), _locked_output("climatebench", "cb")]
for _family in FAMILY:
    CASES += [_pickled_checkpoint(_family), _truncated_checkpoint(_family),
              _checkpoint_is_a_folder(_family), _malformed_run_config(_family),
              _toml(_family, "toml-unknown-key", TOML_UNKNOWN[_family], "unknown"),
              _toml(_family, "toml-wrong-type", TOML_WRONG_TYPE[_family], "must be"),
              _overwrite_keeps_user_files(_family), _locked_run(_family)]
CASES += [_huge_run_config("darcy"), _huge_run_config("airfoil")]

# ---- lorenz96
CASES += [
    gen("lorenz96", "dt-zero", ("--dt", "0"), "dt must be"),
    gen("lorenz96", "dt-negative", ("--dt", "-0.01"), "dt must be"),
    gen("lorenz96", "forcing-nan", ("--F", "nan"), "non-finite"),
    gen("lorenz96", "no-samples", ("--n-samples", "0"), "n_samples must be"),
    gen("lorenz96", "absurd-samples", ("--n-samples", str(10**12)), "would need"),
    gen("lorenz96", "negative-K", ("--K", "-3"), "K must be"),
    gen("lorenz96", "unstable-dt", ("--dt", "0.5"), "stability"),
    train_on("lorenz96", "mismatch", "another-family",
             lambda tmp, base: data_path("darcy", base.parent / "darcy"), "not in the dataset"),
    train_on("lorenz96", "file", "missing", lambda tmp, base: tmp / "nothing.nc",
             "no dataset file"),
    train_on("lorenz96", "file", "empty", lambda tmp, base: _touch(tmp / "empty.nc"), "empty"),
    train_on("lorenz96", "file", "truncated",
             lambda tmp, base: write_truncated(data_path("lorenz96", base), tmp / "t.nc"),
             "not a readable netCDF"),
    train_on("lorenz96", "file", "wrong-format",
             lambda tmp, base: _text(tmp / "notes.nc", "X, Y\n1, 2\n"), "not a readable netCDF"),
    train_on("lorenz96", "value", "nan-in-data",
             lambda tmp, base: edit_netcdf(data_path("lorenz96", base), tmp / "nan.nc",
                                           lambda ds: with_nan(ds, "X")), "non-finite"),
    train_on("lorenz96", "mismatch", "wrong-dims",
             lambda tmp, base: edit_netcdf(data_path("lorenz96", base), tmp / "dims.nc",
                                           lambda ds: ds.rename({"k": "kk"})), "dims"),
    on_run("lorenz96", "file", "data-is-a-folder", "evaluate",
           lambda run, base: [*run_line("lorenz96", "evaluate", run, base), "--data",
                              str(run.parent)],
           "is a directory"),
    on_run("lorenz96", "hostile", "malformed-config-attribute", "evaluate",
           lambda run, base: [*run_line("lorenz96", "evaluate", run, base), "--data", str(
               edit_netcdf(base / "l96.nc", run.parent / "attr.nc",
                           lambda ds: ds.assign_attrs(config='{"dt": 0.005,')))],
           "config attribute"),
    on_run("lorenz96", "hostile", "huge-config-attribute", "evaluate",
           lambda run, base: [*run_line("lorenz96", "evaluate", run, base), "--data", str(
               edit_netcdf(base / "l96.nc", run.parent / "attr.nc",
                           lambda ds: ds.assign_attrs(config="[" + "0," * 2**21 + "0]")))],
           "config attribute"),
]

# ---- pde1d
CASES += [
    gen("pde1d", "nan-parameter", ("--values", "nan"), "finite"),
    gen("pde1d", "no-samples", ("--n-samples", "0"), "n_samples must be"),
    gen("pde1d", "negative-cells", ("--N", "-4"), "N must be"),
    gen("pde1d", "absurd-samples", ("--n-samples", str(10**12)), "would need"),
    gen("pde1d", "cfl-unstable", ("--cfl", "5"), "cfl"),
    train_on("pde1d", "hostile", "huge-hdf5-shape", lambda tmp, base: huge_hdf5(
        tmp / "1D_Advection_Sols_beta0.4.hdf5"), "would need"),
    train_on("pde1d", "file", "empty", lambda tmp, base: _touch(
        tmp / "1D_Advection_Sols_beta0.4.hdf5"), "not a readable HDF5"),
    train_on("pde1d", "file", "truncated", lambda tmp, base: write_truncated(
        data_path("pde1d", base), tmp / "1D_Advection_Sols_beta0.4.hdf5"), "not a readable HDF5"),
    train_on("pde1d", "mismatch", "another-family", lambda tmp, base: data_path(
        "darcy", base.parent / "darcy"), "not a PDEBench file"),
    train_on("pde1d", "file", "folder", lambda tmp, base: _folder(tmp / "d.hdf5"),
             "is a directory"),
]

# ---- darcy
CASES += [
    gen("darcy", "no-cells", ("--n", "0"), "n must be"),
    gen("darcy", "absurd-samples", ("--n-samples", str(10**12)), "would need"),
    gen("darcy", "forcing-nan", ("--f", "nan"), "f must be finite"),
    gen("darcy", "tolerance-negative", ("--tol", "-1"), "tol must be"),
    train_on("darcy", "mismatch", "another-family",
             lambda tmp, base: data_path("lorenz96", base.parent / "lorenz96"),
             "not in the dataset"),
    train_on("darcy", "value", "nan-in-data",
             lambda tmp, base: edit_netcdf(data_path("darcy", base), tmp / "nan.nc",
                                           lambda ds: with_nan(ds, "a")), "non-finite"),
    train_on("darcy", "value", "inf-in-target",
             lambda tmp, base: edit_netcdf(data_path("darcy", base), tmp / "inf.nc",
                                           lambda ds: with_nan(ds, "u").fillna(np.inf)),
             "non-finite"),
    train_on("darcy", "file", "truncated",
             lambda tmp, base: write_truncated(data_path("darcy", base), tmp / "t.nc"),
             "not a readable netCDF"),
]

# ---- acoustics
CASES += [
    gen("acoustics", "zero-spacing", ("--spacing", "0"), "spacing"),
    gen("acoustics", "negative-time", ("--t-max", "-1"), "t_max"),
    gen("acoustics", "no-sources", ("--n-sources", "0"), "n_sources"),
    gen("acoustics", "absurd-grid", ("--spacing", "1e-6"), "would need"),
    train_on("acoustics", "mismatch", "another-family",
             lambda tmp, base: data_path("darcy", base.parent / "darcy"), "pressure"),
    train_on("acoustics", "file", "missing", lambda tmp, base: tmp / "none.nc", "no "),
    train_on("acoustics", "file", "truncated",
             lambda tmp, base: write_truncated(data_path("acoustics", base), tmp / "t.nc"),
             "not a readable netCDF"),
]

# ---- climatebench
CASES += [
    gen("climatebench", "no-latitudes", ("--n-lat", "0"), "n_lat must be"),
    gen("climatebench", "no-members", ("--members", "0"), "members must be"),
    gen("climatebench", "absurd-grid", ("--n-lat", str(10**6), "--n-lon", str(10**6)),
        "would need"),
    gen("climatebench", "variability-nan", ("--variability", "nan"), "variability must be"),
    train_on("climatebench", "mismatch", "another-family",
             lambda tmp, base: data_path("airfoil", base.parent / "airfoil"), "inputs_"),
    train_on("climatebench", "file", "empty-output",
             lambda tmp, base: _empty_member(copy_data("climatebench", base, tmp)),
             "outputs_ssp126.nc"),
    train_on("climatebench", "value", "nan-in-forcing",
             lambda tmp, base: _nan_forcing(copy_data("climatebench", base, tmp)), "non-finite"),
]

# ---- airfoil
CASES += [
    gen("airfoil", "no-shapes", ("--n-shapes", "0"), "n_shapes must be"),
    gen("airfoil", "odd-panels", ("--panels", "61"), "even"),
    gen("airfoil", "radius-nan", ("--farfield-radius", "nan"), "farfield_radius"),
    gen("airfoil", "alpha-nan", ("--alpha", "nan,1,2"), "finite"),
    train_on("airfoil", "hostile", "index-parent-path",
             lambda tmp, base: _index_name(copy_data("airfoil", base, tmp), "../secret.vtu"),
             "outside the dataset folder"),
    train_on("airfoil", "hostile", "index-absolute-path",
             lambda tmp, base: _index_name(copy_data("airfoil", base, tmp),
                                           str(base / "foils" / "sample_00001.vtu")),
             "outside the dataset folder"),
    train_on("airfoil", "hostile", "index-symlink", lambda tmp, base: _symlinked(
        copy_data("airfoil", base, tmp), tmp), "outside the dataset folder"),
    train_on("airfoil", "mismatch", "mesh-missing-field",
             lambda tmp, base: _drop_field(copy_data("airfoil", base, tmp)), "cp"),
    train_on("airfoil", "file", "missing-index",
             lambda tmp, base: _drop_index(copy_data("airfoil", base, tmp)), "index.nc"),
    on_run("airfoil", "mismatch", "predict-mesh-missing-tags", "predict",
           lambda run, base: set_option(run_line("airfoil", "predict", run, base), "--mesh",
                                        str(_untagged_mesh(base, run.parent))), "wall"),
    on_run("airfoil", "value", "predict-alpha-nan", "predict",
           lambda run, base: set_option(run_line("airfoil", "predict", run, base), "--alpha",
                                        "nan"),
           "finite"),
    on_run("airfoil", "file", "predict-wrong-format", "predict",
           lambda run, base: set_option(run_line("airfoil", "predict", run, base), "--mesh",
                                        str(_text(run.parent / "mesh.vtu", "not xml"))),
           "not a readable mesh"),
]

# ---- pinn
CASES += [
    gen("pinn", "no-steps", ("--steps", "0"), "steps must be"),
    gen("pinn", "no-collocation", ("--collocation", "0"), "collocation"),
    gen("pinn", "negative-gaussians", ("--gaussians", "-1"), "gaussians"),
    gen("pinn", "lr-nan", ("--lr", "nan"), "lr must be"),
    on_run("pinn", "value", "predict-grid-zero", "predict",
           lambda run, base: set_option(run_line("pinn", "predict", run, base), "--grid", "0"),
           "grid must be"),
    on_run("pinn", "value", "predict-absurd-grid", "predict",
           lambda run, base: set_option(run_line("pinn", "predict", run, base), "--grid",
                                        str(10**7)), "would need"),
]


def _touch(path: Path) -> Path:
    path.touch()
    return path


def _text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _folder(path: Path) -> Path:
    path.mkdir()
    return path


def _empty_member(folder: Path) -> Path:
    (folder / "outputs_ssp126.nc").write_bytes(b"")
    return folder


def _nan_forcing(folder: Path) -> Path:
    path = folder / "inputs_ssp126.nc"
    edit_netcdf(path, folder / "tmp.nc", lambda ds: with_nan(ds, "CO2"))
    os.replace(folder / "tmp.nc", path)
    return folder


def _index_name(folder: Path, name: str) -> Path:
    write_index_names(folder, {1: name})
    return folder


def _symlinked(folder: Path, tmp: Path) -> Path:
    outside = tmp / "elsewhere.vtu"
    shutil.copy(folder / "sample_00001.vtu", outside)
    (folder / "sample_00001.vtu").unlink()
    (folder / "sample_00001.vtu").symlink_to(outside)
    return folder


def _drop_field(folder: Path) -> Path:
    path = folder / "sample_00002.vtu"
    mesh = meshio.read(path)
    del mesh.point_data["cp"]
    meshio.write(path, mesh)
    return folder


def _drop_index(folder: Path) -> Path:
    (folder / "index.nc").unlink()
    return folder


def _untagged_mesh(base: Path, tmp: Path) -> Path:
    mesh = meshio.read(base / "foils" / "sample_00000.vtu")
    mesh = meshio.Mesh(mesh.points, mesh.cells, point_data={})
    path = tmp / "untagged.vtu"
    meshio.write(path, mesh)
    return path


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_refused_in_one_line(case: Case, baselines: Baselines, tmp_path: Path):
    base = (baselines.get(case.family, case.needs) if case.needs != "none"
            else baselines.root / case.family)
    tmp = tmp_path / "work"
    tmp.mkdir()
    args = case.make(tmp, base)
    result = _invoke(args)
    try:
        _check_refused(result, case.expect)
    finally:
        if case.after is not None:
            case.after(tmp, base)


def _check_refused(result, expect: str) -> None:
    output = result.output
    lines = [line for line in output.splitlines() if line.strip()]
    assert result.exit_code == 1, output
    assert "Traceback" not in output, output
    assert output.count("Error:") == 1, output
    assert lines[-1].startswith("Error: "), output
    assert expect.lower() in lines[-1].lower(), output


def test_enough_cases():
    """At least 60 cases, over every family and every kind."""
    assert len(CASES) >= 60
    assert {case.family for case in CASES} == set(FAMILY)
    assert {case.kind for case in CASES} == {"value", "mismatch", "file", "hostile", "fault",
                                             "overwrite"}
    assert len({case.id for case in CASES}) == len(CASES)


# ------------------------------------------------------------------ faults: kill -9
def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "surrogates.cli", *map(str, args)]


def _kill_when(proc: subprocess.Popen, ready: Callable[[], bool], timeout: float = 120) -> None:
    """SIGKILL ``proc`` as soon as ``ready()``; fail if it ends first."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, "the process ended before it could be killed"
        assert time.monotonic() < deadline, "timed out waiting to kill the process"
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def _tmp_files(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.endswith(".tmp")]


L96 = ("--n-samples", "40", "--K", "8", "--J", "8", "--n-steps", "4000", "--spinup-steps", "10",
       "--save-every", "1", "--batch-size", "8")


def test_kill_during_generate_leaves_no_partial_file(tmp_path):
    """kill -9 while the netCDF file is being written: no file under the final name; running
    the command again writes the file of an uninterrupted run, byte for byte."""
    out = tmp_path / "l96.nc"
    proc = subprocess.Popen(_cli("generate", "lorenz96", "--out", out, *L96),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _kill_when(proc, lambda: bool(_tmp_files(tmp_path)) or out.exists())
    assert not out.exists(), "a killed generate left a file under the final name"
    result = _invoke(["generate", "lorenz96", "--out", out, *L96])
    assert result.exit_code == 0, result.output
    again = tmp_path / "again.nc"
    assert _invoke(["generate", "lorenz96", "--out", again, *L96]).exit_code == 0
    assert out.read_bytes() == again.read_bytes()


def test_kill_during_sharded_generate_then_resume(tmp_path):
    """kill -9 after the first of three shards: the shards on disk are complete, ``--resume``
    keeps them and writes the rest, and the set equals an uninterrupted run bit for bit."""
    out = tmp_path / "d.nc"
    args = ("--n-samples", "6", "--n", "16", "--batch-size", "1")
    proc = subprocess.Popen(_cli("generate", "darcy", "--out", out, *args, "--shards", "3"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = tmp_path / "d.shard-0-of-3.nc"
    _kill_when(proc, first.exists)
    assert not (tmp_path / "d.shard-2-of-3.nc").exists()
    resumed = _invoke(["generate", "darcy", "--out", out, *args, "--shards", "3", "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert "kept (complete)" in resumed.output
    whole = tmp_path / "whole.nc"
    assert _invoke(["generate", "darcy", "--out", whole, *args]).exit_code == 0
    with xr.open_mfdataset(sorted(tmp_path.glob("d.shard-*-of-3.nc")), combine="nested",
                           concat_dim="sample") as shards, xr.open_dataset(whole) as ds:
        for name in ("a", "u"):
            np.testing.assert_array_equal(shards[name].values, ds[name].values)


def test_kill_during_train_then_resume_is_bitwise(tmp_path, baselines):
    """kill -9 after the first epoch's checkpoint: ``--resume`` ends with the weights of an
    uninterrupted run, bit for bit (CPU, every run in its own process)."""
    base = baselines.get("darcy", "data")
    args = set_option(train_args("darcy", base, tmp_path), "--epochs", "30")
    args = [str(a) for a in args]
    proc = subprocess.Popen(_cli(*args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = tmp_path / "run" / "checkpoint.pt"

    def one_epoch() -> bool:
        if not checkpoint.exists():
            return False
        try:
            return torch.load(checkpoint, weights_only=True)["epoch"] >= 1
        except Exception:  # being replaced under us
            return False
    _kill_when(proc, one_epoch)
    # the resumed and the uninterrupted run each in a fresh process like the killed one (the
    # test process's torch thread settings would change the float reductions)
    resumed = subprocess.run(_cli(*args, "--resume"), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    whole = tmp_path / "whole"
    straight = [str(whole) if a == str(tmp_path / "run") else a for a in args]
    done = subprocess.run(_cli(*straight), capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    a = torch.load(tmp_path / "run" / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(whole / "model.pt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_stale_lock_is_taken_over(tmp_path):
    """A lock left by a process that is gone (kill -9) does not block the next writer, which
    removes it when done."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (tmp_path / ".l96.nc.lock").write_text(f"{gone.pid}\n")
    result = _invoke(generate_args("lorenz96", tmp_path))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "l96.nc").is_file()
    assert not (tmp_path / ".l96.nc.lock").exists()
