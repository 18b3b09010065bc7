"""Common test of every registered operator: a checkpoint round trip gives the same model.

For each class in :func:`operators.base.registered` a tiny instance has its weights moved off
their initial values, is saved with :func:`operators.base.save_model` and read back with
:func:`operators.base.load_model` (``torch.load(weights_only=True)``: no pickled code runs);
the reloaded model must give the same output bit for bit, and a freshly built model of the same
config must not (so the weights really came from the file). A newly registered class fails
:func:`test_every_registered_operator_has_an_example` until it gets an entry in ``EXAMPLES``.
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest
import torch

import operators
import surrogates
from operators.base import build, load_model, registered, save_model

# Import every module of both packages, so that the registry holds every class that any of them
# registers (operators register by class name when their module is imported).
for _package in (operators, surrogates):
    for _info in pkgutil.walk_packages(_package.__path__, f"{_package.__name__}."):
        if not _info.name.endswith("__main__"):
            importlib.import_module(_info.name)

_FNO1 = {"in_channels": 2, "out_channels": 1, "n_modes": [4], "hidden_channels": 8,
         "n_layers": 1}
_UNET = {"in_channels": 1, "out_channels": 1, "features": 4, "depth": 2, "groups": 2}


#: class name -> (config, function of a torch.Generator giving the forward's arguments).
EXAMPLES = {
    "FNO": ({**_FNO1, "in_channels": 1}, lambda g: (torch.randn(3, 1, 16, generator=g),)),
    "UNet1d": (_UNET, lambda g: (torch.randn(3, 1, 16, generator=g),)),
    "CAPEOperator": ({"in_channels": 1, "out_channels": 1, "n_params": 1, "base_class": "FNO",
                      "base_config": {"n_modes": [4], "hidden_channels": 8, "n_layers": 1},
                      "width": 8, "n_modes": 4},
                     lambda g: (torch.randn(3, 1, 16, generator=g),
                                torch.rand(3, 1, generator=g) + 0.1)),
    "AutoregressiveStepper": ({"step_class": "FNO", "step_config": {**_FNO1, "in_channels": 1},
                               "context": 1},
                              lambda g: (torch.randn(2, 1, 4, 16, generator=g),)),
    "DeepONet": ({"branch_in": 5, "trunk_in": 2, "n_basis": 6, "branch_hidden": [8],
                  "trunk_hidden": [8]},
                 lambda g: (torch.randn(3, 5, generator=g), torch.randn(3, 7, 2, generator=g))),
    "MgNO": ({"in_channels": 1, "out_channels": 1, "hidden_channels": 4, "n_layers": 1,
              "levels": 2}, lambda g: (torch.randn(2, 1, 16, 16, generator=g),)),
    "MNOClosure": ({"n_modes": [4], "hidden_channels": 8, "n_layers": 1},
                   lambda g: (torch.randn(3, 1, 12, generator=g),)),
    "LocalMLPClosure": ({"stencil": 1, "hidden_channels": 8},
                        lambda g: (torch.randn(3, 1, 12, generator=g),)),
    "PolynomialClosure": ({"degree": 3}, lambda g: (torch.randn(3, 1, 12, generator=g),)),
    "NextStateFNO": ({"step_mtu": 0.05, "n_modes": [4], "hidden_channels": 8, "n_layers": 1},
                     lambda g: (torch.randn(3, 1, 12, generator=g),)),
    "UnrolledHybrid": ({"closure_class": "MNOClosure", "dt": 0.005, "substeps": 2,
                        "n_frames": 2,
                        "closure_config": {"n_modes": [4], "hidden_channels": 8, "n_layers": 1}},
                       lambda g: (torch.cat([torch.randn(3, 1, 12, generator=g),
                                             torch.full((3, 1, 12), 10.0)], dim=1),)),
    "NormalizedOperator": ({"model_class": "FNO", "model_config": {**_FNO1, "in_channels": 1}},
                           lambda g: (torch.randn(3, 1, 16, generator=g),)),
}


def test_every_registered_operator_has_an_example():
    assert sorted(registered()) == sorted(EXAMPLES)


def _moved_off_init(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Add noise to every floating parameter and buffer (so a reload that re-initialises, or
    loses a buffer, shows)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            if tensor.is_floating_point():
                tensor.add_(0.1 * torch.randn(tensor.shape, generator=g, dtype=tensor.dtype))
            elif tensor.is_complex():
                tensor.add_(0.1 * torch.randn(tensor.shape, generator=g, dtype=tensor.dtype))
    return model


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_checkpoint_round_trip(name, tmp_path):
    config, make_inputs = EXAMPLES[name]
    torch.manual_seed(0)
    model = _moved_off_init(build(name, config), seed=1).eval()
    inputs = make_inputs(torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = model(*inputs)
    save_model(model, tmp_path / "model.pt")
    reloaded = load_model(tmp_path / "model.pt").eval()
    assert type(reloaded) is type(model)
    assert reloaded.config == model.config
    with torch.no_grad():
        torch.testing.assert_close(reloaded(*inputs), expected, rtol=0, atol=0)
        torch.manual_seed(0)
        fresh = build(name, config).eval()
        assert not torch.allclose(fresh(*inputs), expected)
