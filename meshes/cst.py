"""CST (Kulfan) airfoil shapes: class/shape-function parameterisation, random valid shapes, fits.

Shapes are returned as :class:`meshes.airfoil.AirfoilShape` (unit chord, Selig order).

References
----------
.. [1] B. M. Kulfan, "Universal parametric geometry representation method", J. Aircraft 45(1),
   142-158, 2008.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import comb

from meshes.airfoil import AirfoilShape

__all__ = ["CSTAirfoil", "cst_shape", "fit_cst", "random_cst"]




def _bernstein(order: int, x: np.ndarray) -> np.ndarray:
    i = np.arange(order + 1)
    return comb(order, i)[None, :] * x[:, None] ** i * (1.0 - x[:, None]) ** (order - i)


def _cst_basis(order: int, x: np.ndarray, n1: float, n2: float) -> np.ndarray:
    xc = np.clip(x, 0.0, 1.0)
    return (xc**n1 * (1.0 - xc) ** n2)[:, None] * _bernstein(order, xc)


def _cosine_x(n_points: int) -> np.ndarray:
    x = 0.5 * (1.0 - np.cos(np.linspace(0.0, math.pi, int(n_points))))
    x[0], x[-1] = 0.0, 1.0
    return x


@dataclass(frozen=True, eq=False)
class CSTAirfoil:
    """Class-shape transformation (CST) parameters of an airfoil (Kulfan 2008).

    .. math::
        y_u(x) = C(x) \\sum_{i=0}^{n} A^u_i K_i x^i (1-x)^{n-i} + x\\,\\frac{\\Delta z_{te}}{2},
        \\qquad
        y_l(x) = C(x) \\sum_{i=0}^{n} A^l_i K_i x^i (1-x)^{n-i} - x\\,\\frac{\\Delta z_{te}}{2},

    with class function :math:`C(x) = x^{N_1}(1-x)^{N_2}` (:math:`N_1 = 0.5, N_2 = 1`: round
    nose, sharp aft end) and :math:`K_i = \\binom{n}{i}`. The lower coefficients are signed as
    ordinates: a symmetric section has ``lower = -upper``.

    Parameters
    ----------
    upper, lower : array_like, shape (n + 1,)
        Bernstein coefficients; ``n`` is the order.
    te_thickness : float
        Trailing-edge gap :math:`\\Delta z_{te}` (chords), split evenly above and below.
    n1, n2 : float
        Class-function exponents.

    References
    ----------
    Kulfan, B. M. (2008), Universal parametric geometry representation method, *Journal of
    Aircraft* 45(1), 142-158.
    """

    upper: np.ndarray
    lower: np.ndarray
    te_thickness: float = 0.0
    n1: float = 0.5
    n2: float = 1.0

    def __post_init__(self):
        u = np.array(self.upper, dtype=np.float64).reshape(-1)
        lo = np.array(self.lower, dtype=np.float64).reshape(-1)
        if u.size < 1 or u.shape != lo.shape:
            raise ValueError(f"upper and lower CST coefficients must be non-empty and of equal "
                             f"length, got {u.shape} and {lo.shape}")
        if not (np.all(np.isfinite(u)) and np.all(np.isfinite(lo))):
            raise ValueError("CST coefficients must be finite")
        if not (self.te_thickness >= 0 and math.isfinite(self.te_thickness)):
            raise ValueError(f"te_thickness must be finite and >= 0, got {self.te_thickness}")
        if not (self.n1 > 0 and self.n2 > 0):
            raise ValueError(f"class exponents must be positive, got n1={self.n1}, n2={self.n2}")
        u.setflags(write=False)
        lo.setflags(write=False)
        object.__setattr__(self, "upper", u)
        object.__setattr__(self, "lower", lo)
        object.__setattr__(self, "te_thickness", float(self.te_thickness))

    @property
    def order(self) -> int:
        """Bernstein order n (number of coefficients per surface minus one)."""
        return self.upper.size - 1

    def as_vector(self) -> np.ndarray:
        """``[upper..., lower..., te_thickness]``, e.g. as a surrogate's input features."""
        return np.concatenate([self.upper, self.lower, [self.te_thickness]])

    def surfaces(self, x) -> tuple[np.ndarray, np.ndarray]:
        """Upper and lower ordinates at stations ``x`` in [0, 1]."""
        x = np.asarray(x, dtype=np.float64)
        b = _cst_basis(self.order, x.reshape(-1), self.n1, self.n2)
        half = 0.5 * self.te_thickness * x.reshape(-1)
        return ((b @ self.upper + half).reshape(x.shape),
                (b @ self.lower - half).reshape(x.shape))

    def to_shape(self, n_points: int = 100, name: str = "CST") -> AirfoilShape:
        """Evaluate at ``n_points`` cosine-clustered stations per surface (Selig order)."""
        x = _cosine_x(n_points)
        yu, yl = self.surfaces(x)
        upper = np.stack([x, yu], axis=1)[::-1]
        lower = np.stack([x, yl], axis=1)[1:]
        return AirfoilShape(np.concatenate([upper, lower]), name)


def cst_shape(upper, lower, te_thickness: float = 0.0, n_points: int = 100, *,
              n1: float = 0.5, n2: float = 1.0, name: str = "CST") -> AirfoilShape:
    """Shorthand for ``CSTAirfoil(upper, lower, te_thickness, n1, n2).to_shape(n_points)``."""
    return CSTAirfoil(upper, lower, te_thickness, n1, n2).to_shape(n_points, name)


def fit_cst(shape, order: int = 8, *, n1: float = 0.5, n2: float = 1.0) -> CSTAirfoil:
    """Least-squares CST coefficients of a given section.

    The trailing-edge gap is taken from the shape (upper minus lower ordinate at the last
    points), then each surface's coefficients solve
    :math:`\\min_A \\sum_k \\big(C(x_k) \\sum_i A_i K_i x_k^i (1-x_k)^{n-i}
    - (y_k \\mp x_k \\Delta z_{te}/2)\\big)^2` over its points (x clipped to [0, 1]).

    Parameters
    ----------
    shape : AirfoilShape or array_like (N, 2)
        Unit chord, leading edge at (0, 0), Selig order.
    order : int
        Bernstein order n (n + 1 coefficients per surface), >= 1.

    Returns
    -------
    CSTAirfoil
    """
    if not isinstance(shape, AirfoilShape):
        shape = AirfoilShape(shape)
    if int(order) < 1:
        raise ValueError(f"CST order must be >= 1, got {order}")
    up, lo = shape.upper, shape.lower
    dz = max(0.0, float(up[-1, 1] - lo[-1, 1]))
    coefs = []
    for surf, sign in ((up, 1.0), (lo, -1.0)):
        x = np.clip(surf[:, 0], 0.0, 1.0)
        b = _cst_basis(int(order), x, n1, n2)
        rhs = surf[:, 1] - sign * 0.5 * dz * x
        coefs.append(np.linalg.lstsq(b, rhs, rcond=None)[0])
    return CSTAirfoil(coefs[0], coefs[1], dz, n1, n2)


def random_cst(rng, n_shapes: int, *, order: int = 6, upper_range=(0.05, 0.35),
               lower_range=(-0.25, 0.10), le_range=(0.1, 0.3), te_range=(0.0, 0.005),
               thickness_range=(0.04, 0.25), n1: float = 0.5, n2: float = 1.0,
               max_tries: int = 200) -> list[CSTAirfoil]:
    r"""Random valid CST sections, reproducible from a seed.

    Each coefficient is drawn independently and uniformly: upper ones in ``upper_range``,
    lower ones in ``lower_range``, the trailing-edge gap in ``te_range``; except the first
    (leading-edge) coefficients when ``le_range`` is given: :math:`A_{u,0} \in` ``le_range``
    and :math:`-A_{l,0} \in` ``le_range``, so both surfaces leave the nose on their own side
    with leading-edge radii :math:`r = A_0^2/2` (class exponent 0.5) of 0.005-0.045 chords by
    default (NACA 0012: 0.016). Without it (None) a lower coefficient above zero can make both
    surfaces rise from a pointed, drooped nose, which no mesh morpher maps smoothly from a
    round one. A draw is kept only
    if, evaluated on 200 cosine stations per surface, (i) :math:`y_u > y_l` at every interior
    station (the surfaces meet only at the leading edge), (ii) the outline has no
    self-intersection (:meth:`AirfoilShape.is_valid`) and (iii) the maximum thickness lies in
    ``thickness_range``; otherwise it is redrawn (reject and redraw), so the kept shapes are
    the accepted draws in order.

    Parameters
    ----------
    rng : numpy.random.Generator, int or None
        Generator or seed; the same seed gives the same shapes.
    n_shapes : int
        Number of shapes (>= 0).
    order : int
        Bernstein order (order + 1 coefficients per surface).
    max_tries : int
        Give up after ``max_tries * n_shapes`` draws.

    Returns
    -------
    list of CSTAirfoil
        Use ``.to_shape(n_points)`` for the outline and ``.as_vector()`` for the parameters.

    Raises
    ------
    ValueError
        For empty/inverted ranges, or when too few draws are valid (widen the ranges).
    """
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    n_shapes = int(n_shapes)
    if n_shapes < 0:
        raise ValueError(f"n_shapes must be >= 0, got {n_shapes}")
    if int(order) < 1:
        raise ValueError(f"CST order must be >= 1, got {order}")
    ranges = [("upper_range", upper_range), ("lower_range", lower_range),
              ("te_range", te_range), ("thickness_range", thickness_range)]
    if le_range is not None:
        ranges.append(("le_range", le_range))
        if le_range[0] <= 0:
            raise ValueError(f"le_range must be positive, got {le_range}")
    for label, (a, b) in ranges:
        if not (math.isfinite(a) and math.isfinite(b) and a <= b):
            raise ValueError(f"{label} must be a finite (low, high) pair with low <= high, "
                             f"got {(a, b)}")
    if te_range[0] < 0:
        raise ValueError(f"te_range must be non-negative, got {te_range}")
    k = int(order) + 1
    x = _cosine_x(200)[1:-1]
    out: list[CSTAirfoil] = []
    tries = 0
    while len(out) < n_shapes:
        if tries >= max_tries * max(n_shapes, 1):
            raise ValueError(f"only {len(out)} of {n_shapes} CST shapes valid after {tries} "
                             f"draws; widen upper_range/lower_range/thickness_range")
        tries += 1
        u = rng.uniform(*upper_range, size=k)
        lo = rng.uniform(*lower_range, size=k)
        if le_range is not None:
            u[0] = rng.uniform(*le_range)
            lo[0] = -rng.uniform(*le_range)
        te = rng.uniform(*te_range)
        cand = CSTAirfoil(u, lo, te, n1, n2)
        yu, yl = cand.surfaces(x)
        t = yu - yl
        if np.any(t <= 0) or not (thickness_range[0] <= t.max() <= thickness_range[1]):
            continue
        if not cand.to_shape(200).is_valid():
            continue
        out.append(cand)
    return out
