"""Physics-informed training in JAX: the training loop (:mod:`.training`), problem and condition
declarations (:mod:`.spec`), residual losses (:mod:`.losses`), prediction and scoring
(:mod:`.evaluation`), problems with references (:mod:`.problems`) and their best settings
(:mod:`.defaults`)."""

from surrogates.models.pinn import training
from surrogates.models.pinn.training import *  # noqa: F403  (the public entry points)

__all__ = list(training.__all__)
