"""Airfoil sections: NACA 4- and 5-digit, and their common polygon form (CST: :mod:`meshes.cst`).

All shapes have unit chord, the leading edge at (0, 0) and the trailing edge at x = 1 (lengths
in chords). The common representation is :class:`AirfoilShape`, whose ``coords`` follow the
Selig ``.dat`` order: trailing edge -> upper surface -> leading edge -> lower surface ->
trailing edge. That loop runs **counter-clockwise** (the fluid is on its right, the airfoil on
its left; the shoelace area is positive). A sharp trailing edge repeats the point (1, 0) as the
first and last row, as Selig files do; a blunt one ends on two different points, and the loop
closes through the trailing-edge base segment.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field

import meshio
import numpy as np

from meshes.polygon import even_odd_inside, segment_distance, signed_area

__all__ = [
    "AirfoilShape",
    "naca",
    "naca4",
    "naca_mean_line",
    "naca_thickness",
    "points_in_polygon",
    "read_selig",
    "segment_distance",
    "signed_distance",
    "write_selig",
]

# Thickness coefficients of the NACA 4-digit distribution (Abbott & von Doenhoff, eq. 6.2);
# the last one is -0.1015 for the original open trailing edge, -0.1036 closes it.
_A_THICK = (0.2969, -0.1260, -0.3516, 0.2843)
_A4_OPEN, _A4_CLOSED = -0.1015, -0.1036

# NACA 5-digit mean lines, tabulated for a design lift coefficient of 0.3 (L = 2):
# P digit -> (m, k1) for the standard lines, (m, k1, k2/k1) for the reflex ones.
_FIVE_STD = {1: (0.0580, 361.400), 2: (0.1260, 51.640), 3: (0.2025, 15.957),
             4: (0.2900, 6.643), 5: (0.3910, 3.230)}
_FIVE_REFLEX = {2: (0.1300, 51.990, 0.000764), 3: (0.2170, 15.793, 0.00677),
                4: (0.3180, 6.520, 0.0303), 5: (0.4410, 3.191, 0.1355)}


# ---------------------------------------------------------------------------------------------
# Polygon helpers
# ---------------------------------------------------------------------------------------------


def _segments_cross(poly: np.ndarray) -> bool:
    """True when two non-adjacent edges of the closed polygon touch or cross."""
    a = poly
    b = np.roll(poly, -1, axis=0)
    m = len(poly)
    if m < 4:
        return False

    def orient(p, q, r):
        return (q[..., 0] - p[..., 0]) * (r[..., 1] - p[..., 1]) - \
            (q[..., 1] - p[..., 1]) * (r[..., 0] - p[..., 0])

    idx = np.arange(m)
    chunk = max(1, 200_000 // m)
    for start in range(0, m, chunk):
        i = idx[start:start + chunk, None]
        j = idx[None, :]
        keep = (j > i + 1) & ~((i == 0) & (j == m - 1))
        if not keep.any():
            continue
        ii, jj = np.nonzero(keep)
        ii = ii + start
        p1, p2, q1, q2 = a[ii], b[ii], a[jj], b[jj]
        d1, d2 = orient(q1, q2, p1), orient(q1, q2, p2)
        d3, d4 = orient(p1, p2, q1), orient(p1, p2, q2)
        proper = (d1 * d2 < 0) & (d3 * d4 < 0)
        if proper.any():
            return True
        # touching / collinear overlap: an endpoint lies on the other segment
        for d, r, s, t in ((d1, p1, q1, q2), (d2, p2, q1, q2), (d3, q1, p1, p2), (d4, q2, p1, p2)):
            on = d == 0
            if on.any():
                inside = ((np.minimum(s[:, 0], t[:, 0]) <= r[:, 0])
                          & (r[:, 0] <= np.maximum(s[:, 0], t[:, 0]))
                          & (np.minimum(s[:, 1], t[:, 1]) <= r[:, 1])
                          & (r[:, 1] <= np.maximum(s[:, 1], t[:, 1])))
                if np.any(on & inside):
                    return True
    return False


def points_in_polygon(points, poly) -> np.ndarray:
    """Even-odd (ray-casting) test of which ``points`` (K, 2) lie inside closed polygon ``poly``
    (M, 2); points exactly on an edge are classified either way."""
    poly = np.asarray(poly, dtype=np.float64)
    return even_odd_inside(points, poly, np.roll(poly, -1, axis=0))


def signed_distance(points, polygon) -> np.ndarray:
    """Signed distance to a closed polygon: positive outside (fluid), negative inside.

    ``polygon`` (M, 2) lists distinct vertices; the closing edge is implied. Inside-ness is by
    ray casting (:func:`meshes.airfoil.points_in_polygon`).
    """
    poly = np.asarray(polygon, dtype=np.float64)
    dist, _, _ = segment_distance(points, poly, np.roll(poly, -1, axis=0))
    inside = points_in_polygon(points, poly)
    return np.where(inside, -dist, dist)


def _surface_interp(surf: np.ndarray, x: np.ndarray) -> np.ndarray:
    """y of a surface (LE -> TE rows) at stations x; points ahead of the LE are sorted away."""
    order = np.argsort(surf[:, 0], kind="stable")
    xs, ys = surf[order, 0], surf[order, 1]
    xs, keep = np.unique(xs, return_index=True)
    return np.interp(x, xs, ys[keep])


# ---------------------------------------------------------------------------------------------
# Common representation
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class AirfoilShape:
    """A 2D airfoil section as an ordered point loop (lengths in chords).

    Parameters
    ----------
    coords : array_like, shape (N, 2)
        Points in Selig order: trailing edge -> upper surface -> leading edge -> lower surface
        -> trailing edge, i.e. **counter-clockwise** (positive shoelace area
        :math:`A = \\tfrac12 \\sum_i (x_i y_{i+1} - x_{i+1} y_i) > 0`). A sharp trailing edge
        is stored twice (first and last row equal); otherwise the polygon closes through the
        blunt trailing-edge segment from the last row back to the first.
    name : str
        Label written as the first line of a Selig file.

    Notes
    -----
    The leading edge is the point of smallest x. ``upper`` and ``lower`` run from the leading
    edge to the trailing edge. Thickness and camber are measured vertically,
    :math:`t(x) = y_u(x) - y_l(x)`, :math:`y_c(x) = (y_u(x) + y_l(x))/2`, with each surface
    interpolated linearly in x (for a NACA section, whose thickness is laid perpendicular to
    the mean line, these differ from the design values by O(t * dy_c/dx), about 1e-4 for
    2412).
    """

    coords: np.ndarray
    name: str = "airfoil"
    _poly: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        try:
            c = np.array(self.coords, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError("coords must be an (N, 2) array of numbers") from None
        if c.ndim != 2 or c.shape[1] != 2 or c.shape[0] < 4:
            raise ValueError(f"coords must have shape (N, 2) with N >= 4, got {c.shape}")
        if not np.all(np.isfinite(c)):
            raise ValueError("coords contain non-finite values")
        c.setflags(write=False)
        object.__setattr__(self, "coords", c)
        poly = c[:-1] if np.array_equal(c[0], c[-1]) else c
        # drop consecutive duplicates so the polygon has no zero-length edges
        keep = np.ones(len(poly), dtype=bool)
        keep[1:] = np.any(np.diff(poly, axis=0) != 0, axis=1)
        poly = poly[keep].copy()
        poly.setflags(write=False)
        object.__setattr__(self, "_poly", poly)
        object.__setattr__(self, "name", str(self.name).strip() or "airfoil")

    # -- geometry ------------------------------------------------------------------------------
    @property
    def polygon(self) -> np.ndarray:
        """The distinct vertices of the closed loop (no repeated closing point), shape (M, 2)."""
        return self._poly

    @property
    def leading_edge_index(self) -> int:
        """Row of ``coords`` with the smallest x (the leading edge)."""
        return int(np.argmin(self.coords[:, 0]))

    @property
    def upper(self) -> np.ndarray:
        """Upper surface from leading edge to trailing edge, shape (K, 2)."""
        return self.coords[: self.leading_edge_index + 1][::-1].copy()

    @property
    def lower(self) -> np.ndarray:
        """Lower surface from leading edge to trailing edge, shape (K, 2)."""
        return self.coords[self.leading_edge_index:].copy()

    @property
    def is_sharp(self) -> bool:
        """True when the trailing edge is a single point (first and last rows equal)."""
        return bool(np.array_equal(self.coords[0], self.coords[-1]))

    @property
    def te_thickness(self) -> float:
        """Distance between the first and last rows (0 for a sharp trailing edge)."""
        return float(np.hypot(*(self.coords[0] - self.coords[-1])))

    def thickness(self, x) -> np.ndarray:
        """Vertical thickness :math:`t(x) = y_u(x) - y_l(x)` at stations ``x`` (chords)."""
        x = np.asarray(x, dtype=np.float64)
        return _surface_interp(self.upper, x) - _surface_interp(self.lower, x)

    def camber_line(self, x) -> np.ndarray:
        """Mean line :math:`y_c(x) = (y_u(x) + y_l(x))/2` at stations ``x`` (chords)."""
        x = np.asarray(x, dtype=np.float64)
        return 0.5 * (_surface_interp(self.upper, x) + _surface_interp(self.lower, x))

    def _extreme(self, f) -> tuple[float, float]:
        x0 = max(0.0, float(self.coords[:, 0].min()))
        x1 = float(self.coords[:, 0].max())
        xs = np.linspace(x0, x1, 4001)
        v = f(xs)
        i = int(np.argmax(np.abs(v)))
        # refine with a parabola through the three samples around the maximum
        if 0 < i < len(xs) - 1:
            fine = np.linspace(xs[i - 1], xs[i + 1], 201)
            fv = f(fine)
            j = int(np.argmax(np.abs(fv)))
            return float(fv[j]), float(fine[j])
        return float(v[i]), float(xs[i])

    @property
    def thickness_max(self) -> float:
        """Largest vertical thickness, in chords (0.12 for NACA 0012)."""
        return self._extreme(self.thickness)[0]

    @property
    def thickness_max_x(self) -> float:
        """Chordwise station of the largest thickness (about 0.30 for NACA 00xx)."""
        return self._extreme(self.thickness)[1]

    @property
    def camber(self) -> float:
        """Largest-magnitude camber (signed), in chords (0.02 for NACA 2412)."""
        return self._extreme(self.camber_line)[0]

    @property
    def camber_x(self) -> float:
        """Chordwise station of the largest camber (0.4 for NACA 2412)."""
        return self._extreme(self.camber_line)[1]

    @property
    def area(self) -> float:
        """Enclosed area (chords^2) by the shoelace formula; positive for the CCW Selig order."""
        return signed_area(self._poly)

    def contains(self, points) -> np.ndarray:
        """Boolean mask of which points (K, 2) lie strictly inside the section (even-odd rule)."""
        return points_in_polygon(points, self._poly)

    def invalid_reason(self) -> str | None:
        """Why the shape is not a valid airfoil, or None when it is (see :meth:`is_valid`)."""
        poly = self._poly
        if len(poly) < 4:
            return f"only {len(poly)} distinct points"
        a = signed_area(poly)
        if not a > 0:
            return (f"signed area {a:.3e} is not positive: the points must run counter-clockwise "
                    f"(TE -> upper -> LE -> lower -> TE)")
        xs = np.linspace(0.0, 1.0, 203)[1:-1]
        xs = xs[(xs > self.coords[:, 0].min()) & (xs < self.coords[:, 0].max())]
        t = self.thickness(xs)
        if np.any(t <= 0):
            k = int(np.argmin(t))
            return f"thickness {t[k]:.3e} <= 0 at x = {xs[k]:.4f}: lower surface above the upper"
        if _segments_cross(poly):
            return "the outline intersects itself"
        return None

    def is_valid(self) -> bool:
        """True when the outline is a simple polygon (no two non-adjacent edges touch or cross),
        runs counter-clockwise, and the thickness is positive at all interior stations."""
        return self.invalid_reason() is None

    # -- transforms ----------------------------------------------------------------------------
    def rotate(self, alpha: float, center=(0.25, 0.0), *, degrees: bool = True) -> AirfoilShape:
        """Pitch the section nose-up by ``alpha`` (angle of attack in a +x freestream).

        A nose-up pitch is a clockwise rotation about ``center``:
        :math:`x' = c + R(-\\alpha)(x - c)`, with :math:`R(\\theta)` the CCW rotation matrix.
        """
        a = math.radians(alpha) if degrees else float(alpha)
        c = np.asarray(center, dtype=np.float64)
        rot = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
        return AirfoilShape((self.coords - c) @ rot.T + c, self.name)

    def scale(self, factor: float, center=(0.0, 0.0)) -> AirfoilShape:
        """Scale lengths by ``factor`` (> 0) about ``center``."""
        if not factor > 0:
            raise ValueError(f"scale factor must be positive, got {factor}")
        c = np.asarray(center, dtype=np.float64)
        return AirfoilShape((self.coords - c) * float(factor) + c, self.name)

    def translate(self, dx: float, dy: float) -> AirfoilShape:
        """Shift the section by (dx, dy)."""
        return AirfoilShape(self.coords + np.array([dx, dy], dtype=np.float64), self.name)

    # -- I/O -----------------------------------------------------------------------------------
    def to_meshio(self) -> meshio.Mesh:
        """The closed outline as a meshio mesh: 2D points of :attr:`polygon`, one ``line``
        block joining consecutive points (and the last back to the first)."""
        m = len(self._poly)
        lines = np.stack([np.arange(m), (np.arange(m) + 1) % m], axis=1)
        return meshio.Mesh(self._poly.copy(), [("line", lines)])

    def to_dat(self, path) -> None:
        """Write a Selig ``.dat`` file (see :func:`write_selig`)."""
        write_selig(self, path)

    @classmethod
    def from_dat(cls, path) -> AirfoilShape:
        """Read a Selig or Lednicer ``.dat`` file (see :func:`read_selig`)."""
        return read_selig(path)


def write_selig(shape: AirfoilShape, path) -> None:
    """Write ``shape`` as a Selig ``.dat`` file: the name on the first line, then one
    ``x y`` pair per line in :attr:`AirfoilShape.coords` order (17 significant digits, so a
    round trip is exact)."""
    lines = [shape.name] + [f"{x:.17g} {y:.17g}" for x, y in shape.coords]
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")


def read_selig(path) -> AirfoilShape:
    """Read a ``.dat`` airfoil file: Selig (name line, then ``x y`` pairs TE -> upper -> LE ->
    lower -> TE) or Lednicer (name, a line with the two point counts, then the upper and the
    lower surface each from LE to TE, blocks separated by blank lines).

    Raises
    ------
    ValueError
        If the file is missing, has fewer than 4 points, or a line is not two numbers.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"airfoil file not found: {path}")
    with open(path, encoding="utf-8", errors="replace") as fh:
        raw = [ln.strip() for ln in fh]
    name = raw[0] if raw else ""
    rows = []
    for k, ln in enumerate(raw[1:], start=2):
        if not ln:
            continue
        parts = ln.replace(",", " ").split()
        try:
            vals = [float(p) for p in parts]
        except ValueError:
            raise ValueError(f"{path}, line {k}: expected two numbers, got {ln!r}") from None
        if len(vals) != 2:
            raise ValueError(f"{path}, line {k}: expected two numbers, got {ln!r}")
        rows.append(vals)
    pts = np.asarray(rows, dtype=np.float64).reshape(-1, 2)
    if len(pts) and pts[0, 0] > 1.5 and pts[0, 1] > 1.5:  # Lednicer counts line
        nu, nl = int(pts[0, 0]), int(pts[0, 1])
        if nu + nl != len(pts) - 1:
            raise ValueError(f"{path}: Lednicer header announces {nu} + {nl} points, "
                             f"found {len(pts) - 1}")
        up, lo = pts[1:1 + nu], pts[1 + nu:]
        if np.array_equal(up[0], lo[0]):
            lo = lo[1:]
        pts = np.concatenate([up[::-1], lo])
    if len(pts) < 4:
        raise ValueError(f"{path}: need at least 4 points, found {len(pts)}")
    return AirfoilShape(pts, name)


# ---------------------------------------------------------------------------------------------
# NACA sections
# ---------------------------------------------------------------------------------------------


def _parse_naca(designation) -> tuple[str, str]:
    s = str(designation).strip().upper()
    s = re.sub(r"^NACA[\s\-_]*", "", s)
    if not re.fullmatch(r"\d{4}|\d{5}", s):
        raise ValueError(f"NACA designation must be 4 or 5 digits (e.g. '2412', '23012'), "
                         f"got {designation!r}")
    t = int(s[-2:]) / 100.0
    if not 0.0 < t <= 0.40:
        raise ValueError(f"NACA {s}: thickness {t:.2f} chords must lie in (0, 0.40]")
    if len(s) == 4:
        m, p = int(s[0]) / 100.0, int(s[1]) / 10.0
        if (m > 0) != (p > 0):
            raise ValueError(f"NACA {s}: camber {m} needs a camber position in (0, 1) and vice "
                             f"versa (got p = {p})")
    else:
        lift, pos, reflex = int(s[0]), int(s[1]), int(s[2])
        if lift == 0:
            raise ValueError(f"NACA {s}: the first digit (design lift 0.15 * L) must be >= 1")
        if reflex not in (0, 1):
            raise ValueError(f"NACA {s}: the third digit must be 0 (standard) or 1 (reflex)")
        table = _FIVE_REFLEX if reflex else _FIVE_STD
        if pos not in table:
            raise ValueError(f"NACA {s}: camber-position digit {pos} not tabulated; choose "
                             f"from {sorted(table)} ({'reflex' if reflex else 'standard'})")
    return s, f"NACA {s}"


def naca_mean_line(designation, x) -> tuple[np.ndarray, np.ndarray]:
    """Mean (camber) line :math:`y_c(x)` and slope :math:`dy_c/dx` of a NACA section.

    4-digit ``MPXX`` (maximum camber :math:`m` = M/100 at :math:`p` = P/10):

    .. math::
        y_c = \\frac{m}{p^2}(2px - x^2)\\ (x < p), \\qquad
        y_c = \\frac{m}{(1-p)^2}\\big((1-2p) + 2px - x^2\\big)\\ (x \\ge p).

    5-digit ``LPQXX`` (design lift :math:`0.15 L`, Q = 0 standard, 1 reflex), with the
    tabulated :math:`m, k_1` (and :math:`k_2/k_1`) of Report 537 for :math:`C_l = 0.3`, scaled
    by :math:`L/2`; standard lines

    .. math::
        y_c = \\frac{k_1}{6}\\big(x^3 - 3mx^2 + m^2(3-m)x\\big)\\ (x < m), \\qquad
        y_c = \\frac{k_1 m^3}{6}(1-x)\\ (x \\ge m),

    reflex lines

    .. math::
        y_c = \\frac{k_1}{6}\\big((x-m)^3 - \\tfrac{k_2}{k_1}(1-m)^3x - m^3x + m^3\\big)
        \\ (x < m), \\qquad
        y_c = \\frac{k_1}{6}\\big(\\tfrac{k_2}{k_1}(x-m)^3 - \\tfrac{k_2}{k_1}(1-m)^3x
        - m^3x + m^3\\big)\\ (x \\ge m).

    Parameters
    ----------
    designation : str
        e.g. ``"2412"``, ``"NACA 23012"``.
    x : array_like
        Chordwise stations in [0, 1] (chords).

    Returns
    -------
    yc, dyc_dx : ndarray
        Mean-line ordinate (chords) and slope at ``x``.

    References
    ----------
    Jacobs, Ward & Pinkerton (1933), NACA Report 460; Jacobs & Pinkerton (1935), NACA Report
    537; Abbott & von Doenhoff (1959), *Theory of Wing Sections*, sec. 6.4.
    """
    s, _ = _parse_naca(designation)
    x = np.asarray(x, dtype=np.float64)
    if len(s) == 4:
        return _four_digit_mean_line(int(s[0]) / 100.0, int(s[1]) / 10.0, x)
    lift, pos, reflex = int(s[0]), int(s[1]), int(s[2])
    f = lift / 2.0
    fore = x < (_FIVE_REFLEX[pos][0] if reflex else _FIVE_STD[pos][0])
    if not reflex:
        m, k1 = _FIVE_STD[pos]
        yc = np.where(fore, k1 / 6 * (x**3 - 3 * m * x**2 + m**2 * (3 - m) * x),
                      k1 * m**3 / 6 * (1 - x))
        dy = np.where(fore, k1 / 6 * (3 * x**2 - 6 * m * x + m**2 * (3 - m)),
                      -k1 * m**3 / 6 * np.ones_like(x))
    else:
        m, k1, r = _FIVE_REFLEX[pos]
        base = -r * (1 - m) ** 3 * x - m**3 * x + m**3
        dbase = -r * (1 - m) ** 3 - m**3
        yc = np.where(fore, k1 / 6 * ((x - m) ** 3 + base), k1 / 6 * (r * (x - m) ** 3 + base))
        dy = np.where(fore, k1 / 6 * (3 * (x - m) ** 2 + dbase),
                      k1 / 6 * (3 * r * (x - m) ** 2 + dbase))
    return f * yc, f * dy


def _four_digit_mean_line(m: float, p: float, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """4-digit mean line and slope for camber ``m`` and its position ``p`` (fractions of chord)."""
    if m == 0:
        return np.zeros_like(x), np.zeros_like(x)
    fore = x < p
    yc = np.where(fore, m / p**2 * (2 * p * x - x**2),
                  m / (1 - p) ** 2 * ((1 - 2 * p) + 2 * p * x - x**2))
    dy = np.where(fore, 2 * m / p**2 * (p - x), 2 * m / (1 - p) ** 2 * (p - x))
    return yc, dy


def naca_thickness(t: float, x, *, closed_te: bool = False) -> np.ndarray:
    """Half-thickness of the NACA 4-digit family (also used by the 5-digit sections):

    .. math::
        y_t = 5t\\,(0.2969\\sqrt{x} - 0.1260x - 0.3516x^2 + 0.2843x^3 + a_4x^4),

    :math:`a_4 = -0.1015` (open trailing edge of thickness :math:`\\approx 0.021t`) or
    :math:`-0.1036` (closed). Maximum :math:`t/2` near :math:`x = 0.30`.

    References
    ----------
    Jacobs, Ward & Pinkerton (1933), NACA Report 460; Abbott & von Doenhoff (1959), eq. 6.2.
    """
    x = np.asarray(x, dtype=np.float64)
    a0, a1, a2, a3 = _A_THICK
    a4 = _A4_CLOSED if closed_te else _A4_OPEN
    xc = np.clip(x, 0.0, None)
    return 5.0 * t * (a0 * np.sqrt(xc) + a1 * x + a2 * x**2 + a3 * x**3 + a4 * x**4)


def naca(designation, n_points: int = 100, *, closed_te: bool = False,
         name: str | None = None) -> AirfoilShape:
    """A NACA 4- or 5-digit section with unit chord.

    Stations are cosine-clustered, :math:`x_k = (1 - \\cos\\beta_k)/2` with
    :math:`\\beta_k = \\pi k/(n-1)`, and the half-thickness :math:`y_t` (:func:`naca_thickness`)
    is laid off perpendicular to the mean line :math:`y_c` (:func:`naca_mean_line`),
    :math:`\\theta = \\arctan(dy_c/dx)`:

    .. math::
        x_u = x - y_t\\sin\\theta,\\ y_u = y_c + y_t\\cos\\theta, \\qquad
        x_l = x + y_t\\sin\\theta,\\ y_l = y_c - y_t\\cos\\theta.

    Parameters
    ----------
    designation : str or int
        ``"2412"``, ``"NACA 0012"``, ``"23012"``, reflex ``"23112"``...
    n_points : int
        Points per surface, leading edge included (>= 5); the loop has ``2 n - 1`` rows.
    closed_te : bool
        Use :math:`a_4 = -0.1036` so the trailing edge closes at (1, 0) (stored twice, first
        and last row); otherwise :math:`a_4 = -0.1015` and the trailing edge is blunt.
    name : str, optional
        Defaults to ``"NACA 2412"`` etc.

    Returns
    -------
    AirfoilShape
        Selig order (counter-clockwise), leading edge at (0, 0).

    Raises
    ------
    ValueError
        For a malformed designation (``"12"``, ``"9999x"``), thickness outside (0, 0.4], an
        untabulated 5-digit mean line, or ``n_points < 5``.

    References
    ----------
    Jacobs, Ward & Pinkerton (1933), *The characteristics of 78 related airfoil sections from
    tests in the variable-density wind tunnel*, NACA Report 460; Jacobs & Pinkerton (1935),
    NACA Report 537; Abbott & von Doenhoff (1959), *Theory of Wing Sections*, Dover, ch. 6.
    """
    s, label = _parse_naca(designation)
    return _section(int(s[-2:]) / 100.0, lambda x: naca_mean_line(s, x), n_points, closed_te,
                    name or label)


def _section(t: float, mean_line, n_points: int, closed_te: bool, name: str) -> AirfoilShape:
    """Thickness ``t`` laid off perpendicular to ``mean_line(x) -> (yc, dyc/dx)`` at
    cosine-clustered stations (see :func:`naca`)."""
    n = int(n_points)
    if n < 5:
        raise ValueError(f"n_points must be >= 5, got {n_points}")
    beta = np.linspace(0.0, math.pi, n)
    x = 0.5 * (1.0 - np.cos(beta))
    x[-1] = 1.0
    yt = naca_thickness(t, x, closed_te=closed_te)
    yt[0] = 0.0
    if closed_te:
        yt[-1] = 0.0
    yc, dy = mean_line(x)
    th = np.arctan(dy)
    xu, yu = x - yt * np.sin(th), yc + yt * np.cos(th)
    xl, yl = x + yt * np.sin(th), yc - yt * np.cos(th)
    if closed_te:
        xu[-1], yu[-1], xl[-1], yl[-1] = 1.0, 0.0, 1.0, 0.0
    upper = np.stack([xu, yu], axis=1)[::-1]
    lower = np.stack([xl, yl], axis=1)[1:]
    return AirfoilShape(np.concatenate([upper, lower]), name)


def naca4(camber: float, position: float, thickness: float, n_points: int = 100, *,
          closed_te: bool = False, name: str | None = None) -> AirfoilShape:
    r"""A NACA 4-digit section with continuous parameters, in digit units.

    ``camber`` % of chord, ``position`` tenths of chord, ``thickness`` % of chord, so
    ``naca4(2, 4, 12)`` is :func:`naca` ``("2412")``; built the same way (mean line of
    :func:`naca_mean_line`, thickness of :func:`naca_thickness`, cosine stations).

    Raises
    ------
    ValueError
        For camber outside [0, 9.5], position outside (0, 10) (when cambered), thickness
        outside (0, 40], or ``n_points < 5``.
    """
    m, p, t = float(camber) / 100.0, float(position) / 10.0, float(thickness) / 100.0
    if not (0.0 <= m <= 0.095 and 0.0 < t <= 0.4 and (m == 0.0 or 0.0 < p < 1.0)):
        raise ValueError(f"NACA 4-digit parameters out of range: camber {camber} % (0-9.5), "
                         f"position {position} tenths (0-10), thickness {thickness} % (0-40]")
    label = name or f"NACA4 m={camber:.3g} p={position:.3g} t={thickness:.3g}"
    return _section(t, lambda x: _four_digit_mean_line(m, p, x), n_points, closed_te, label)
