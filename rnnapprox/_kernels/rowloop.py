"""The one row loop: every family and every solver method runs in it.

Rows are integrated in a block of ``block_size`` slots, one matrix product (or
the family's few) per step for the whole block. Each slot's state is packed in
one float row (state, drive, bookkeeping; see ``_common``), one row of the
method's floats (Anderson's history, a candidate and its bounds) and one integer
row, so moving a row into another slot moves just those three; the method's
floats live apart so that the state rows stay dense in cache. A finished row leaves its
slot to the next pending row at once; when none is left, the block is compacted
after the pass.

The loop is written once, in :func:`_row_loop_source`; ``row_loop(family,
method)`` compiles it for one family (``RATE``, ``GATED``, ``GRU``) and one method
(``EULER``, ``ANDERSON``, ``ACTIVE_SET``), closing over their integer codes so
numba prunes the other branches before typing, and (unlike functions passed as
arguments) the compiled loop can be cached on disk. A new family or method is its
own kernel module plus its branches here.
"""

import hashlib
import pathlib

import numba
import numpy as np

from . import active_set, anderson
from ._common import (
    ADVANCE,
    BOUND,
    HANDLED,
    ROW,
    SLOT_FLOATS,
    SLOT_INTS,
    STEPS,
    WINDOW_LATE,
    WINDOW_MID,
    euler_exit,
    jit,
    window_ratio,
)
from .gated import gated_advance, gated_evaluate, gated_field, gated_work
from .gru import gru_advance, gru_evaluate, gru_field, gru_work
from .rate import rate_advance, rate_evaluate, rate_field, rate_work

#: Family and method codes of the row loop.
RATE, GATED, GRU = 0, 1, 2
EULER, ANDERSON, ACTIVE_SET = 0, 1, 2


@numba.njit(inline="always")
def _load_row(slot_f, slot_i, i, r, initial, drive, start_steps, windows, divergence_threshold, base):
    """Put row ``r`` in slot ``i``: start state, drive, divergence bound, step count and windows."""
    n_state = initial.shape[1]
    for j in range(n_state):
        slot_f[i, j] = initial[r, j]
    largest = 0.0
    for j in range(drive.shape[1]):
        slot_f[i, n_state + j] = drive[r, j]
        largest = max(largest, abs(drive[r, j]))
    slot_f[i, base + BOUND] = divergence_threshold * (1.0 + largest)
    slot_f[i, base + WINDOW_MID] = windows[r, 0]
    slot_f[i, base + WINDOW_LATE] = windows[r, 1]
    slot_i[i, ROW] = r
    slot_i[i, STEPS] = start_steps[r]


@numba.njit(inline="always")
def _compact(slot_f, slot_m, slot_i, n_active):
    """Move live slots from the end into the retired ones; the new number of live slots."""
    low = 0
    high = n_active - 1
    while True:
        while low <= high and slot_i[low, ROW] >= 0:
            low += 1
        while high > low and slot_i[high, ROW] < 0:
            high -= 1
        if low >= high:
            return low
        slot_f[low, :] = slot_f[high, :]
        slot_m[low, :] = slot_m[high, :]
        slot_i[low, :] = slot_i[high, :]
        slot_i[high, ROW] = -1


def _kernel_sources_digest():
    """A number that changes with the source of every module the row loop inlines.

    numba's disk cache checks only the timestamp of the file that defines a
    function; the loop inlines the family and method modules too, so their
    digest is part of the loop's closure, which is part of numba's cache key.
    """
    here = pathlib.Path(__file__).parent
    digest = hashlib.sha256()
    for path in [*sorted(here.glob("*.py")), here.parent / "_activations.py"]:
        digest.update(path.read_bytes())
    return int(digest.hexdigest()[:15], 16)


_KERNEL_SOURCES = _kernel_sources_digest()
_LOOPS = {}


def row_loop(family, method):
    """The row loop compiled for ``family`` and ``method`` (made once per process)."""
    key = (family, method)
    if key not in _LOOPS:
        _LOOPS[key] = _row_loop_source(family, method)
    return _LOOPS[key]


def _row_loop_source(family, method):
    """The one row loop, a closure over the integer codes ``family`` and ``method``."""
    kernel_sources = _KERNEL_SOURCES

    def integrate_rows(model, options, row_data, drive, initial, start_steps, windows, tol,
                       max_steps,
                       divergence_threshold, block_size):
        """Integrate every row from ``initial`` under constant ``drive`` until it ends.

        Parameters
        ----------
        model : tuple
            The family's arrays (``rate.rate_model``, ``gated.gated_model``, ``gru.gru_model``).
        options : tuple
            The method's settings: ``()`` for Euler, ``(tuning, track_regions)``
            for Anderson, ``(settle_steps, max_active, check)`` for the active set.
        row_data : tuple
            The method's per-row arrays: ``()`` for Euler, ``(accelerated,
            saved_states, saved_steps)`` for Anderson (written), ``(modes,
            candidates, bounds, infos)`` for the active set.
        drive : ndarray of shape (n_rows, n_drive)
            Constant drive ``W_in u + b`` of each row.
        initial : ndarray of shape (n_rows, n_state)
            Start state of each row; its dtype (float64 or float32) is the
            arithmetic of the integration.
        start_steps : ndarray of shape (n_rows,), int64
            Euler steps each row has already made (0 for a fresh row).
        windows : ndarray of shape (n_rows, 2)
            Each row's residual windows so far (``(inf, -1)`` for a fresh
            row), written back at the end: a resumed row's ``contraction`` is
            that of an uninterrupted run.
        tol, max_steps, divergence_threshold, block_size
            A row has converged when its residual is at most ``tol``; it diverged
            when its state is not finite or ``max|x|`` exceeds
            ``divergence_threshold (1 + max|d|)``; it stops after ``max_steps``
            Euler updates; ``block_size`` rows share each matrix product.

        Returns
        -------
        states, residuals, n_steps, status, contraction, iterations : ndarray
            Per row: the state at the end, its residual, the Euler updates made
            plus Anderson iterations, the exit code, for ``MAX_STEPS`` rows
            the residual's trend (largest over the last quarter of the steps
            divided by the smallest over the second; NaN elsewhere), and the
            Anderson iterations alone.
        """
        kernel_sources  # noqa: B018 -- in the closure, hence in numba's cache key
        n_rows, n_state = initial.shape
        states = np.empty((n_rows, n_state))
        residuals = np.empty(n_rows)
        n_steps = np.zeros(n_rows, dtype=np.int64)
        status = np.zeros(n_rows, dtype=np.int8)
        contraction = np.full(n_rows, np.nan)
        iterations = np.zeros(n_rows, dtype=np.int64)
        if n_rows == 0:
            return states, residuals, n_steps, status, contraction, iterations
        size = min(block_size, n_rows)
        base = n_state + drive.shape[1]
        ib = SLOT_INTS
        if method == ANDERSON:
            tuning, track_regions = options
            scratch = anderson.scratch(tuning)
            slot_m = np.empty((size, anderson.n_floats(tuning, n_state)), dtype=initial.dtype)
            slot_i = np.zeros((size, ib + anderson.N_INTS), dtype=np.int64)
        elif method == ACTIVE_SET:
            slot_m = np.empty((size, active_set.n_floats(n_state)), dtype=initial.dtype)
            slot_i = np.zeros((size, ib + active_set.N_INTS), dtype=np.int64)
        else:
            slot_m = np.empty((size, 0), dtype=initial.dtype)
            slot_i = np.zeros((size, ib), dtype=np.int64)
        slot_f = np.empty((size, base + SLOT_FLOATS), dtype=initial.dtype)
        if family == RATE:
            work = rate_work(model, size, n_state)
        elif family == GATED:
            work = gated_work(model, size, n_state)
        else:
            work = gru_work(model, size, n_state)
        g = work[0]

        next_row = 0
        n_active = 0
        while n_active < size:
            _load_row(slot_f, slot_i, n_active, next_row, initial, drive, start_steps, windows,
                      divergence_threshold, base)
            if method == ANDERSON:
                anderson.load(slot_m, slot_i, n_active, ib)
            elif method == ACTIVE_SET:
                active_set.load(slot_m, slot_i, n_active, next_row, ib, n_state, row_data)
            n_active += 1
            next_row += 1

        while n_active > 0:
            if family == RATE:
                rate_evaluate(model, slot_f, work, n_active)
            elif family == GATED:
                gated_evaluate(model, slot_f, work, n_active)
            else:
                gru_evaluate(model, slot_f, work, n_active)
            retired = False
            for i in range(n_active):
                if family == RATE:
                    residual, largest = rate_field(model, slot_f, work, i)
                elif family == GATED:
                    residual, largest = gated_field(model, slot_f, work, i)
                else:
                    residual, largest = gru_field(model, slot_f, work, i)
                # A row a method is working on (a check, an Anderson iteration)
                # takes the method's branch; every other row the plain Euler step,
                # compiled as tight as method="euler"'s.
                if method == ANDERSON and not anderson.plain_euler(tuning, slot_i, i, ib):
                    code = anderson.decide(model, tuning, scratch, slot_f, slot_m, slot_i, g, i, base, ib,
                                           n_state, residual, largest, tol, max_steps, track_regions)
                elif method == ACTIVE_SET and not active_set.plain_euler(options, slot_i, i, ib):
                    code = active_set.decide(options, slot_f, slot_m, slot_i, i, base, ib, n_state, residual,
                                             largest, tol, max_steps)
                else:
                    code = euler_exit(slot_f, slot_i, i, base, residual, largest, tol, max_steps)
                if code == ADVANCE:
                    if family == RATE:
                        rate_advance(model, slot_f, work, i)
                    elif family == GATED:
                        gated_advance(model, slot_f, work, i)
                    else:
                        gru_advance(model, slot_f, work, i)
                    slot_i[i, STEPS] += 1
                    continue
                if code == HANDLED:
                    continue
                r = slot_i[i, ROW]
                for j in range(n_state):
                    states[r, j] = slot_f[i, j]
                residuals[r] = residual
                if method == ANDERSON:
                    iterations[r] = anderson.retire(slot_m, slot_i, i, ib, n_state, r, row_data)
                n_steps[r] = slot_i[i, STEPS] + iterations[r]
                status[r] = code
                windows[r, 0] = slot_f[i, base + WINDOW_MID]
                windows[r, 1] = slot_f[i, base + WINDOW_LATE]
                contraction[r] = window_ratio(code, windows[r, 0], windows[r, 1])
                if next_row < n_rows:
                    # The refilled slot has no fresh product: it is evaluated next step.
                    _load_row(slot_f, slot_i, i, next_row, initial, drive, start_steps, windows,
                              divergence_threshold, base)
                    if method == ANDERSON:
                        anderson.load(slot_m, slot_i, i, ib)
                    elif method == ACTIVE_SET:
                        active_set.load(slot_m, slot_i, i, next_row, ib, n_state, row_data)
                    next_row += 1
                else:
                    slot_i[i, ROW] = -1
                    retired = True
            if retired:
                n_active = _compact(slot_f, slot_m, slot_i, n_active)
        return states, residuals, n_steps, status, contraction, iterations

    integrate_rows.__qualname__ = f"integrate_rows_{family}_{method}"
    return jit(nogil=True)(integrate_rows)
