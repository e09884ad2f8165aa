"""Numba kernels: plain arrays in, plain arrays out, no estimator objects.

Every kernel is compiled lazily on first call (no eager signatures, so
read-only and F-ordered inputs work) and compiled once per process; caching to
disk is opt-in through the ``RNNAPPROX_NUMBA_CACHE`` environment variable so a
read-only install still imports.
"""

import os

import numba
import numpy as np

_CACHE = os.environ.get("RNNAPPROX_NUMBA_CACHE", "0") not in ("", "0", "false", "False")

#: Status codes of the integration kernels, see ``STATUS_NAMES``.
CONVERGED, DIVERGED, MAX_STEPS = 0, 1, 2
STATUS_NAMES = np.array(["converged", "diverged", "max_steps"])

#: Activation codes understood by the kernels.
ACTIVATION_CODES = {"relu": 0, "tanh": 1}


@numba.njit(inline="always")
def _activate(value, activation):
    if activation == 0:
        return value if value > 0.0 else 0.0
    return np.tanh(value)


@numba.njit(inline="always")
def _window_update(step, max_steps, residual, window_mid, window_late, slot):
    """Track the residual's minimum over the 2nd and maximum over the 4th quarter.

    The second quarter is ``max_steps / 4 <= step < max_steps / 2``, the last
    ``step >= 3 max_steps / 4``. Their ratio ``max(last) / min(second)`` is
    well below 1 only for a row whose residual is still shrinking at
    ``max_steps``; the dips of a chaotic or oscillating residual do not fake
    it, since the maximum over the last quarter catches the peaks.
    """
    if 4 * step >= max_steps and 2 * step < max_steps:
        if residual < window_mid[slot]:
            window_mid[slot] = residual
    if 4 * step >= 3 * max_steps:
        if residual > window_late[slot] or not np.isfinite(residual):
            window_late[slot] = residual


@numba.njit(inline="always")
def _window_ratio(code, window_mid, window_late):
    if code != MAX_STEPS or not (np.isfinite(window_mid) and np.isfinite(window_late)):
        return np.nan
    if window_mid == 0.0 or window_late < 0.0:
        return np.nan
    return window_late / window_mid


@numba.njit(cache=_CACHE, nogil=True)
def _integrate_rows(
    rows,
    drive,
    initial_states,
    weights_t,
    rate_scale,
    tol,
    max_steps,
    divergence_threshold,
    activation,
    block_size,
    states,
    residuals,
    n_steps,
    status,
    contraction,
):
    """Euler-integrate the rows ``rows`` in a refilling block of ``block_size``.

    Every step evaluates ``g = W f(x) + d - x`` for all rows in the block with
    one matrix product; a row leaves the block when ``max|g| <= tol``
    (converged), when its state is non-finite or exceeds
    ``divergence_threshold * (1 + max|d|)`` (diverged), or after
    ``max_steps`` updates, and the next pending row takes its slot. For rows
    stopped at ``max_steps``, ``contraction`` receives the residual trend
    (see ``_window_update``).
    """
    n_units = drive.shape[1]
    n_rows = rows.shape[0]
    size = min(block_size, n_rows)
    x = np.empty((size, n_units))
    d = np.empty((size, n_units))
    rates = np.empty((size, n_units))
    g = np.empty((size, n_units))
    slot_row = np.empty(size, dtype=np.int64)
    slot_steps = np.zeros(size, dtype=np.int64)
    slot_bound = np.empty(size)
    slot_mid = np.full(size, np.inf)
    slot_late = np.full(size, -1.0)
    next_row = 0
    n_active = 0
    while n_active < size:
        r = rows[next_row]
        bound = 0.0
        for j in range(n_units):
            x[n_active, j] = initial_states[r, j]
            d[n_active, j] = drive[r, j]
            bound = max(bound, abs(drive[r, j]))
        slot_row[n_active] = r
        slot_bound[n_active] = divergence_threshold * (1.0 + bound)
        slot_steps[n_active] = 0
        n_active += 1
        next_row += 1

    while n_active > 0:
        for i in range(n_active):
            for j in range(n_units):
                rates[i, j] = _activate(x[i, j], activation)
        np.dot(rates[:n_active], weights_t, g[:n_active])
        i = 0
        while i < n_active:
            residual = 0.0
            largest = 0.0
            for j in range(n_units):
                v = g[i, j] + d[i, j] - x[i, j]
                g[i, j] = v
                residual = max(residual, abs(v))
                largest = max(largest, abs(x[i, j]))
            finite = np.isfinite(residual) and np.isfinite(largest)
            _window_update(slot_steps[i], max_steps, residual, slot_mid, slot_late, i)
            if finite and residual <= tol:
                code = CONVERGED
            elif not finite or largest > slot_bound[i]:
                code = DIVERGED
            elif slot_steps[i] >= max_steps:
                code = MAX_STEPS
            else:
                for j in range(n_units):
                    x[i, j] += rate_scale[j] * g[i, j]
                slot_steps[i] += 1
                i += 1
                continue
            r = slot_row[i]
            for j in range(n_units):
                states[r, j] = x[i, j]
            residuals[r] = residual
            n_steps[r] = slot_steps[i]
            status[r] = code
            contraction[r] = _window_ratio(code, slot_mid[i], slot_late[i])
            # Refill the slot with the next pending row, or close the gap.
            if next_row < n_rows:
                r = rows[next_row]
                next_row += 1
                source = -1
            else:
                n_active -= 1
                source = n_active
            if source < 0:
                bound = 0.0
                for j in range(n_units):
                    x[i, j] = initial_states[r, j]
                    d[i, j] = drive[r, j]
                    bound = max(bound, abs(drive[r, j]))
                slot_row[i] = r
                slot_bound[i] = divergence_threshold * (1.0 + bound)
                slot_steps[i] = 0
                slot_mid[i] = np.inf
                slot_late[i] = -1.0
                # The refilled slot has no fresh product: evaluate it next step.
                i += 1
            elif source != i:
                for j in range(n_units):
                    x[i, j] = x[source, j]
                    d[i, j] = d[source, j]
                    g[i, j] = g[source, j]
                slot_row[i] = slot_row[source]
                slot_bound[i] = slot_bound[source]
                slot_steps[i] = slot_steps[source]
                slot_mid[i] = slot_mid[source]
                slot_late[i] = slot_late[source]
                # The moved row's g is still valid; examine it in this slot.
    return 0


@numba.njit(parallel=True, cache=_CACHE, nogil=True)
def euler_rate_fixed_points(
    drive,
    initial_states,
    weights,
    rate_scale,
    tol,
    max_steps,
    divergence_threshold,
    activation,
    block_size,
    n_workers,
):
    """Fixed points of ``tau dx/dt = -x + W f(x) + d`` by forward Euler.

    Parameters
    ----------
    drive : ndarray of shape (n_rows, n_units)
        Constant drive ``d = W_in u + b`` of each row.
    initial_states : ndarray of shape (n_rows, n_units)
        Start ``x0`` of each row.
    weights : ndarray of shape (n_units, n_units)
        Recurrent weights ``W``.
    rate_scale : ndarray of shape (n_units,)
        ``dt / tau`` per unit.
    tol : float
        Residual ``max|-x + W f(x) + d|`` at which a row has converged.
    max_steps : int
        Maximum number of Euler updates per row.
    divergence_threshold : float
        A row diverges when ``max|x| > divergence_threshold * (1 + max|d|)``
        or its state is not finite.
    activation : int
        0 for relu, 1 for tanh (see ``ACTIVATION_CODES``).
    block_size : int
        Rows integrated together, one matrix product per step.
    n_workers : int
        Independent groups of rows, run in parallel threads.

    Returns
    -------
    states : ndarray of shape (n_rows, n_units)
        State at the end (the state whose residual is reported).
    residuals : ndarray of shape (n_rows,)
        Residual of the returned state (may be inf or NaN for diverged rows).
    n_steps : ndarray of shape (n_rows,)
        Euler updates applied.
    status : ndarray of shape (n_rows,)
        ``CONVERGED``, ``DIVERGED`` or ``MAX_STEPS``.
    contraction : ndarray of shape (n_rows,)
        For ``MAX_STEPS`` rows, the largest residual over the last quarter
        of the steps divided by the smallest over the second quarter (well
        below 1: still settling); NaN for other rows.
    """
    n_rows, n_units = drive.shape
    states = np.empty((n_rows, n_units))
    residuals = np.empty(n_rows)
    n_steps = np.zeros(n_rows, dtype=np.int64)
    status = np.zeros(n_rows, dtype=np.int8)
    contraction = np.full(n_rows, np.nan)
    weights_t = np.ascontiguousarray(weights.T)
    drive_c = np.ascontiguousarray(drive)
    initial_c = np.ascontiguousarray(initial_states)
    scale_c = np.ascontiguousarray(rate_scale)
    n_workers = max(1, min(n_workers, n_rows))
    for w in numba.prange(n_workers):
        rows = np.arange(w, n_rows, n_workers)
        if rows.shape[0] > 0:
            _integrate_rows(
                rows, drive_c, initial_c, weights_t, scale_c, tol, max_steps,
                divergence_threshold, activation, block_size,
                states, residuals, n_steps, status, contraction,
            )
    return states, residuals, n_steps, status, contraction


@numba.njit(inline="always")
def _gate(value, gain, offset):
    """Gate ``sigma(v) = 1 / (1 + exp(-gain * v + offset))``."""
    return 1.0 / (1.0 + np.exp(offset - gain * value))


@numba.njit(cache=_CACHE, nogil=True)
def _integrate_gated_rows(
    rows,
    drive,
    initial_states,
    weights_t,
    gate_weights_t,
    alpha_z,
    beta_z,
    alpha_r,
    beta_r,
    z_scale,
    r_scale,
    dt,
    tol,
    max_steps,
    divergence_threshold,
    block_size,
    states,
    residuals,
    n_steps,
    status,
    contraction,
):
    """Euler-integrate gated rows ``rows`` in a refilling block of ``block_size``.

    The state of a row is ``s = (h, z, r)`` (``3 n_units`` entries). Every
    step makes two matrix products for the whole block, ``J_h (sigma_r(r) *
    phi(h))`` and ``[J_z; J_r] phi(h)``, and evaluates the scaled field
    ``g = (-h + J_h (sigma_r phi) + d, -z + J_z phi, -r + J_r phi)``; the
    stopping rules and the slot refilling are those of ``_integrate_rows``.
    """
    n_units = drive.shape[1]
    n_state = 3 * n_units
    n_rows = rows.shape[0]
    size = min(block_size, n_rows)
    s = np.empty((size, n_state))
    d = np.empty((size, n_units))
    g = np.empty((size, n_state))
    rates = np.empty((size, n_units))
    gated = np.empty((size, n_units))
    product_h = np.empty((size, n_units))
    product_zr = np.empty((size, 2 * n_units))
    slot_row = np.empty(size, dtype=np.int64)
    slot_steps = np.zeros(size, dtype=np.int64)
    slot_bound = np.empty(size)
    slot_mid = np.full(size, np.inf)
    slot_late = np.full(size, -1.0)
    next_row = 0
    n_active = 0
    while n_active < size:
        r = rows[next_row]
        bound = 0.0
        for j in range(n_state):
            s[n_active, j] = initial_states[r, j]
        for j in range(n_units):
            d[n_active, j] = drive[r, j]
            bound = max(bound, abs(drive[r, j]))
        slot_row[n_active] = r
        slot_bound[n_active] = divergence_threshold * (1.0 + bound)
        slot_steps[n_active] = 0
        n_active += 1
        next_row += 1

    n2 = 2 * n_units
    while n_active > 0:
        for i in range(n_active):
            for j in range(n_units):
                a = np.tanh(s[i, j])
                rates[i, j] = a
                gated[i, j] = _gate(s[i, n2 + j], alpha_r[j], beta_r[j]) * a
        np.dot(gated[:n_active], weights_t, product_h[:n_active])
        np.dot(rates[:n_active], gate_weights_t, product_zr[:n_active])
        i = 0
        while i < n_active:
            residual = 0.0
            largest = 0.0
            for j in range(n_units):
                v = product_h[i, j] + d[i, j] - s[i, j]
                g[i, j] = v
                residual = max(residual, abs(v))
                largest = max(largest, abs(s[i, j]))
            for j in range(n_units, n_state):
                v = product_zr[i, j - n_units] - s[i, j]
                g[i, j] = v
                residual = max(residual, abs(v))
                largest = max(largest, abs(s[i, j]))
            finite = np.isfinite(residual) and np.isfinite(largest)
            _window_update(slot_steps[i], max_steps, residual, slot_mid, slot_late, i)
            if finite and residual <= tol:
                code = CONVERGED
            elif not finite or largest > slot_bound[i]:
                code = DIVERGED
            elif slot_steps[i] >= max_steps:
                code = MAX_STEPS
            else:
                for j in range(n_units):
                    # The z-gate rescales time: read z before it is updated.
                    s[i, j] += dt * _gate(s[i, n_units + j], alpha_z[j], beta_z[j]) * g[i, j]
                    s[i, n_units + j] += z_scale[j] * g[i, n_units + j]
                    s[i, n2 + j] += r_scale[j] * g[i, n2 + j]
                slot_steps[i] += 1
                i += 1
                continue
            r = slot_row[i]
            for j in range(n_state):
                states[r, j] = s[i, j]
            residuals[r] = residual
            n_steps[r] = slot_steps[i]
            status[r] = code
            contraction[r] = _window_ratio(code, slot_mid[i], slot_late[i])
            if next_row < n_rows:
                r = rows[next_row]
                next_row += 1
                source = -1
            else:
                n_active -= 1
                source = n_active
            if source < 0:
                bound = 0.0
                for j in range(n_state):
                    s[i, j] = initial_states[r, j]
                for j in range(n_units):
                    d[i, j] = drive[r, j]
                    bound = max(bound, abs(drive[r, j]))
                slot_row[i] = r
                slot_bound[i] = divergence_threshold * (1.0 + bound)
                slot_steps[i] = 0
                slot_mid[i] = np.inf
                slot_late[i] = -1.0
                i += 1
            elif source != i:
                # The moved row has not been examined yet: bring its products along.
                for j in range(n_state):
                    s[i, j] = s[source, j]
                for j in range(n_units):
                    d[i, j] = d[source, j]
                    product_h[i, j] = product_h[source, j]
                for j in range(2 * n_units):
                    product_zr[i, j] = product_zr[source, j]
                slot_row[i] = slot_row[source]
                slot_bound[i] = slot_bound[source]
                slot_steps[i] = slot_steps[source]
                slot_mid[i] = slot_mid[source]
                slot_late[i] = slot_late[source]
    return 0


@numba.njit(parallel=True, cache=_CACHE, nogil=True)
def euler_gated_fixed_points(
    drive,
    initial_states,
    weights,
    z_weights,
    r_weights,
    alpha_z,
    beta_z,
    alpha_r,
    beta_r,
    z_scale,
    r_scale,
    dt,
    tol,
    max_steps,
    divergence_threshold,
    block_size,
    n_workers,
):
    """Fixed points of the gated network by forward Euler on ``(h, z, r)``.

    The dynamics (Krishnamurthy, Can & Schwab, 2022), with ``phi = tanh`` and
    ``sigma_k(v) = 1 / (1 + exp(-alpha_k v + beta_k))``::

        dh/dt       = sigma_z(z) (-h + J_h (sigma_r(r) phi(h)) + d)
        tau_z dz/dt = -z + J_z phi(h)
        tau_r dr/dt = -r + J_r phi(h)

    Parameters
    ----------
    drive : ndarray of shape (n_rows, n_units)
        Constant drive ``d = W_in u + b`` of each row.
    initial_states : ndarray of shape (n_rows, 3 * n_units)
        Start ``(h0, z0, r0)`` of each row.
    weights, z_weights, r_weights : ndarray of shape (n_units, n_units)
        Couplings ``J_h``, ``J_z``, ``J_r``.
    alpha_z, beta_z, alpha_r, beta_r : ndarray of shape (n_units,)
        Gate gains and offsets.
    z_scale, r_scale : ndarray of shape (n_units,)
        ``dt / tau_z`` and ``dt / tau_r``.
    dt : float
        Euler step of ``h`` (whose time constant is 1).
    tol : float
        Residual (infinity norm of ``(-h + J_h (sigma_r phi) + d, -z + J_z phi,
        -r + J_r phi)``) at which a row has converged.
    max_steps, divergence_threshold, block_size, n_workers
        As for :func:`euler_rate_fixed_points`, on the whole state.

    Returns
    -------
    states : ndarray of shape (n_rows, 3 * n_units)
        ``(h, z, r)`` at the end.
    residuals, n_steps, status, contraction : ndarray of shape (n_rows,)
        As for :func:`euler_rate_fixed_points`.
    """
    n_rows, n_units = drive.shape
    states = np.empty((n_rows, 3 * n_units))
    residuals = np.empty(n_rows)
    n_steps = np.zeros(n_rows, dtype=np.int64)
    status = np.zeros(n_rows, dtype=np.int8)
    contraction = np.full(n_rows, np.nan)
    weights_t = np.ascontiguousarray(weights.T)
    gate_weights_t = np.empty((n_units, 2 * n_units))
    gate_weights_t[:, :n_units] = z_weights.T
    gate_weights_t[:, n_units:] = r_weights.T
    drive_c = np.ascontiguousarray(drive)
    initial_c = np.ascontiguousarray(initial_states)
    gains = np.empty((6, n_units))
    gains[0] = alpha_z
    gains[1] = beta_z
    gains[2] = alpha_r
    gains[3] = beta_r
    gains[4] = z_scale
    gains[5] = r_scale
    n_workers = max(1, min(n_workers, n_rows))
    for w in numba.prange(n_workers):
        rows = np.arange(w, n_rows, n_workers)
        if rows.shape[0] > 0:
            _integrate_gated_rows(
                rows, drive_c, initial_c, weights_t, gate_weights_t,
                gains[0], gains[1], gains[2], gains[3], gains[4], gains[5],
                dt, tol, max_steps, divergence_threshold, block_size,
                states, residuals, n_steps, status, contraction,
            )
    return states, residuals, n_steps, status, contraction
