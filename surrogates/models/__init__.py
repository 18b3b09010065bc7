"""Estimators users fit directly: batched exact GPs (:mod:`~surrogates.models.gp`), MMGP
(:mod:`~surrogates.models.mmgp`), ClimateBench emulators (:mod:`~surrogates.models.climatebench`)
and physics-informed training (:mod:`~surrogates.models.pinn`)."""
