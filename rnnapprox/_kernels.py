"""Numba kernels: plain arrays in, plain arrays out, no estimator objects.

Every kernel is compiled lazily on first call (no eager signatures, so
read-only and F-ordered inputs work) and compiled once per process; caching to
disk is opt-in through the ``RNNAPPROX_NUMBA_CACHE`` environment variable so a
read-only install still imports.
"""

import os
import warnings

import numba
import numpy as np

_CACHE = os.environ.get("RNNAPPROX_NUMBA_CACHE", "0") not in ("", "0", "false", "False")


def _jit(**options):
    """``numba.njit`` with the opt-in disk cache; compile in memory where it cannot cache.

    numba raises ``RuntimeError`` at decoration time when ``cache=True`` finds no
    writable cache location (a read-only install): caching is never required.
    """

    def decorate(function):
        global _CACHE
        if _CACHE:
            try:
                return numba.njit(cache=True, **options)(function)
            except RuntimeError as exc:
                _CACHE = False
                warnings.warn(
                    f"RNNAPPROX_NUMBA_CACHE is set but numba cannot cache here ({exc}); "
                    "the kernels are compiled in memory.", RuntimeWarning, stacklevel=3,
                )
        return numba.njit(**options)(function)

    return decorate

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


@numba.njit(inline="always")
def result_arrays(n_rows, n_state):
    """Per-row outputs of a kernel: states, residuals, n_steps, status, contraction (NaN)."""
    return (np.empty((n_rows, n_state)), np.empty(n_rows), np.zeros(n_rows, dtype=np.int64),
            np.zeros(n_rows, dtype=np.int8), np.full(n_rows, np.nan))


@numba.njit(inline="always")
def _block_products(x, rates, weights_t, g, n_active, activation):
    """``g[:n_active] = f(x[:n_active]) @ W^T``: the one matrix product of a block's step."""
    for i in range(n_active):
        for j in range(x.shape[1]):
            rates[i, j] = _activate(x[i, j], activation)
    np.dot(rates[:n_active], weights_t, g[:n_active])


@numba.njit(inline="always")
def _row_field(g, d, x, i):
    """Turn ``g[i]`` into the vector field ``W f(x) + d - x`` of slot ``i``.

    Returns its residual ``max|g[i]|`` and the row's ``max|x|``.
    """
    residual = 0.0
    largest = 0.0
    for j in range(x.shape[1]):
        v = g[i, j] + d[i, j] - x[i, j]
        g[i, j] = v
        residual = max(residual, abs(v))
        largest = max(largest, abs(x[i, j]))
    return residual, largest


@numba.njit(inline="always")
def _load_row(slot, r, initial_states, drive, state, d, divergence_threshold,
              slot_row, slot_bound, slot_steps, slot_mid, slot_late, first_step):
    """Put pending row ``r`` in block slot ``slot``: start state, drive, fresh bookkeeping.

    The divergence bound of the row is ``divergence_threshold * (1 + max|d|)``;
    its step counter starts at ``first_step`` (a resumed integration).
    """
    for j in range(state.shape[1]):
        state[slot, j] = initial_states[r, j]
    bound = 0.0
    for j in range(d.shape[1]):
        d[slot, j] = drive[r, j]
        bound = max(bound, abs(drive[r, j]))
    slot_row[slot] = r
    slot_bound[slot] = divergence_threshold * (1.0 + bound)
    slot_steps[slot] = first_step
    slot_mid[slot] = np.inf
    slot_late[slot] = -1.0


@numba.njit(inline="always")
def _move_row(source, slot, state, d, slot_row, slot_bound, slot_steps, slot_mid, slot_late):
    """Move the row in block slot ``source`` to ``slot`` (state, drive, bookkeeping)."""
    for j in range(state.shape[1]):
        state[slot, j] = state[source, j]
    for j in range(d.shape[1]):
        d[slot, j] = d[source, j]
    slot_row[slot] = slot_row[source]
    slot_bound[slot] = slot_bound[source]
    slot_steps[slot] = slot_steps[source]
    slot_mid[slot] = slot_mid[source]
    slot_late[slot] = slot_late[source]


#: Extra exit codes of the certified Euler kernel (``method="newton"``), never
#: returned to users: the row's active set has been unchanged for
#: ``settle_steps`` steps and it needs a candidate, or its candidate is certified.
SETTLED, CERTIFIED = 3, 4
#: Candidate modes of a row in the certified kernel: none tried yet for the
#: current active set, tried and none found, candidate given, and no more tries
#: (the caller gave up on the row: it goes on as plain Euler).
FRESH, NO_CANDIDATE, CANDIDATE, RETIRED = -1, 0, 1, 2


@numba.njit(inline="always")
def _certificate_holds(x, candidate, bound, info, slot, step, max_steps, tol, largest_state):
    """Whether Euler from ``x[slot]`` provably converges to ``candidate[slot]`` in time.

    ``bound`` holds the region's row bounds ``c_i`` and ``info`` its period
    ``J``, residual norm and ``max c`` (see ``ActiveSetCertifier``): the
    iterates keep the signs of ``x*`` when ``c_i ||x - x*|| < |x*_i|`` for
    every unit, stay below the row's divergence bound ``largest_state`` when
    ``|x*_i| + c_i ||x - x*|| <= largest_state``, and reach ``tol`` within
    ``J (1 + ceil(log2(||R|| max(c) ||x - x*|| / tol)))`` steps.
    """
    distance = 0.0
    for j in range(x.shape[1]):
        distance = max(distance, abs(x[slot, j] - candidate[slot, j]))
    for j in range(x.shape[1]):
        reach = bound[slot, j] * distance
        if not reach < abs(candidate[slot, j]):
            return False
        if not abs(candidate[slot, j]) + reach <= largest_state:
            return False
    if not tol > 0.0:
        return False  # Euler needs an exactly zero residual: nothing bounds its steps.
    # log2(0) = -inf (numba raises no floating-point warnings): then J steps are needed.
    halvings = np.log2(info[slot, 1] * info[slot, 2] * distance / tol)
    needed = info[slot, 0] * (1.0 + np.ceil(max(halvings, 0.0)))
    return step + needed <= max_steps


@numba.njit(inline="always")
def _count_active(x, slot):
    count = 0
    for j in range(x.shape[1]):
        if x[slot, j] > 0.0:
            count += 1
    return count


@numba.njit(inline="always")
def _load_candidate(slot, r, modes, candidates, bounds, infos, windows, slot_mode,
                    slot_unchanged, slot_candidate, slot_row_bound, slot_info, slot_mid,
                    slot_late):
    """Put row ``r``'s candidate mode, fixed point, certificate bounds and residual windows in ``slot``."""
    slot_mid[slot] = windows[r, 0]
    slot_late[slot] = windows[r, 1]
    slot_mode[slot] = modes[r]
    slot_unchanged[slot] = 0
    if modes[r] == CANDIDATE:
        for j in range(slot_candidate.shape[1]):
            slot_candidate[slot, j] = candidates[r, j]
            slot_row_bound[slot, j] = bounds[r, j]
        for j in range(3):
            slot_info[slot, j] = infos[r, j]


@_jit(nogil=True)
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
    certify,
    first_steps,
    modes,
    candidates,
    bounds,
    infos,
    windows,
    settle_steps,
    max_active,
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

    With ``certify`` (relu only, ``method="newton"``) rows start at
    ``first_steps`` with candidate ``modes``; a row also leaves as
    ``CERTIFIED`` when its candidate passes ``_certificate_holds``, and as
    ``SETTLED`` when it has no candidate tried for its active set, that set
    has not changed for ``settle_steps`` steps and it has at most
    ``max_active`` units (a larger region is not worth analysing). A change of active set
    drops the candidate (a ``RETIRED`` row stays so). ``windows`` carries each row's residual windows
    (``_window_update``) in and out, so a resumed row's ``contraction`` is
    the one of an uninterrupted run. Without ``certify`` the per-row arrays
    are unused.
    """
    # Compile once per value of ``certify`` with its branches pruned: plain Euler
    # carries none of the certificate's code.
    numba.literally(certify)
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
    n_extra = n_units if certify else 0
    slot_mode = np.empty(size, dtype=np.int8)
    slot_unchanged = np.zeros(size, dtype=np.int64)
    slot_candidate = np.empty((size, n_extra))
    slot_row_bound = np.empty((size, n_extra))
    slot_info = np.empty((size, 3))
    next_row = 0
    n_active = 0
    while n_active < size:
        r = rows[next_row]
        _load_row(n_active, r, initial_states, drive, x, d, divergence_threshold,
                  slot_row, slot_bound, slot_steps, slot_mid, slot_late,
                  first_steps[r] if certify else 0)
        if certify:
            _load_candidate(n_active, r, modes, candidates, bounds, infos, windows, slot_mode,
                            slot_unchanged, slot_candidate, slot_row_bound, slot_info, slot_mid,
                            slot_late)
        n_active += 1
        next_row += 1

    while n_active > 0:
        _block_products(x, rates, weights_t, g, n_active, activation)
        i = 0
        while i < n_active:
            residual, largest = _row_field(g, d, x, i)
            finite = np.isfinite(residual) and np.isfinite(largest)
            _window_update(slot_steps[i], max_steps, residual, slot_mid, slot_late, i)
            if finite and residual <= tol:
                code = CONVERGED
            elif not finite or largest > slot_bound[i]:
                code = DIVERGED
            elif slot_steps[i] >= max_steps:
                code = MAX_STEPS
            elif certify and slot_mode[i] == CANDIDATE and _certificate_holds(
                    x, slot_candidate, slot_row_bound, slot_info, i, slot_steps[i], max_steps, tol,
                    slot_bound[i]):
                code = CERTIFIED
            elif (certify and slot_mode[i] == FRESH and slot_unchanged[i] >= settle_steps
                  and _count_active(x, i) <= max_active):
                code = SETTLED
            else:
                changed = False
                for j in range(n_units):
                    before = x[i, j] > 0.0
                    x[i, j] += rate_scale[j] * g[i, j]
                    changed = changed or (before != (x[i, j] > 0.0))
                slot_steps[i] += 1
                if certify:
                    if changed:
                        slot_unchanged[i] = 0
                        if slot_mode[i] != RETIRED:
                            slot_mode[i] = FRESH
                    else:
                        slot_unchanged[i] += 1
                i += 1
                continue
            r = slot_row[i]
            for j in range(n_units):
                states[r, j] = x[i, j]
            residuals[r] = residual
            n_steps[r] = slot_steps[i]
            status[r] = code
            contraction[r] = _window_ratio(code, slot_mid[i], slot_late[i])
            if certify:
                windows[r, 0] = slot_mid[i]
                windows[r, 1] = slot_late[i]
            # Refill the slot with the next pending row, or close the gap.
            if next_row < n_rows:
                r = rows[next_row]
                next_row += 1
                source = -1
            else:
                n_active -= 1
                source = n_active
            if source < 0:
                _load_row(i, r, initial_states, drive, x, d, divergence_threshold,
                          slot_row, slot_bound, slot_steps, slot_mid, slot_late,
                          first_steps[r] if certify else 0)
                if certify:
                    _load_candidate(i, r, modes, candidates, bounds, infos, windows, slot_mode,
                                    slot_unchanged, slot_candidate, slot_row_bound, slot_info,
                                    slot_mid, slot_late)
                # The refilled slot has no fresh product: evaluate it next step.
                i += 1
            elif source != i:
                _move_row(source, i, x, d, slot_row, slot_bound, slot_steps, slot_mid, slot_late)
                for j in range(n_units):
                    g[i, j] = g[source, j]
                if certify:
                    slot_mode[i] = slot_mode[source]
                    slot_unchanged[i] = slot_unchanged[source]
                    for j in range(n_units):
                        slot_candidate[i, j] = slot_candidate[source, j]
                        slot_row_bound[i, j] = slot_row_bound[source, j]
                    for j in range(3):
                        slot_info[i, j] = slot_info[source, j]
                # The moved row's g is still valid; examine it in this slot.
    return 0


@_jit(nogil=True)
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
        Interleaved groups of rows (``w, w + n_workers, ...``) integrated one
        after the other; the caller runs groups in parallel threads (the
        kernel releases the GIL) and passes 1 here.

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
    states, residuals, n_steps, status, contraction = result_arrays(n_rows, n_units)
    weights_t = np.ascontiguousarray(weights.T)
    drive_c = np.ascontiguousarray(drive)
    initial_c = np.ascontiguousarray(initial_states)
    scale_c = np.ascontiguousarray(rate_scale)
    no_steps = np.zeros(0, dtype=np.int64)
    no_modes = np.zeros(0, dtype=np.int8)
    no_rows = np.empty((0, n_units))
    no_infos = np.empty((0, 3))
    n_workers = max(1, min(n_workers, n_rows))
    for w in range(n_workers):
        rows = np.arange(w, n_rows, n_workers)
        if rows.shape[0] > 0:
            _integrate_rows(
                rows, drive_c, initial_c, weights_t, scale_c, tol, max_steps,
                divergence_threshold, activation, block_size, False,
                no_steps, no_modes, no_rows, no_rows, no_infos, no_infos, 0, 0,
                states, residuals, n_steps, status, contraction,
            )
    return states, residuals, n_steps, status, contraction


@_jit(nogil=True)
def euler_certified_rate_fixed_points(
    drive,
    initial_states,
    first_steps,
    modes,
    candidates,
    bounds,
    infos,
    windows,
    weights,
    rate_scale,
    tol,
    max_steps,
    divergence_threshold,
    block_size,
    settle_steps,
    max_active,
):
    """Euler for relu networks that stops rows to fetch or use a certified candidate.

    The integration of :func:`euler_rate_fixed_points` (relu), resumed at
    ``first_steps`` per row, with two more exit codes in ``status``:
    ``SETTLED`` (the active set, of at most ``max_active`` units, has not
    changed for ``settle_steps`` steps and the row's mode is ``FRESH``: the
    caller should look for a candidate) and
    ``CERTIFIED`` (mode ``CANDIDATE`` and ``_certificate_holds``: Euler
    provably converges to ``candidates[r]``). ``modes``, ``candidates``,
    ``bounds`` (row bounds ``c``) and ``infos`` (period, residual norm, max
    ``c``) come from ``rnnapprox._active_set.ActiveSetCertifier``;
    ``windows`` (shape ``(n_rows, 2)``, ``(inf, -1)`` for a fresh row) are
    the residual windows so far. Returns the five arrays of
    :func:`euler_rate_fixed_points` and the updated windows.
    """
    n_rows, n_units = drive.shape
    states, residuals, n_steps, status, contraction = result_arrays(n_rows, n_units)
    windows_out = np.ascontiguousarray(windows).copy()
    if n_rows > 0:
        _integrate_rows(
            np.arange(n_rows), np.ascontiguousarray(drive), np.ascontiguousarray(initial_states),
            np.ascontiguousarray(weights.T), np.ascontiguousarray(rate_scale), tol, max_steps,
            divergence_threshold, 0, block_size, True, first_steps, modes,
            np.ascontiguousarray(candidates), np.ascontiguousarray(bounds),
            np.ascontiguousarray(infos), windows_out, settle_steps, max_active, states, residuals,
            n_steps, status, contraction,
        )
    return states, residuals, n_steps, status, contraction, windows_out


@numba.njit(inline="always")
def _gate(value, gain, offset):
    """Gate ``sigma(v) = 1 / (1 + exp(-gain * v + offset))``."""
    return 1.0 / (1.0 + np.exp(offset - gain * value))


@_jit(nogil=True)
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
        _load_row(n_active, rows[next_row], initial_states, drive, s, d, divergence_threshold,
                  slot_row, slot_bound, slot_steps, slot_mid, slot_late, 0)
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
                _load_row(i, r, initial_states, drive, s, d, divergence_threshold,
                          slot_row, slot_bound, slot_steps, slot_mid, slot_late, 0)
                i += 1
            elif source != i:
                # The moved row has not been examined yet: bring its products along.
                _move_row(source, i, s, d, slot_row, slot_bound, slot_steps, slot_mid, slot_late)
                for j in range(n_units):
                    product_h[i, j] = product_h[source, j]
                for j in range(2 * n_units):
                    product_zr[i, j] = product_zr[source, j]
    return 0


@_jit(nogil=True)
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
    states, residuals, n_steps, status, contraction = result_arrays(n_rows, 3 * n_units)
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
    for w in range(n_workers):
        rows = np.arange(w, n_rows, n_workers)
        if rows.shape[0] > 0:
            _integrate_gated_rows(
                rows, drive_c, initial_c, weights_t, gate_weights_t,
                gains[0], gains[1], gains[2], gains[3], gains[4], gains[5],
                dt, tol, max_steps, divergence_threshold, block_size,
                states, residuals, n_steps, status, contraction,
            )
    return states, residuals, n_steps, status, contraction


#: Tuning of the Anderson kernel, packed in one float array (one specialisation):
#: memory m, damping beta, Euler steps with an unchanged active set (relu) or a
#: shrinking residual (tanh) before Anderson starts, Anderson iterations per
#: attempt, attempts per row, residual growth (over the attempt's best) that
#: aborts an attempt.
ANDERSON_MEMORY, ANDERSON_BETA, ANDERSON_GATE, ANDERSON_ITERATIONS = 0, 1, 2, 3
ANDERSON_ATTEMPTS, ANDERSON_GROWTH = 4, 5
ANDERSON_DEFAULTS = np.array([5.0, 1.0, 10.0, 60.0, 3.0, 10.0])
ANDERSON_MAX_MEMORY = 8


@numba.njit(inline="always")
def _small_solve(gram, rhs, n, gamma):
    """Solve the n x n system ``gram gamma = rhs`` in place; False when singular."""
    for k in range(n):
        p = k
        for q in range(k + 1, n):
            if abs(gram[q, k]) > abs(gram[p, k]):
                p = q
        if not abs(gram[p, k]) > 0.0:
            return False
        if p != k:
            for c in range(n):
                t = gram[k, c]
                gram[k, c] = gram[p, c]
                gram[p, c] = t
            t = rhs[k]
            rhs[k] = rhs[p]
            rhs[p] = t
        for q in range(k + 1, n):
            factor = gram[q, k] / gram[k, k]
            for c in range(k, n):
                gram[q, c] -= factor * gram[k, c]
            rhs[q] -= factor * rhs[k]
    for k in range(n - 1, -1, -1):
        v = rhs[k]
        for c in range(k + 1, n):
            v -= gram[k, c] * gamma[c]
        gamma[k] = v / gram[k, k]
        if not np.isfinite(gamma[k]):
            return False
    return True


@_jit(nogil=True)
def _anderson_rows(
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
    options,
    states,
    residuals,
    n_steps,
    status,
    contraction,
    accelerated,
):
    """Euler with Anderson acceleration, rows in a refilling block.

    A row follows the Euler trajectory of ``_integrate_rows`` exactly until
    its gate opens (relu: the active set ``x > 0`` unchanged over the last
    ``gate`` steps and the residual shrinking; tanh: the residual shrinking
    over the last ``gate`` steps). It then saves its Euler state ``x_w`` and
    iterates Anderson(m) on the Euler map ``G(x) = x + s (W f(x) + d - x)``,
    evaluating ``g`` for the whole block with the same one matrix product per
    iteration. The attempt ends with convergence (``max|g| <= tol``, the
    row leaves with ``accelerated`` set) or is abandoned (relu: the active set
    left that of ``x_w``; non-finite; residual above ``growth`` times the
    attempt's best; ``iterations`` used up): the row goes back to ``x_w`` and
    its Euler step count, and continues Euler exactly as ``_integrate_rows``
    would, the gate re-armed, at most ``attempts`` times. ``n_steps`` counts
    Euler steps plus Anderson iterations; ``max_steps`` bounds the Euler steps.
    """
    n_units = drive.shape[1]
    n_rows = rows.shape[0]
    size = min(block_size, n_rows)
    memory = min(int(options[ANDERSON_MEMORY]), ANDERSON_MAX_MEMORY)
    beta = options[ANDERSON_BETA]
    gate = int(options[ANDERSON_GATE])
    max_iterations = int(options[ANDERSON_ITERATIONS])
    max_attempts = int(options[ANDERSON_ATTEMPTS])
    growth = options[ANDERSON_GROWTH]
    x = np.empty((size, n_units))
    d = np.empty((size, n_units))
    rates = np.empty((size, n_units))
    g = np.empty((size, n_units))
    saved = np.empty((size, n_units))
    last_x = np.empty((size, n_units))
    last_f = np.empty((size, n_units))
    delta_x = np.empty((size, memory, n_units))
    delta_f = np.empty((size, memory, n_units))
    gram = np.empty((memory, memory))
    rhs = np.empty(memory)
    gamma = np.empty(memory)
    slot_row = np.empty(size, dtype=np.int64)
    slot_steps = np.zeros(size, dtype=np.int64)
    slot_bound = np.empty(size)
    slot_mid = np.full(size, np.inf)
    slot_late = np.full(size, -1.0)
    # Per-slot Anderson state.
    mode = np.zeros(size, dtype=np.int64)  # 0 Euler, 1 Anderson
    settled = np.zeros(size, dtype=np.int64)  # gate counter
    previous = np.full(size, np.inf)  # residual at the previous Euler step
    saved_steps = np.zeros(size, dtype=np.int64)
    saved_previous = np.zeros(size)
    extra = np.zeros(size, dtype=np.int64)  # Anderson iterations so far
    iterations = np.zeros(size, dtype=np.int64)  # in this attempt
    attempts = np.zeros(size, dtype=np.int64)
    history = np.zeros(size, dtype=np.int64)
    position = np.zeros(size, dtype=np.int64)
    best = np.zeros(size)

    next_row = 0
    n_active = 0
    while n_active < size:
        _load_row(n_active, rows[next_row], initial_states, drive, x, d, divergence_threshold,
                  slot_row, slot_bound, slot_steps, slot_mid, slot_late, 0)
        n_active += 1
        next_row += 1

    while n_active > 0:
        _block_products(x, rates, weights_t, g, n_active, activation)
        i = 0
        while i < n_active:
            residual, largest = _row_field(g, d, x, i)
            finite = np.isfinite(residual) and np.isfinite(largest)
            code = -1
            if mode[i] == 0:
                _window_update(slot_steps[i], max_steps, residual, slot_mid, slot_late, i)
                if finite and residual <= tol:
                    code = CONVERGED
                elif not finite or largest > slot_bound[i]:
                    code = DIVERGED
                elif slot_steps[i] >= max_steps:
                    code = MAX_STEPS
                else:
                    if residual < previous[i]:
                        settled[i] += 1
                    else:
                        settled[i] = 0
                    if settled[i] >= gate and attempts[i] < max_attempts:
                        # Open the gate: Anderson from this Euler state.
                        for j in range(n_units):
                            saved[i, j] = x[i, j]
                        saved_steps[i] = slot_steps[i]
                        saved_previous[i] = previous[i]
                        mode[i] = 1
                        attempts[i] += 1
                        iterations[i] = 0
                        history[i] = 0
                        position[i] = 0
                        best[i] = residual
                    else:
                        previous[i] = residual
                        changed = False
                        for j in range(n_units):
                            old = x[i, j] > 0.0
                            x[i, j] += rate_scale[j] * g[i, j]
                            if activation == 0 and old != (x[i, j] > 0.0):
                                changed = True
                        if changed:
                            settled[i] = 0
                        slot_steps[i] += 1
                        i += 1
                        continue
            elif finite and residual <= tol:
                code = CONVERGED
            if code < 0:
                # Anderson mode: abandon the attempt, or take an Anderson(m) step.
                abandon = not finite or iterations[i] >= max_iterations
                abandon = abandon or residual > growth * best[i]
                if not abandon and activation == 0:
                    for j in range(n_units):
                        if (x[i, j] > 0.0) != (saved[i, j] > 0.0):
                            abandon = True
                            break
                if abandon:
                    # Back to the saved Euler state; evaluate it next round.
                    for j in range(n_units):
                        x[i, j] = saved[i, j]
                    slot_steps[i] = saved_steps[i]
                    previous[i] = saved_previous[i]
                    mode[i] = 0
                    settled[i] = 0
                    i += 1
                    continue
                best[i] = min(best[i], residual)
                n_hist = history[i]
                if iterations[i] > 0:
                    p = position[i]
                    for j in range(n_units):
                        delta_x[i, p, j] = x[i, j] - last_x[i, j]
                        delta_f[i, p, j] = rate_scale[j] * g[i, j] - last_f[i, j]
                    position[i] = (p + 1) % memory
                    if n_hist < memory:
                        n_hist += 1
                        history[i] = n_hist
                for j in range(n_units):
                    last_x[i, j] = x[i, j]
                    last_f[i, j] = rate_scale[j] * g[i, j]
                solved = False
                if n_hist > 0:
                    for a in range(n_hist):
                        v = 0.0
                        for j in range(n_units):
                            v += delta_f[i, a, j] * last_f[i, j]
                        rhs[a] = v
                        for b in range(a, n_hist):
                            v = 0.0
                            for j in range(n_units):
                                v += delta_f[i, a, j] * delta_f[i, b, j]
                            gram[a, b] = v
                            gram[b, a] = v
                    trace = 0.0
                    for a in range(n_hist):
                        trace += gram[a, a]
                    for a in range(n_hist):
                        gram[a, a] += 1e-12 * trace
                    solved = _small_solve(gram, rhs, n_hist, gamma)
                    if not solved:
                        history[i] = 0
                        position[i] = 0
                for j in range(n_units):
                    v = x[i, j] + beta * last_f[i, j]
                    if solved:
                        for a in range(n_hist):
                            v -= gamma[a] * (delta_x[i, a, j] + beta * delta_f[i, a, j])
                    x[i, j] = v
                iterations[i] += 1
                extra[i] += 1
                i += 1
                continue
            r = slot_row[i]
            for j in range(n_units):
                states[r, j] = x[i, j]
            residuals[r] = residual
            n_steps[r] = slot_steps[i] + extra[i]
            status[r] = code
            accelerated[r] = mode[i] == 1
            contraction[r] = _window_ratio(code, slot_mid[i], slot_late[i])
            if next_row < n_rows:
                r = rows[next_row]
                next_row += 1
                source = -1
            else:
                n_active -= 1
                source = n_active
            if source < 0:
                _load_row(i, r, initial_states, drive, x, d, divergence_threshold,
                          slot_row, slot_bound, slot_steps, slot_mid, slot_late, 0)
                mode[i] = 0
                settled[i] = 0
                previous[i] = np.inf
                extra[i] = 0
                attempts[i] = 0
                i += 1
            elif source != i:
                _move_row(source, i, x, d, slot_row, slot_bound, slot_steps, slot_mid, slot_late)
                for j in range(n_units):
                    g[i, j] = g[source, j]
                    saved[i, j] = saved[source, j]
                    last_x[i, j] = last_x[source, j]
                    last_f[i, j] = last_f[source, j]
                for a in range(memory):
                    for j in range(n_units):
                        delta_x[i, a, j] = delta_x[source, a, j]
                        delta_f[i, a, j] = delta_f[source, a, j]
                mode[i] = mode[source]
                settled[i] = settled[source]
                previous[i] = previous[source]
                saved_steps[i] = saved_steps[source]
                saved_previous[i] = saved_previous[source]
                extra[i] = extra[source]
                iterations[i] = iterations[source]
                attempts[i] = attempts[source]
                history[i] = history[source]
                position[i] = position[source]
                best[i] = best[source]
    return 0


@_jit(nogil=True)
def anderson_rate_fixed_points(
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
    options,
):
    """Fixed points of ``tau dx/dt = -x + W f(x) + d``, Euler with Anderson acceleration.

    Parameters as :func:`euler_rate_fixed_points`, plus ``options`` (float
    array, see ``ANDERSON_DEFAULTS``). Returns the same arrays plus
    ``accelerated`` (bool): the row converged on an Anderson iterate rather
    than on the Euler trajectory, so the caller must verify it (stability of
    the found point) and may redo it with Euler. See ``_anderson_rows``.
    """
    n_rows, n_units = drive.shape
    states, residuals, n_steps, status, contraction = result_arrays(n_rows, n_units)
    accelerated = np.zeros(n_rows, dtype=np.bool_)
    weights_t = np.ascontiguousarray(weights.T)
    drive_c = np.ascontiguousarray(drive)
    initial_c = np.ascontiguousarray(initial_states)
    scale_c = np.ascontiguousarray(rate_scale)
    options_c = np.ascontiguousarray(options)
    n_workers = max(1, min(n_workers, n_rows))
    for w in range(n_workers):
        rows = np.arange(w, n_rows, n_workers)
        if rows.shape[0] > 0:
            _anderson_rows(
                rows, drive_c, initial_c, weights_t, scale_c, tol, max_steps,
                divergence_threshold, activation, block_size, options_c,
                states, residuals, n_steps, status, contraction, accelerated,
            )
    return states, residuals, n_steps, status, contraction, accelerated


@_jit(nogil=True)
def region_fixed_points(states, drive, weights, max_residual, points, found):
    """The fixed point of each row's relu region, for ``method="newton"``.

    Row ``r``'s region is its active set ``A = {i : states[r, i] > 0}``; its
    fixed point solves ``(I - W_AA) x_A = d_A`` (Gaussian elimination with
    partial pivoting) and ``x_I = W_IA x_A + d_I``. ``found[r]`` is True when
    the system is not numerically singular, the computed ``x`` has residual
    ``max|-x + W relu(x) + d|`` at most ``max_residual`` (an ill-conditioned
    solve does not pass) and ``x`` has the region's signs (``x_A > 0``, ``x_I
    < 0``): ``x`` is then a fixed point of the network, written to
    ``points[r]``.
    """
    n_rows, n_units = states.shape
    index = np.empty(n_units, dtype=np.int64)
    system = np.empty((n_units, n_units))
    solution = np.empty(n_units)
    for r in range(n_rows):
        n_active = 0
        for j in range(n_units):
            if states[r, j] > 0.0:
                index[n_active] = j
                n_active += 1
        scale = 1.0
        for a in range(n_active):
            for b in range(n_active):
                system[a, b] = -weights[index[a], index[b]]
            system[a, a] += 1.0
            solution[a] = drive[r, index[a]]
            for b in range(n_active):
                scale = max(scale, abs(system[a, b]))
        singular = False
        for k in range(n_active):
            pivot = k
            for a in range(k + 1, n_active):
                if abs(system[a, k]) > abs(system[pivot, k]):
                    pivot = a
            if not abs(system[pivot, k]) > 1e-12 * scale:
                singular = True
                break
            if pivot != k:
                for b in range(k, n_active):
                    system[k, b], system[pivot, b] = system[pivot, b], system[k, b]
                solution[k], solution[pivot] = solution[pivot], solution[k]
            for a in range(k + 1, n_active):
                factor = system[a, k] / system[k, k]
                if factor != 0.0:
                    for b in range(k + 1, n_active):
                        system[a, b] -= factor * system[k, b]
                    solution[a] -= factor * solution[k]
        found[r] = not singular
        if singular:
            continue
        for k in range(n_active - 1, -1, -1):
            total = solution[k]
            for b in range(k + 1, n_active):
                total -= system[k, b] * solution[b]
            solution[k] = total / system[k, k]
        for j in range(n_units):
            total = drive[r, j]
            for a in range(n_active):
                total += weights[j, index[a]] * solution[a]
            points[r, j] = total
            if (total > 0.0) != (states[r, j] > 0.0) or total == 0.0:
                found[r] = False
        # Inactive units have residual 0 by construction; active ones the solve's error.
        for a in range(n_active):
            if not abs(points[r, index[a]] - solution[a]) <= max_residual:
                found[r] = False
            points[r, index[a]] = solution[a]
    return 0


@_jit(nogil=True)
def power_row_bounds(weights, rate_scale, active, decay, limit, growth_limit, bound):
    """Row bounds of the powers of a relu region's Euler map, for ``method="newton"``.

    In region ``active`` the Euler map is ``M = I - S + S W D_A``; active
    units first, ``M = [[M_AA, 0], [M_IA, diag(p)]]`` with ``p = 1 - dt /
    tau`` of the inactive units (which do not feed back). Writes ``bound[i]
    >= max_{r <= J} ||row_i(M^r)||_1``: exact for active units (rows of
    ``M_AA^r``); for an inactive unit ``|p_i|^r + y_r[i]`` with ``y_r =
    |p| y_{r-1} + |M_IA| a_{r-1}``, ``a_k`` the row norms of ``M_AA^k``,
    which bounds ``||row_i(M^r)||_1`` at the cost of one product with
    ``|M_IA|`` per power. Returns the first ``J <= limit`` whose bounds are
    all at most ``decay`` (so ``||M^J||_inf <= decay``), or 0 when there is
    none or a bound exceeds ``growth_limit`` first. Cost: ``J`` products of
    ``|A| x |A|`` matrices.
    """
    n_units = weights.shape[0]
    n_active = 0
    for j in range(n_units):
        if active[j]:
            n_active += 1
    n_passive = n_units - n_active
    active_index = np.empty(n_active, dtype=np.int64)
    passive_index = np.empty(n_passive, dtype=np.int64)
    a = 0
    b = 0
    for j in range(n_units):
        if active[j]:
            active_index[a] = j
            a += 1
        else:
            passive_index[b] = j
            b += 1
    euler_active = np.empty((n_active, n_active))
    for i in range(n_active):
        for k in range(n_active):
            euler_active[i, k] = rate_scale[active_index[i]] * weights[active_index[i], active_index[k]]
        euler_active[i, i] += 1.0 - rate_scale[active_index[i]]
    coupling = np.empty((n_passive, n_active))
    passive_decay = np.empty(n_passive)
    for i in range(n_passive):
        unit = passive_index[i]
        passive_decay[i] = abs(1.0 - rate_scale[unit])
        for k in range(n_active):
            coupling[i, k] = abs(rate_scale[unit] * weights[unit, active_index[k]])
    power = np.zeros((n_active, n_active))
    for i in range(n_active):
        power[i, i] = 1.0
    norms = np.ones(n_active)
    spill = np.zeros(n_passive)
    passive_power = np.ones(n_passive)
    for j in range(n_units):
        bound[j] = 1.0
    for period in range(1, limit + 1):
        largest = 0.0
        for i in range(n_passive):
            total = 0.0
            for k in range(n_active):
                total += coupling[i, k] * norms[k]
            spill[i] = passive_decay[i] * spill[i] + total
            passive_power[i] *= passive_decay[i]
            value = passive_power[i] + spill[i]
            largest = max(largest, value)
            bound[passive_index[i]] = max(bound[passive_index[i]], value)
        if n_active > 0:
            # ``@`` rather than ``np.dot(..., out)``: the same speed here, a quarter of the compile time.
            power = euler_active @ power
        for i in range(n_active):
            total = 0.0
            for k in range(n_active):
                total += abs(power[i, k])
            norms[i] = total
            largest = max(largest, total)
            bound[active_index[i]] = max(bound[active_index[i]], total)
        if largest <= decay:
            return period
        if largest > growth_limit:
            return 0
    return 0
