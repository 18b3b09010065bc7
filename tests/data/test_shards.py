"""Sharded generation (union = one run, bit for bit; resume), lazy shard sets, streaming
torch datasets and streaming normalisers."""

import os

import numpy as np
import pytest
import torch
import xarray as xr
from click.testing import CliRunner

from surrogates.cli import main
from surrogates.data.common import to_torch, write_netcdf
from surrogates.data.darcy import DarcyDataConfig, generate_darcy
from surrogates.data.lorenz96 import Lorenz96DataConfig, generate_lorenz96
from surrogates.data.shards import (
    find_shards,
    generate_shards,
    map_over_devices,
    open_dataset,
    parse_shard,
    shard_path,
    shard_samples,
    validate_shard,
)
from surrogates.data.streaming import LazyPairDataset, to_torch_lazy

#: Tiny but real: the 4 shards (3, 2, 2, 2 samples) cut the batches of 3 differently.
L96 = Lorenz96DataConfig(n_samples=9, K=8, J=4, n_steps=40, save_every=5, spinup_steps=10,
                         batch_size=3, F_range=(8.0, 12.0))


@pytest.fixture(scope="module")
def lorenz(tmp_path_factory):
    """One run and a 4-shard run of the same configuration."""
    folder = tmp_path_factory.mktemp("l96")
    single = generate_lorenz96(L96, show_progress=False)
    write_netcdf(single, folder / "one.nc")
    generate_shards(generate_lorenz96, L96, {**L96.__dict__}, folder / "data.nc", 4,
                    show_progress=False)
    return folder, single


def test_shard_blocks_names_and_parsing():
    blocks = [shard_samples(10, i, 4) for i in range(4)]
    assert [list(b) for b in blocks] == [[0, 1, 2], [3, 4, 5], [6, 7], [8, 9]]
    assert shard_path("out/d.nc", 2, 8).name == "d.shard-2-of-8.nc"
    assert parse_shard("3/64") == (3, 64)
    for bad in ("4/4", "x/2", "-1/3"):
        with pytest.raises(ValueError, match="I/N"):
            parse_shard(bad)
    with pytest.raises(ValueError, match="empty"):
        shard_samples(3, 0, 4)
    assert map_over_devices(lambda lo, hi: (lo, hi), 3, 7) == [(3, 7)]  # one CPU device


def test_union_of_four_lorenz96_shards_is_the_single_run_bit_for_bit(lorenz):
    folder, single = lorenz
    union = open_dataset(folder / "data.nc")
    assert all(v.chunks is not None for v in union.data_vars.values())  # lazy (dask)
    xr.testing.assert_identical(union.load(), single)
    on_disk = open_dataset(folder / "one.nc")
    for name in single.data_vars:
        assert np.array_equal(on_disk[name].values, union[name].values)


def test_union_of_darcy_shards_is_the_single_run(tmp_path):
    config = DarcyDataConfig(n_samples=5, n=8, batch_size=2)
    single = generate_darcy(config, show_progress=False)
    generate_shards(generate_darcy, config, {**config.__dict__}, tmp_path / "d.nc", 3,
                    show_progress=False)
    union = open_dataset(tmp_path / "d.nc").load()
    xr.testing.assert_identical(union, single)


def test_resume_keeps_complete_shards_and_refuses_foreign_files(tmp_path):
    config = DarcyDataConfig(n_samples=4, n=8, batch_size=2)
    as_dict = {**config.__dict__}
    out = tmp_path / "d.nc"
    generate_shards(generate_darcy, config, as_dict, out, 4, indices=[0, 2],
                    show_progress=False)  # "interrupted" after two shards
    with pytest.raises(FileNotFoundError, match=r"shards \[1, 3\] of 4"):
        find_shards(out)
    before = os.stat(shard_path(out, 0, 4)).st_mtime_ns
    done = generate_shards(generate_darcy, config, as_dict, out, 4, resume=True,
                           show_progress=False)
    assert [new for _, new in done] == [False, True, False, True]
    assert os.stat(shard_path(out, 0, 4)).st_mtime_ns == before
    assert len(find_shards(out)) == 4
    other = {**as_dict, "seed": 1}
    assert validate_shard(shard_path(out, 1, 4), as_dict, 1, 4)
    assert not validate_shard(shard_path(out, 1, 4), other, 1, 4)
    assert not validate_shard(shard_path(out, 1, 4), as_dict, 2, 4)
    shard_path(out, 3, 4).write_bytes(b"not netCDF")
    with pytest.raises(ValueError, match="not shard 3/4"):
        generate_shards(generate_darcy, config, as_dict, out, 4, resume=True,
                        show_progress=False)
    with pytest.raises(FileExistsError, match="--resume"):
        generate_shards(generate_darcy, config, as_dict, out, 4, show_progress=False)


def test_lazy_pairs_equal_in_memory_pairs_and_streaming_normalizers(lorenz):
    folder, single = lorenz
    lazy = open_dataset(folder / "data.nc")
    kwargs = dict(inputs=["X"], targets=["closure_target"], spatial_dims=["k"], lead=1,
                  history=2, fractions=(0.6, 0.2, 0.2))
    eager = to_torch(single, **kwargs)
    streamed = to_torch_lazy(lazy, chunk_examples=50, **kwargs)
    for split in ("train", "validation", "test"):
        a, b = getattr(eager, split), getattr(streamed, split)
        assert isinstance(b, LazyPairDataset) and len(a) == len(b)
        order = torch.randperm(len(a), generator=torch.Generator().manual_seed(0))[:40]
        items = b.__getitems__(order.tolist())
        assert torch.equal(torch.stack([x for x, _ in items]), a.inputs[order])
        assert torch.equal(torch.stack([y for _, y in items]), a.targets[order])
        x, y = b[len(b) - 1]
        assert torch.equal(x, a.inputs[-1]) and torch.equal(y, a.targets[-1])
    for which in ("input_normalizer", "target_normalizer"):
        e, s = getattr(eager, which), getattr(streamed, which)
        torch.testing.assert_close(s.mean, e.mean, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(s.std, e.std, rtol=1e-6, atol=1e-6)
    batches = list(torch.utils.data.DataLoader(streamed.train, batch_size=16, shuffle=True))
    assert sum(len(x) for x, _ in batches) == len(streamed.train)


def test_cli_generates_and_resumes_shards_and_trains_on_them_streaming(tmp_path):
    runner = CliRunner()
    out = tmp_path / "d.nc"
    args = ["generate", "darcy", "--out", str(out), "--n-samples", "6", "--n", "8",
            "--batch-size", "2"]
    first = runner.invoke(main, [*args, "--shard", "1/3"])
    assert first.exit_code == 0, first.output
    assert shard_path(out, 1, 3).is_file() and not out.exists()
    rest = runner.invoke(main, [*args, "--shards", "3", "--resume"])
    assert rest.exit_code == 0, rest.output
    assert "kept (complete)" in rest.output and rest.output.count("wrote") == 2
    bad = runner.invoke(main, [*args, "--resume"])
    assert bad.exit_code != 0 and "--shard" in bad.output
    trained = runner.invoke(main, [
        "train", "fno", "--data", str(out), "--out", str(tmp_path / "run"), "--inputs", "a",
        "--targets", "u", "--spatial-dims", "y,x", "--modes", "3", "--width", "4",
        "--layers", "1", "--epochs", "2", "--batch-size", "2", "--device", "cpu", "--stream"])
    assert trained.exit_code == 0, trained.output
    assert (tmp_path / "run" / "model.pt").is_file()


def test_two_cpu_devices_give_the_one_device_data(tmp_path):
    # XLA can split the host CPU into several devices; in a fresh process with two of them, a
    # batch is generated as two blocks on two devices, and the data are the one-device data.
    import json
    import subprocess
    import sys

    script = (
        "import json, sys, jax, numpy as np\n"
        "from surrogates.data.lorenz96 import Lorenz96DataConfig, generate_lorenz96\n"
        "cfg = Lorenz96DataConfig(**json.loads(sys.argv[1]))\n"
        "ds = generate_lorenz96(cfg, show_progress=False)\n"
        "np.save(sys.argv[2], ds['X'].values)\n"
        "print(len(jax.devices()))\n")
    cfg = {"n_samples": 4, "K": 8, "J": 4, "n_steps": 20, "save_every": 5, "spinup_steps": 5,
           "batch_size": 4}
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    out = subprocess.run([sys.executable, "-c", script, json.dumps(cfg), str(tmp_path / "x2")],
                         env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "2"
    one = generate_lorenz96(Lorenz96DataConfig(**cfg), show_progress=False)["X"].values
    np.testing.assert_array_equal(np.load(tmp_path / "x2.npy"), one)
