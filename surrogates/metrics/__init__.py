"""Scores, one module per kind of comparison (NumPy; inputs in physical units):
:mod:`.regression` (relative L2, RMSE, R^2), :mod:`.uq` (CRPS, NLL, coverage, spread-skill, PIT,
conformal recalibration), :mod:`.pde` (PDEBench rollout metrics), :mod:`.mesh` (MMGP scores on
per-mesh fields), :mod:`.dynamics` (skill by lead, valid prediction time, climate statistics),
:mod:`.climatebench` (ClimateBench NRMSE) and :mod:`.acoustics` (field and receiver errors)."""
