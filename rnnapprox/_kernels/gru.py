"""Kernel pieces of GRU networks (PyTorch's ``nn.GRU`` cell), for the row loop.

The state of a row is ``h`` (``n_units`` entries) and its drive the input part
of the three gates, ``d = W_i u + b_i`` (``3 n_units``, PyTorch's order ``r, z,
n``). With ``q = W_h h + b_h`` (same order)::

    r = sigmoid(d_r + q_r),  z = sigmoid(d_z + q_z),  n = tanh(d_n + r * q_n)
    dh/dt = (1 - z) * (n - h)

The model is ``(W_h^T, b_h, dt)``; the work arrays are ``(g, hidden, product,
keep)``: ``g`` the field ``n - h`` of each slot, ``hidden`` a contiguous copy of
the block's ``h``, ``product`` the block's ``h W_h^T`` (the one matrix product
of a step, for the three gates at once) and ``keep`` the rate ``1 - z``.
"""

import numba
import numpy as np


def gru_model(hidden_weights, hidden_bias, dt):
    """The kernel model of a GRU network: C-ordered float64 arrays and ``dt``."""
    return (
        np.ascontiguousarray(np.asarray(hidden_weights, dtype=np.float64).T),
        np.ascontiguousarray(hidden_bias, dtype=np.float64),
        float(dt),
    )


@numba.njit(inline="always")
def gru_work(model, size, n_state):
    return (np.empty((size, n_state)), np.empty((size, n_state)), np.empty((size, 3 * n_state)),
            np.empty((size, n_state)))


@numba.njit(inline="always")
def gru_evaluate(model, slot_f, work, n_active):
    """``product[:n_active] = h @ W_h^T``: one matrix product for the three gates of a block."""
    weights_t = model[0]
    _, hidden, product, _ = work
    n = hidden.shape[1]
    for i in range(n_active):
        for j in range(n):
            hidden[i, j] = slot_f[i, j]
    np.dot(hidden[:n_active], weights_t, product[:n_active])


@numba.njit(inline="always")
def gru_field(model, slot_f, work, i):
    """``g[i] = n(h) - h`` and ``keep[i] = 1 - z(h)``; return ``max|n - h|`` and ``max|h|``.

    The residual leaves out the rate ``1 - z`` so that a unit frozen by an
    update gate near 1 is not taken as settled.
    """
    bias = model[1]
    g, _, product, keep = work
    n = g.shape[1]
    residual = 0.0
    largest = 0.0
    for j in range(n):
        h = slot_f[i, j]
        reset = 1.0 / (1.0 + np.exp(-(slot_f[i, n + j] + product[i, j] + bias[j])))
        # 1 - sigmoid(a) = sigmoid(-a), without the cancellation near z = 1.
        keep[i, j] = 1.0 / (1.0 + np.exp(slot_f[i, 2 * n + j] + product[i, n + j] + bias[n + j]))
        candidate = np.tanh(slot_f[i, 3 * n + j] + reset * (product[i, 2 * n + j] + bias[2 * n + j]))
        v = candidate - h
        g[i, j] = v
        residual = max(residual, abs(v))
        largest = max(largest, abs(h))
    return residual, largest


@numba.njit(inline="always")
def gru_advance(model, slot_f, work, i):
    """Euler step ``h += dt (1 - z) (n - h)``; with ``dt = 1`` the GRU cell's own update."""
    dt = model[2]
    g, _, _, keep = work
    for j in range(g.shape[1]):
        slot_f[i, j] += dt * keep[i, j] * g[i, j]
