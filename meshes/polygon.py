"""Planar polygon primitives shared by the shape, voxelisation and morphing modules."""

from __future__ import annotations

import numpy as np

__all__ = ["even_odd_inside", "segment_distance", "signed_area"]


def even_odd_inside(points, starts, ends) -> np.ndarray:
    """Even-odd (ray-casting) test: which ``points`` (K, 2) lie inside the closed curve(s) made of
    the segments ``starts[s] -> ends[s]`` (S, 2 each).

    A ray in +x from each point is crossed by a segment when exactly one of its ends lies strictly
    above the point (the half-open rule, so a vertex is not counted twice); the point is inside
    when the number of crossings is odd. Points exactly on a segment are classified either way.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    x, y = pts[:, 0], pts[:, 1]
    inside = np.zeros(len(pts), dtype=bool)
    for (x1, y1), (x2, y2) in zip(np.asarray(starts, np.float64), np.asarray(ends, np.float64),
                                  strict=True):
        crosses = (y1 > y) != (y2 > y)
        if not crosses.any():
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            xc = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (xc > x)
    return inside


def signed_area(poly: np.ndarray) -> float:
    """Shoelace area of the closed polygon ``poly`` (M, 2): positive when counter-clockwise."""
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def segment_distance(points, a, b) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distance from each point to the nearest of a set of segments (vectorised).

    Parameters
    ----------
    points : (P, 2) array
    a, b : (S, 2) arrays
        Segment end points.

    Returns
    -------
    distance : (P,) Euclidean distance to the nearest segment.
    segment : (P,) index of that segment.
    t : (P,) position on it, 0 at ``a`` and 1 at ``b``.
    """
    p = np.asarray(points, dtype=np.float64)
    a = np.asarray(a, dtype=np.float64)
    d = np.asarray(b, dtype=np.float64) - a
    dd = np.maximum(np.einsum("sk,sk->s", d, d), 1e-300)
    dist = np.full(len(p), np.inf)
    seg = np.zeros(len(p), dtype=np.int64)
    tt = np.zeros(len(p))
    for start in range(0, len(p), 2048):  # bounded memory: (2048, S) temporaries
        q = p[start:start + 2048]
        rel = q[:, None, :] - a[None]
        t = np.clip(np.einsum("psk,sk->ps", rel, d) / dd, 0.0, 1.0)
        r = rel - t[..., None] * d[None]
        r2 = np.einsum("psk,psk->ps", r, r)
        k = np.argmin(r2, axis=1)
        rows = np.arange(len(q))
        dist[start:start + 2048] = np.sqrt(r2[rows, k])
        seg[start:start + 2048] = k
        tt[start:start + 2048] = t[rows, k]
    return dist, seg, tt
