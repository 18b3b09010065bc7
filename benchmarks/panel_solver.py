"""Airfoil panel method: speed of the batched JAX solver, accuracy against exact and peer data.

Rerun with::

    python benchmarks/panel_solver.py            # 16 shapes x 16 angles, 160 panels, 3 repeats
    python benchmarks/panel_solver.py --quick    # 4 x 4, one repeat
                                                 # (writes results/panel_solver_quick.json)

What is measured:

(a) Throughput: ``surrogates.solvers.panel.solve_airfoils`` (linear-vortex panels, Kutta
    condition, Thwaites / Michel / Head / Squire-Young boundary layer at Re = 1e6, float64 and
    float32, all shapes and angles in one compiled call, compile excluded) against a plain
    per-case NumPy implementation of the same method written below (one (shape, angle) at a
    time: influence matrix with NumPy broadcasting, ``numpy.linalg.solve``, the boundary layer
    marched point by point in Python). Rate = (shape, angle) cases per second; the NumPy rate
    is measured on a subset of the cases. The script first checks that both give the same
    cl and cd (float64).
(b) Accuracy against the exact potential flow of a Karman-Trefftz airfoil (circle centre
    (-0.08, 0.08), 10 deg TE angle, alpha 5 deg): relative cl error and RMS Cp error (x < 0.95)
    at 50 ... 400 panels, and the observed orders.
(c) cl, cd, cm of NACA 0012, 2412, 4412 (160 panels, closed TE) at Re 1e6 against NeuralFoil
    (``neuralfoil.get_aero_from_coordinates``, model "xlarge", n_crit 9, free transition;
    a learned XFOIL surrogate, not installed with the package: ``pip install neuralfoil``).
    Skipped with a note when NeuralFoil is not importable.

Results go to ``benchmarks/results/panel_solver.json`` (``panel_solver_quick.json`` with
``--quick``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import jax
import numpy as np
from bench_utils import best_time, write_results

from meshes.airfoil import naca4 as naca4_shape
from surrogates.solvers.panel import solve_airfoils
from surrogates.solvers.panel_exact import KarmanTrefftz

RESULTS = Path(__file__).resolve().parent / "results"
RE = 1e6


# ----------------------------------------------------------------------------------------------
# Shapes
# ----------------------------------------------------------------------------------------------


def naca4(code: str, n: int) -> np.ndarray:
    """NACA 4-digit section (closed TE), ``n`` panels, Selig order (:func:`meshes.airfoil.naca4`;
    a zero camber with any position digit is allowed)."""
    return naca4_shape(int(code[0]), int(code[1]), int(code[2:]), n // 2 + 1,
                       closed_te=True).coords


# ----------------------------------------------------------------------------------------------
# NumPy baseline: the same method, one (shape, angle) at a time
# ----------------------------------------------------------------------------------------------


def np_case(nodes, alpha_deg, re):
    """cl (circulation), cl (pressure), cm, cd of one case, same equations as the JAX solver."""
    z = nodes[:, 0] + 1j * nodes[:, 1]
    z1, z2 = z[:-1], z[1:]
    d = z2 - z1
    ln = np.abs(d)
    e = d / ln
    nrm = -1j * e
    zc = 0.5 * (z1 + z2)
    N = len(ln)
    zeta = (zc[:, None] - z1[None]) * np.conj(e)[None]
    x, y = zeta.real, zeta.imag
    pl = ln[None]
    ang = np.arctan2(-y * pl, x * (x - pl) + y * y)
    ang[np.arange(N), np.arange(N)] = np.pi
    i0 = np.log(np.abs(zeta) / np.abs(zeta - pl)) + 1j * ang
    q = zeta / pl
    fac = -1j * np.conj(e)[None] / (2 * np.pi)
    wa, wb = fac * ((1 - q) * i0 + 1), fac * (q * i0 - 1)
    mat = np.zeros((N + 1, N + 1))
    mat[:N, :N] += (wa * nrm[:, None]).real
    mat[:N, 1:] += (wb * nrm[:, None]).real
    mat[N, 0] = mat[N, N] = 1.0
    a = np.deg2rad(alpha_deg)
    rhs = np.r_[-(np.cos(a) * nrm.real + np.sin(a) * nrm.imag), 0.0]
    g = np.linalg.solve(mat, rhs)
    vt = 0.5 * (g[:-1] + g[1:])
    cp = 1 - vt**2
    chord = nodes[:, 0].max() - nodes[:, 0].min()
    cl_c = -2 * np.sum(ln * 0.5 * (g[:-1] + g[1:])) / chord
    fx = -np.sum(cp * nrm.real * ln) / chord
    fy = -np.sum(cp * nrm.imag * ln) / chord
    cl_p = -fx * np.sin(a) + fy * np.cos(a)
    xref = nodes[:, 0].min() + 0.25 * chord
    yref = 0.5 * (nodes[0, 1] + nodes[-1, 1])
    arm = (zc.real - xref) * nrm.imag - (zc.imag - yref) * nrm.real
    cm = np.sum(cp * ln * arm) / chord**2
    s_nodes = np.r_[0.0, np.cumsum(ln)]
    s_mid = 0.5 * (s_nodes[:-1] + s_nodes[1:])
    k = int(np.argmax((vt[:-1] < 0) & (vt[1:] >= 0)))
    s_stag = s_mid[k] + (-vt[k]) / (vt[k + 1] - vt[k]) * (s_mid[k + 1] - s_mid[k])
    x_end = nodes[:, 0].max() - 0.01 * chord
    cd = 0.0
    for idx in (np.arange(k, -1, -1), np.arange(k + 1, N)):
        idx = idx[zc.real[idx] <= x_end]
        xi = np.abs(s_mid[idx] - s_stag)
        cd += np_march(xi, np.maximum(np.abs(vt[idx]), 1e-12), re)
    return cl_c, cl_p, cm, cd


def _h1(h):
    return 3.3 + 0.8234 * (h - 1.1) ** -1.287 if h <= 1.6 else 3.3 + 1.5501 * (h - 0.6778) ** -3.064


def _h(h1):
    dd = max(h1 - 3.3, 1e-6)
    return 0.6778 + 1.1536 * dd**-0.326 if h1 <= 5.3 else 1.1 + 0.86 * dd**-0.777


def np_march(xi, ue, re):
    """Squire-Young drag of one surface (Thwaites, Michel, Head), point by point."""
    m = len(xi)
    xp, up = np.r_[0.0, xi[:-1]], np.r_[0.0, ue[:-1]]
    xn, un = np.r_[xi[1:], xi[-1]], np.r_[ue[1:], ue[-1]]
    due = (un - up) / np.maximum(xn - xp, 1e-12)
    h1sep = _h1(2.4)

    def rhs(th, yy, u, du):
        h1 = max(yy / (u * th), h1sep)
        h = _h(h1)
        cf = 0.246 * 10 ** (-0.678 * h) * max(re * u * th, 1.0) ** -0.268
        return 0.5 * cf - (h + 2) * th / u * du, u * 0.0306 * (h1 - 3) ** -0.6169

    integ = th = yy = 0.0
    turb = False
    x0, u0, du0, h = 0.0, 0.0, due[0], 0.0
    for i in range(m):
        x1, u1, du1 = xi[i], ue[i], due[i]
        hs = x1 - x0
        if not turb:
            integ += hs * sum(u0 ** (5 - j) * u1**j for j in range(6)) / 6
            th = np.sqrt(0.45 * integ / (re * u1**6))
            lam = re * th**2 * du1
            lc = min(max(lam, -0.09), 0.1)
            h = 2.61 - 3.75 * lc + 5.24 * lc**2 if lc >= 0 else 2.088 + 0.0731 / (lc + 0.14)
            rex = max(re * u1 * x1, 1.0)
            if re * u1 * th > 1.174 * (1 + 22400 / rex) * rex**0.46 or lam < -0.09:
                turb, h, yy = True, 1.4, u1 * th * _h1(1.4)
        else:
            k1 = rhs(th, yy, u0, du0)
            thp, yp = max(th + hs * k1[0], 1e-12), yy + hs * k1[1]
            k2 = rhs(thp, yp, u1, du1)
            th = max(th + 0.5 * hs * (k1[0] + k2[0]), 1e-12)
            yy = yy + 0.5 * hs * (k1[1] + k2[1])
            h = _h(max(yy / (u1 * th), h1sep))
        x0, u0, du0 = x1, u1, du1
    return 2 * th * u0 ** ((h + 5) / 2)


# ----------------------------------------------------------------------------------------------


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="short run for a smoke test")
    ap.add_argument("--panels", type=int, default=160, help="panels per shape (default 160)")
    ap.add_argument("--repeats", type=int, default=None, help="timed repeats (default 3/1)")
    ap.add_argument("--out", type=Path, default=None, help="JSON output path")
    args = ap.parse_args(argv)
    rep = args.repeats or (1 if args.quick else 3)
    nb = na = 4 if args.quick else 16
    n_np = 8 if args.quick else 32
    out = args.out or RESULTS / ("panel_solver_quick.json" if args.quick else "panel_solver.json")
    N = args.panels
    print(f"panel method, {N} panels; {os.cpu_count()} CPU cores, jax {jax.__version__} "
          f"({jax.default_backend()})", flush=True)

    # (a) speed ----------------------------------------------------------------------------
    thick = np.linspace(0.06, 0.18, nb)
    codes = [f"{2 * (i % 3)}4{round(100 * t):02d}" for i, t in enumerate(thick)]
    coords = np.stack([naca4(c, N) for c in codes])
    alphas = np.linspace(-4.0, 8.0, na)
    cases = [(b, j) for b in range(nb) for j in range(na)]
    sub = cases[:: max(1, len(cases) // n_np)][:n_np]

    def run_np():
        return [np_case(coords[b], alphas[j], RE) for b, j in sub]

    def run_jax(dtype="float64"):
        return solve_airfoils(coords, alphas, reynolds=RE, dtype=dtype)

    sol = run_jax()
    ref = run_np()
    agree = max(max(abs(r[0] - sol.cl_circulation[b, j]), abs(r[3] - sol.cd[b, j]))
                for r, (b, j) in zip(ref, sub, strict=True))
    print(f"agreement NumPy vs JAX float64 (cl, cd): max |diff| = {agree:.2e}", flush=True)
    assert agree < 1e-8, agree
    t_np, all_np, _ = best_time(run_np, rep)
    t_64, all_64, _ = best_time(run_jax, rep)
    run_jax("float32")
    t_32, all_32, _ = best_time(lambda: run_jax("float32"), rep)
    rate_np, rate_64, rate_32 = len(sub) / t_np, nb * na / t_64, nb * na / t_32
    speed = {"shapes": nb, "angles": na, "panels": N, "reynolds": RE, "numpy_cases": len(sub),
             "numpy_s": t_np, "jax_s": t_64, "jax_float32_s": t_32, "numpy_all_s": all_np,
             "jax_all_s": all_64, "jax_float32_all_s": all_32, "numpy_cases_per_s": rate_np,
             "jax_cases_per_s": rate_64, "jax_float32_cases_per_s": rate_32,
             "speedup_jax_vs_numpy": rate_64 / rate_np,
             "speedup_jax32_vs_numpy": rate_32 / rate_np, "agreement_max_abs_diff": agree}
    print("\n| solver | cases | cases/s | ratio |\n|---|---:|---:|---:|")
    print(f"| NumPy per case | {len(sub)} | {rate_np:.3g} | 1 |")
    print(f"| JAX float64 batched | {nb}x{na} | {rate_64:.3g} | {rate_64 / rate_np:.0f}x |")
    print(f"| JAX float32 batched | {nb}x{na} | {rate_32:.3g} | {rate_32 / rate_np:.0f}x |")

    # (b) Karman-Trefftz ---------------------------------------------------------------------
    kt = KarmanTrefftz()
    a = np.deg2rad(5.0)
    conv = []
    for n in (50, 100, 200, 400):
        c, th = kt.coords(n)
        s = solve_airfoils(c, 5.0)
        cpe = kt.surface_cp(0.5 * (th[:-1] + th[1:]), a)
        keep = s.x[0] < 0.95
        conv.append({"panels": n, "cl": float(s.cl_circulation[0, 0]), "cl_exact": kt.cl(a),
                     "cl_rel_error": float(abs(s.cl_circulation[0, 0] / kt.cl(a) - 1)),
                     "cl_pressure_rel_error": float(abs(s.cl_pressure[0, 0] / kt.cl(a) - 1)),
                     "cp_rms_error": float(np.sqrt(np.mean((s.cp[0, 0] - cpe)[keep] ** 2)))})
    for r0, r1 in zip(conv[:-1], conv[1:], strict=True):
        r1["cl_order"] = float(np.log2(r0["cl_rel_error"] / r1["cl_rel_error"]))
        r1["cp_order"] = float(np.log2(r0["cp_rms_error"] / r1["cp_rms_error"]))
    print(f"\nKarman-Trefftz, alpha 5 deg (exact cl = {kt.cl(a):.5f})")
    print("| panels | cl rel. error | order | Cp RMS error (x<0.95) | order |")
    print("|---:|---:|---:|---:|---:|")
    for r in conv:
        print(f"| {r['panels']} | {r['cl_rel_error']:.2e} | {r.get('cl_order', float('nan')):.2f}"
              f" | {r['cp_rms_error']:.2e} | {r.get('cp_order', float('nan')):.2f} |")

    # (c) NeuralFoil -------------------------------------------------------------------------
    peer, note = [], None
    try:
        import neuralfoil as nf
    except ImportError:
        nf, note = None, "neuralfoil not installed (pip install neuralfoil): comparison skipped"
        print(note)
    if nf is not None:
        peer_alpha = np.array([0.0, 4.0, 8.0])
        for code in ("0012", "2412", "4412"):
            c = naca4(code, 160)
            s = solve_airfoils(c, peer_alpha, reynolds=RE)
            ref_nf = nf.get_aero_from_coordinates(c, alpha=peer_alpha, Re=RE, model_size="xlarge")
            for j, al in enumerate(peer_alpha):
                peer.append({"airfoil": f"NACA {code}", "alpha": float(al),
                             "cl": float(s.cl_pressure[0, j]), "cd": float(s.cd[0, j]),
                             "cm": float(s.cm_quarter[0, j]),
                             "separated": bool(s.separated[0, j]),
                             "nf_cl": float(np.ravel(ref_nf["CL"])[j]),
                             "nf_cd": float(np.ravel(ref_nf["CD"])[j]),
                             "nf_cm": float(np.ravel(ref_nf["CM"])[j]),
                             "nf_confidence": float(np.ravel(ref_nf["analysis_confidence"])[j])})
        print(f"\nNACA sections at Re {RE:.0e} (ours: inviscid cl, cm; Squire-Young cd) vs "
              "NeuralFoil xlarge")
        print("| airfoil | alpha | cl | NF cl | cd | NF cd | cm | NF cm |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for r in peer:
            print(f"| {r['airfoil']} | {r['alpha']:.0f} | {r['cl']:.3f} | {r['nf_cl']:.3f} | "
                  f"{r['cd']:.4f} | {r['nf_cd']:.4f} | {r['cm']:.3f} | {r['nf_cm']:.3f} |")

    result = {
        "benchmark": "panel_solver",
        "command": " ".join([Path(sys.argv[0]).name]
                            + (argv if argv is not None else sys.argv[1:])),
        "method": "linear-strength vortex panels + Kutta; Thwaites/Michel/Head/Squire-Young",
        "config": {"panels": N, "shapes": nb, "angles": na, "reynolds": RE, "repeats": rep,
                   "quick": args.quick},
        "metric": "(shape, angle) cases per second (best of repeats; JAX compile excluded); "
                  "relative cl and RMS Cp error vs exact Karman-Trefftz flow; "
                  "cl/cd/cm vs NeuralFoil",
        "speed": speed,
        "karman_trefftz": conv,
        "neuralfoil": peer,
        "neuralfoil_note": note,
    }
    write_results(result, out)
    return result


if __name__ == "__main__":
    main()
