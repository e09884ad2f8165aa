"""The one small dense solver of the kernels (Gaussian elimination, partial pivoting)."""

import numba
import numpy as np


@numba.njit(inline="always")
def solve_in_place(matrix, rhs, n, pivot_floor):
    """Solve ``matrix[:n, :n] @ y = rhs[:n]``, overwriting both; ``y`` ends in ``rhs``.

    Returns False, leaving ``rhs`` undefined, when a pivot is at most
    ``pivot_floor`` in modulus (numerically singular) or ``y`` is not finite.
    The matrices here are small (Anderson's ``m x m`` normal equations) or
    solved once per row (a relu region's ``|A| x |A|`` system), so a plain
    loop beats a LAPACK call's overhead and never raises inside a nogil kernel.
    """
    for k in range(n):
        pivot = k
        for q in range(k + 1, n):
            if abs(matrix[q, k]) > abs(matrix[pivot, k]):
                pivot = q
        if not abs(matrix[pivot, k]) > pivot_floor:
            return False
        if pivot != k:
            for c in range(k, n):
                matrix[k, c], matrix[pivot, c] = matrix[pivot, c], matrix[k, c]
            rhs[k], rhs[pivot] = rhs[pivot], rhs[k]
        for q in range(k + 1, n):
            factor = matrix[q, k] / matrix[k, k]
            if factor != 0.0:
                for c in range(k + 1, n):
                    matrix[q, c] -= factor * matrix[k, c]
                rhs[q] -= factor * rhs[k]
    for k in range(n - 1, -1, -1):
        total = rhs[k]
        for c in range(k + 1, n):
            total -= matrix[k, c] * rhs[c]
        rhs[k] = total / matrix[k, k]
        if not np.isfinite(rhs[k]):
            return False
    return True
