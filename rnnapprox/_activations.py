"""The activations of rate networks: one table, one entry per activation.

Each entry gives the activation's kernel code, its rate function ``f`` and its
slope ``f'`` (numpy, for outputs and Jacobians); :func:`activate` is the same
``f`` for the numba kernels, branch for branch. Adding an activation means
adding its entry to ``ACTIVATIONS`` and its branch to :func:`activate`, here
and nowhere else; :func:`get_activation` rejects every other name.
"""

from collections import namedtuple

import numba
import numpy as np
from scipy.special import expit

#: An activation: ``code`` selects its branch in :func:`activate`, ``rate`` is
#: ``f`` and ``slope`` is ``f'`` (``relu'(0) = 0``), both elementwise on arrays.
Activation = namedtuple("Activation", ["code", "rate", "slope"])


def _relu_slope(x):
    return (x > 0).astype(np.float64)


def _tanh_slope(x):
    return 1.0 - np.tanh(x) ** 2


def _sigmoid_slope(x):
    return expit(x) * expit(-x)  # not s (1 - s): 1 - s cancels to 0 for large x


ACTIVATIONS = {
    "relu": Activation(0, lambda x: np.maximum(x, 0.0), _relu_slope),
    "tanh": Activation(1, np.tanh, _tanh_slope),
    "sigmoid": Activation(2, expit, _sigmoid_slope),
}


def get_activation(name):
    """The table entry of activation ``name``; a ``ValueError`` for any other name."""
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {tuple(ACTIVATIONS)}; got {name!r}.")
    return ACTIVATIONS[name]


@numba.njit(inline="always")
def activate(value, code):
    """``f(value)`` of the activation with kernel ``code`` (see ``ACTIVATIONS``)."""
    if code == 0:
        return value if value > 0.0 else 0.0
    if code == 1:
        return np.tanh(value)
    if code == 2:
        # The logistic without overflow: exp of a non-positive number only.
        if value >= 0.0:
            return 1.0 / (1.0 + np.exp(-value))
        e = np.exp(value)
        return e / (1.0 + e)
    return np.nan  # unreachable: get_activation validates every code
