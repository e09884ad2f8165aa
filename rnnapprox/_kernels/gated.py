"""Kernel pieces of gated networks (Krishnamurthy, Can & Schwab, 2022), for the row loop.

The state of a row is ``s = (h, z, r)`` (``3 n_units`` entries) and its drive
``d = W_in u + b`` (``n_units``). The model is ``(J_h^T, [J_z; J_r]^T, gains,
dt)`` with ``gains`` the rows ``alpha_z, beta_z, alpha_r, beta_r, dt / tau_z,
dt / tau_r``; a step makes two matrix products for the whole block, ``J_h
(sigma_r(r) phi(h))`` and ``[J_z; J_r] phi(h)``.
"""

import numba
import numpy as np


def gated_model(weights, z_weights, r_weights, alpha_z, beta_z, alpha_r, beta_r, z_scale, r_scale,
                dt):
    """The kernel model of a gated network: C-ordered float64 arrays and ``dt``."""
    gate_weights_t = np.ascontiguousarray(np.hstack([z_weights.T, r_weights.T]), dtype=np.float64)
    gains = np.ascontiguousarray(
        np.vstack([alpha_z, beta_z, alpha_r, beta_r, z_scale, r_scale]), dtype=np.float64
    )
    return np.ascontiguousarray(weights.T, dtype=np.float64), gate_weights_t, gains, float(dt)


@numba.njit(inline="always")
def _gate(value, gain, offset):
    """Gate ``sigma(v) = 1 / (1 + exp(-gain * v + offset))``."""
    return 1.0 / (1.0 + np.exp(offset - gain * value))


@numba.njit(inline="always")
def gated_work(model, size, n_state):
    n = n_state // 3
    return (np.empty((size, n_state)), np.empty((size, n)), np.empty((size, n)),
            np.empty((size, n)), np.empty((size, 2 * n)))


@numba.njit(inline="always")
def gated_evaluate(model, slot_f, work, n_active):
    weights_t, gate_weights_t, gains, _ = model
    _, rates, gated, product_h, product_zr = work
    n = rates.shape[1]
    for i in range(n_active):
        for j in range(n):
            a = np.tanh(slot_f[i, j])
            rates[i, j] = a
            gated[i, j] = _gate(slot_f[i, 2 * n + j], gains[2, j], gains[3, j]) * a
    np.dot(gated[:n_active], weights_t, product_h[:n_active])
    np.dot(rates[:n_active], gate_weights_t, product_zr[:n_active])


@numba.njit(inline="always")
def gated_field(model, slot_f, work, i):
    """``g[i] = (-h + J_h (sigma_r phi) + d, -z + J_z phi, -r + J_r phi)``; its max and ``max|s|``."""
    g, _, _, product_h, product_zr = work
    n = product_h.shape[1]
    n_state = 3 * n
    residual = 0.0
    largest = 0.0
    for j in range(n):
        v = product_h[i, j] + slot_f[i, n_state + j] - slot_f[i, j]
        g[i, j] = v
        residual = max(residual, abs(v))
        largest = max(largest, abs(slot_f[i, j]))
    for j in range(n, n_state):
        v = product_zr[i, j - n] - slot_f[i, j]
        g[i, j] = v
        residual = max(residual, abs(v))
        largest = max(largest, abs(slot_f[i, j]))
    return residual, largest


@numba.njit(inline="always")
def gated_advance(model, slot_f, work, i):
    """Euler step of ``(h, z, r)``; the z-gate rescales the time of ``h``."""
    gains, dt = model[2], model[3]
    g = work[0]
    n = gains.shape[1]
    for j in range(n):
        # Read z before it is updated.
        slot_f[i, j] += dt * _gate(slot_f[i, n + j], gains[0, j], gains[1, j]) * g[i, j]
        slot_f[i, n + j] += gains[4, j] * g[i, n + j]
        slot_f[i, 2 * n + j] += gains[5, j] * g[i, 2 * n + j]
