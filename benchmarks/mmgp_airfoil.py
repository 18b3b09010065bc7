"""MMGP on generated airfoil flows: RBF and elasticity morphing against three baselines.

Rerun with::

    OMP_NUM_THREADS=1 python benchmarks/mmgp_airfoil.py            # ~3 min + ~3 min data generation
    OMP_NUM_THREADS=1 python benchmarks/mmgp_airfoil.py --quick    # smoke run, under 1 min
    OMP_NUM_THREADS=1 python benchmarks/mmgp_airfoil.py --n-train 400 --n-test 100 --fine \
        --families naca4                                           # the issue's size (longer)

Claim (Casenave et al., NeurIPS 2023, AirfRANS, 800 training samples): MMGP predicts lift with
scalar RRMSE 8.0e-3, drag 3.3e-2 and the pressure field with RRMSE 5.1e-2, with calibrated
uncertainty. Goals of this package: lift RRMSE < 8e-3 and drag < 3.3e-2 with 400 training
samples, 95 % interval coverage within 90-98 %, errors within 1.5x of a GP given the true shape
parameters, fit < 5 min for 400 samples of 20k-node meshes, predict < 1 s per new mesh.

Set-up, per shape family (``naca4``: continuous NACA 4-digit; ``cst``: random CST of order 6 with
round leading edges, :func:`meshes.cst.random_cst`, and one blunt trailing-edge gap of 0.25 %
chord for the whole family, which the morphers need):

* Data: :func:`surrogates.data.airfoil.generate_airfoil_dataset` (panel method with
  Karman-Tsien correction, integral boundary layer for drag, tripped at the stagnation point:
  fully turbulent like AirfRANS' Spalart-Allmaras RANS), 4 angles of attack per shape uniform in
  [-4, 10] deg, one Mach number per shape uniform in [0, 0.5] and Reynolds number log-uniform in
  [1e6, 6e6]; meshes of about 4 300 nodes (growth 0.3, 160 panels; ``--fine``: growth 0.15, 320
  panels, about 21 000 nodes; ``--quick``: growth 0.6, 80 panels, about 1 200 nodes). Whole
  shapes are held out: the first ``ceil(n_test / 4)`` shapes of a seeded permutation are the
  test set, training samples come from the other shapes. Datasets are cached under
  ``--data-dir``.
* Scalar inputs of every model: alpha, Mach and log10 of the Reynolds number (the drag depends on
  all three).
* MMGP (:class:`surrogates.models.mmgp.MMGPRegressor`, support = the training mesh of the medoid
  shape, :func:`meshes.morph.medoid_airfoil`; shape POD 99.99 %, cp POD 99.9 %, Matern-5/2, 3
  restarts x 50 L-BFGS iterations, float64, amplitudes by leave-one-shape-out
  cross-validation), outputs cl, cd and the cp field, with RBF (:class:`meshes.morph.RBFMorpher`),
  elasticity (:class:`meshes.morph_elasticity.ElasticityMorpher`: full solves for training and
  new meshes) and offline/online elasticity morphing
  (:class:`meshes.morph_elasticity.ReducedElasticityMorpher`: full solves for the training
  meshes, new meshes in the span of the shape POD). The four samples of a shape share its mesh,
  which is morphed once.
* Parameter GP (upper bound): :class:`surrogates.models.gp.BatchedExactGP` (same settings) on the
  true shape parameters (NACA camber/position/thickness or the 14 CST coefficients) + the inputs.
* Surface GP (no morphing): each mesh's wall polygon resampled to 101 points by arc length from
  the trailing edge (counter-clockwise: upper surface first), PCA (99.9 % of the variance) of the
  stacked coordinates, then the same GP on PCA coefficients + the inputs.
* NeuralFoil (``neuralfoil.get_aero_from_coordinates``, ``model_size="xlarge"``, the wall
  polygon in Selig order, the sample's Reynolds number, transition forced at the leading edge,
  ``xtr_upper = xtr_lower = 0``): a different physics model (viscous, incompressible), so its
  error against our panel data is context, not a competitor. Skipped when not installed.

Metrics: scalar RRMSE and Q^2 of cl and cd, field RRMSE of cp (nodal RMSE over each sample's
max |cp|) and its Q^2, coverage of the 95 % central interval, mean CRPS, fit time and predict
time per new case (MMGP: morphing included). Note: the scalar RRMSE divides by each reference
value, so test cases with cl near 0 (alpha near the zero-lift angle) inflate the lift RRMSE.

Uncertainty, before and after the fixes of issue 22: each MMGP is fitted once (likelihood
amplitudes) and scored in the variants of ``UQ_VARIANTS``: the earlier default (amplitudes
matched to the groups' whitened leave-one-shape-out residuals, one constant nugget), per-sample
leave-one-shape-out amplitudes, the query-dependent nugget, and a conformal 90 % scale; for cp
also the correlation over test samples between the RMS predicted std and the RMS error.

Results go to ``benchmarks/results/mmgp_airfoil.json`` (``..._quick.json`` for smoke runs,
``..._<n>_coarse.json`` with ``--coarse``).
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
import time
from pathlib import Path
from statistics import NormalDist

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_utils import write_results  # noqa: E402

from meshes.morph import closed_wall, medoid_airfoil, mesh_key, resampled_wall  # noqa: E402
from surrogates.data.airfoil import (  # noqa: E402
    AirfoilDataConfig,
    generate_airfoil_dataset,
    open_airfoil_dataset,
)
from surrogates.metrics.mesh import field_rrmse, gaussian_scores, q2, scalar_rrmse  # noqa: E402
from surrogates.models.gp import BatchedExactGP  # noqa: E402
from surrogates.models.mmgp import MMGPRegressor  # noqa: E402
from surrogates.runs.airfoil import morpher as make_morpher  # noqa: E402

PARAMS = {"naca4": ["naca_camber", "naca_position", "naca_thickness"],
          "cst": ["cst_upper", "cst_lower", "cst_te"]}
SEEDS = {"naca4": 11, "cst": 12}
#: per-family data settings beyond the defaults (NACA: sharp trailing edges)
FAMILY_CONFIG = {"naca4": {}, "cst": {"cst_te_range": (0.0025, 0.0025)}}
CONDITIONS = ["alpha", "mach", "reynolds"]
SCALARS = ["cl", "cd"]
CPS = 4
PAPER = {"cl": 8.0e-3, "cd": 3.3e-2, "cp": 5.1e-2}
#: uncertainty variants of one fitted MMGP, before and after the fixes of issue 22:
#: name -> (calibrate_amplitude method on leave-one-shape-out residuals, truncation_nugget)
UQ_VARIANTS = {"before: group-joint LOO, constant nugget": ("joint", "constant"),
               "per-sample LOO, constant nugget": ("marginal", "constant"),
               "per-sample LOO, query nugget (default)": ("marginal", "query"),
               "conformal 90 % LOO, query nugget": ("conformal", "query")}


#: boundary-layer trip (chord fraction): fully turbulent, as in AirfRANS
X_TRANSITION = 0.0


def dataset(family, n_shapes, mesh, data_dir):
    growth, panels = {"quick": (0.6, 80), "default": (0.3, 160), "fine": (0.15, 320)}[mesh]
    folder = Path(data_dir) / (f"{family}_{n_shapes}x{CPS}_g{growth}_p{panels}"
                               f"_xtr{X_TRANSITION}_s{SEEDS[family]}_v2")
    if not (folder / "index.nc").is_file():
        cfg = AirfoilDataConfig(family=family, n_shapes=n_shapes, conditions_per_shape=CPS,
                                growth=growth, n_panels=panels, seed=SEEDS[family],
                                x_transition=X_TRANSITION, **FAMILY_CONFIG[family])
        t = time.perf_counter()
        generate_airfoil_dataset(cfg, folder, overwrite=True)
        print(f"generated {folder} in {time.perf_counter() - t:.0f} s")
    return open_airfoil_dataset(folder, lazy=False)


def conditions(ds):
    """(n, 3) scalar inputs: alpha (deg), Mach, log10 Reynolds number."""
    x = ds.inputs(CONDITIONS)
    x[:, 2] = np.log10(x[:, 2])
    return x


def split(ds, n_train, n_test, seed):
    shapes = np.asarray(ds.index["shape_id"].values)
    order = np.random.default_rng(seed).permutation(np.unique(shapes))
    test_shapes = set(order[:math.ceil(n_test / CPS)].tolist())
    test = np.flatnonzero([s in test_shapes for s in shapes])[:n_test]
    train = np.random.default_rng(seed + 1).permutation(
        np.flatnonzero([s not in test_shapes for s in shapes]))[:n_train]
    return ds.subset(train), ds.subset(test)


def uq_block(mean, std, ref) -> dict[str, float]:
    """Coverage and mean width of the central 90 % and 95 % Gaussian intervals (pooled over all
    values; ``coverage`` is the 95 % one), CRPS, NLL, and for fields the Pearson correlation
    over test samples between the RMS predictive std and the RMS error of each sample
    (``std_error_correlation``: does the std say which samples are hard?)."""
    out = gaussian_scores(mean, std, ref, level=0.95)
    pooled_std = np.concatenate([np.ravel(s) for s in std]) if isinstance(std, list) else std
    for level in (0.9, 0.95):
        out[f"coverage_{level:.0%}"] = gaussian_scores(mean, std, ref, level=level)["coverage"]
        z = NormalDist().inv_cdf(0.5 + level / 2)
        out[f"width_{level:.0%}"] = float(2 * z * np.mean(pooled_std))
    if isinstance(std, list):
        rms_std = [np.sqrt(np.mean(np.square(s))) for s in std]
        rms_err = [np.sqrt(np.mean(np.square(m - r))) for m, r in zip(mean, ref, strict=True)]
        out["std_error_correlation"] = float(np.corrcoef(rms_std, rms_err)[0, 1])
        out["std_relative_spread"] = float(np.std(rms_std) / np.mean(rms_std))
        out["error_relative_spread"] = float(np.std(rms_err) / np.mean(rms_err))
    return out


def scores(mean, std, ref):
    out = {}
    for key in SCALARS + (["cp"] if "cp" in mean else []):
        m, r = mean[key], ref[key]
        entry = {"rrmse": field_rrmse(m, r) if key == "cp" else scalar_rrmse(m, r),
                 "q2": q2(m, r)}
        if std is not None:
            entry.update(uq_block(m, std[key], r))
        out[key] = entry
    return out


def gp_fit_predict(x_train, y_train, x_test, args):
    xm, xs = x_train.mean(0), x_train.std(0) + 1e-12
    ym, ys = y_train.mean(0), y_train.std(0) + 1e-30
    t = time.perf_counter()
    gp = BatchedExactGP(n_restarts=args.restarts, max_iter=args.max_iter,
                        optimizer=args.optimizer).fit(
        (x_train - xm) / xs, (y_train - ym) / ys)
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    mu, sd = gp.predict((x_test - xm) / xs, return_std=True)
    pred_s = (time.perf_counter() - t) / len(x_test)
    return mu * ys + ym, sd * ys, fit_s, pred_s


def mmgp_row(model, test, ref):
    """Scores and timings of a fitted MMGP on the test set. ``predict_s_per_case``: the whole
    test set's predict call over its cases (each distinct mesh morphed once, so 1/4 of a morph
    per case); ``predict_s_new_mesh``: one case on an unseen mesh, morphing included."""
    t = time.perf_counter()
    mean, std = model.predict(list(test.meshes), conditions(test), return_std=True)
    pred_s = (time.perf_counter() - t) / len(test)
    t = time.perf_counter()
    model.predict([test.meshes[0]], conditions(test)[:1], return_std=True)
    return {"scores": scores(mean, std, ref), "fit_s": model.fit_seconds_,
            "predict_s_per_case": pred_s, "predict_s_new_mesh": time.perf_counter() - t,
            "morph_s_per_mesh": float(np.mean(model.predict_morph_seconds_)),
            "shape_modes": int(model.shape_pca_.n_components_),
            "cp_modes": int(model.field_pca_["cp"].n_components_)}


def run_family(family, args):
    n_shapes = math.ceil(args.n_train / CPS) + math.ceil(args.n_test / CPS)
    mesh = "quick" if args.quick or args.coarse else "fine" if args.fine else "default"
    ds = dataset(family, n_shapes, mesh, args.data_dir)
    train, test = split(ds, args.n_train, args.n_test, args.seed)
    ref = {k: test.outputs([k])[:, 0] for k in SCALARS}
    ref["cp"] = test.field("cp")
    y_train = train.outputs(SCALARS)
    nodes = int(np.mean([len(m.points) for m in ds.meshes]))
    print(f"{family}: {len(train)} train / {len(test)} test samples, ~{nodes} nodes per mesh")
    rows = {}
    outputs = {k: y_train[:, j] for j, k in enumerate(SCALARS)}
    outputs["cp"] = train.field("cp")
    support = medoid_airfoil(train.meshes)
    names = {"rbf": "rbf", "elasticity": "elasticity",
             "elasticity-online": "elasticity, online POD"}
    groups = [mesh_key(m) for m in train.meshes]
    for morpher, name in names.items():
        if morpher not in args.morphers.split(","):
            continue
        model = MMGPRegressor(morpher=make_morpher(morpher), reference=support,
                              n_restarts=args.restarts, max_iter=args.max_iter,
                              optimizer=args.optimizer, seed=args.seed, calibration=None)
        try:
            model.fit(list(train.meshes), conditions(train), outputs)
        except ValueError as err:  # e.g. a morpher refusing a mesh: report, do not hide
            rows[f"MMGP ({name})"] = {"error": str(err), "scores": {}, "fit_s": None,
                                      "predict_s_per_case": None}
            print(f"  MMGP ({name}) failed: {err}")
            continue
        print(f"  MMGP ({name}) fitted in {model.fit_seconds_:.1f} s")
        for variant, (method, nugget) in UQ_VARIANTS.items():
            # the same fit; only the amplitudes (calibrated on the training shapes) and the
            # nugget differ
            tuned = copy.copy(model)
            tuned.gp_ = copy.copy(model.gp_)
            tuned.gp_.calibrate_amplitude(groups, method=method)
            tuned.truncation_nugget = nugget
            rows[f"MMGP ({name}) [{variant}]"] = mmgp_row(tuned, test, ref)
    # parameter GP
    mu, sd, fit_s, pred_s = gp_fit_predict(
        np.concatenate([train.inputs(PARAMS[family]), conditions(train)], 1), y_train,
        np.concatenate([test.inputs(PARAMS[family]), conditions(test)], 1), args)
    rows["GP on true shape parameters"] = {
        "scores": scores(dict(zip(SCALARS, mu.T, strict=True)),
                         dict(zip(SCALARS, sd.T, strict=True)), ref),
        "fit_s": fit_s, "predict_s_per_case": pred_s}
    # surface-coordinate GP (no morphing)
    t = time.perf_counter()
    surf_train = np.stack([resampled_wall(m).ravel() for m in train.meshes])
    surf_s = (time.perf_counter() - t) / len(train)
    surf_test = np.stack([resampled_wall(m).ravel() for m in test.meshes])
    centre = surf_train.mean(0)
    _, s, vt = np.linalg.svd(surf_train - centre, full_matrices=False)
    k = int(np.searchsorted(np.cumsum(s**2) / np.sum(s**2), 0.999) + 1)

    def pca(x):
        return (x - centre) @ vt[:k].T

    mu, sd, fit_s, pred_s = gp_fit_predict(
        np.concatenate([pca(surf_train), conditions(train)], 1), y_train,
        np.concatenate([pca(surf_test), conditions(test)], 1), args)
    rows["GP on resampled wall coordinates"] = {
        "scores": scores(dict(zip(SCALARS, mu.T, strict=True)),
                         dict(zip(SCALARS, sd.T, strict=True)), ref),
        "fit_s": fit_s + surf_s * len(train), "predict_s_per_case": pred_s + surf_s,
        "pca_modes": k}
    # NeuralFoil
    try:
        import neuralfoil
    except ImportError:
        print("  neuralfoil is not installed: skipped")
    else:
        t = time.perf_counter()
        cl, cd = [], []
        re = test.inputs(["reynolds"])[:, 0]
        for m, a, r in zip(test.meshes, test.inputs(["alpha"])[:, 0], re, strict=True):
            aero = neuralfoil.get_aero_from_coordinates(
                coordinates=closed_wall(m), alpha=float(a), Re=float(r), xtr_upper=0.0,
                xtr_lower=0.0, model_size="xlarge")
            cl.append(float(np.ravel(aero["CL"])[0]))
            cd.append(float(np.ravel(aero["CD"])[0]))
        rows["NeuralFoil xlarge (other physics)"] = {
            "scores": scores({"cl": np.array(cl), "cd": np.array(cd)}, None, ref),
            "fit_s": None, "predict_s_per_case": (time.perf_counter() - t) / len(test)}
    return {"n_train": len(train), "n_test": len(test), "nodes_per_mesh": nodes,
            "methods": rows}


def fmt(v, spec=".3g"):
    return "-" if v is None or (isinstance(v, float) and not np.isfinite(v)) else format(v, spec)


def table(results) -> str:
    head = ("| family | method | cl RRMSE | cd RRMSE | cp RRMSE | Q^2 cl | Q^2 cd | Q^2 cp | "
            "90 / 95% cov. cl, cd, cp | CRPS cl / cd | fit s | predict s/case | new mesh s |")
    lines = [head, "|" + "---|" * 13]
    for family, res in results.items():
        for name, row in res["methods"].items():
            s = row["scores"]
            if "error" in row:
                lines.append(f"| {family} | {name} | failed: {row['error'][:80]} |" + " |" * 11)
                continue

            def g(k, m, s=s):
                return s.get(k, {}).get(m)

            cov = ", ".join(f"{fmt(g(k, 'coverage_90%'), '.2f')} / "
                            f"{fmt(g(k, 'coverage_95%'), '.2f')}" for k in ("cl", "cd", "cp"))
            crps = " / ".join(fmt(g(k, "crps"), ".2g") for k in ("cl", "cd"))
            lines.append(
                f"| {family} | {name} | {fmt(g('cl', 'rrmse'))} | {fmt(g('cd', 'rrmse'))} | "
                f"{fmt(g('cp', 'rrmse'))} | {fmt(g('cl', 'q2'), '.4f')} | "
                f"{fmt(g('cd', 'q2'), '.4f')} | {fmt(g('cp', 'q2'), '.4f')} | {cov} | {crps} | "
                f"{fmt(row['fit_s'], '.1f')} | {fmt(row['predict_s_per_case'], '.3f')} | "
                f"{fmt(row.get('predict_s_new_mesh'), '.3f')} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-train", type=int, default=120)
    parser.add_argument("--n-test", type=int, default=40)
    parser.add_argument("--families", default="naca4,cst")
    parser.add_argument("--restarts", type=int, default=3)
    parser.add_argument("--max-iter", type=int, default=50)
    parser.add_argument("--optimizer", choices=("lbfgs", "adam"), default="lbfgs",
                        help="GP hyperparameter optimiser (L-BFGS: 50 iterations reach Adam's "
                             "200-iteration accuracy in a third of the time)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default="/tmp/mmgp_airfoil_data",
                        help="cache of the generated datasets")
    parser.add_argument("--quick", action="store_true", help="small smoke run (coarse meshes)")
    parser.add_argument("--coarse", action="store_true",
                        help="the smoke run's coarse meshes (about 1 200 nodes) at any size")
    parser.add_argument("--morphers", default="rbf,elasticity,elasticity-online",
                        help="MMGP morphers to run (comma-separated)")
    parser.add_argument("--fine", action="store_true",
                        help="meshes of about 21 000 nodes (the issue's 20k-node size)")
    args = parser.parse_args()
    if args.quick:
        args.n_train, args.n_test = 24, 8
    started = time.perf_counter()
    name = ("mmgp_airfoil_quick.json" if args.quick else
            f"mmgp_airfoil_{args.n_train}_fine.json" if args.fine else
            f"mmgp_airfoil_{args.n_train}_coarse.json" if args.coarse else "mmgp_airfoil.json")
    results = {}
    for family in args.families.split(","):
        results[family] = run_family(family, args)
        text = table(results)
        write_results({"config": vars(args), "results": results, "table": text, "paper": PAPER,
                       "wall_s": time.perf_counter() - started},
                      ROOT / "benchmarks" / "results" / name)  # after each family
    print(text)
    print("\nMMGP cp: Pearson correlation over test samples of RMS predicted std and RMS error")
    for family, res in results.items():
        for name, row in res["methods"].items():
            cp = row["scores"].get("cp", {})
            if "std_error_correlation" in cp:
                print(f"  {family} {name}: {cp['std_error_correlation']:.2f} (relative spread "
                      f"of std {cp['std_relative_spread']:.2f}, of error "
                      f"{cp['error_relative_spread']:.2f})")
    print(f"\nPaper (AirfRANS, 800 train): cl RRMSE {PAPER['cl']}, cd {PAPER['cd']}, cp field "
          f"{PAPER['cp']}. Goals: cl < 8e-3, cd < 3.3e-2 with 400 train, coverage 0.90-0.98, "
          "within 1.5x of the parameter GP, fit < 5 min (400 x 20k nodes), predict < 1 s.")


if __name__ == "__main__":
    main()
