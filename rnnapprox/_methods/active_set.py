"""``method="active_set"``: certified jumps to a relu region's fixed point.

On a fixed active set ``A = {i : x_i > 0}`` a relu rate network is linear, so
its Euler map is affine there. A row whose active set has settled gets that
region's fixed point as candidate; the row loop then checks every CHECK_STEPS
Euler steps whether a bound on the region's Euler map proves that Euler, from the current
state, stays in the region and converges to the candidate. A certified row ends
on the candidate with the Euler steps it took; every other row ends as Euler
ends it. The proof and its limits are in the user guide ("Solver methods").
"""

import warnings

import numpy as np

from .._families.rate import unique_active_sets
from .._kernels import ACTIVE_SET as ACTIVE_SET_CODE
from .._kernels import CERTIFIED, CONVERGED, MAX_STEPS, SETTLED, KernelResult, empty_result, integrate
from .._kernels.active_set import (
    CANDIDATE,
    FRESH,
    NO_CANDIDATE,
    RETIRED,
    power_row_bounds,
    region_fixed_points,
)
from ._base import SolverMethod, resume_arrays
from .euler import Euler

#: A row looks at its active set every CHECK_STEPS Euler steps (the steps between
#: are plain Euler steps, without bookkeeping) ...
CHECK_STEPS = 5
#: ... and a row whose relu active set has been the same at the checks of this
#: many Euler steps gets the fixed point of that set as candidate ...
SETTLE_STEPS = 10
#: ... and a row that has settled this many times without being certified (an
#: oscillating or chaotic row, each set change a round trip to Python) goes on
#: as plain Euler.
MAX_ATTEMPTS = 20
#: No row is certified unless tol >= RESOLUTION_ULPS * eps * (1 + ||W||_inf) *
#: max(|d|, |x*|): Euler's residual, rounded at that scale, could stall above a
#: smaller tol.
RESOLUTION_ULPS = 64.0

#: Largest number of powers of ``M`` computed to certify a region.
POWER_LIMIT = 512

#: ``M^J`` must have infinity norm at most this for the certificate.
POWER_DECAY = 0.5

#: Cost model: a region's analysis costs about ANALYSIS_FLOPS * |A|^3 flops
#: (eigenvalues and some 60 powers of M_AA) plus ANALYSIS_FIXED_FLOPS (LAPACK calls
#: and Python's share: about 100 us here, counted in flops of the Euler step's
#: matrix product) and is made only when that is at most STEPS_SAVED Euler steps
#: of 2 N^2 flops, about what one certified row saves (in random E/I networks each
#: region serves about one row). The rule depends on the active set's size alone,
#: so a row's result does not depend on the other rows of the call.
ANALYSIS_FLOPS = 140.0
ANALYSIS_FIXED_FLOPS = 1.5e6
STEPS_SAVED = 200.0


def max_analysed_active(n_units):
    """Largest active set whose region is analysed, for a network of ``n_units`` (0: none)."""
    budget = STEPS_SAVED * 2.0 * n_units**2 - ANALYSIS_FIXED_FLOPS
    return int((max(budget, 0.0) / ANALYSIS_FLOPS) ** (1.0 / 3.0))

#: A region whose powers grow beyond this (unstable, or so non-normal that the
#: certificate would need ``||x - x*||`` a million times below the margins) is given up.
ROW_BOUND_LIMIT = 1e6


class ActiveSetCertifier:
    """Certify Euler states of a relu rate network and return their fixed points.

    A row's region fixed point costs one ``|A| x |A|`` elimination; a
    region's certificate (eigenvalues of ``M_AA`` and powers of it) is
    computed once, when a row first has a fixed point inside it, and cached;
    regions too large for their analysis to pay (``max_analysed_active``)
    certify nothing.

    Parameters
    ----------
    weights : ndarray of shape (n_units, n_units)
        Recurrent weights ``W``.
    rate_scale : ndarray of shape (n_units,)
        ``dt / tau`` per unit.

    Notes
    -----
    A region's certificate is the row bounds ``c`` of the powers of its Euler
    map and a period ``J`` with ``||M^J||_inf <= 1/2``
    (``rnnapprox._kernels.active_set.power_row_bounds``); the row loop checks
    it every ``CHECK_STEPS`` steps (``rnnapprox._kernels.active_set.certificate_holds``). The
    proof that a passing row's Euler trajectory converges to the region's
    fixed point, and its conditions, are in the user guide (:ref:`solver-methods`).
    """

    def __init__(self, weights, rate_scale):
        self.weights = np.require(weights, dtype=np.float64, requirements=["C"])
        self.rate_scale = np.require(rate_scale, dtype=np.float64, requirements=["C"])
        self._regions = {}

    def region_certificate(self, active):
        """Row bounds ``c``, period ``J`` and residual norm of region ``active`` (bool mask).

        Returns None when the region certifies nothing: too large an
        active set for the cost model, an inactive unit
        with ``|1 - dt / tau| >= 1``, an eigenvalue of ``M_AA`` of modulus
        at least 1, or powers that do not fall to ``POWER_DECAY`` within
        ``POWER_LIMIT`` (fewer for large regions: no more powers than the
        ``STEPS_SAVED`` Euler steps cost) or first exceed ``ROW_BOUND_LIMIT``. Cached per
        active set.
        """
        key = np.packbits(active).tobytes()
        if key not in self._regions:
            self._regions[key] = self._analyse(active)
        return self._regions[key]

    def _analyse(self, active):
        weights, scale = self.weights, self.rate_scale
        if active.sum() > max_analysed_active(weights.shape[0]):
            return None  # costs more than the Euler steps it can be expected to save
        if np.any(np.abs(1.0 - scale[~active]) >= 1.0):
            return None
        index = np.flatnonzero(active)
        if index.size:
            euler_active = scale[index, np.newaxis] * weights[np.ix_(index, index)]
            euler_active[np.diag_indices_from(euler_active)] += 1.0 - scale[index]
            # The eigenvalues reject unstable regions for the price of a few powers.
            if np.abs(np.linalg.eigvals(euler_active)).max() >= 1.0:
                return None
        row_bound = np.empty(weights.shape[0])
        # Powers cost 2 |A|^3 flops each: stop where they would cost more than the steps saved.
        size = max(int(active.sum()), 1)
        limit = int(min(POWER_LIMIT, STEPS_SAVED * weights.shape[0] ** 2 / size**3))
        period = power_row_bounds(weights, scale, active, POWER_DECAY, max(limit, 1),
                                  ROW_BOUND_LIMIT, row_bound)
        if period == 0:
            return None
        # ||W D_A - I||_inf from the active columns alone: O(N |A|), not O(N^2).
        row_sums = np.abs(weights[:, index]).sum(axis=1)
        diagonal = weights[index, index]
        row_sums[index] += np.abs(diagonal - 1.0) - np.abs(diagonal)
        row_sums[~active] += 1.0
        return row_bound, period, row_sums.max()

    def candidates(self, states, drive, tol, workers=None, n_parts=1):
        """Each row's region fixed point, with its certificate data where there is one.

        Parameters
        ----------
        states : ndarray of shape (n_rows, n_units)
            Euler states; each defines its region by its active set ``x > 0``.
        drive : ndarray of shape (n_rows, n_units)
            Their drives ``W_in u + b``.
        tol : float
            Largest residual of a candidate: Euler's tolerance (the solve's
            rounding error on a well-conditioned region is far below it).
        workers : rnnapprox._thread_control.Workers, default=None
            Threads solving ``n_parts`` parts of the rows and analysing new
            regions (the kernels and LAPACK release the GIL).
        n_parts : int, default=1
            Parts the rows are split into.

        Returns
        -------
        found : ndarray of shape (n_rows,), bool
            Rows whose region has a fixed point inside it (a fixed point of
            the network) and a certificate.
        points : ndarray of shape (n_rows, n_units)
            The region fixed points ``x*`` (meaningful where ``found``).
        bounds : ndarray of shape (n_rows, n_units)
            The region's row bounds ``c``.
        infos : ndarray of shape (n_rows, 3)
            The region's period ``J``, residual norm ``||W D_A - I||_inf`` and
            ``max(c)``.
        """
        n_rows, n_units = states.shape
        states = np.ascontiguousarray(states, dtype=np.float64)
        points = np.empty((n_rows, n_units))
        found = np.zeros(n_rows, dtype=bool)
        bounds = np.zeros((n_rows, n_units))
        infos = np.zeros((n_rows, 3))
        if n_rows == 0:
            return found, points, bounds, infos
        drive = np.ascontiguousarray(drive, dtype=np.float64)
        parts = np.array_split(np.arange(n_rows), n_parts) if n_parts > 1 else [slice(None)]

        def solve(rows):
            part_points = np.empty((len(states[rows]), n_units))
            part_found = np.empty(len(part_points), dtype=bool)
            region_fixed_points(states[rows], drive[rows], self.weights, float(tol), part_points,
                                part_found)
            return part_points, part_found

        solved = workers.map(solve, parts) if workers is not None else map(solve, parts)
        for rows, (part_points, part_found) in zip(parts, solved):
            points[rows], found[rows] = part_points, part_found
        rows = np.flatnonzero(found)
        masks = states[rows] > 0.0
        keys, first, inverse = unique_active_sets(masks)
        keys = [keys[i].tobytes() for i in first]
        new = [(key, masks[i]) for key, i in zip(keys, first) if key not in self._regions]
        analysed = (workers.map(self._analyse, [m for _, m in new])
                    if workers is not None and len(new) > 1 else map(self._analyse, [m for _, m in new]))
        self._regions.update(zip([key for key, _ in new], analysed))
        certificates = [self._regions[key] for key in keys]
        certified = np.array([c is not None for c in certificates], dtype=bool)
        table_bounds = np.array([c[0] if c is not None else np.zeros(n_units)
                                 for c in certificates]).reshape(-1, n_units)
        table_infos = np.array([(c[1], c[2], c[0].max()) if c is not None else (0.0, 0.0, 0.0)
                                for c in certificates]).reshape(-1, 3)
        bounds[rows] = table_bounds[inverse]
        infos[rows] = table_infos[inverse]
        found[rows] = certified[inverse]
        return found, points, bounds, infos


class ActiveSet(SolverMethod):
    """Euler with certified jumps to the fixed point of a settled relu active set.

    Rounds: the row loop integrates the pending rows until each converges,
    diverges, reaches ``max_steps``, is certified (it ends on its candidate,
    with the Euler steps it took, if the candidate's residual meets ``tol``), or
    settles in an active set without a candidate; the settled rows get their
    region's fixed point from an :class:`ActiveSetCertifier` (when it lies in
    the region and the region has a certificate) and resume where they
    stopped. After ``MAX_ATTEMPTS`` settlings a row gets no more candidates.
    Rows never certified end as with ``method="euler"``.
    """

    name = "active_set"
    families = ("rate",)

    def check(self, family):
        super().check(family)
        if not family.piecewise_linear:
            raise ValueError(
                f"method={self.name!r} needs a relu network (its active sets are linear regions); "
                f"this network's activation is {family.activation!r}: use method='euler' or "
                "method='anderson'."
            )

    def _certifier(self, family, dt):
        """The certifier of ``family`` at ``dt``, kept across the chunks of one transform.

        Its cache of analysed regions is what makes the active set pay: one
        ``ActiveSet`` serves every chunk of a call, so a region is analysed once.
        """
        cached = getattr(self, "_cached_certifier", None)
        if cached is None or cached[0] is not family or cached[1] != dt:
            cached = (family, dt, ActiveSetCertifier(family.weights, dt / family.tau))
            self._cached_certifier = cached
        return cached[2]

    def solve(self, family, drive, initial, settings, workers, start=None, dtype=np.float64):
        if dtype != np.float64:
            raise ValueError("method='active_set' computes in float64 only.")
        if max_analysed_active(family.n_units) < 1:
            # No region of so small a network is worth its analysis: plain Euler.
            return Euler().solve(family, drive, initial, settings, workers, start, dtype)
        tol, max_steps = settings.tol, settings.max_steps
        certifier = self._certifier(family, settings.dt)
        model = family.kernel_model(settings.dt)
        options = (SETTLE_STEPS, max_analysed_active(family.n_units), CHECK_STEPS)
        n_rows, n_units = drive.shape
        result = empty_result(n_rows, n_units)
        first_steps, windows = resume_arrays(start, n_rows)
        first_steps = first_steps.copy()
        modes = np.full(n_rows, FRESH, dtype=np.int64)
        candidates = np.zeros((n_rows, n_units))
        bounds = np.zeros((n_rows, n_units))
        infos = np.zeros((n_rows, 3))
        attempts = np.zeros(n_rows, dtype=np.int64)
        weight_norm = 1.0 + family.weight_row_norm()
        pending = np.arange(n_rows)
        current = np.ascontiguousarray(initial, dtype=np.float64)
        while pending.size:
            def run(rows, pending=pending, current=current):
                rows_windows = windows[pending[rows]]
                row_data = tuple(np.ascontiguousarray(a[pending[rows]]) for a in
                                 (modes, candidates, bounds, infos))
                out = integrate(family.kernel_code, ACTIVE_SET_CODE, model, options, row_data,
                                drive[pending[rows]], current[rows], tol, max_steps,
                                settings.divergence_threshold, settings.block_size,
                                first_steps[pending[rows]], rows_windows)
                return (*out, rows_windows)

            *arrays, out_windows = workers.map_rows(run, pending.size)
            out = KernelResult(*arrays)
            windows[pending] = out_windows
            codes = out.status
            ended = codes <= MAX_STEPS
            rows = pending[ended]
            for whole, part in zip(result, out, strict=True):
                whole[rows] = part[ended]
            certified = np.flatnonzero(codes == CERTIFIED)
            fixed = candidates[pending[certified]]
            fixed_residual = family.residual(fixed, drive[pending[certified]])
            # The reported residual must meet tol as Euler's does, and tol must stand well
            # above the rounding of Euler's own residual at the row's scale: the proof is in
            # exact arithmetic, and near float resolution Euler may stall short of tol.
            # Otherwise the candidate is dropped and the row goes on by Euler.
            scale = np.maximum(np.abs(drive[pending[certified]]).max(axis=1, initial=0.0),
                               np.abs(fixed).max(axis=1, initial=0.0))
            resolution = RESOLUTION_ULPS * np.finfo(np.float64).eps * scale * weight_norm
            accepted = (fixed_residual <= tol) & (resolution <= tol)
            rows = pending[certified[accepted]]
            result.states[rows], result.residual[rows] = fixed[accepted], fixed_residual[accepted]
            result.n_steps[rows] = out.n_steps[certified[accepted]]
            result.status[rows] = CONVERGED
            resumed = codes == SETTLED
            resumed[certified[~accepted]] = True
            pending, current = pending[resumed], out.states[resumed]
            first_steps[pending] = out.n_steps[resumed]
            modes[pending] = NO_CANDIDATE
            settled = codes[resumed] == SETTLED
            attempts[pending[settled]] += 1
            retired = attempts[pending] > MAX_ATTEMPTS
            modes[pending[retired]] = RETIRED
            offered = np.flatnonzero(settled & ~retired)
            n_groups = 2 * workers.n_threads
            found, points, row_bounds, row_infos = certifier.candidates(
                current[offered], drive[pending[offered]], tol, workers,
                n_groups if offered.size >= 4 * n_groups else 1,
            )
            rows = pending[offered[found]]
            modes[rows] = CANDIDATE
            candidates[rows], bounds[rows], infos[rows] = points[found], row_bounds[found], row_infos[found]
        return result


class DeprecatedNewton(ActiveSet):
    """``method="newton"``, the old name of ``"active_set"`` (it takes no Newton step)."""

    def check(self, family):
        warnings.warn(
            "method='newton' was renamed method='active_set' in 0.2 (it certifies jumps to a "
            "relu region's fixed point; it takes no Newton step) and will be removed in 0.3.",
            FutureWarning, stacklevel=4,
        )
        super().check(family)
