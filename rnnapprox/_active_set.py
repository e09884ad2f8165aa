"""Certified active-set jumps for relu rate networks (``method="newton"``).

On a fixed active set ``A = {i : x_i > 0}`` a relu rate network is linear, so
its Euler map ``G(x) = x + S (-x + W relu(x) + d)``, ``S = diag(dt / tau)``,
is affine there: ``G(x) - x* = M (x - x*)`` with ``M = I - S + S W D_A``
(``D_A`` the 0/1 diagonal of ``A``) and ``x*`` the region's fixed point,
``(I - W_AA) x*_A = d_A``, ``x*_I = W_IA x*_A + d_I``. This module decides,
for an Euler state ``x`` with active set ``A``, whether Euler started at ``x``
provably converges to that ``x*``; then the remaining Euler steps can be
replaced by one linear solve. Everything here is numpy and the numba kernels
of ``rnnapprox._kernels`` on arrays; the estimator decides when to call it.
"""

import numpy as np

from ._kernels import power_row_bounds, region_fixed_points

#: Largest number of powers of ``M`` computed to certify a region.
POWER_LIMIT = 512

#: ``M^J`` must have infinity norm at most this for the certificate.
POWER_DECAY = 0.5

#: Cost model: a region's analysis costs about ANALYSIS_FLOPS * |A|^3 flops
#: (eigenvalues and some 60 powers of M_AA) and is made only when that is at most
#: STEPS_SAVED Euler steps of 2 N^2 flops (what a few certified rows sharing the
#: region save). The rule depends on the active set's size alone, so a row's result
#: does not depend on the other rows of the call.
ANALYSIS_FLOPS = 140.0
STEPS_SAVED = 640.0


def max_analysed_active(n_units):
    """Largest active set whose region is analysed, for a network of ``n_units``."""
    return int((STEPS_SAVED * 2.0 * n_units**2 / ANALYSIS_FLOPS) ** (1.0 / 3.0))

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
    Let ``x`` have active set ``A``, ``x*`` the fixed point of region ``A``
    and ``v = x - x*``. While Euler stays in the region, ``x_j - x* = M^j
    v``. With ``||M^J||_inf <= 1/2`` and ``c_i >= max_{r < J} ||row_i(M^r)||_1``
    (``rnnapprox._kernels.power_row_bounds``), ``|(M^j v)_i| <= c_i
    ||v||_inf`` for every ``j`` (split ``j = qJ + r``).
    Hence if ``c_i ||v||_inf < |x*_i|`` for every unit, every Euler iterate
    keeps the signs of ``x*`` (it never leaves region ``A``) and the iterates
    converge to ``x*``: this is Euler's answer from ``x``, whatever other
    attractors the network has. A region whose powers of ``M`` do not fall
    to ``1/2`` within ``POWER_LIMIT`` (spectral radius at least 1, or too
    slow a decay) or first grow beyond ``ROW_BOUND_LIMIT`` certifies nothing.

    The residual of Euler's iterates is ``||(W D_A - I) M^j v||_inf <= ||W
    D_A - I||_inf 2^-q max(c) ||v||_inf``, which bounds the number of steps
    Euler still needs to reach ``tol``: a row whose bound exceeds its
    remaining ``max_steps`` is not certified, since Euler would perhaps not
    have converged in time; nor is one whose iterates could pass the
    divergence bound (``|x*_i| + c_i ||v||_inf``). The test itself runs
    inside the Euler kernel, every step
    (``rnnapprox._kernels.euler_certified_rate_fixed_points``). The argument
    is about the exact ``x*``; the computed one is accepted when its
    residual is at most ``tol``.
    """

    def __init__(self, weights, rate_scale):
        self.weights = np.require(weights, dtype=np.float64, requirements=["C"])
        self.rate_scale = np.require(rate_scale, dtype=np.float64, requirements=["C"])
        self._regions = {}

    @property
    def n_regions(self):
        """Regions (active sets) analysed so far."""
        return len(self._regions)

    def region_certificate(self, active):
        """Row bounds ``c``, period ``J`` and residual norm of region ``active`` (bool mask).

        Returns None when the region certifies nothing: too large an
        active set for the cost model, an inactive unit
        with ``|1 - dt / tau| >= 1``, an eigenvalue of ``M_AA`` of modulus
        at least 1, or powers that do not fall to ``POWER_DECAY`` within
        ``POWER_LIMIT`` or first exceed ``ROW_BOUND_LIMIT``. Cached per
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
        period = power_row_bounds(weights, scale, active, POWER_DECAY, POWER_LIMIT,
                                  ROW_BOUND_LIMIT, row_bound)
        if period == 0:
            return None
        jacobian = weights * active[np.newaxis, :]
        jacobian[np.diag_indices_from(jacobian)] -= 1.0
        return row_bound, period, np.abs(jacobian).sum(axis=1).max()

    def candidates(self, states, drive, tol, pool=None, n_parts=1):
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
        pool : concurrent.futures.Executor, default=None
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

        solved = pool.map(solve, parts) if pool is not None else map(solve, parts)
        for rows, (part_points, part_found) in zip(parts, solved):
            points[rows], found[rows] = part_points, part_found
        rows = np.flatnonzero(found)
        masks = states[rows] > 0.0
        packed = np.packbits(masks, axis=1)
        keys = np.ascontiguousarray(packed).view(np.dtype((np.void, packed.shape[1]))).ravel()
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        keys = [keys[i].tobytes() for i in first]
        new = [(key, masks[i]) for key, i in zip(keys, first) if key not in self._regions]
        analysed = (pool.map(self._analyse, [m for _, m in new]) if pool is not None and len(new) > 1
                    else map(self._analyse, [m for _, m in new]))
        self._regions.update(zip([key for key, _ in new], analysed))
        certificates = [self._regions[key] for key in keys]
        certified = np.array([c is not None for c in certificates], dtype=bool)
        table_bounds = np.array([c[0] if c is not None else np.zeros(n_units)
                                 for c in certificates]).reshape(-1, n_units)
        table_infos = np.array([(c[1], c[2], c[0].max()) if c is not None else (0.0, 0.0, 0.0)
                                for c in certificates]).reshape(-1, 3)
        inverse = np.ravel(inverse)
        bounds[rows] = table_bounds[inverse]
        infos[rows] = table_infos[inverse]
        found[rows] = certified[inverse]
        return found, points, bounds, infos
