"""Fitting loops for operators: losses, optimiser and schedule, validation, early stopping,
checkpoints that resume exactly.

A run folder holds

- ``checkpoint.pt``: model (class, constructor JSON, weights), optimiser, scheduler, RNG states,
  epoch counter and history; written atomically after every epoch and loaded with
  ``torch.load(..., weights_only=True)``;
- ``model.pt``: the model with the best validation loss so far (:func:`operators.load_model`);
- ``history.json`` and ``train_config.json``.

Resuming from ``checkpoint.pt`` with the same configuration ends with the same weights as an
uninterrupted run (CPU, deterministic mode, the same number of intra-op threads).

Data parallel: :func:`fit` runs unchanged under ``torchrun --nproc-per-node N`` (DDP; NCCL on
GPUs, gloo on CPUs; see :mod:`surrogates.distributed`). ``TrainConfig.batch_size`` is the
*global* batch size (the examples of one optimiser step over all processes; each process
takes about ``batch_size / N`` of them), so a one-process run means what it always meant and an
N-process run follows the same loss curve. Only rank 0 writes files; the checkpoint does not
depend on the number of processes, so a run can resume on a different number of them.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler, Subset
from tqdm.auto import tqdm

from operators.base import (
    OperatorModel,
    atomic_torch_save,
    load_checkpoint,
    model_checkpoint,
    save_model,
)
from surrogates import distributed
from surrogates.data.common import write_json

CHECKPOINT_NAME = "checkpoint.pt"
MODEL_NAME = "model.pt"


def relative_l2(prediction: torch.Tensor, target: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Mean over the batch of ``||prediction - target||_2 / ||target||_2``.

    Norms are taken over all dimensions but the first (channels and grid), so the loss does not
    depend on the grid resolution.
    """
    diff = (prediction - target).flatten(1).norm(dim=1)
    return (diff / (target.flatten(1).norm(dim=1) + eps)).mean()


def mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over all entries."""
    return torch.mean((prediction - target) ** 2)


def _h1_squared(v: torch.Tensor) -> torch.Tensor:
    """Discrete squared H1 norm per example of ``v (batch, channels, *grid)`` on the unit box."""
    n_points = math.prod(v.shape[2:])
    total = v.flatten(1).pow(2).sum(dim=1)
    for axis in range(2, v.ndim):
        gradient = torch.diff(v, dim=axis) * v.shape[axis]
        total = total + gradient.flatten(1).pow(2).sum(dim=1)
    return total / n_points


def relative_h1(prediction: torch.Tensor, target: torch.Tensor,
                eps: float = 1e-12) -> torch.Tensor:
    r"""Mean over the batch of :math:`\|e\|_{H^1} / \|y\|_{H^1}`, :math:`e` = prediction - target.

    :math:`\|v\|_{H^1}^2 = \overline{v^2} + \sum_d \overline{(\partial_d v)^2}` with means
    over the grid and forward differences of spacing ``1/n_d`` along every spatial axis (the
    grid spans the unit box), summed over channels. It weights gradient errors, which the
    MgNO paper trains on.
    """
    diff = _h1_squared(prediction - target).sqrt()
    return (diff / (_h1_squared(target).sqrt() + eps)).mean()


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "relative_l2": relative_l2, "relative_h1": relative_h1, "mse": mse}

#: Fields that may change between the run that wrote a checkpoint and the one resuming it.
_RESUMABLE_CHANGES = {"epochs", "show_progress", "device", "patience", "amp"}


@dataclass
class TrainConfig:
    """Optimisation settings (all have defaults that train small operators on a laptop CPU).

    Attributes
    ----------
    optimizer : {"adam", "adamw"}
    scheduler : {"cosine", "step", "onecycle", "none"}
        Cosine annealing to zero over ``epochs``; StepLR(``step_size``, ``gamma``); OneCycle with
        peak ``lr``; or a constant learning rate.
    loss : {"relative_l2", "relative_h1", "mse"}
        Computed in normalised units when the model is a
        :class:`~operators.normalization.NormalizedOperator`.
    patience : int or None
        Stop after this many epochs without a better validation loss.
    device : str
        ``"auto"`` takes CUDA when present, else CPU.
    deterministic : bool
        Ask torch for deterministic kernels during training (restored afterwards).
    grad_clip : float or None
        Clip the global gradient norm to this value before each step (useful when the loss
        backpropagates through long rollouts).
    batch_size : int
        Global batch size: examples per optimiser step summed over all processes of a
        ``torchrun`` job (each takes its slice); with one process, the plain batch size.
    amp : bool
        Mixed precision on CUDA (``torch.autocast`` to float16 with a ``GradScaler``). CUDA
        only: :func:`fit` raises ``ValueError`` on a CPU device. Spectral layers (FNO) then run
        their FFTs in float16, which cuFFT supports for power-of-two grid sizes only.
    """

    epochs: int = 50
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.0
    optimizer: str = "adam"
    scheduler: str = "cosine"
    step_size: int = 20
    gamma: float = 0.5
    loss: str = "relative_l2"
    patience: int | None = None
    seed: int = 0
    device: str = "auto"
    deterministic: bool = True
    show_progress: bool = True
    grad_clip: float | None = None
    amp: bool = False

    def __post_init__(self):
        choices = {"optimizer": ("adam", "adamw"),
                   "scheduler": ("cosine", "step", "onecycle", "none"),
                   "loss": tuple(LOSSES)}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, got {self.epochs}, "
                             f"{self.batch_size}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be positive and finite, got {self.lr}")
        if self.grad_clip is not None and not (self.grad_clip > 0
                                               and math.isfinite(self.grad_clip)):
            raise ValueError(f"grad_clip must be positive and finite or None, got "
                             f"{self.grad_clip}")


@dataclass
class TrainResult:
    """What :func:`fit` did: the per-epoch history and the best validation loss."""

    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1
    best_validation_loss: float = math.inf
    stopped_early: bool = False


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> CUDA if available else CPU; anything else is passed to ``torch.device``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return cls(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def _make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int):
    """Return ``(scheduler, steps_per_batch)``: OneCycle steps per batch, the others per epoch."""
    if config.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs), False
    if config.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, config.step_size, config.gamma), False
    if config.scheduler == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=config.lr, epochs=config.epochs,
            steps_per_epoch=steps_per_epoch), True
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0), False


def _to_device(x: torch.Tensor | tuple | list, device: torch.device):
    """A tensor, or a tuple/list of tensors, moved to ``device``."""
    if isinstance(x, tuple | list):
        return type(x)(v.to(device) for v in x)
    return x.to(device)


def _batch_size(x: torch.Tensor | tuple | list) -> int:
    return len(x[0]) if isinstance(x, tuple | list) else len(x)


def _loss_inputs(model: torch.nn.Module, x: torch.Tensor | tuple | list, y: torch.Tensor):
    """Prediction and target in the space the loss is computed in (normalised if available).

    An input that is a tuple or list of tensors is passed as separate arguments,
    ``model(*x)`` (e.g. DeepONet's ``(branch, trunk)``)."""
    if hasattr(model, "forward_normalized"):
        return model.forward_normalized(x), model.target_normalizer.encode(y)
    if isinstance(x, tuple | list):
        return model(*x), y
    return model(x), y


def _training_loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                   loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """The batch loss minimised by :func:`fit`: the model's own ``training_loss(x, y, loss_fn)``
    when it defines one (e.g. the rollout curriculum of
    :class:`operators.autoregressive.AutoregressiveStepper`), else ``loss_fn`` of its output."""
    if hasattr(model, "training_loss"):
        return model.training_loss(x, y, loss_fn)
    return loss_fn(*_loss_inputs(model, x, y))


@torch.no_grad()
def evaluate_loss(model: torch.nn.Module, dataset: Dataset, loss: str = "relative_l2",
                  batch_size: int = 256, device: str | torch.device = "cpu") -> float:
    """Mean loss of ``model`` over ``dataset`` (weighted by batch size)."""
    if len(dataset) == 0:
        return math.nan
    total, count = _loss_sum(model, dataset, loss, batch_size, torch.device(device))
    return total / count


@torch.no_grad()
def _loss_sum(model: torch.nn.Module, dataset: Dataset, loss: str, batch_size: int,
              device: torch.device) -> tuple[float, int]:
    """``(sum over batches of batch-mean loss x batch size, number of examples)``."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for x, y in DataLoader(dataset, batch_size=batch_size):
        x, y = _to_device(x, device), y.to(device)
        total += float(LOSSES[loss](*_loss_inputs(model, x, y))) * _batch_size(x)
        count += _batch_size(x)
    model.train(was_training)
    return total, count


def _distributed_validation(model: torch.nn.Module, dataset: Dataset, loss: str,
                            ctx: distributed.DistributedContext, device: torch.device) -> float:
    """Validation loss over all ranks: each scores its contiguous block, sums are reduced."""
    part = Subset(dataset, range(len(dataset))[distributed.rank_slice(len(dataset), ctx.rank,
                                                                       ctx.world_size)])
    total, count = _loss_sum(model, part, loss, 256, device) if len(part) else (0.0, 0)
    total, count = distributed.all_reduce_sum([total, count], ctx, device).tolist()
    return total / count


@torch.no_grad()
def predict(model: torch.nn.Module, inputs: torch.Tensor, batch_size: int = 256,
            device: str | torch.device = "auto") -> torch.Tensor:
    """Apply ``model`` to ``inputs`` of shape ``(n, c_in, *spatial)`` in batches; CPU result."""
    device = resolve_device(device) if isinstance(device, str) else device
    model = model.to(device).eval()
    outputs = [model(inputs[i:i + batch_size].to(device)).cpu()
               for i in range(0, len(inputs), batch_size)]
    return torch.cat(outputs) if outputs else inputs.new_zeros((0,))


def _check_resumable(saved: dict[str, Any], config: TrainConfig) -> None:
    current = dataclasses.asdict(config)
    changed = {k for k in current if k not in _RESUMABLE_CHANGES and saved.get(k) != current[k]}
    if changed:
        details = ", ".join(f"{k}: {saved.get(k)!r} -> {current[k]!r}" for k in sorted(changed))
        raise ValueError(f"cannot resume: the training configuration changed ({details}); "
                         "start a new run folder instead")


def fit(model: OperatorModel, train: Dataset, validation: Dataset | None = None,
        config: TrainConfig | None = None, run_dir: str | os.PathLike | None = None, *,
        resume: bool = False) -> TrainResult:
    """Train ``model`` on ``train``, validating on ``validation`` after every epoch.

    Parameters
    ----------
    model : OperatorModel
        Initialised model (seed torch before building it for reproducible initial weights).
        Trained in place. A model with ``set_epoch(epoch, n_epochs)`` is told the epoch before
        each one, and one with ``training_loss(x, y, loss_fn)`` computes its own batch loss (a
        rollout curriculum, for instance); validation is always ``loss(model(x), y)``.
    train, validation : torch Dataset of ``(input, target)`` pairs
        Physical units; a NormalizedOperator's own normalisers are applied inside the loss.
        An input may be a tuple of tensors, passed to the model as separate arguments
        (DeepONet's ``((branch, trunk), target)`` items). A training set with
        ``set_epoch(epoch)`` is told the epoch before each one (to redraw random points).
    config : TrainConfig
    run_dir : path-like, optional
        Folder for checkpoints, the best model and the history. Without it nothing is written
        and ``resume`` is unavailable.
    resume : bool
        Continue from ``run_dir/checkpoint.pt``. Without it, an existing checkpoint there is an
        error (nothing is overwritten silently).

    Returns
    -------
    TrainResult
        History of ``{"epoch", "train_loss", "validation_loss", "lr", "seconds"}`` per epoch.
    """
    config = config or TrainConfig()
    if len(train) == 0:
        raise ValueError("the training dataset is empty")
    ctx = distributed.context(config.device)
    device = ctx.device(config.device) if ctx.enabled else resolve_device(config.device)
    if config.amp and device.type != "cuda":
        raise ValueError(f"amp (mixed precision) needs a CUDA device, but training runs on "
                         f"{device}; drop amp (--amp) on CPUs")
    run_path = Path(run_dir) if run_dir is not None else None
    checkpoint_path = run_path / CHECKPOINT_NAME if run_path else None
    if resume and checkpoint_path is None:
        raise ValueError("resume=True needs a run_dir holding a checkpoint")
    if checkpoint_path is not None and checkpoint_path.exists() and not resume:
        raise FileExistsError(f"{checkpoint_path} exists: pass resume=True (--resume) to continue "
                              "that run, or choose a new run folder")
    writes = run_path is not None and ctx.is_main

    model.to(device)
    optimizer = _make_optimizer(model, config)
    batches_per_epoch = math.ceil(len(train) / config.batch_size)
    scheduler, per_batch = _make_scheduler(optimizer, config, batches_per_epoch)
    scaler = torch.amp.GradScaler("cuda") if config.amp else None
    loader_rng = torch.Generator().manual_seed(config.seed)
    result = TrainResult()
    epochs_since_best, start_epoch = 0, 0

    if resume:
        if not checkpoint_path.is_file():
            raise FileNotFoundError(f"no checkpoint to resume at {checkpoint_path}")
        state = load_checkpoint(checkpoint_path, map_location=device,
                                what="training checkpoint")
        _check_resumable(json.loads(state["train_config"]), config)
        model.load_state_dict(state["model"]["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and "grad_scaler" in state:
            scaler.load_state_dict(state["grad_scaler"])
        torch.set_rng_state(state["torch_rng"])
        loader_rng.set_state(state["loader_rng"])
        result = TrainResult(**json.loads(state["result"]))
        result.stopped_early = False  # a resumed run continues, whatever stopped the last one
        epochs_since_best = int(state["epochs_since_best"])
        start_epoch = int(state["epoch"]) + 1
    else:
        torch.manual_seed(config.seed)
    if writes:
        run_path.mkdir(parents=True, exist_ok=True)
        write_json(dataclasses.asdict(config), run_path / "train_config.json")

    loss_fn = LOSSES[config.loss]
    if ctx.enabled:
        # The single-process loader's order (same generator, same draws), cut per rank.
        batch_sampler = distributed.GlobalBatchSampler(
            RandomSampler(train, generator=loader_rng), config.batch_size, ctx.rank,
            ctx.world_size)
        loader = DataLoader(train, batch_sampler=batch_sampler, generator=loader_rng,
)
        step_module = torch.nn.parallel.DistributedDataParallel(
            distributed.LossModule(model, lambda m, x, y: _training_loss(m, x, y, loss_fn)),
            device_ids=[device.index] if device.type == "cuda" else None)
    else:
        batch_sampler = None
        loader = DataLoader(train, batch_size=config.batch_size, shuffle=True,
                            generator=loader_rng)
        step_module = distributed.LossModule(
            model, lambda m, x, y: _training_loss(m, x, y, loss_fn))
    deterministic_before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(config.deterministic, warn_only=True)
    bar = tqdm(range(start_epoch, config.epochs), desc="training", unit="epoch",
               initial=start_epoch, total=config.epochs,
               disable=None if config.show_progress and ctx.is_main else True)
    try:
        for epoch in bar:
            started = time.perf_counter()
            if hasattr(model, "set_epoch"):  # models with an epoch-dependent loss (curricula)
                model.set_epoch(epoch, config.epochs)
            if hasattr(train, "set_epoch"):  # datasets that redraw their points every epoch
                train.set_epoch(epoch)
            if batch_sampler is not None:
                batch_sampler.set_epoch(epoch)
            model.train()
            total, count = 0.0, 0
            for step, (x, y) in enumerate(loader):
                x, y = _to_device(x, device), y.to(device)
                with torch.autocast("cuda", dtype=torch.float16, enabled=config.amp):
                    loss = step_module(x, y)
                if ctx.enabled:
                    # This rank's share of the global batch weights its mean loss, so that the
                    # gradient DDP averages is that of the global-batch mean loss.
                    n_global = min(config.batch_size, len(train) - step * config.batch_size)
                    block = distributed.rank_slice(n_global, ctx.rank, ctx.world_size)
                    n_local = block.stop - block.start
                    batch_sum = float(distributed.all_reduce_sum(
                        [float(loss.detach()) * n_local], ctx, device)[0])
                    value, n_batch = batch_sum / n_global, n_global
                    loss = loss * (n_local * ctx.world_size / n_global)
                else:
                    value, n_batch = float(loss.detach()), _batch_size(x)
                if not math.isfinite(value):
                    raise FloatingPointError(f"training loss became {value} at epoch "
                                             f"{epoch}; lower the learning rate")
                optimizer.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    if config.grad_clip is not None:
                        scaler.unscale_(optimizer)
                        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    loss.backward()
                    if config.grad_clip is not None:
                        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                    optimizer.step()
                if per_batch:
                    scheduler.step()
                total += value * n_batch
                count += n_batch
            lr = optimizer.param_groups[0]["lr"]
            if not per_batch:
                scheduler.step()
            if validation is None or not len(validation):
                val = math.nan
            elif ctx.enabled:
                val = _distributed_validation(model, validation, config.loss, ctx, device)
            else:
                val = evaluate_loss(model, validation, config.loss, device=device)
            record = {"epoch": epoch, "train_loss": total / count, "validation_loss": val,
                      "lr": lr, "seconds": time.perf_counter() - started}
            result.history.append(record)
            monitored = val if not math.isnan(val) else record["train_loss"]
            improved = monitored < result.best_validation_loss
            if improved:
                result.best_epoch, result.best_validation_loss = epoch, monitored
                epochs_since_best = 0
            else:
                epochs_since_best += 1
            bar.set_postfix(train=f"{record['train_loss']:.3e}", val=f"{val:.3e}")
            if config.patience is not None and epochs_since_best >= config.patience:
                result.stopped_early = True
            if writes:
                if improved:
                    save_model(model, run_path / MODEL_NAME)
                state = {
                    "model": model_checkpoint(model),  # the unwrapped module: any world size
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "torch_rng": torch.get_rng_state(),
                    "loader_rng": loader_rng.get_state(),
                    "epoch": epoch,
                    "epochs_since_best": epochs_since_best,
                    "result": json.dumps(dataclasses.asdict(result)),
                    "train_config": json.dumps(dataclasses.asdict(config)),
                }
                if scaler is not None:
                    state["grad_scaler"] = scaler.state_dict()
                atomic_torch_save(state, checkpoint_path)
                write_json(result.history, run_path / "history.json")
            if result.stopped_early:
                break
    finally:
        bar.close()
        torch.use_deterministic_algorithms(deterministic_before)
    ctx.barrier()  # every rank returns once rank 0 has written the files
    return result

