"""Worker for tests/test_distributed.py: ``torchrun --nproc-per-node N tests/ddp_worker.py RUN``.

Trains the tiny float64 problem of :func:`problem` with :func:`config` in ``RUN`` (rank 0
writes it). ``--interrupt-after-steps S`` raises KeyboardInterrupt at optimiser step ``S`` on
every rank, like a job killed mid-run; ``--resume`` continues a run.
"""

from __future__ import annotations

import argparse
import math

import torch

from operators.mno import LocalMLPClosure
from surrogates.data.common import PairDataset
from surrogates.training import TrainConfig, fit


def problem(n: int = 33, size: int = 16, seed: int = 0) -> PairDataset:
    """Random periodic signals and a fixed smoothing of them, float64 (33 = 4 x 8 + 1 so that
    the last global batch of 8 has one example and a second rank gets an empty slice)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.linspace(0, 1, size + 1, dtype=torch.float64)[:-1]
    k = torch.arange(1, 4, dtype=torch.float64)
    coeff = torch.randn(n, 3, 2, generator=g, dtype=torch.float64)
    phase = 2 * math.pi * k[None, :, None] * x[None, None, :]
    u = (coeff[..., 0:1] * torch.cos(phase) + coeff[..., 1:2] * torch.sin(phase)).sum(1)
    v = (torch.roll(u, 1, -1) + 2 * u + torch.roll(u, -1, -1)) / 4
    return PairDataset(u[:, None], v[:, None])


def make_model(seed: int = 0) -> LocalMLPClosure:
    torch.manual_seed(seed)
    return LocalMLPClosure(stencil=1, hidden_channels=8).double()


def config(epochs: int = 4) -> TrainConfig:
    return TrainConfig(epochs=epochs, batch_size=8, lr=3e-3, scheduler="cosine", loss="mse",
                       device="cpu", show_progress=False)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir")
    parser.add_argument("--interrupt-after-steps", type=int)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.interrupt_after_steps is not None:
        original, calls = torch.optim.Adam.step, {"n": 0}

        def step(self, *a, **k):
            if calls["n"] == args.interrupt_after_steps:
                raise KeyboardInterrupt
            calls["n"] += 1
            return original(self, *a, **k)

        torch.optim.Adam.step = step
    fit(make_model(seed=7 if args.resume else 0), problem(), problem(n=11, seed=1), config(),
        args.run_dir, resume=args.resume)


if __name__ == "__main__":
    main()
