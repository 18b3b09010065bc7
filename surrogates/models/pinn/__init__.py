"""Physics-informed training in JAX: the training loop (:mod:`.training`), residual losses
(:mod:`.losses`) and declarative problems with references (:mod:`.problems`)."""

from surrogates.models.pinn import training
from surrogates.models.pinn.training import *  # noqa: F403  (the public entry points)

__all__ = list(training.__all__)
