"""Numba kernels: plain arrays in, plain arrays out, no estimator objects.

``rowloop.integrate_rows`` is the one row loop; ``rate``, ``gated`` and ``gru`` hold the
pieces of each network family, ``anderson`` and ``active_set`` those of each
accelerated method. Every kernel is compiled lazily on first call (no eager
signatures, so read-only and F-ordered inputs work) and once per process, and
cached on disk where a cache location is writable (``_common.jit``;
``RNNAPPROX_NUMBA_CACHE=0`` turns it off).
"""

from collections import namedtuple

import numpy as np

from ._common import CERTIFIED, CONVERGED, DIVERGED, MAX_STEPS, SETTLED, STATUS_NAMES
from .rowloop import ACTIVE_SET, ANDERSON, EULER, GATED, GRU, RATE, row_loop

__all__ = [
    "KernelResult", "integrate", "CONVERGED", "DIVERGED", "MAX_STEPS", "SETTLED", "CERTIFIED",
    "STATUS_NAMES", "RATE", "GATED", "GRU", "EULER", "ANDERSON", "ACTIVE_SET",
]

#: What integrating rows gives, one entry per row (see ``rowloop.integrate_rows``):
#: ``n_steps`` counts Euler steps plus ``iterations``, the steps of an accelerated
#: method beyond Euler's (Anderson's; 0 for the others).
KernelResult = namedtuple("KernelResult", ["states", "residual", "n_steps", "status", "contraction",
                                           "iterations"])


def empty_result(n_rows, n_state):
    """A ``KernelResult`` to fill: NaN contraction, zero steps and status."""
    return KernelResult(np.empty((n_rows, n_state)), np.empty(n_rows), np.zeros(n_rows, dtype=np.int64),
                        np.zeros(n_rows, dtype=np.int8), np.full(n_rows, np.nan),
                        np.zeros(n_rows, dtype=np.int64))


def integrate(family, method, model, options, row_data, drive, initial, tol, max_steps,
              divergence_threshold, block_size, start_steps, windows):
    """The row loop of ``family`` and ``method`` on C-ordered copies, as a ``KernelResult``.

    The arithmetic is the dtype of ``model``'s arrays (float64, or float32 for
    the transient of mixed precision); ``drive`` and ``initial`` are cast to it.
    ``start_steps`` and ``windows`` resume rows (see ``rowloop``;
    ``_methods._base.resume_arrays`` makes those of fresh rows); ``windows`` is
    updated in place.
    """
    dtype = model[0].dtype
    return KernelResult(*row_loop(family, method)(
        model, options, row_data,
        np.require(drive, dtype=dtype, requirements=["C"]),
        np.require(initial, dtype=dtype, requirements=["C"]),
        np.require(start_steps, dtype=np.int64, requirements=["C"]), windows,
        float(tol), int(max_steps), float(divergence_threshold), int(block_size),
    ))
