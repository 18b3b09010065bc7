r"""Closed-form coordinate derivatives of a PIG (:meth:`operators.pig.PIG.derivative`).

A Gaussian's derivatives are the Gaussian times Hermite-type polynomials, summed over partial
matchings of the differentiation directions (:func:`_matchings_poly`); the tanh decoder is
differentiated through the multilinear Taylor model of its input by Faa di Bruno's formula over
set partitions (:func:`_set_partitions`, :func:`_tanh_derivatives`, :func:`_mlp_jet`).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

__all__: list[str] = []

def _matchings_poly(a: list, c: dict, idx: tuple):
    """:math:`\\sum_M \\prod_{(j,l)\\in M} c_{jl} \\prod_{m \\notin M} a_m` over the partial
    matchings ``M`` of the direction indices ``idx`` (pairs missing from ``c`` are zero)."""
    if not idx:
        return 1.0
    j, rest = idx[0], idx[1:]
    out = a[j] * _matchings_poly(a, c, rest)
    for pos, m in enumerate(rest):
        if (j, m) in c:
            out = out + c[j, m] * _matchings_poly(a, c, rest[:pos] + rest[pos + 1:])
    return out


def _set_partitions(mask: int) -> list[list[int]]:
    """All partitions of the set of bits of ``mask`` into non-empty blocks (bitmasks)."""
    if mask == 0:
        return [[]]
    low = mask & -mask
    rest = mask ^ low
    out = []
    sub = rest
    while True:  # every subset of ``rest`` may join the lowest element in its block
        out += [[low | sub, *p] for p in _set_partitions(rest ^ sub)]
        if sub == 0:
            return out
        sub = (sub - 1) & rest


def _tanh_derivatives(t, order: int) -> list:
    r""":math:`\tanh^{(n)}` for :math:`n = 0..` ``order`` as polynomials in :math:`t = \tanh h`:
    :math:`p_0 = t`, :math:`p_{n+1} = (1 - t^2)\,p_n'(t)`."""
    coefs = [np.array([0.0, 1.0])]
    for _ in range(order):
        dc = coefs[-1][1:] * np.arange(1, coefs[-1].size)  # p_n'
        nxt = np.zeros(dc.size + 2)
        nxt[:dc.size] += dc
        nxt[2:] -= dc
        coefs.append(nxt)
    out = []
    for c in coefs:
        val = c[-1]
        for power in range(c.size - 2, -1, -1):  # Horner
            val = val * t + c[power]
        out.append(val)
    return out


def _mlp_jet(layers: list[dict], jet: list):
    r"""Mixed derivative :math:`\partial_{t_1}\cdots\partial_{t_k}` at 0 of the MLP applied to
    the multilinear input :math:`\sum_S \phi_S \prod_{j\in S} t_j` (``jet[mask]`` =
    :math:`\phi_S`, ``S`` the bits of ``mask``, ``len(jet) = 2^k``).

    Each layer maps such a jet to the jet of its output: an affine layer acts on every entry
    (the bias only on the value), and for :math:`y = \tanh(h)` Faa di Bruno's formula over the
    set partitions :math:`\pi` of :math:`S` gives
    :math:`y_S = \sum_\pi \tanh^{(|\pi|)}(h_\emptyset) \prod_{B\in\pi} h_B`. Returns the
    scalar :math:`u_{\{1..k\}}` for :math:`k \ge 1` (the output bias drops out).
    """
    k = len(jet).bit_length() - 1
    for layer in layers[:-1]:
        pre = [jet[0] @ layer["W"] + layer["b"]] + [j @ layer["W"] for j in jet[1:]]
        derivs = _tanh_derivatives(jnp.tanh(pre[0]), k)
        jet = [derivs[0]]
        for mask in range(1, 1 << k):
            total = 0.0
            for part in _set_partitions(mask):
                term = derivs[len(part)]
                for block in part:
                    term = term * pre[block]
                total = total + term
            jet.append(total)
    return (jet[-1] @ layers[-1]["W"])[0]
