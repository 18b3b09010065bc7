r"""Unstacked deep operator network (DeepONet) with plain or modified MLPs, tanh or SIREN sines.

Model
-----
A *branch* network :math:`\mathcal{B}` encodes the input function :math:`u` (its values at ``m``
fixed sensors, or a few parameters such as a source position) into ``p`` coefficients, and a
*trunk* network :math:`\mathcal{T}` maps a query point :math:`y` (e.g. :math:`(x, y, z, t)`) to
``p`` basis functions; the output is their inner product plus a scalar bias [1]_:

.. math::

    G(u)(y) = \sum_{k=1}^{p} \mathcal{B}_k(u)\, \mathcal{T}_k(y) + b_0 .

Inputs may be rescaled inside the model: with bounds :math:`[l_j, h_j]` a coordinate becomes
:math:`\tilde y_j = 2 (y_j - l_j) / (h_j - l_j) - 1 \in [-1, 1]` (``trunk_lower`` /
``trunk_upper``; likewise ``branch_lower`` / ``branch_upper``). With ``fourier_features = F > 0``
the trunk input is then augmented, per coordinate, by

.. math::

    \sin(2 \pi k \tilde y_j),\ \cos(2 \pi k \tilde y_j), \qquad k = 1, \dots, F,

so the trunk network sees ``trunk_in * (1 + 2 F)`` features.

Networks
--------
``network="mlp"``: :math:`h_0 = X`, :math:`h_l = \sigma(h_{l-1} W_l + b_l)` for each hidden layer,
output :math:`h_L W_o + b_o` (linear). ``network="modified"`` (Wang, Teng & Perdikaris [2]_): two
encoders :math:`U = \sigma(X W_u + b_u)`, :math:`V = \sigma(X W_v + b_v)` gate every hidden layer,

.. math::

    h \leftarrow \sigma(h W_l + b_l), \qquad h \leftarrow h \odot U + (1 - h) \odot V,

then the same linear output layer; all hidden widths must then be equal.

Activations: ``"tanh"``, or ``"sine"`` with SIREN initialisation (Sitzmann et al. [3]_): every
hidden unit is :math:`\sin(\omega_0 (h W + b))` with :math:`\omega_0` = ``omega_0`` (30); the
weights of layers fed by the network input (first hidden layer and the encoders ``U``, ``V``)
are drawn from :math:`\mathcal{U}(-1/n_{in}, 1/n_{in})`, those of all later layers (the output
layer included) from :math:`\mathcal{U}(-\sqrt{6/n_{in}}/\omega_0, \sqrt{6/n_{in}}/\omega_0)`;
biases keep PyTorch's default :math:`\mathcal{U}(-1/\sqrt{n_{in}}, 1/\sqrt{n_{in}})`. With tanh,
PyTorch's default ``nn.Linear`` initialisation is used.

Parameter count
---------------
For a plain MLP with widths :math:`n_0 \to n_1 \to \dots \to n_L \to p`:
:math:`\sum_{l=1}^{L+1} (n_{l-1} + 1) n_l`; a modified MLP adds the two encoders,
:math:`2 (n_0 + 1) n_1`. The model has the branch count (with :math:`n_0` = ``branch_in``) plus
the trunk count (with :math:`n_0` = ``trunk_in * (1 + 2 F)``) plus one for :math:`b_0`
(:func:`mlp_parameter_count`; :meth:`DeepONet.n_parameters` counts the actual tensors). For
``branch_in = 3``, ``trunk_in = 4`` (3D source coordinates -> :math:`(x, y, z, t)`) the defaults
(widths 128 x 3, ``p = 100``, plain MLP, no Fourier features) give 46 436 + 46 564 + 1 = 93 001
parameters; ``network="modified"`` with ``fourier_features=3`` gives 104 521.

References
----------
.. [1] L. Lu, P. Jin, G. Pang, Z. Zhang, G. E. Karniadakis, "Learning nonlinear operators via
   DeepONet based on the universal approximation theorem of operators", Nature Machine
   Intelligence 3, 218-229, 2021.
.. [2] S. Wang, Y. Teng, P. Perdikaris, "Understanding and mitigating gradient flow pathologies
   in physics-informed neural networks", SIAM J. Sci. Comput. 43(5), A3055-A3081, 2021.
.. [3] V. Sitzmann, J. N. P. Martel, A. W. Bergman, D. B. Lindell, G. Wetzstein, "Implicit
   neural representations with periodic activation functions", NeurIPS 2020.
.. [4] N. Borrel-Jensen, S. Goswami, A. P. Engsig-Karup, G. E. Karniadakis, C.-H. Jeong,
   "Sound propagation in realistic interactive 3D scenes with parameterized sources using
   deep neural operators", PNAS 121(2), 2024 (DeepONet for room acoustics).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from operators.base import OperatorModel, check_int

__all__ = ["DeepONet", "MLP", "mlp_parameter_count"]

_NETWORKS = ("mlp", "modified")
_ACTIVATIONS = ("tanh", "sine")


def mlp_parameter_count(n_in: int, hidden: Sequence[int], n_out: int, *,
                        network: str = "mlp") -> int:
    r"""Trainable parameters of an :class:`MLP`: :math:`\sum_l (n_{l-1} + 1) n_l`
    (+ :math:`2 (n_0 + 1) n_1` for the encoders of a modified MLP)."""
    widths = [int(n_in), *(int(h) for h in hidden), int(n_out)]
    count = sum((a + 1) * b for a, b in zip(widths[:-1], widths[1:], strict=True))
    if network == "modified" and hidden:
        count += 2 * (widths[0] + 1) * widths[1]
    return count


class MLP(nn.Module):
    r"""Plain or modified multilayer perceptron ``(..., n_in) -> (..., n_out)``, linear output.

    See the module docstring for the layer equations and the SIREN initialisation.

    Parameters
    ----------
    n_in, n_out : int
        Input and output features.
    hidden : sequence of int
        Hidden widths (at least one; equal widths for ``network="modified"``).
    network : {"mlp", "modified"}
        Plain MLP or the gated modified MLP.
    activation : {"tanh", "sine"}
        Hidden activation; ``"sine"`` means :math:`\sin(\omega_0 \cdot)` with SIREN weights.
    omega_0 : float
        Sine frequency factor (only for ``"sine"``).
    """

    def __init__(self, n_in: int, hidden: Sequence[int], n_out: int, *, network: str = "mlp",
                 activation: str = "tanh", omega_0: float = 30.0) -> None:
        super().__init__()
        hidden = [int(h) for h in hidden]
        if not hidden:
            raise ValueError("an MLP needs at least one hidden layer")
        if network == "modified" and len(set(hidden)) != 1:
            raise ValueError(f"a modified MLP needs equal hidden widths (the gates U, V are added "
                             f"to every hidden layer), got {hidden}")
        self.network = network
        self.activation = activation
        self.omega_0 = float(omega_0)
        widths = [n_in, *hidden]
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in
                                    zip(widths[:-1], widths[1:], strict=True))
        self.output = nn.Linear(hidden[-1], n_out)
        if network == "modified":
            self.encoder_u = nn.Linear(n_in, hidden[0])
            self.encoder_v = nn.Linear(n_in, hidden[0])
        else:
            self.encoder_u = self.encoder_v = None
        if activation == "sine":
            self._siren_init()

    def _first_layers(self) -> list[nn.Linear]:
        first = [self.hidden[0]]
        if self.encoder_u is not None:
            first += [self.encoder_u, self.encoder_v]
        return first

    @torch.no_grad()
    def _siren_init(self) -> None:
        """Weights: U(-1/n_in, 1/n_in) on input layers, U(+-sqrt(6/n_in)/omega_0) elsewhere."""
        first = self._first_layers()
        for layer in [*first, *self.hidden[1:], self.output]:
            n_in = layer.in_features
            bound = 1.0 / n_in if any(layer is f for f in first) \
                else math.sqrt(6.0 / n_in) / self.omega_0
            layer.weight.uniform_(-bound, bound)

    def _act(self, z: torch.Tensor) -> torch.Tensor:
        if self.activation == "sine":
            return torch.sin(self.omega_0 * z)
        return torch.tanh(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.encoder_u is not None:
            u = self._act(self.encoder_u(x))
            v = self._act(self.encoder_v(x))
        h = x
        for layer in self.hidden:
            h = self._act(layer(h))
            if self.encoder_u is not None:
                h = h * u + (1.0 - h) * v
        return self.output(h)


def _bounds(lower: Any, upper: Any, n: int, who: str) -> tuple[list[float], list[float]] | None:
    """Validate optional rescaling bounds: both or neither, ``n`` entries each, lower < upper."""
    if lower is None and upper is None:
        return None
    if lower is None or upper is None:
        raise ValueError(f"{who}_lower and {who}_upper must be given together")
    try:
        lo = [float(v) for v in lower]
        hi = [float(v) for v in upper]
    except TypeError as err:
        raise ValueError(f"{who}_lower and {who}_upper must be sequences of {n} numbers") from err
    if len(lo) != n or len(hi) != n:
        raise ValueError(f"{who}_lower and {who}_upper need {n} entries ({who}_in), got "
                         f"{len(lo)} and {len(hi)}")
    bad = [j for j in range(n) if not (math.isfinite(lo[j]) and math.isfinite(hi[j])
                                       and hi[j] > lo[j])]
    if bad:
        raise ValueError(f"{who} bounds need finite lower < upper; entries {bad} are not: "
                         f"lower {lo}, upper {hi}")
    return lo, hi


class DeepONet(OperatorModel):
    r"""Unstacked DeepONet :math:`G(u)(y) = \sum_{k=1}^{p} B_k(u) T_k(y) + b_0`.

    Registered under the class name ``"DeepONet"`` (rebuilt by :func:`operators.base.load_model`).

    Parameters
    ----------
    branch_in : int
        Branch inputs ``m``: the input function at ``m`` sensors (e.g. the initial pressure pulse
        on a coarse grid), or a few parameters (e.g. the ``d`` source coordinates in m).
    trunk_in : int
        Trunk inputs: query-point coordinates, ``d + 1`` for :math:`(x, y[, z], t)`.
    n_basis : int, default 100
        Number ``p`` of basis functions.
    branch_hidden, trunk_hidden : sequence of int, default (128, 128, 128)
        Hidden widths of the two networks.
    network : {"mlp", "modified"}, default "mlp"
        Network type for both branch and trunk (see the module docstring).
    activation : {"tanh", "sine"}, default "tanh"
        Hidden activation for both networks; ``"sine"`` uses SIREN initialisation.
    omega_0 : float, default 30.0
        SIREN frequency factor.
    fourier_features : int, default 0
        Number ``F`` of trunk Fourier frequencies, :math:`\sin, \cos(2\pi k \tilde y_j)`,
        :math:`k = 1..F`, on every (rescaled) trunk coordinate.
    trunk_lower, trunk_upper : sequence of float, optional
        Bounds of the trunk coordinates (physical units, e.g. m and s); inputs are mapped
        affinely onto :math:`[-1, 1]` inside the model. Both or neither.
    branch_lower, branch_upper : sequence of float, optional
        The same for the branch inputs (useful when they are source coordinates).

    Notes
    -----
    Shapes: :meth:`forward` takes ``branch (B, branch_in)`` and ``trunk (B, n_points,
    trunk_in)`` and returns ``(B, n_points)``; :meth:`forward_field` evaluates many inputs on
    one shared set of points. Parameters: see the module docstring and
    :func:`mlp_parameter_count`; :meth:`n_parameters` gives the actual count.
    """

    def __init__(self, *, branch_in: int, trunk_in: int, n_basis: int = 100,
                 branch_hidden: Sequence[int] = (128, 128, 128),
                 trunk_hidden: Sequence[int] = (128, 128, 128), network: str = "mlp",
                 activation: str = "tanh", omega_0: float = 30.0, fourier_features: int = 0,
                 trunk_lower: Sequence[float] | None = None,
                 trunk_upper: Sequence[float] | None = None,
                 branch_lower: Sequence[float] | None = None,
                 branch_upper: Sequence[float] | None = None) -> None:
        super().__init__()
        self.branch_in = check_int(branch_in, "branch_in")
        self.trunk_in = check_int(trunk_in, "trunk_in")
        self.n_basis = check_int(n_basis, "n_basis")
        self.fourier_features = check_int(fourier_features, "fourier_features", minimum=0)
        if network not in _NETWORKS:
            raise ValueError(f"network must be one of {_NETWORKS}, got {network!r}")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {_ACTIVATIONS}, got {activation!r}")
        omega_0 = float(omega_0)
        if not (math.isfinite(omega_0) and omega_0 > 0):
            raise ValueError(f"omega_0 must be a positive number, got {omega_0!r}")
        widths = {}
        for name, hidden in (("branch_hidden", branch_hidden), ("trunk_hidden", trunk_hidden)):
            if isinstance(hidden, (int, str)) or not isinstance(hidden, Sequence) or not hidden:
                raise ValueError(f"{name} must be a non-empty sequence of widths, got {hidden!r}")
            widths[name] = [check_int(h, f"{name} entry") for h in hidden]
        for who, lo, hi, n in (("trunk", trunk_lower, trunk_upper, self.trunk_in),
                               ("branch", branch_lower, branch_upper, self.branch_in)):
            bounds = _bounds(lo, hi, n, who)
            if bounds is None:
                self.register_buffer(f"{who}_shift", None)
                self.register_buffer(f"{who}_scale", None)
            else:
                lo_t, hi_t = (torch.tensor(b, dtype=torch.float32) for b in bounds)
                # x~ = (x - centre) * scale with centre = (lo + hi) / 2, scale = 2 / (hi - lo).
                self.register_buffer(f"{who}_shift", (lo_t + hi_t) / 2)
                self.register_buffer(f"{who}_scale", 2.0 / (hi_t - lo_t))
        trunk_features = self.trunk_in * (1 + 2 * self.fourier_features)
        kw = {"network": network, "activation": activation, "omega_0": omega_0}
        self.branch = MLP(self.branch_in, widths["branch_hidden"], self.n_basis, **kw)
        self.trunk = MLP(trunk_features, widths["trunk_hidden"], self.n_basis, **kw)
        self.bias = nn.Parameter(torch.zeros(()))
        if self.fourier_features:
            freqs = 2 * math.pi * torch.arange(1, self.fourier_features + 1, dtype=torch.float32)
            self.register_buffer("frequencies", freqs, persistent=False)
        else:
            self.register_buffer("frequencies", None, persistent=False)

    # ----------------------------------------------------------------------------------------
    def _check(self, x: Any, name: str, shape: str, ndim: int, last: int) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor of shape {shape}, "
                            f"got {type(x).__name__}")
        if x.ndim != ndim or x.shape[-1] != last:
            raise ValueError(f"{name} must have shape {shape}, got {tuple(x.shape)}")

    def trunk_features(self, points: torch.Tensor) -> torch.Tensor:
        """Rescaled trunk coordinates with their Fourier features, ``(..., trunk_in (1 + 2F))``."""
        if self.trunk_shift is not None:
            points = (points - self.trunk_shift.to(points.dtype)) * self.trunk_scale.to(
                points.dtype)
        if self.frequencies is None:
            return points
        angles = points[..., :, None] * self.frequencies.to(points.dtype)  # (..., d, F)
        feats = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)
        return torch.cat([points, feats.flatten(-2)], dim=-1)

    def basis(self, points: torch.Tensor) -> torch.Tensor:
        """Trunk basis functions :math:`T_k(y)`: ``(..., trunk_in) -> (..., n_basis)``."""
        return self.trunk(self.trunk_features(points))

    def coefficients(self, branch: torch.Tensor) -> torch.Tensor:
        """Branch coefficients :math:`B_k(u)`: ``(..., branch_in) -> (..., n_basis)``."""
        if self.branch_shift is not None:
            branch = (branch - self.branch_shift.to(branch.dtype)) * self.branch_scale.to(
                branch.dtype)
        return self.branch(branch)

    def forward(self, branch: torch.Tensor, trunk: torch.Tensor) -> torch.Tensor:
        """Evaluate :math:`G(u_b)(y_{b,n})` for per-input query points.

        Parameters
        ----------
        branch : torch.Tensor
            ``(B, branch_in)`` branch inputs.
        trunk : torch.Tensor
            ``(B, n_points, trunk_in)`` query points of each input.

        Returns
        -------
        torch.Tensor
            ``(B, n_points)``.

        Raises
        ------
        ValueError
            If a shape is wrong (the expected and given shapes are named).
        """
        self._check(branch, "branch", f"(B, {self.branch_in})", 2, self.branch_in)
        self._check(trunk, "trunk", f"(B, n_points, {self.trunk_in})", 3, self.trunk_in)
        if trunk.shape[0] != branch.shape[0]:
            raise ValueError(f"branch {tuple(branch.shape)} and trunk {tuple(trunk.shape)} "
                             "must have the same batch size B")
        coef = self.coefficients(branch)
        return torch.einsum("bk,bnk->bn", coef, self.basis(trunk)) + self.bias

    def forward_field(self, branch: torch.Tensor, trunk_points: torch.Tensor, *,
                      chunk: int = 65536) -> torch.Tensor:
        """Evaluate many inputs on one shared set of points (the whole field at once).

        The branch runs once for the ``B`` inputs and the trunk once per point (in chunks of
        ``chunk`` points, bounding memory to ``O(chunk * width)``), contracted as
        ``einsum("bk,nk->bn")``. Equal to :meth:`forward` with the points repeated per input.

        Parameters
        ----------
        branch : torch.Tensor
            ``(B, branch_in)``.
        trunk_points : torch.Tensor
            ``(n_points, trunk_in)``, shared by all inputs.
        chunk : int, default 65536
            Points per trunk evaluation.

        Returns
        -------
        torch.Tensor
            ``(B, n_points)``.
        """
        self._check(branch, "branch", f"(B, {self.branch_in})", 2, self.branch_in)
        self._check(trunk_points, "trunk_points", f"(n_points, {self.trunk_in})", 2,
                    self.trunk_in)
        chunk = check_int(chunk, "chunk")
        coef = self.coefficients(branch)
        parts = [torch.einsum("bk,nk->bn", coef, self.basis(trunk_points[i:i + chunk]))
                 for i in range(0, trunk_points.shape[0], chunk)]
        if not parts:
            return coef.new_zeros(branch.shape[0], 0)
        return torch.cat(parts, dim=1) + self.bias

    def forward_basis(self, branch: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
        r"""Evaluate with a precomputed trunk basis: :math:`\sum_k B_k(u_b) T_{nk} + b_0`.

        For fixed query points (a receiver grid, the nodes of a room) the trunk does not depend
        on the input: compute ``basis = model.basis(points)`` once, then every new input costs
        one branch evaluation and a ``(B, p) x (p, n_points)`` product.

        Parameters
        ----------
        branch : torch.Tensor
            ``(B, branch_in)``.
        basis : torch.Tensor
            ``(n_points, n_basis)`` from :meth:`basis`.

        Returns
        -------
        torch.Tensor
            ``(B, n_points)``, equal to :meth:`forward_field` at the same points.
        """
        self._check(branch, "branch", f"(B, {self.branch_in})", 2, self.branch_in)
        self._check(basis, "basis", f"(n_points, {self.n_basis})", 2, self.n_basis)
        return self.coefficients(branch) @ basis.T + self.bias
