"""Kernel pieces of rate networks, ``tau dx/dt = -x + W f(x) + d``, for the row loop.

The model is the tuple ``(W^T, dt / tau, activation code)``; the work arrays are
``(g, rates)``, ``g`` holding the field ``W f(x) + d - x`` of each slot.
"""

import numba
import numpy as np

from .._activations import activate


def rate_model(weights, rate_scale, activation_code, dtype=np.float64):
    """The kernel model of a rate network: C-ordered arrays of ``dtype`` and an int code."""
    return (
        np.ascontiguousarray(np.asarray(weights).T, dtype=dtype),
        np.ascontiguousarray(rate_scale, dtype=dtype),
        int(activation_code),
    )


@numba.njit(inline="always")
def rate_work(model, size, n_state):
    dtype = model[0].dtype
    return np.empty((size, n_state), dtype=dtype), np.empty((size, n_state), dtype=dtype)


@numba.njit(inline="always")
def rate_evaluate(model, slot_f, work, n_active):
    """``g[:n_active] = f(x) @ W^T``: the one matrix product of a block's step."""
    weights_t, _, code = model
    g, rates = work
    for i in range(n_active):
        for j in range(g.shape[1]):
            rates[i, j] = activate(slot_f[i, j], code)
    np.dot(rates[:n_active], weights_t, g[:n_active])


@numba.njit(inline="always")
def rate_field(model, slot_f, work, i):
    """Turn ``g[i]`` into the field ``W f(x) + d - x``; return its ``max|.|`` and ``max|x|``."""
    g = work[0]
    n = g.shape[1]
    residual = 0.0
    largest = 0.0
    for j in range(n):
        v = g[i, j] + slot_f[i, n + j] - slot_f[i, j]
        g[i, j] = v
        residual = max(residual, abs(v))
        largest = max(largest, abs(slot_f[i, j]))
    return residual, largest


@numba.njit(inline="always")
def rate_advance(model, slot_f, work, i):
    """Euler step ``x += (dt / tau) g``."""
    rate_scale = model[1]
    g = work[0]
    for j in range(g.shape[1]):
        slot_f[i, j] += rate_scale[j] * g[i, j]
