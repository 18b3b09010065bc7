"""MMGP run folders through the CLI: generate airfoil -> train mmgp -> evaluate -> predict."""

import json

import meshio
import numpy as np
import pytest
from click.testing import CliRunner

from surrogates.cli import main
from surrogates.data.airfoil import open_airfoil_dataset
from surrogates.mmgp_runs import (
    RUN_KIND,
    MMGPRunConfig,
    load_mmgp_run,
    morpher,
    split_by_shape,
)


def _invoke(args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("mmgp") / "airfoils"
    _invoke(["generate", "airfoil", "--out", out, "--n-shapes", 6, "--conditions-per-shape", 3,
             "--panels", 80, "--growth", 0.6, "--mach", "0,0.3", "--seed", 1])
    return out


@pytest.fixture(scope="module")
def run(data, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("mmgp") / "run"
    output = _invoke(["train", "mmgp", "--data", data, "--out", run_dir, "--fields", "cp",
                      "--scalars", "cl,cd", "--inputs", "alpha,mach", "--restarts", 2,
                      "--max-iter", 100, "--test-fraction", 0.34])
    assert "fitted MMGP (rbf morphing)" in output
    return run_dir


def test_train_writes_run_folder_with_shape_split(run, data):
    cfg = json.loads((run / "run_config.json").read_text())
    assert cfg["kind"] == RUN_KIND
    assert cfg["config"]["morpher"] == "rbf" and cfg["config"]["inputs"] == ["alpha", "mach"]
    train, test = cfg["split"]["train"], cfg["split"]["test"]
    assert sorted(train + test) == list(range(18)) and len(test) == 6
    shapes = open_airfoil_dataset(data).index["shape_id"].values
    assert not set(shapes[train]) & set(shapes[test])  # whole shapes held out
    assert (run / "model" / "config.json").is_file()
    with pytest.raises(Exception, match="not empty"):
        CliRunner().invoke(main, ["train", "mmgp", "--data", str(data), "--out", str(run)],
                           catch_exceptions=False, standalone_mode=False)


def test_evaluate_metrics_and_plots_beat_the_mean(run, data):
    output = _invoke(["evaluate", run])
    assert "| cl |" in output and "| cp |" in output
    result = json.loads((run / "evaluation" / "metrics.json").read_text())
    m = result["metrics"]
    assert set(m) == {"cl", "cd", "cp"}
    for key in ("rrmse", "q2", "coverage", "crps", "nll"):
        assert np.isfinite(m["cl"][key]) and np.isfinite(m["cp"][key])
    assert np.isfinite(m["cp"]["relative_l2"])
    assert len(result["calibration"]["coverage"]["cl"]) == len(result["calibration"]["levels"])
    for name in ("calibration.png", "fields_cp.png"):
        assert (run / "evaluation" / name).stat().st_size > 1000
    # the regressor reloads and predicts the same held-out cl; it beats the training mean
    model, cfg = load_mmgp_run(run)
    ds = open_airfoil_dataset(data)
    test, train = ds.subset(cfg["split"]["test"]), ds.subset(cfg["split"]["train"])
    mean = model.predict(list(test.meshes), test.inputs(["alpha", "mach"]))
    cl = test.outputs(["cl"])[:, 0]
    err_model = np.sqrt(np.mean((mean["cl"] - cl) ** 2))
    err_mean = np.sqrt(np.mean((train.outputs(["cl"])[:, 0].mean() - cl) ** 2))
    assert err_model < 0.5 * err_mean, (err_model, err_mean)
    assert m["cl"]["rrmse"] == pytest.approx(
        float(np.sqrt(np.mean((mean["cl"] - cl) ** 2 / cl**2))), rel=1e-6)


def test_predict_writes_mean_and_std_fields(run, data, tmp_path):
    out = tmp_path / "pred.vtu"
    output = _invoke(["predict", run, "--mesh", data / "sample_00000.vtu", "--alpha", 3.0,
                      "--mach", 0.2, "--out", out])
    assert "cl = " in output and "+/-" in output
    mesh = meshio.read(out)
    for name in ("cp_mean", "cp_std"):
        values = np.asarray(mesh.point_data[name])
        assert values.shape == (len(mesh.points),) and np.all(np.isfinite(values))
    assert np.all(mesh.point_data["cp_std"] > 0)
    bad = CliRunner().invoke(main, ["predict", str(run), "--mesh", str(data / "sample_00000.vtu"),
                                    "--alpha", "3", "--out", str(tmp_path / "x.vtu")])
    assert bad.exit_code != 0 and "missing ['mach']" in bad.output


def test_boundary_tags_split_and_config_validation(data):
    # the regressor keeps the support's boundary tags, so the morphers can find its wall
    mesh = open_airfoil_dataset(data).meshes[0]
    result = morpher("rbf").morph(mesh, mesh)
    assert np.allclose(result.points, mesh.points[:, :2], atol=1e-8)
    index = open_airfoil_dataset(data).index
    assert split_by_shape(index, 0.34, 3) == split_by_shape(index, 0.34, 3)
    with pytest.raises(ValueError, match="morpher"):
        MMGPRunConfig(data=str(data), morpher="nope")
    with pytest.raises(ValueError, match="nothing to learn"):
        MMGPRunConfig(data=str(data), fields=[], scalars=[])
