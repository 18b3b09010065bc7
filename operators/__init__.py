"""Learned function-space models (PyTorch ``nn.Module`` s, channels-first tensors).

One module per family; every model records its constructor arguments so that it can be rebuilt
from a checkpoint without pickled code (:mod:`operators.base`).
"""

from operators.autoregressive import AutoregressiveStepper
from operators.base import OperatorModel, build, load_model, save_model
from operators.cape import CAPEOperator
from operators.deeponet import DeepONet
from operators.fno import FNO
from operators.mgno import MgNO
from operators.mno import (
    HybridLorenz96,
    LocalMLPClosure,
    MNOClosure,
    NextStateFNO,
    PolynomialClosure,
)
from operators.normalization import NormalizedOperator, Normalizer
from operators.unet import UNet1d

__all__ = ["FNO", "AutoregressiveStepper", "CAPEOperator", "DeepONet", "HybridLorenz96",
           "LocalMLPClosure", "MgNO", "MNOClosure", "NextStateFNO", "NormalizedOperator",
           "Normalizer", "OperatorModel", "PolynomialClosure", "UNet1d", "build", "load_model",
           "save_model"]
