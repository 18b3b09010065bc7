"""Common tests of every problem family, run for each row of ``surrogates.cli.FAMILIES``.

Like scikit-learn's ``check_estimator``: a family is covered the moment it is registered. Each
row's ``example`` (tiny data -> a one-epoch run -> evaluate -> predict or export) must run from
the command line and leave the files it promises; training again into the same folder must be
refused; and the family's ``evaluate`` must refuse, with a message naming the right family, a
run folder written by another family.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import meshio
import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner
from scipy.stats import norm

from surrogates.cli import FAMILIES, main
from surrogates.runs.folder import KINDS, RUN_CONFIG_NAME, read_run_config

IDS = [family.name for family in FAMILIES]


def _invoke(line: str, tmp_path: Path):
    args = shlex.split(line.format(dir=tmp_path))
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    return args, result


def _verb(line: str) -> str:
    return shlex.split(line)[0]


def test_table_is_consistent():
    """Every kind belongs to exactly one family, whose name matches ``runs.folder.KINDS``."""
    owners = {kind: family.name for family in FAMILIES for kind in family.kinds}
    assert sum(len(family.kinds) for family in FAMILIES) == len(owners)
    assert owners == KINDS
    assert len(set(IDS)) == len(IDS)
    for family in FAMILIES:
        verbs = [_verb(line) for line in family.example]
        assert verbs[0] in ("generate", "solve"), family.name
        assert "evaluate" in verbs, f"{family.name}: its example never evaluates"
        assert {"predict", "export"} & set(verbs), f"{family.name}: never predicts or exports"
        assert family.evaluate is not None


def _check_output(path: Path) -> None:
    """A prediction file: finite numbers; a variable ``v`` beside ``v_reference`` has its shape,
    and ``v_std`` is non-negative."""
    assert path.is_file(), path
    if path.suffix == ".nc":
        with xr.open_dataset(path) as ds:
            assert ds.data_vars
            for name, var in ds.data_vars.items():
                assert np.isfinite(var.values).all(), name
                if f"{name}_reference" in ds:
                    assert ds[f"{name}_reference"].shape == var.shape
                if name.endswith("_std"):
                    assert (var.values >= 0).all(), name
    elif path.suffix == ".vtu":
        mesh = meshio.read(path)
        assert mesh.point_data
        for name, values in mesh.point_data.items():
            assert np.isfinite(values).all(), name
    else:  # an exported model, with its contract beside it
        assert path.stat().st_size > 0
        assert json.loads(Path(f"{path}.json").read_text())


def _check_calibrated_coverage(path: Path, uq_reports: dict) -> None:
    """A calibrated run's predicted ``v_std`` is the conformal 90 % interval as a Gaussian std:
    the coverage of ``v +- z_0.95 v_std`` recomputed here from the predict file must equal the
    calibrated coverage that ``evaluate`` reported for the same split."""
    calibrated = [r["calibrated"] for r in uq_reports.values() if "calibrated" in r]
    if path.suffix != ".nc" or not calibrated:
        return
    with xr.open_dataset(path) as ds:
        names = [v for v in ds.data_vars if f"{v}_std" in ds and f"{v}_reference" in ds]
        assert names, "a calibrated run's predict file has no _std"
        # frames a rollout was given (its context) are not predictions: evaluate skips them
        ds = ds.isel(time=slice(int(ds.attrs.get("context_frames", 0)), None)) \
            if "time" in ds.dims else ds
        inside = np.concatenate([
            (np.abs(ds[f"{v}_reference"].values - ds[v].values)
             <= norm.ppf(0.95) * ds[f"{v}_std"].values).ravel() for v in names])
    assert abs(inside.mean() - calibrated[0]["coverage"]["0.9"]) <= 1e-3


def _outputs(args: list[str], run: Path) -> list[Path]:
    if "--out" in args:
        return [Path(args[args.index("--out") + 1])]
    if args[0] == "export":
        return sorted(p for p in [*run.glob("closure.*"), *run.glob("operator.*")]
                      if p.suffix != ".json")
    return []


@pytest.mark.parametrize("family", FAMILIES, ids=IDS)
def test_example_round_trip(family, tmp_path):
    run = tmp_path / "run"
    for line in family.example:
        args, result = _invoke(line, tmp_path)
        assert result.exit_code == 0, f"{line}\n{result.output}"
        verb = args[0]
        if verb in ("train", "solve"):
            config = read_run_config(run)
            assert config["kind"] in family.kinds
        elif verb == "evaluate":
            metrics = run / "evaluation" / "metrics.json"
            assert metrics.is_file(), result.output
            uq_reports = json.loads(metrics.read_text())["uq"]
            assert uq_reports and all("raw" in r for r in uq_reports.values())
        elif verb in ("predict", "export"):
            outputs = _outputs(args, run)
            assert outputs, result.output
            for path in outputs:
                _check_output(path)
                _check_calibrated_coverage(path, uq_reports)


@pytest.mark.parametrize("family", FAMILIES, ids=IDS)
def test_refuses_to_overwrite_a_run(family, tmp_path):
    """Training (or solving) into a folder that holds a run fails and leaves it as it was."""
    line = next(line for line in family.example if _verb(line) in ("train", "solve"))
    run = tmp_path / "run"
    run.mkdir()
    marker = run / RUN_CONFIG_NAME
    marker.write_text(json.dumps({"kind": family.kinds[0], "written": "by the user"}))
    for data_line in family.example[:family.example.index(line)]:
        assert _invoke(data_line, tmp_path)[1].exit_code == 0
    _, result = _invoke(line, tmp_path)
    assert result.exit_code == 1, result.output
    assert "exists" in result.output and "--overwrite" in result.output
    assert json.loads(marker.read_text())["written"] == "by the user"


@pytest.mark.parametrize("family", FAMILIES, ids=IDS)
def test_refuses_a_run_of_another_family(family, tmp_path):
    """The family's evaluate names the family that wrote a foreign run folder."""
    other = FAMILIES[(FAMILIES.index(family) + 1) % len(FAMILIES)]
    run = tmp_path / "foreign"
    run.mkdir()
    (run / RUN_CONFIG_NAME).write_text(json.dumps({"kind": other.kinds[0]}))
    result = CliRunner().invoke(family.evaluate, [str(run)], catch_exceptions=False)
    assert result.exit_code == 1, result.output
    assert f"is a {other.name} run" in result.output


def test_verbs_dispatch_by_kind(tmp_path):
    """``surrogates VERB RUN`` reads the kind; unknown kinds, missing folders and verbs a family
    lacks are one-line errors; ``--help`` after RUN shows the family's options."""
    runner = CliRunner()
    run = tmp_path / "run"
    run.mkdir()
    (run / RUN_CONFIG_NAME).write_text(json.dumps({"kind": "no-such-kind"}))
    result = runner.invoke(main, ["evaluate", str(run)])
    assert result.exit_code == 1 and "unknown run kind 'no-such-kind'" in result.output
    result = runner.invoke(main, ["predict", str(tmp_path / "missing"), "--out", "x.nc"])
    assert result.exit_code == 1 and "not a run folder" in result.output
    (run / RUN_CONFIG_NAME).write_text(json.dumps({"kind": "pinn"}))
    result = runner.invoke(main, ["export", str(run)])
    assert result.exit_code == 1 and "no command for pinn runs" in result.output
    result = runner.invoke(main, ["predict", str(run), "--help"])
    assert result.exit_code == 0 and "--grid" in result.output and "--mesh" not in result.output
    result = runner.invoke(main, ["evaluate", "--help"])
    assert result.exit_code == 0
    assert all(f"{family.name}:" in result.output for family in FAMILIES)
