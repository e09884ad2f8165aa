"""Kernel pieces of ``method="active_set"``: certified jumps for relu rate networks.

Every ``check`` steps (the steps between are the row loop's plain Euler steps,
with no bookkeeping) a row compares its active set with the last check's; a
change drops its candidate. At a check a row also leaves as ``CERTIFIED`` when
its candidate fixed point passes :func:`certificate_holds`, and as ``SETTLED``
when it has no candidate tried for its active set, that set has been the same
at the checks of the last ``settle_steps`` steps and has at most
``max_active`` units (a larger region is not worth analysing). A ``RETIRED``
row stays plain Euler. The per-row inputs carry each row's mode, candidate
and region bounds; the row loop itself resumes each row at its step count with
its residual windows. :func:`region_fixed_points` and :func:`power_row_bounds`
compute candidates and region bounds; the proof is in the user guide. A change
of set and back between two checks goes unseen: harmless, as the certificate
itself proves that the row stays in its candidate's region.
"""

import numba
import numpy as np

from ._common import ADVANCE, CERTIFIED, SETTLED, STEPS, euler_exit, jit
from ._linalg import solve_in_place

#: Candidate modes of a row: none tried yet for the current active set, tried and
#: none found, candidate given, and no more tries (plain Euler from now on).
FRESH, NO_CANDIDATE, CANDIDATE, RETIRED = -1, 0, 1, 2
N_INTS = 3  # mode, steps with an unchanged active set (-1: none recorded yet), next check
_MODE, _UNCHANGED, _NEXT_CHECK = 0, 1, 2
# Per-slot floats: candidate (n), row bounds (n), then period J, residual norm,
# max c, then the active set at the last check (n, 1.0 where active).
_PERIOD, _RESIDUAL_NORM, _MAX_BOUND = 0, 1, 2


@numba.njit(inline="always")
def n_floats(n):
    return 3 * n + 3


@numba.njit(inline="always")
def load(slot_m, slot_i, i, r, ib, n, row_data):
    modes, candidates, bounds, infos = row_data
    slot_i[i, ib + _MODE] = modes[r]
    slot_i[i, ib + _UNCHANGED] = -1
    slot_i[i, ib + _NEXT_CHECK] = slot_i[i, STEPS]  # a check at once
    if modes[r] == CANDIDATE:
        for j in range(n):
            slot_m[i, j] = candidates[r, j]
            slot_m[i, n + j] = bounds[r, j]
        for j in range(3):
            slot_m[i, 2 * n + j] = infos[r, j]


@numba.njit(inline="always")
def certificate_holds(slot_f, slot_m, i, base, n, step, max_steps, tol):
    """Whether Euler from slot ``i``'s state provably converges to its candidate in time.

    With the region's row bounds ``c_i`` and period ``J``: the iterates keep
    the signs of ``x*`` when ``c_i ||x - x*|| < |x*_i|`` for every unit, stay
    below the row's divergence bound when ``|x*_i| + c_i ||x - x*|| <=
    bound``, and reach ``tol`` within ``J (1 + ceil(log2(||R|| max(c) ||x -
    x*|| / tol)))`` steps.
    """
    candidate, bound, info = 0, n, 2 * n
    distance = 0.0
    for j in range(n):
        distance = max(distance, abs(slot_f[i, j] - slot_m[i, candidate + j]))
    largest_state = slot_f[i, base]
    for j in range(n):
        reach = slot_m[i, bound + j] * distance
        target = abs(slot_m[i, candidate + j])
        if not reach < target:
            return False
        if not target + reach <= largest_state:
            return False
    if not tol > 0.0:
        return False  # Euler needs an exactly zero residual: nothing bounds its steps.
    # log2(0) = -inf (numba raises no floating-point warnings): then J steps are needed.
    halvings = np.log2(slot_m[i, info + _RESIDUAL_NORM] * slot_m[i, info + _MAX_BOUND] * distance / tol)
    needed = slot_m[i, info + _PERIOD] * (1.0 + np.ceil(max(halvings, 0.0)))
    return step + needed <= max_steps


@numba.njit(inline="always")
def plain_euler(options, slot_i, i, ib):
    """Whether slot ``i`` takes the row loop's plain Euler step: retired, or not at a check."""
    return slot_i[i, ib + _MODE] == RETIRED or slot_i[i, STEPS] < slot_i[i, ib + _NEXT_CHECK]


@numba.njit(inline="always")
def decide(options, slot_f, slot_m, slot_i, i, base, ib, n, residual, largest, tol, max_steps):
    """Exit code of slot ``i`` at a check (with ``CERTIFIED`` and ``SETTLED``) or ``ADVANCE``."""
    settle_steps, max_active, check = options
    code = euler_exit(slot_f, slot_i, i, base, residual, largest, tol, max_steps)
    if code != ADVANCE:
        return code
    slot_i[i, ib + _NEXT_CHECK] = slot_i[i, STEPS] + check
    pattern = 2 * n + 3
    unchanged = slot_i[i, ib + _UNCHANGED]
    same = unchanged >= 0
    count = 0
    for j in range(n):
        active = slot_f[i, j] > 0.0
        same = same and active == (slot_m[i, pattern + j] > 0.0)
        slot_m[i, pattern + j] = 1.0 if active else 0.0
        count += active
    if same:
        slot_i[i, ib + _UNCHANGED] = unchanged + check
    else:
        if unchanged >= 0:
            slot_i[i, ib + _MODE] = FRESH  # a new active set: a candidate may be tried for it
        slot_i[i, ib + _UNCHANGED] = 0
    mode = slot_i[i, ib + _MODE]
    if mode == CANDIDATE and certificate_holds(slot_f, slot_m, i, base, n, slot_i[i, STEPS], max_steps,
                                               tol):
        return CERTIFIED
    if mode == FRESH and slot_i[i, ib + _UNCHANGED] >= settle_steps:
        if count <= max_active:
            return SETTLED
        slot_i[i, ib + _MODE] = NO_CANDIDATE  # too large to analyse: wait for the set to change
    return ADVANCE


@jit(nogil=True)
def region_fixed_points(states, drive, weights, max_residual, points, found):
    """The fixed point of each row's relu region.

    Row ``r``'s region is its active set ``A = {i : states[r, i] > 0}``; its
    fixed point solves ``(I - W_AA) x_A = d_A`` and ``x_I = W_IA x_A + d_I``.
    ``found[r]`` is True when the system is not numerically singular, the
    computed ``x`` has residual ``max|-x + W relu(x) + d|`` at most
    ``max_residual`` (an ill-conditioned solve does not pass) and ``x`` has the
    region's signs (``x_A > 0``, ``x_I < 0``): ``x`` is then a fixed point of
    the network, written to ``points[r]``.
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
        found[r] = solve_in_place(system, solution, n_active, 1e-12 * scale)
        if not found[r]:
            continue
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


@jit(nogil=True)
def power_row_bounds(weights, rate_scale, active, decay, limit, growth_limit, bound):
    """Row bounds of the powers of a relu region's Euler map, for ``method="active_set"``.

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
