"""Driving a solver method over many rows: chunk by chunk, in threads, with progress."""

import numpy as np

from ._kernels import empty_result
from ._methods._precision import solve_mixed
from ._thread_control import Workers

#: Rows integrated per chunk: bounds memory and lets the caller report progress.
CHUNK_ROWS = 8192
#: Rows integrated together in one matrix product per Euler step.
BLOCK_ROWS = 64


def integrate_in_chunks(method, family, drive, initial, settings, n_threads, progress=None):
    """Integrate every row of ``drive`` with ``method``, ``CHUNK_ROWS`` rows at a time.

    Parameters
    ----------
    method : rnnapprox._methods.SolverMethod
    family : rnnapprox._families.Family
    drive : ndarray of shape (n_rows, n_units)
    initial : ndarray of shape (n_state,) or (n_rows, n_state)
        One start state for every row, or one per row.
    settings : rnnapprox._methods.Settings
    n_threads : int
        Threads running the kernels (BLAS pinned to one thread meanwhile).
    progress : callable, default=None
        Called as ``progress(rows_done, n_rows, rows_converged)`` after each chunk.

    Returns
    -------
    result : rnnapprox._kernels.KernelResult
    """
    n_rows = drive.shape[0]
    result = empty_result(n_rows, family.n_state)
    if n_rows == 0:
        return result
    settings = settings._replace(block_size=BLOCK_ROWS)
    n_converged = 0
    with Workers(n_threads) as workers:
        for start in range(0, n_rows, CHUNK_ROWS):
            chunk = slice(start, min(start + CHUNK_ROWS, n_rows))
            if initial.ndim == 1:
                first = np.repeat(initial[np.newaxis, :], chunk.stop - start, axis=0)
            else:
                first = np.ascontiguousarray(initial[chunk], dtype=np.float64)
            chunk_drive = np.ascontiguousarray(drive[chunk])
            if settings.precision == "mixed":
                part = solve_mixed(method, family, chunk_drive, first, settings, workers)
            else:
                part = method.solve(family, chunk_drive, first, settings, workers)
            for whole, piece in zip(result, part, strict=True):
                whole[chunk] = piece
            if progress is not None:
                n_converged += int(np.sum(part.status == 0))
                progress(chunk.stop, n_rows, n_converged)
    return result
