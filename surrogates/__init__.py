"""Scientific surrogate modelling: reference solvers -> datasets -> models -> predictions.

The package is layered; imports run one way (``tests/test_layers.py`` enforces it)::

    cli/  ->  demo/  ->  runs/  ->  models/  ->  metrics/  ->  training.py  ->  data/
    everything may use solvers/, the sibling packages operators/ and meshes/, and plots.py,
    distributed.py, coupling.py

A problem family (lorenz96, pde1d, darcy, acoustics, climatebench, airfoil, pinn) bears one name
in every layer and is registered by one row of ``surrogates.cli.FAMILIES``.

Module paths of the flat 0.x layout (``surrogates.uq``, ``surrogates.mmgp``, ...) still import,
with a :class:`DeprecationWarning`, for one release; see :data:`MOVED_MODULES`.
"""

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from importlib import metadata

try:
    __version__ = metadata.version("surrogates")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "unknown"

#: Old module path -> new module path (deprecated aliases, to be removed in the next release).
MOVED_MODULES = {
    "surrogates.gp": "surrogates.models.gp",
    "surrogates.mmgp": "surrogates.models.mmgp",
    "surrogates.climate_emulators": "surrogates.models.climatebench",
    "surrogates.pinn": "surrogates.models.pinn",
    "surrogates.pinn_losses": "surrogates.models.pinn.losses",
    "surrogates.pinn_problems": "surrogates.models.pinn.problems",
    "surrogates.uq": "surrogates.metrics.uq",
    "surrogates.pde_metrics": "surrogates.metrics.pde",
    "surrogates.mmgp_metrics": "surrogates.metrics.mesh",
    "surrogates.evaluation": "surrogates.metrics.dynamics",
    "surrogates.hybrid": "surrogates.runs.lorenz96",
    "surrogates.a_posteriori": "surrogates.runs.lorenz96_finetune",
    "surrogates.pde_rollout": "surrogates.runs.pde1d",
    "surrogates.acoustics": "surrogates.runs.acoustics",
    "surrogates.climate_runs": "surrogates.runs.climatebench",
    "surrogates.mmgp_runs": "surrogates.runs.airfoil",
    "surrogates.pinn_runs": "surrogates.runs.pinn",
    "surrogates.demo_sections": "surrogates.demo.sections",
    "surrogates.cli_acoustics": "surrogates.cli.acoustics",
    "surrogates.cli_airfoil": "surrogates.cli.airfoil",
    "surrogates.cli_climate": "surrogates.cli.climatebench",
    "surrogates.cli_mmgp": "surrogates.cli.airfoil",
    "surrogates.data.climate": "surrogates.data.lorenz96",
    "surrogates.data.acoustic": "surrogates.data.acoustics",
    "surrogates.data.deeponet_h5": "surrogates.data.acoustics_h5",
    "surrogates.coupling_export": "surrogates.coupling.export",
    "surrogates.coupling_torch": "surrogates.coupling.torch_export",
}


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old module path as its new module, warning once per import."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in MOVED_MODULES:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        new = MOVED_MODULES[spec.name]
        warnings.warn(f"{spec.name} moved to {new}; the old path goes away in the next release",
                      DeprecationWarning, stacklevel=3)
        return importlib.import_module(new)

    def exec_module(self, module):  # the new module is already executed
        pass


if not any(isinstance(f, _MovedModuleFinder) for f in sys.meta_path):
    sys.meta_path.append(_MovedModuleFinder())
