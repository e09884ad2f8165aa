"""``precision="mixed"``: the transient in float32, the finish in float64."""

import numpy as np

from .._kernels import CONVERGED, empty_result
from ._base import resume_arrays

#: Rows leave the float32 phase when their residual is at most this (or ``tol``,
#: if larger) ...
SWITCH_TOL = 1e-5
#: ... or at float32's resolution at the call's scale, SWITCH_ULPS * eps32 *
#: (1 + ||W||_inf) * max|d|, if larger; when that exceeds MAX_SWITCH_TOL the
#: inputs are too large for float32 to help and the call stays in float64.
SWITCH_ULPS = 64.0
MAX_SWITCH_TOL = 1e-3


def switch_tolerance(family, drive, tol):
    """Residual at which rows move from float32 to float64, or None when float32 cannot help."""
    scale = (1.0 + family.weight_row_norm()) * max(float(np.abs(drive).max(initial=0.0)), 1.0)
    switch = max(tol, SWITCH_TOL, SWITCH_ULPS * np.finfo(np.float32).eps * scale)
    return switch if switch <= MAX_SWITCH_TOL else None


def solve_mixed(method, family, drive, initial, settings, workers):
    """``method`` in float32 until the residual reaches the switch tolerance, then in float64.

    Rows that reach the switch tolerance go on from their float32 state in
    float64, with their step count and residual windows, until ``tol``: every
    converged row's residual is measured in float64. Rows that diverge or
    reach ``max_steps`` in float32 are integrated again from the start in
    float64, so their status, steps and end state are those of the float64
    method. The attractor is the one the float32 transient leads to: the same
    as float64 Euler's except, rarely, for inputs within float32 rounding of a
    boundary between attractors (the user guide gives the measured agreement).
    """
    switch = switch_tolerance(family, drive, settings.tol) if np.float32 in family.dtypes else None
    if switch is None:
        return method.solve(family, drive, initial, settings, workers)
    n_rows = len(drive)
    steps, windows = resume_arrays(None, n_rows)
    float32_phase = settings._replace(tol=switch, final_tol=settings.tol)
    transient = method.solve(family, drive, initial, float32_phase, workers, (steps, windows),
                             np.float32)
    result = empty_result(n_rows, family.n_state)
    settled = transient.status == CONVERGED
    for rows, start, fresh in ((np.flatnonzero(settled), transient.states, False),
                               (np.flatnonzero(~settled), initial, True)):
        if rows.size == 0:
            continue
        # A settled row resumes at its Euler steps (max_steps bounds those); its
        # float32 iterations still count in n_steps.
        resume = None if fresh else (transient.n_steps[rows] - transient.iterations[rows], windows[rows])
        part = method.solve(family, drive[rows], np.asarray(start[rows], dtype=np.float64), settings,
                            workers, resume)
        if not fresh:
            part.n_steps[:] += transient.iterations[rows]
            part.iterations[:] += transient.iterations[rows]
        for whole, piece in zip(result, part, strict=True):
            whole[rows] = piece
    return result
