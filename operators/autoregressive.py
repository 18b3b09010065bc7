r"""Autoregressive neural PDE solvers trained with a teacher-forcing to rollout curriculum.

A one-step model :math:`u^{n+1} = G(u^{n-c+1}, \dots, u^{n}; p)` (``c`` context frames, PDE
parameters :math:`p` for models that take them, such as :class:`operators.cape.CAPEOperator`)
is rolled out from the first ``c`` frames of a trajectory. :class:`AutoregressiveStepper` wraps
it as one trainable operator, so the ordinary :func:`surrogates.training.fit` (checkpoints,
resume, best model, early stopping) trains it:

* **Data layout.** Input ``x (B, V + n_p, T, N)``: the trajectory's ``V`` variables over ``T``
  frames, followed by the ``n_p`` PDE parameters as constant channels (the package's convention
  for scalar parameters); target ``y (B, V, T, N)``: the trajectory (see
  :func:`surrogates.data.common.trajectory_pairs`).
* **Training loss** (CAPE, Takamoto et al. 2023): over the ``S = T - c`` predicted frames,

  .. math::

      L = \sum_{s=1}^{S} \mathrm{relL2}(\hat u^{c+s}, u^{c+s})
        + \lambda \sum_{s=1}^{S} \mathrm{relL2}(\tilde u^{c+s}, u^{c+s}),

  where the first :math:`t_{ar}` predictions are autoregressive (fed the model's own previous
  outputs, gradients flow through the whole chain) and the rest teacher-forced (fed true
  frames), :math:`\tilde u` is the model's auxiliary next-step estimate (CAPE's) and
  :math:`\lambda` = ``aux_weight``. The curriculum

  .. math::

      t_{ar}(e) = \mathrm{round}\Big(S\,\frac{1 + \tanh((e - 1/2)/w)}{2}\Big),
      \qquad e = \frac{\text{epoch} - \text{warm-up}}{\text{epochs} - \text{warm-up}},

  (``w`` = ``curriculum_width`` = 0.2) moves from pure teacher forcing to nearly full rollouts.
  During the first ``warmup_epochs`` only the auxiliary term is trained (teacher-forced).
* **Evaluation** (``forward`` / :meth:`~AutoregressiveStepper.rollout`): a full autoregressive
  rollout from the first ``c`` true frames; the context frames are returned unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from operators.base import OperatorModel, build, check_ints

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
STEP_NORMALIZATIONS = ("frame", "initial")


def curriculum_steps(fraction: float, n_steps: int, width: float = 0.2) -> int:
    r"""Autoregressive steps :math:`t_{ar} = \mathrm{round}(S (1 + \tanh((e - 1/2)/w)) / 2)`.

    ``fraction`` ``e`` is clipped to ``[0, 1]``; ``n_steps`` is ``S``.
    """
    if not width > 0:
        raise ValueError(f"curriculum width must be positive, got {width}")
    e = min(max(float(fraction), 0.0), 1.0)
    return int(round(n_steps * (1.0 + math.tanh((e - 0.5) / width)) / 2.0))


class AutoregressiveStepper(OperatorModel):
    """A one-step model rolled out over trajectories, trained with the CAPE curriculum.

    Parameters
    ----------
    step_class : str
        Registered one-step model (``"CAPEOperator"``, ``"FNO"``, ``"UNet1d"``, ...). It maps
        ``(B, context * n_vars, N)`` (frames oldest first, variables inner) to
        ``(B, n_vars, N)``; a model with ``takes_parameters = True`` also gets
        ``p (B, n_params)``, and one with ``forward_with_estimate`` supplies the auxiliary
        estimate.
    step_config : dict
        Its constructor arguments.
    n_vars : int, default 1
        Variables ``V`` of the state.
    n_params : int, default 0
        PDE parameters carried in the input (read by parameter-taking models, ignored by others).
    context : int, default 1
        Frames ``c`` the step model sees.
    aux_weight : float, default 6e-5
        :math:`\\lambda` of the auxiliary loss (CAPE's value).
    warmup_epochs : int, default 0
        Epochs that train the auxiliary loss alone.
    curriculum_width : float, default 0.2
        ``w`` of :func:`curriculum_steps`.
    step_normalization : {"frame", "initial"}, default "frame"
        ``"frame"``: each step's error is the batch loss of that frame (relative L2 by
        default: :math:`\\|\\hat u^s - u^s\\| / \\|u^s\\|`, CAPE's). ``"initial"``:
        :math:`\\|\\hat u^s - u^s\\| / \\|u^0\\|`, the error relative to the trajectory's
        first frame, for solutions that decay towards zero (viscous Burgers at large
        viscosity), whose late frames would otherwise dominate the loss with relative errors
        of 1e10 and more.

    Raises
    ------
    ValueError
        For inconsistent sizes (the step model's ``in_channels`` must be ``context * n_vars``).
    """

    def __init__(self, *, step_class: str, step_config: dict[str, Any], n_vars: int = 1,
                 n_params: int = 0, context: int = 1, aux_weight: float = 6e-5,
                 warmup_epochs: int = 0, curriculum_width: float = 0.2,
                 step_normalization: str = "frame") -> None:
        super().__init__()
        check_ints(n_vars=n_vars, context=context)
        check_ints(0, n_params=n_params, warmup_epochs=warmup_epochs)
        if not (aux_weight >= 0 and math.isfinite(aux_weight)):
            raise ValueError(f"aux_weight must be non-negative and finite, got {aux_weight}")
        curriculum_steps(0.0, 1, curriculum_width)  # validates the width
        if step_normalization not in STEP_NORMALIZATIONS:
            raise ValueError(f"step_normalization must be one of {STEP_NORMALIZATIONS}, got "
                             f"{step_normalization!r}")
        self.step_normalization = step_normalization
        self.step = build(step_class, step_config)
        expected = context * n_vars
        if getattr(self.step, "in_channels", expected) != expected:
            raise ValueError(f"{step_class} has in_channels={self.step.in_channels}, but "
                             f"context * n_vars = {expected}")
        self.takes_parameters = bool(getattr(self.step, "takes_parameters", False))
        if self.takes_parameters and n_params != getattr(self.step, "n_params", n_params):
            raise ValueError(f"{step_class} takes {self.step.n_params} parameters, the data "
                             f"carries n_params={n_params}")
        if self.takes_parameters and n_params == 0:
            raise ValueError(f"{step_class} needs PDE parameters: set n_params")
        self.n_vars, self.n_params, self.context = n_vars, n_params, context
        self.aux_weight, self.warmup_epochs = float(aux_weight), warmup_epochs
        self.curriculum_width = float(curriculum_width)
        self._epoch, self._n_epochs = 0, 1

    def _resolve_config(self, config: dict[str, Any]) -> dict[str, Any]:
        """Record the step model's resolved arguments (its defaults included)."""
        return {**config, "step_config": self.step.config}

    # ------------------------------------------------------------------ one step
    def _window(self, frames: torch.Tensor) -> torch.Tensor:
        """``(B, V, c, N)`` -> ``(B, c * V, N)``, oldest frame first, variables inner."""
        B, V, c, N = frames.shape
        return frames.permute(0, 2, 1, 3).reshape(B, c * V, N)

    def _step(self, window: torch.Tensor, p: torch.Tensor, with_estimate: bool = False):
        if not self.takes_parameters:
            out = self.step(window)
            return (out, None) if with_estimate else out
        if with_estimate and hasattr(self.step, "forward_with_estimate"):
            return self.step.forward_with_estimate(window, p)
        out = self.step(window, p)
        return (out, None) if with_estimate else out

    def _split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Trajectory ``(B, V, T, N)`` and parameters ``(B, n_p)`` from the packed input."""
        if x.ndim != 4 or x.shape[1] != self.n_vars + self.n_params:
            raise ValueError(f"AutoregressiveStepper expects (batch, {self.n_vars} variables + "
                             f"{self.n_params} parameters, T, N), got {tuple(x.shape)}")
        if x.shape[2] <= self.context:
            raise ValueError(f"trajectories of {x.shape[2]} frames leave nothing to predict "
                             f"after {self.context} context frames")
        return x[:, :self.n_vars], x[:, self.n_vars:, 0, 0]

    # ------------------------------------------------------------------ inference
    def rollout(self, initial: torch.Tensor, params: torch.Tensor | None, n_steps: int
                ) -> torch.Tensor:
        """Roll out ``n_steps`` frames from ``initial (B, V, context, N)``.

        ``params (B, n_params)`` in physical units (``None`` when ``n_params = 0``). Returns
        ``(B, V, context + n_steps, N)``, the context frames first.
        """
        if initial.ndim != 4 or initial.shape[1:3] != (self.n_vars, self.context):
            raise ValueError(f"initial frames must be (batch, {self.n_vars}, {self.context}, N), "
                             f"got {tuple(initial.shape)}")
        if params is None:
            params = initial.new_zeros((initial.shape[0], self.n_params))
        frames = list(initial.unbind(dim=2))
        for _ in range(n_steps):
            window = torch.stack(frames[-self.context:], dim=2)
            frames.append(self._step(self._window(window), params))
        return torch.stack(frames, dim=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Full autoregressive rollout over the length of the packed input ``x`` (see module)."""
        u, p = self._split(x)
        return self.rollout(u[:, :, :self.context], p, u.shape[2] - self.context)

    # ------------------------------------------------------------------ training
    def set_epoch(self, epoch: int, n_epochs: int) -> None:
        """Called by :func:`surrogates.training.fit` before every epoch (sets the curriculum)."""
        self._epoch, self._n_epochs = int(epoch), int(n_epochs)

    def autoregressive_steps(self, n_predicted: int) -> int:
        """:math:`t_{ar}` of the current epoch for ``n_predicted`` frames (0 during warm-up)."""
        if self._epoch < self.warmup_epochs:
            return 0
        span = max(self._n_epochs - self.warmup_epochs, 1)
        return curriculum_steps((self._epoch - self.warmup_epochs) / span, n_predicted,
                                self.curriculum_width)

    def training_loss(self, x: torch.Tensor, y: torch.Tensor, loss_fn: Loss) -> torch.Tensor:
        """The curriculum loss of the module docstring for one batch (``y`` is the trajectory)."""
        u, p = self._split(x)
        if y.shape != u.shape:
            raise ValueError(f"target {tuple(y.shape)} must be the trajectory {tuple(u.shape)}")
        c, T = self.context, u.shape[2]
        n_ar = self.autoregressive_steps(T - c)
        warmup = self._epoch < self.warmup_epochs
        scale = y[:, :, 0].flatten(1).norm(dim=1) + 1e-12  # ||u^0|| per trajectory

        def error(pred: torch.Tensor, target: torch.Tensor, norm: torch.Tensor) -> torch.Tensor:
            if self.step_normalization == "frame":
                return loss_fn(pred, target)
            return ((pred - target).flatten(1).norm(dim=1) / norm).mean()

        main, aux = u.new_zeros(()), u.new_zeros(())
        frames = list(u[:, :, :c].unbind(dim=2))
        for s in range(c, c + n_ar):  # autoregressive part, sequential
            out, estimate = self._step(self._window(torch.stack(frames[-c:], dim=2)), p, True)
            main = main + error(out, y[:, :, s], scale)
            if estimate is not None:
                aux = aux + error(estimate, y[:, :, s], scale)
            frames.append(out)
        n_tf = T - c - n_ar
        if n_tf:  # teacher-forced part: all windows of true frames in one batch
            B, V, _, N = u.shape
            windows = torch.stack([u[:, :, s - c:s] for s in range(c + n_ar, T)], dim=1)
            windows = self._window(windows.reshape(B * n_tf, V, c, N))
            targets = y[:, :, c + n_ar:].permute(0, 2, 1, 3).reshape(B * n_tf, V, N)
            scales = scale.repeat_interleave(n_tf)
            out, estimate = self._step(windows, p.repeat_interleave(n_tf, dim=0), True)
            main = main + n_tf * error(out, targets, scales)
            if estimate is not None:
                aux = aux + n_tf * error(estimate, targets, scales)
        if warmup:
            if not self.takes_parameters or not hasattr(self.step, "forward_with_estimate"):
                raise ValueError("warm-up epochs need a step model with an auxiliary estimate "
                                 "(CAPEOperator)")
            return aux
        return main + self.aux_weight * aux
