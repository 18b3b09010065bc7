"""The tanh multilayer perceptron of :mod:`operators.pig`: the plain-MLP PINN baseline
:class:`MLP` and the building blocks it shares with the PIG's decoder (input checks, the
rescaling of a box to :math:`[-1, 1]^d`, Glorot-uniform layers, the forward pass).

Re-exported by :mod:`operators.pig`; import :class:`MLP` from there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["MLP"]

_DTYPES = ("float32", "float64")


def _check_box(lower, upper) -> tuple[tuple[float, ...], tuple[float, ...]]:
    try:
        lo = tuple(float(v) for v in lower)
        hi = tuple(float(v) for v in upper)
    except (TypeError, ValueError):
        raise ValueError(
            f"lower and upper must be sequences of numbers, got {lower!r} and {upper!r}"
        ) from None
    if len(lo) != len(hi) or len(lo) == 0:
        raise ValueError(
            f"lower and upper must have the same non-zero length, got {len(lo)} and {len(hi)}"
        )
    if not all(math.isfinite(a) and math.isfinite(b) and b > a for a, b in zip(lo, hi,
                                                                            strict=True)):
        raise ValueError(f"need finite lower < upper in every coordinate, got {lo} and {hi}")
    return lo, hi


def _check_pos_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _check_hidden(hidden, allow_empty: bool) -> tuple[int, ...]:
    try:
        h = tuple(hidden)
    except TypeError:
        raise ValueError(f"hidden must be a sequence of layer widths, got {hidden!r}") from None
    if not h and not allow_empty:
        raise ValueError("hidden must have at least one layer")
    return tuple(_check_pos_int(v, "each hidden width") for v in h)


def _check_dtype(dtype) -> str:
    name = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    if name not in _DTYPES:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    if name == "float64" and not jax.config.jax_enable_x64:
        raise ValueError(
            "dtype='float64' needs JAX's 64-bit mode: call inside `with jax.enable_x64(True):`"
        )
    return name


def _rescale(x, lower, upper):
    lo = jnp.asarray(lower, x.dtype)
    hi = jnp.asarray(upper, x.dtype)
    return 2.0 * (x - lo) / (hi - lo) - 1.0


def _check_point(x, dim: int):
    if x.shape != (dim,):
        raise ValueError(
            f"apply takes one point of shape ({dim},), got shape {x.shape}; "
            "use jax.vmap(model.apply, (None, 0)) or apply_batch for a batch"
        )


def _glorot_layers(key, sizes: tuple[int, ...], dtype) -> list[dict]:
    layers = []
    keys = jax.random.split(key, len(sizes) - 1)
    for k, n_in, n_out in zip(keys, sizes[:-1], sizes[1:], strict=True):
        lim = math.sqrt(6.0 / (n_in + n_out))
        W = jax.random.uniform(k, (n_in, n_out), dtype, -lim, lim)
        layers.append({"W": W, "b": jnp.zeros((n_out,), dtype)})
    return layers


def _mlp(layers: list[dict], h):
    for layer in layers[:-1]:
        h = jnp.tanh(h @ layer["W"] + layer["b"])
    out = h @ layers[-1]["W"] + layers[-1]["b"]
    return out[0]


@dataclass(frozen=True)
class MLP:
    """PINN baseline: a tanh MLP on the rescaled input, Glorot-uniform init, scalar output.

    Parameters
    ----------
    lower, upper : sequence of float, length d
        The problem's box; inputs are rescaled from it to ``[-1, 1]^d``.
    hidden : tuple of int, default (64, 64, 64)
        Hidden widths (at least one layer).
    dtype : {"float32", "float64"}, default "float32"
        Dtype of the parameters made by :meth:`init`.
    """

    lower: tuple[float, ...]
    upper: tuple[float, ...]
    hidden: tuple[int, ...] = (64, 64, 64)
    dtype: str = "float32"

    def __post_init__(self):
        lo, hi = _check_box(self.lower, self.upper)
        object.__setattr__(self, "lower", lo)
        object.__setattr__(self, "upper", hi)
        object.__setattr__(self, "hidden", _check_hidden(self.hidden, allow_empty=False))
        if self.dtype not in _DTYPES:
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")

    @property
    def dim(self) -> int:
        """Input dimension ``d``."""
        return len(self.lower)

    def init(self, key) -> dict:
        """Parameters ``{"layers": [{"W", "b"}, ...]}``."""
        dtype = _check_dtype(self.dtype)
        return {"layers": _glorot_layers(key, (self.dim, *self.hidden, 1), dtype)}

    def apply(self, params: dict, x) -> jax.Array:
        """The scalar field at one point ``x`` of shape ``(d,)``."""
        x = jnp.asarray(x)
        _check_point(x, self.dim)
        return _mlp(params["layers"], _rescale(x, self.lower, self.upper))
