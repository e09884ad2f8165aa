"""Bridges to other frameworks: networks in from PyTorch and Rockpool, approximators out to ONNX.

The frameworks are optional dependencies, imported only inside the functions
that need them: ``import rnnapprox.interop`` imports none of torch, rockpool,
onnx, onnxruntime or skl2onnx. Install them with the extras ``rnnapprox[torch]``,
``rnnapprox[rockpool]`` and ``rnnapprox[onnx]``.
"""

from ._common import ImportedNetwork, Readout, fixed_point_stability
from ._onnx import register_skl2onnx, to_onnx
from ._rockpool import from_rockpool
from ._torch import from_torch

__all__ = [
    "ImportedNetwork",
    "Readout",
    "fixed_point_stability",
    "from_rockpool",
    "from_torch",
    "register_skl2onnx",
    "to_onnx",
]
