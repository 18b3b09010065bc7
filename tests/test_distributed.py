"""Data-parallel training: the global-batch sampler, 2-process DDP (gloo, CPU) against one
process, and resuming a killed 2-process run on one process."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, RandomSampler

from surrogates.distributed import GlobalBatchSampler, context, rank_slice
from surrogates.training import CHECKPOINT_NAME, TrainConfig, fit

ROOT = Path(__file__).resolve().parents[1]
WORKER_PATH = Path(__file__).with_name("ddp_worker.py")
_spec = importlib.util.spec_from_file_location("ddp_worker", WORKER_PATH)
worker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(worker)

#: float64 throughout: the 2-process curve differs from one process only by the order of
#: floating-point sums (measured ~1e-15 relative), so 1e-9 is a tight check.
RTOL = 1e-9


def torchrun(nproc: int, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           f"--nproc-per-node={nproc}", str(WORKER_PATH), *args],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_rank_slices_partition_and_single_process_context(monkeypatch):
    for n in range(0, 12):
        for world in (1, 2, 3, 5):
            blocks = [range(n)[rank_slice(n, r, world)] for r in range(world)]
            assert [i for b in blocks for i in b] == list(range(n))
            assert max(map(len, blocks)) - min(map(len, blocks)) <= 1
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    ctx = context("cpu")
    assert (ctx.rank, ctx.world_size, ctx.enabled, ctx.is_main) == (0, 1, False, True)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(ValueError, match="inconsistent"):
        context("cpu")


def test_global_batches_are_the_single_process_batches():
    data = list(range(21))
    reference = [b.tolist() for b in DataLoader(
        data, batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(3))]
    for world in (1, 2, 3):
        ranks = []
        for rank in range(world):
            g = torch.Generator().manual_seed(3)
            sampler = GlobalBatchSampler(RandomSampler(data, generator=g), 8, rank, world)
            ranks.append([b.tolist() for b in DataLoader(data, batch_sampler=sampler,
                                                         generator=g)])
        for step, batch in enumerate(reference):
            union = [i for r in range(world)
                     for i in ranks[r][step][:len(range(len(batch))[rank_slice(
                         len(batch), r, world)])]]
            assert union == batch


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    state = torch.load(run_dir / CHECKPOINT_NAME, weights_only=True)
    return state["model"]["state_dict"]


def _assert_close_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=RTOL, atol=1e-12)


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    """The reference: the worker's problem trained in this process (world size 1)."""
    run = tmp_path_factory.mktemp("ddp") / "one"
    fit(worker.make_model(), worker.problem(), worker.problem(n=11, seed=1), worker.config(),
        run)
    return run


def test_two_processes_follow_the_one_process_loss_curve(one_process, tmp_path):
    done = torchrun(2, str(tmp_path / "two"))
    assert done.returncode == 0, done.stderr[-3000:]
    one = json.loads((one_process / "history.json").read_text())
    two = json.loads((tmp_path / "two" / "history.json").read_text())
    assert len(one) == len(two) == worker.config().epochs
    for a, b in zip(one, two, strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=RTOL)
        assert b["validation_loss"] == pytest.approx(a["validation_loss"], rel=RTOL)
        assert b["lr"] == a["lr"]
    assert one[-1]["train_loss"] < one[0]["train_loss"]  # it learns
    _assert_close_weights(_weights(one_process), _weights(tmp_path / "two"))
    saved = json.loads((tmp_path / "two" / "train_config.json").read_text())
    assert TrainConfig(**saved) == worker.config()


def test_killed_two_process_run_resumes_on_one_process(one_process, tmp_path):
    steps_per_epoch = -(-len(worker.problem()) // worker.config().batch_size)
    killed = torchrun(2, str(tmp_path / "run"), "--interrupt-after-steps",
                      str(2 * steps_per_epoch + 1))
    assert killed.returncode != 0
    state = torch.load(tmp_path / "run" / CHECKPOINT_NAME, weights_only=True)
    assert state["epoch"] == 1  # two complete epochs were checkpointed
    resumed = worker.make_model(seed=7)  # all state must come from the checkpoint
    result = fit(resumed, worker.problem(), worker.problem(n=11, seed=1), worker.config(),
                 tmp_path / "run", resume=True)
    assert [h["epoch"] for h in result.history] == [0, 1, 2, 3]
    _assert_close_weights(_weights(one_process), _weights(tmp_path / "run"))


def test_amp_needs_cuda():
    # device="cpu" even where CUDA exists: mixed precision is refused off CUDA
    with pytest.raises(ValueError, match="CUDA"):
        fit(worker.make_model(), worker.problem(), None,
            TrainConfig(epochs=1, amp=True, device="cpu", show_progress=False))
