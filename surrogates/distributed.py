"""Data-parallel training on the engines users already run: ``torchrun`` and PyTorch DDP.

``surrogates train ...`` (and :func:`surrogates.training.fit`) runs unchanged under

.. code-block:: bash

    torchrun --standalone --nproc-per-node N -m surrogates.cli train fno --data d.nc --out run

``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` (and ``MASTER_ADDR``/``MASTER_PORT``);
:func:`context` reads them and joins the process group once per process (NCCL when the
process has a CUDA device, gloo on CPUs). Without them (``WORLD_SIZE`` unset or 1) everything is
a single-process no-op.

What the training loop does with it (see :func:`surrogates.training.fit`):

* ``TrainConfig.batch_size`` is the **global** batch: the same examples per optimiser step
  whatever the number of processes, so one process means what it always meant. Each rank
  takes a contiguous slice of every global batch (:class:`GlobalBatchSampler`; per-rank batch
  ``~ batch_size / world_size``), drawn from one seeded permutation shared by all ranks; the
  permutations are those the single-process loader draws, so the runs see the same batches.
* Each rank's mean loss is weighted by its share of the global batch (``n_r W / N``), so the
  gradient averaged by DDP is the gradient of the global-batch mean loss, exactly as in one
  process (up to the order of floating-point sums).
* Train and validation losses are reduced across ranks as sums and counts (``all_reduce``).
* Only rank 0 writes checkpoints, the best model and the history (atomically); the checkpoint
  holds the unwrapped module's ``state_dict`` and world-size-independent state, so a run can
  resume on a different number of processes.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits in a data-parallel job.

    Attributes
    ----------
    rank, world_size, local_rank : int
        As set by ``torchrun`` (``0, 1, 0`` for a single process).
    backend : str or None
        ``"nccl"`` or ``"gloo"`` when a process group is in use, else ``None``.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        """True when there is more than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on rank 0, the rank that writes files and shows progress bars."""
        return self.rank == 0

    def device(self, requested: str = "auto") -> torch.device:
        """The device of this rank: ``cuda:LOCAL_RANK`` for ``"auto"``/``"cuda"`` when CUDA is
        available (one GPU per process), else what was asked for."""
        if requested in ("auto", "cuda") and torch.cuda.is_available():
            return torch.device("cuda", self.local_rank if self.enabled else 0)
        if requested == "auto":
            return torch.device("cpu")
        return torch.device(requested)

    def barrier(self) -> None:
        """Wait for every rank (no-op for one process)."""
        if self.enabled:
            dist.barrier()


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} must be an integer "
                         "(it is set by torchrun)") from None


def context(device: str = "auto") -> DistributedContext:
    """This process's :class:`DistributedContext`, joining the process group if needed.

    Reads ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` (set by ``torchrun``). With
    ``WORLD_SIZE > 1`` it initialises ``torch.distributed`` on first use (NCCL when CUDA is
    available and ``device`` is not ``"cpu"``, gloo otherwise) and destroys it at exit; later
    calls reuse the group. A group initialised by the caller is used as it is.

    Raises
    ------
    ValueError
        If the variables are inconsistent (a rank outside ``[0, WORLD_SIZE)``).
    """
    if dist.is_available() and dist.is_initialized():
        return DistributedContext(dist.get_rank(), dist.get_world_size(),
                                  _env_int("LOCAL_RANK", 0), dist.get_backend())
    world_size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"RANK={rank} and WORLD_SIZE={world_size} are inconsistent: need "
                         "0 <= RANK < WORLD_SIZE (launch with torchrun)")
    if world_size == 1:
        return DistributedContext(rank, 1, local_rank, None)
    use_cuda = torch.cuda.is_available() and device != "cpu" and not device.startswith("cpu")
    backend = "nccl" if use_cuda else "gloo"
    if use_cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
    atexit.register(_destroy)
    return DistributedContext(rank, world_size, local_rank, backend)


def _destroy() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(values: Sequence[float] | torch.Tensor, ctx: DistributedContext,
                   device: torch.device | str = "cpu") -> torch.Tensor:
    """Sum ``values`` over ranks (float64 tensor; a copy of ``values`` for one process)."""
    tensor = torch.as_tensor(values, dtype=torch.float64, device=device).clone()
    if ctx.enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def rank_slice(n: int, rank: int, world_size: int) -> slice:
    """Contiguous block ``rank`` of ``world_size`` nearly equal blocks of ``range(n)``
    (the first ``n % world_size`` blocks one longer)."""
    base, extra = divmod(n, world_size)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (1 if rank < extra else 0))


class GlobalBatchSampler(Sampler[list[int]]):
    """Batches of one rank: its slice of each global batch drawn from ``sampler``.

    Every rank iterates the same ``sampler`` (a seeded ``RandomSampler`` with a generator in
    the same state on all ranks), cuts the order into global batches of ``batch_size`` and
    yields slice :func:`rank_slice` of each. With ``world_size = 1`` these are exactly the
    batches of ``DataLoader(dataset, batch_size, sampler=sampler)``; with more ranks the union
    of the ranks' batches at each step is that same global batch. A rank whose slice is empty
    (a last global batch smaller than the world size) gets the batch's first index as a
    stand-in, which the training loop weights by zero (it knows the slice sizes from
    :func:`rank_slice`), so all ranks take the same number of steps.

    Parameters
    ----------
    sampler : Sampler[int]
        The global order of the examples.
    batch_size : int
        Global batch size.
    rank, world_size : int
    """

    def __init__(self, sampler: Sampler[int], batch_size: int, rank: int = 0,
                 world_size: int = 1):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} must lie in [0, world_size = {world_size})")
        self.sampler = sampler
        self.batch_size = batch_size
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Record the epoch (forwarded to the inner sampler when it has ``set_epoch``, as
        ``DistributedSampler`` does). The order of a seeded generator sampler follows from the
        seed and the number of epochs drawn so far, and its state is checkpointed."""
        self.epoch = epoch
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return -(-len(self.sampler) // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        batch: list[int] = []
        for index in self.sampler:
            batch.append(int(index))
            if len(batch) == self.batch_size:
                yield self._mine(batch)
                batch = []
        if batch:
            yield self._mine(batch)

    def _mine(self, batch: list[int]) -> list[int]:
        part = batch[rank_slice(len(batch), self.rank, self.world_size)]
        return part or batch[:1]  # a stand-in the loop weights by zero


class LossModule(torch.nn.Module):
    """``forward(x, y) -> loss`` around a model, so that DDP wraps the whole loss computation.

    The training loss may not go through ``model.forward`` (a NormalizedOperator's
    ``forward_normalized``, a model's own ``training_loss``); wrapping this module instead of
    the model makes every such path a DDP forward, so the gradient all-reduce is armed.
    """

    def __init__(self, model: torch.nn.Module, loss):
        super().__init__()
        self.model = model
        self.loss = loss

    def forward(self, x, y):
        return self.loss(self.model, x, y)
