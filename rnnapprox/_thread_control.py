"""Threads for the kernels, and BLAS pinned to one thread while they run.

The kernels are serial and release the GIL; rows are split into interleaved
groups run in a thread pool (no numba threading layer, so calls from several
threads and from forked processes are safe). BLAS is pinned to one thread
meanwhile, so the threads do not oversubscribe the cores.
"""

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from threadpoolctl import ThreadpoolController

_BLAS_CONTROLLER = None
_BLAS_LOCK = threading.Lock()
_BLAS_USERS = 0
_BLAS_LIMITER = None


def _blas_controller():
    """Threadpool controller made once, used to pin BLAS to one thread in kernels."""
    global _BLAS_CONTROLLER
    if _BLAS_CONTROLLER is None:
        _BLAS_CONTROLLER = ThreadpoolController()
    return _BLAS_CONTROLLER


@contextlib.contextmanager
def single_threaded_blas():
    """Pin BLAS to one thread while any call needs it; restore when the last one leaves.

    threadpoolctl's limits are process-wide: nested ``limit()`` contexts entered
    and left by overlapping threads would restore each other's values and leave
    BLAS pinned. One reference-counted limiter avoids that.
    """
    global _BLAS_USERS, _BLAS_LIMITER
    with _BLAS_LOCK:
        if _BLAS_USERS == 0:
            _BLAS_LIMITER = _blas_controller().limit(limits=1, user_api="blas")
        _BLAS_USERS += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _BLAS_USERS -= 1
            if _BLAS_USERS == 0:
                _BLAS_LIMITER.restore_original_limits()
                _BLAS_LIMITER = None


def n_threads(n_jobs):
    """Threads for one call, from an estimator's ``n_jobs``.

    ``None`` and ``-1`` take every thread numba was started with
    (``NUMBA_NUM_THREADS``, the number of cores unless set), capped by
    ``OMP_NUM_THREADS`` when set: joblib's loky workers and Dask's worker
    processes set these variables, so workers do not oversubscribe the cores.
    """
    available = numba.config.NUMBA_NUM_THREADS
    omp_threads = os.environ.get("OMP_NUM_THREADS", "")
    if omp_threads.isdigit() and int(omp_threads) > 0:
        available = min(available, int(omp_threads))
    if n_jobs is None or n_jobs == -1:
        return available
    if n_jobs < -1:
        return max(1, available + 1 + n_jobs)
    if n_jobs == 0:
        raise ValueError("n_jobs == 0 has no meaning; use None, -1 or a positive integer.")
    return min(n_jobs, available)


class Workers:
    """Threads that run kernels on groups of rows, BLAS pinned to one thread meanwhile.

    Use as a context manager. ``map`` runs a function over items in the
    threads; ``map_rows`` splits row indices into ``2 n_threads`` interleaved
    groups (``w, w + n_groups, ...``, so each group mixes slow and fast rows
    and the threads stay balanced) and reassembles the arrays each group
    returns.
    """

    def __init__(self, n_threads):
        self.n_threads = n_threads
        self._stack = contextlib.ExitStack()
        self._pool = None

    def __enter__(self):
        self._stack.enter_context(single_threaded_blas())
        if self.n_threads > 1:
            self._pool = self._stack.enter_context(ThreadPoolExecutor(max_workers=self.n_threads))
        return self

    def __exit__(self, *exc_info):
        self._pool = None
        return self._stack.__exit__(*exc_info)

    def map(self, function, items):
        """``[function(item) for item in items]``, in the threads."""
        if self._pool is None:
            return [function(item) for item in items]
        return list(self._pool.map(function, items))

    def map_rows(self, function, n_rows):
        """Run ``function(rows)`` on interleaved groups of ``range(n_rows)``; reassemble its arrays.

        ``function`` returns a tuple of arrays whose first axis runs over the
        group's rows; the result is the tuple of whole arrays, in row order.
        """
        n_groups = max(1, min(2 * self.n_threads, n_rows))
        groups = [np.arange(w, n_rows, n_groups) for w in range(n_groups)]
        parts = self.map(function, groups)
        outputs = [np.empty((n_rows,) + a.shape[1:], dtype=a.dtype) for a in parts[0]]
        for rows, part in zip(groups, parts, strict=True):
            for output, array in zip(outputs, part, strict=True):
                output[rows] = array
        return outputs
