"""Scientific surrogate modelling: reference solvers -> datasets -> operators / MMGP -> predictions.

Subpackages: :mod:`surrogates.solvers` (JAX reference solvers), :mod:`surrogates.data` (dataset
layer and loaders), :mod:`surrogates.training` (fitting loops), :mod:`surrogates.cli` (the
``surrogates`` command). Learned operators live in the sibling package :mod:`operators`.
"""

from importlib import metadata

try:
    __version__ = metadata.version("surrogates")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "unknown"
