r"""The room of :mod:`surrogates.solvers.wave`: its grid, walls and obstacles, the stability limit,
the initial pulse, and the checks and interpolation of source and receiver positions.

The equations, the scheme and its stability are in the docstring of
:mod:`surrogates.solvers.wave`; :func:`cfl_limit` is its Courant limit and
:func:`impedance_from_absorption` its wall law.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from surrogates.solvers.checks import check_positive

__all__ = ["DEFAULT_CFL_FRACTION", "Room", "cfl_limit", "gaussian_pulse",
           "impedance_from_absorption"]

#: Default Courant number as a fraction of the stability limit :func:`cfl_limit`.
DEFAULT_CFL_FRACTION = 0.95
_GRID_TOL = 1e-6  # relative tolerance for L/h being an integer and for uniform times


def cfl_limit(dim: int, order: int) -> float:
    r"""Largest stable Courant number :math:`c\,\Delta t/h`: :math:`1/\sqrt d` (order 2),
    :math:`\sqrt{3/(4d)}` (order 4)."""
    if dim not in (2, 3):
        raise ValueError(f"dim must be 2 or 3, got {dim!r}")
    if order not in (2, 4):
        raise ValueError(f"order must be 2 or 4, got {order!r}")
    return 1.0 / math.sqrt(dim) if order == 2 else math.sqrt(3.0 / (4.0 * dim))


def impedance_from_absorption(alpha) -> np.ndarray:
    r"""Inverse normalised impedance :math:`1/\xi = (1 - \sqrt{1-\alpha})/(1 + \sqrt{1-\alpha})`
    (0 for a rigid wall, 1 for :math:`\alpha = 1`), elementwise."""
    s = np.sqrt(1.0 - np.asarray(alpha, dtype=np.float64))
    return (1.0 - s) / (1.0 + s)


@dataclass(frozen=True)
class Room:
    """A rectangular room and its grid.

    Attributes
    ----------
    size : tuple of float
        ``(Lx, Ly)`` or ``(Lx, Ly, Lz)`` in metres; each must be an integer multiple of
        ``spacing``.
    spacing : float
        Grid spacing ``h`` in metres; nodes at ``0, h, ..., L`` on every axis (walls included).
    absorption : float or tuple of float, default 0.0
        Normal-incidence absorption coefficient in ``[0, 1]``, one for all walls or ``2 d``
        values in the order x-, x+, y-, y+(, z-, z+). 0 is rigid, 1 absorbing.
    obstacles : ndarray of bool, shape ``room.shape``, optional
        ``True`` at solid nodes (rigid obstacles).
    c : float, default 343.0
        Speed of sound, m/s.
    rho : float, default 1.2
        Air density, kg/m^3 (used by :func:`acoustic_energy`).

    Raises
    ------
    ValueError
        On a dimension other than 2 or 3, non-positive or non-finite sizes, spacing, ``c`` or
        ``rho``, a size that is not a multiple of the spacing (or fewer than 3 nodes on an
        axis), absorption outside ``[0, 1]`` or of the wrong length, or an obstacle mask of
        the wrong shape, not boolean, or filling the whole room.
    """

    size: tuple[float, ...]
    spacing: float
    absorption: float | tuple[float, ...] = 0.0
    obstacles: np.ndarray | None = None
    c: float = 343.0
    rho: float = 1.2

    def __post_init__(self):
        try:
            size = tuple(float(s) for s in self.size)
        except (TypeError, ValueError):
            raise ValueError(f"size must be a tuple of 2 or 3 lengths, got {self.size!r}") from None
        if len(size) not in (2, 3):
            raise ValueError(f"only 2D and 3D rooms are supported: size has {len(size)} entries "
                             f"({self.size!r})")
        for s in size:
            check_positive(s, "room size")
        h = check_positive(self.spacing, "spacing")
        for L in size:
            n = L / h
            if abs(n - round(n)) > _GRID_TOL * max(1.0, n) or round(n) < 2:
                raise ValueError(f"room size {L} m must be an integer multiple (>= 2) of the "
                                 f"spacing {h} m (got L/h = {n:.6g})")
        object.__setattr__(self, "size", size)
        object.__setattr__(self, "spacing", h)
        object.__setattr__(self, "c", check_positive(self.c, "c"))
        object.__setattr__(self, "rho", check_positive(self.rho, "rho"))
        a = np.asarray(self.absorption, dtype=np.float64)
        if a.ndim == 0:
            a = np.full(2 * len(size), float(a))
        if a.shape != (2 * len(size),):
            raise ValueError(f"absorption must be a scalar or {2 * len(size)} values (x-, x+, y-, "
                             f"y+{', z-, z+' if len(size) == 3 else ''}), got {self.absorption!r}")
        if not np.all(np.isfinite(a)) or np.any(a < 0) or np.any(a > 1):
            raise ValueError(f"absorption coefficients must lie in [0, 1], got {a.tolist()}")
        object.__setattr__(self, "absorption", tuple(float(v) for v in a))
        if self.obstacles is not None:
            ob = np.asarray(self.obstacles)
            if ob.dtype != np.bool_:
                raise ValueError(f"obstacles must be a boolean mask, got dtype {ob.dtype}")
            if ob.shape != self.shape:
                raise ValueError(f"obstacles has shape {ob.shape}, the room grid has shape "
                                 f"{self.shape}")
            if ob.all():
                raise ValueError("obstacles fill the whole room")
            ob = ob.copy()
            ob.setflags(write=False)
            object.__setattr__(self, "obstacles", ob)

    @property
    def dim(self) -> int:
        """Number of space dimensions, 2 or 3."""
        return len(self.size)

    @property
    def shape(self) -> tuple[int, ...]:
        """Nodes per axis, ``round(L/h) + 1``."""
        return tuple(int(round(L / self.spacing)) + 1 for L in self.size)

    @property
    def coords(self) -> tuple[np.ndarray, ...]:
        """Node coordinates per axis (m), ``i * h``."""
        return tuple(np.arange(n, dtype=np.float64) * self.spacing for n in self.shape)

    def points(self) -> np.ndarray:
        """All node coordinates, shape ``(*shape, d)`` (m)."""
        return np.stack(np.meshgrid(*self.coords, indexing="ij"), axis=-1)


def gaussian_pulse(points, source, width, amplitude=1.0) -> np.ndarray:
    r"""Initial pressure :math:`A\exp(-|\mathbf x - \mathbf s|^2/(2\sigma^2))` in Pa.

    Parameters
    ----------
    points : array_like, shape (..., d)
        Positions (m).
    source : array_like, shape (d,)
        Pulse centre :math:`\mathbf s` (m).
    width : float
        :math:`\sigma` (m).
    amplitude : float, default 1.0
        :math:`A` (Pa).

    Returns
    -------
    ndarray, shape (...)
    """
    x = np.asarray(points, dtype=np.float64)
    s = np.asarray(source, dtype=np.float64)
    if x.shape[-1:] != s.shape:
        raise ValueError(f"points have shape {x.shape}, source has shape {s.shape}: the last "
                         f"axis of points must equal the source dimension")
    width = check_positive(width, "width")
    r2 = np.sum((x - s) ** 2, axis=-1)
    return float(amplitude) * np.exp(-r2 / (2.0 * width**2))


# ----------------------------------------------------------------------------------------------
# Interpolation weights
# ----------------------------------------------------------------------------------------------


def _interp_weights(room: Room, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat node indices and multilinear weights, each (R, 2^d), for positions (R, d)."""
    h = room.spacing
    shape = room.shape
    lo, fr = [], []
    for ax, n in enumerate(shape):
        u = np.clip(pos[:, ax] / h, 0.0, n - 1)
        i0 = np.minimum(np.floor(u).astype(np.int64), n - 2)
        lo.append(i0)
        fr.append(u - i0)
    idx, w = [], []
    for corner in np.ndindex(*(2,) * room.dim):
        ii = [lo[ax] + corner[ax] for ax in range(room.dim)]
        ww = np.ones(len(pos))
        for ax in range(room.dim):
            ww = ww * (fr[ax] if corner[ax] else 1.0 - fr[ax])
        idx.append(np.ravel_multi_index(ii, shape))
        w.append(ww)
    return np.stack(idx, axis=1), np.stack(w, axis=1)


# ----------------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------------


def _check_positions(x, room: Room, name: str) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real array of shape (n, {room.dim}), got {x!r}") \
            from None
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2 or arr.shape[1] != room.dim or arr.shape[0] < 1:
        raise ValueError(f"{name} must have shape (n, {room.dim}) for a {room.dim}D room, got "
                         f"shape {np.shape(x)}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {arr.tolist()}")
    size = np.asarray(room.size)
    outside = np.any((arr < 0) | (arr > size), axis=1)
    if outside.any():
        k = int(np.flatnonzero(outside)[0])
        raise ValueError(f"{name}[{k}] = {arr[k].tolist()} lies outside the room [0, "
                         f"{list(room.size)}] m")
    return arr


def _check_times(times) -> np.ndarray:
    try:
        t = np.asarray(times, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"times must be a 1D array of floats, got {times!r}") from None
    if t.ndim != 1 or t.size < 2:
        raise ValueError(f"times must be 1D with at least 2 entries, got shape {t.shape}")
    if not np.all(np.isfinite(t)):
        raise ValueError("times must be finite")
    if t[0] != 0.0:
        raise ValueError(f"times must start at 0, got times[0] = {t[0]}")
    d = np.diff(t)
    if np.any(d <= 0):
        raise ValueError("times must be strictly increasing")
    if np.max(np.abs(d - d[0])) > _GRID_TOL * d[0]:
        raise ValueError(f"times must be uniformly spaced (intervals from {d.min():.6g} to "
                         f"{d.max():.6g} s); use np.arange(n) * interval")
    return t
