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
):
    """Euler-integrate the rows ``rows`` in a refilling block of ``block_size``.

    Every step evaluates ``g = W f(x) + d - x`` for all rows in the block with
    one matrix product; a row leaves the block when ``max|g| <= tol``
    (converged), when its state is non-finite or exceeds
    ``divergence_threshold * (1 + max|d|)`` (diverged), or after
    ``max_steps`` updates, and the next pending row takes its slot.
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
    """
    n_rows, n_units = drive.shape
    states = np.empty((n_rows, n_units))
    residuals = np.empty(n_rows)
    n_steps = np.zeros(n_rows, dtype=np.int64)
    status = np.zeros(n_rows, dtype=np.int8)
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
                states, residuals, n_steps, status,
            )
    return states, residuals, n_steps, status
