"""Kernel pieces of ``method="anderson"``: Anderson(m) mixing of the Euler map, per slot.

A row follows the Euler trajectory exactly until its gate opens: every
``check`` steps the row's residual is compared with the last check's, and the
gate opens after ``gate`` checks in a row with a smaller residual (and, for
relu, the same region), if accelerating the row pays (:func:`_pays`, asked at
each opening; a row it turns down is plain Euler from then on). Between checks the row
takes the row loop's plain Euler step, with no bookkeeping at all: a step
taken through the method's branch costs about twice a plain one at N = 50,
so the method's per-step overhead is one check in ``check`` steps.
At the gate the row saves its Euler state ``x_w`` and iterates
Anderson(m) on the Euler map ``G(x) = x + (dt / tau) (W f(x) + d - x)``, with the
same one matrix product per block. The attempt ends with convergence (the row
leaves ``accelerated``) or is abandoned (the region left that of ``x_w``, a
non-finite state, a residual above ``growth`` times the attempt's best, or the
iterations used up): the row goes back to ``x_w`` and its step count and goes on
by Euler exactly as ``method="euler"`` would, its gating started afresh, at most
``attempts`` times.
``n_steps`` counts Euler steps plus Anderson iterations.
"""

import numba
import numpy as np

from ._common import ADVANCE, CONVERGED, HANDLED, STEPS, euler_exit
from ._linalg import solve_in_place

#: Tuning, packed in one float array (one specialisation): memory m, damping beta,
#: gate length (in checks), Anderson iterations per attempt, attempts per row,
#: residual growth (over the attempt's best) that aborts an attempt, the cost of
#: verifying a found point in flops per cubed region size (0: nothing to verify;
#: LAPACK's eigenvalues take about 100 |A|^3, and the margin of 1.5 pays for the
#: Anderson iterations, several Euler steps' worth each at N = 50, and for the
#: contraction estimate's optimism: measured on random E/I networks), and the
#: steps between checks.
MEMORY, BETA, GATE, ITERATIONS, ATTEMPTS, GROWTH, VERIFY_FLOPS, CHECK = range(8)
DEFAULTS = np.array([5.0, 1.0, 2.0, 60.0, 3.0, 10.0, 150.0, 8.0])
MAX_MEMORY = 8

# Per-slot integers, after the row loop's own.
_MODE, _SETTLED, _SAVED_STEPS, _EXTRA, _ITERATIONS, _ATTEMPTS, _HISTORY, _POSITION, _NEXT_CHECK = range(9)
N_INTS = 9
# Per-slot floats after the vectors saved x, last x, last G(x) - x and the
# memory of differences (each n, n, n, m n, m n).
_PREVIOUS, _BEST = range(2)
_TAIL = 2


@numba.njit(inline="always")
def memory_of(options):
    return min(int(options[MEMORY]), MAX_MEMORY)


@numba.njit(inline="always")
def n_floats(options, n):
    return (3 + 2 * memory_of(options)) * n + _TAIL


@numba.njit(inline="always")
def scratch(options):
    """Normal equations of the least-squares problem: ``gram`` and its right-hand side."""
    m = memory_of(options)
    return np.empty((m, m)), np.empty(m)


@numba.njit(inline="always")
def load(slot_m, slot_i, i, ib):
    m_end = slot_m.shape[1]
    slot_i[i, ib + _MODE] = 0
    slot_i[i, ib + _SETTLED] = 0
    slot_i[i, ib + _EXTRA] = 0
    slot_i[i, ib + _ATTEMPTS] = 0
    slot_i[i, ib + _NEXT_CHECK] = slot_i[i, STEPS]  # a check at once
    slot_m[i, m_end - _TAIL + _PREVIOUS] = np.inf  # no last check yet (nor its state)


@numba.njit(inline="always")
def _pays(options, slot_f, i, n, residual, previous, tol, steps_left, track_regions):
    """Whether accelerating this row can save more than verifying its end point costs.

    The Euler steps still needed are estimated from the residual's contraction
    since the last check, ``(residual / previous)^(1 / check)`` per step. A row
    Euler would not finish within its ``steps_left`` (by that estimate) is left
    to Euler, which ends it at ``max_steps``. Otherwise each step costs ``2 n^2``
    flops, and verifying the point Anderson finds ``VERIFY_FLOPS |A|^3`` (an
    eigenvalue problem of the region ``A`` for piecewise-linear activations, of
    the whole state otherwise; nothing when the fixed point is unique). A row
    whose saving is smaller goes on by Euler: it is then integrated exactly as
    by ``method="euler"``.
    """
    if not (residual < previous and tol > 0.0):
        return False
    remaining = options[CHECK] * np.log(residual / tol) / -np.log(residual / previous)
    if remaining > steps_left:
        return False
    if options[VERIFY_FLOPS] == 0.0:
        return True
    size = n
    if track_regions:
        size = 0
        for j in range(n):
            if slot_f[i, j] > 0.0:
                size += 1
    return remaining * 2.0 * n * n > options[VERIFY_FLOPS] * size * size * size


@numba.njit(inline="always")
def decide(model, options, work_scratch, slot_f, slot_m, slot_i, g, i, base, ib, n, residual, largest,
           tol, max_steps, track_regions):
    """Exit code of slot ``i``, ``ADVANCE`` (an Euler step) or ``HANDLED`` (an Anderson move).

    Called at a row's checks (see :func:`plain_euler`) and at every Anderson iteration.
    """
    tail = slot_m.shape[1] - _TAIL
    finite = np.isfinite(residual) and np.isfinite(largest)
    if slot_i[i, ib + _MODE] == 0:
        code = euler_exit(slot_f, slot_i, i, base, residual, largest, tol, max_steps)
        if code != ADVANCE:
            return code
        slot_i[i, ib + _NEXT_CHECK] = slot_i[i, STEPS] + int(options[CHECK])
        # Settled: a smaller residual than at the last check and, for
        # piecewise-linear activations, the region of the last check (whose
        # state is kept where an attempt saves x_w); nothing to compare with
        # at a row's first check.
        steady = residual < slot_m[i, tail + _PREVIOUS] < np.inf
        if track_regions:
            for j in range(n):
                steady = steady and (slot_f[i, j] > 0.0) == (slot_m[i, j] > 0.0)
                slot_m[i, j] = slot_f[i, j]
        if steady:
            slot_i[i, ib + _SETTLED] += 1
        else:
            slot_i[i, ib + _SETTLED] = 0
        gate_open = slot_i[i, ib + _SETTLED] >= options[GATE]
        if gate_open and not _pays(options, slot_f, i, n, residual, slot_m[i, tail + _PREVIOUS], tol,
                                   max_steps - slot_i[i, STEPS], track_regions):
            gate_open = False
            slot_i[i, ib + _ATTEMPTS] = int(options[ATTEMPTS])  # turned down: Euler from here on
        if not gate_open:
            slot_m[i, tail + _PREVIOUS] = residual
            return ADVANCE
        # Open the gate: Anderson from this Euler state.
        for j in range(n):
            slot_m[i, j] = slot_f[i, j]  # the saved Euler state
        slot_i[i, ib + _SAVED_STEPS] = slot_i[i, STEPS]
        slot_i[i, ib + _MODE] = 1
        slot_i[i, ib + _ATTEMPTS] += 1
        slot_i[i, ib + _ITERATIONS] = 0
        slot_i[i, ib + _HISTORY] = 0
        slot_i[i, ib + _POSITION] = 0
        slot_m[i, tail + _BEST] = residual
    elif finite and residual <= tol:
        return CONVERGED
    return _move(model, options, work_scratch, slot_f, slot_m, slot_i, g, i, ib, n, residual, finite,
                 track_regions)


@numba.njit
def _move(model, options, work_scratch, slot_f, slot_m, slot_i, g, i, ib, n, residual, finite,
          track_regions):
    """One Anderson(m) move of slot ``i``, or the end of its attempt; ``HANDLED``.

    Kept out of line (not inlined into the row loop) so the loop's Euler steps,
    what most rows do most of the time, compile as tight as plain Euler's.
    """
    rate_scale = model[1]
    gram, rhs = work_scratch
    m = memory_of(options)
    tail = slot_m.shape[1] - _TAIL
    saved, last_x, last_f = 0, n, 2 * n
    delta_x, delta_f = 3 * n, (3 + m) * n
    abandon = not finite or slot_i[i, ib + _ITERATIONS] >= options[ITERATIONS]
    abandon = abandon or residual > options[GROWTH] * slot_m[i, tail + _BEST]
    if not abandon and track_regions:
        for j in range(n):
            if (slot_f[i, j] > 0.0) != (slot_m[i, saved + j] > 0.0):
                abandon = True
                break
    if abandon:
        # Back to the saved Euler state, evaluated next step: a first check
        # again (gating starts afresh).
        for j in range(n):
            slot_f[i, j] = slot_m[i, saved + j]
        slot_i[i, STEPS] = slot_i[i, ib + _SAVED_STEPS]
        slot_i[i, ib + _NEXT_CHECK] = slot_i[i, STEPS]
        slot_m[i, tail + _PREVIOUS] = np.inf
        slot_i[i, ib + _MODE] = 0
        slot_i[i, ib + _SETTLED] = 0
        return HANDLED
    slot_m[i, tail + _BEST] = min(slot_m[i, tail + _BEST], residual)
    n_hist = slot_i[i, ib + _HISTORY]
    if slot_i[i, ib + _ITERATIONS] > 0:
        p = slot_i[i, ib + _POSITION]
        for j in range(n):
            slot_m[i, delta_x + p * n + j] = slot_f[i, j] - slot_m[i, last_x + j]
            slot_m[i, delta_f + p * n + j] = rate_scale[j] * g[i, j] - slot_m[i, last_f + j]
        slot_i[i, ib + _POSITION] = (p + 1) % m
        if n_hist < m:
            n_hist += 1
            slot_i[i, ib + _HISTORY] = n_hist
    for j in range(n):
        slot_m[i, last_x + j] = slot_f[i, j]
        slot_m[i, last_f + j] = rate_scale[j] * g[i, j]
    solved = False
    if n_hist > 0:
        for a in range(n_hist):
            v = 0.0
            for j in range(n):
                v += slot_m[i, delta_f + a * n + j] * slot_m[i, last_f + j]
            rhs[a] = v
            for b in range(a, n_hist):
                v = 0.0
                for j in range(n):
                    v += slot_m[i, delta_f + a * n + j] * slot_m[i, delta_f + b * n + j]
                gram[a, b] = v
                gram[b, a] = v
        trace = 0.0
        for a in range(n_hist):
            trace += gram[a, a]
        for a in range(n_hist):
            gram[a, a] += 1e-12 * trace
        solved = solve_in_place(gram, rhs, n_hist, 0.0)
        if not solved:
            slot_i[i, ib + _HISTORY] = 0
            slot_i[i, ib + _POSITION] = 0
    beta = options[BETA]
    for j in range(n):
        v = slot_f[i, j] + beta * slot_m[i, last_f + j]
        if solved:
            for a in range(n_hist):
                v -= rhs[a] * (slot_m[i, delta_x + a * n + j] + beta * slot_m[i, delta_f + a * n + j])
        slot_f[i, j] = v
    slot_i[i, ib + _ITERATIONS] += 1
    slot_i[i, ib + _EXTRA] += 1
    return HANDLED


@numba.njit(inline="always")
def plain_euler(options, slot_i, i, ib):
    """Whether slot ``i`` takes the row loop's plain Euler step: not iterating and not at a check.

    A row out of attempts (or told acceleration will not pay) is plain from then on.
    """
    if slot_i[i, ib + _MODE] != 0:
        return False
    return slot_i[i, ib + _ATTEMPTS] >= options[ATTEMPTS] or slot_i[i, STEPS] < slot_i[i, ib + _NEXT_CHECK]


@numba.njit(inline="always")
def retire(slot_m, slot_i, i, ib, n, r, row_data):
    """Record whether row ``r`` converged on an Anderson iterate; its extra steps.

    An accelerated row also leaves the Euler state its last attempt started
    from, and that state's step count, in ``row_data``: a row whose end point
    fails verification resumes Euler there, as ``method="euler"`` would have
    gone on (its residual windows are those of that state: Anderson's
    iterations do not update them).
    """
    accelerated, saved_states, saved_steps = row_data
    accelerated[r] = slot_i[i, ib + _MODE] == 1
    if accelerated[r]:
        for j in range(n):
            saved_states[r, j] = slot_m[i, j]
        saved_steps[r] = slot_i[i, ib + _SAVED_STEPS]
    return slot_i[i, ib + _EXTRA]
