"""Feedforward approximations of recurrent rate networks, as scikit-learn estimators.

A recurrent rate network answers a constant input by settling into a fixed
point. :class:`RecurrentFixedPointTransformer` computes those fixed points by
numba-jitted Euler integration with per-row convergence diagnostics;
:class:`FeedforwardApproximator` learns the input -> fixed-point map with a
two-layer network that answers in one deterministic pass (Muir, 2018).
"""

from . import feedback, networks
from ._feedforward import FeedforwardApproximator
from ._recurrent import FixedPointResult, NonConvergenceError, RecurrentFixedPointTransformer

__version__ = "0.1.0.dev0"

__all__ = [
    "FeedforwardApproximator",
    "FixedPointResult",
    "NonConvergenceError",
    "RecurrentFixedPointTransformer",
    "feedback",
    "networks",
    "__version__",
]
