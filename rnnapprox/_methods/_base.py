"""What a solver method is to the transformer: the interface every method implements."""

from collections import namedtuple

import numpy as np

#: How to integrate: Euler step, convergence tolerance, step budget, divergence
#: threshold, rows per block, precision ("float64" or "mixed", see
#: ``RecurrentFixedPointTransformer``) and the tolerance the rows must reach in
#: the end (``final_tol``; None: ``tol``. The float32 phase of mixed precision
#: stops at a larger ``tol``).
Settings = namedtuple("Settings", ["dt", "tol", "max_steps", "divergence_threshold", "block_size",
                                   "precision", "final_tol"], defaults=["float64", None])


def resume_arrays(start, n_rows):
    """``(steps, windows)`` of ``start``, or those of fresh rows; ``windows`` is updated by the kernels."""
    if start is None:
        return np.zeros(n_rows, dtype=np.int64), np.tile([np.inf, -1.0], (n_rows, 1))
    steps, windows = start
    return np.asarray(steps, dtype=np.int64), windows


class SolverMethod:
    """A way of finding the fixed point that Euler's trajectory reaches from ``x0``.

    Subclasses set ``name`` (and ``families``, the family names they handle;
    None: all) and implement ``solve``; ``check`` rejects the families they
    cannot handle, with a message that says what to use.
    """

    name = None
    families = None

    def check(self, family):
        """Raise ``ValueError`` when this method cannot integrate ``family``."""
        if self.families is not None and family.name not in self.families:
            raise ValueError(f"method={self.name!r} is available for {' and '.join(self.families)} "
                             f"networks only; {family.name} networks are integrated with "
                             "method='euler'.")

    def solve(self, family, drive, initial, settings, workers, start=None, dtype=np.float64):
        """Integrate every row of ``drive`` from ``initial``.

        Parameters
        ----------
        family : rnnapprox._families.Family
            The network.
        drive : ndarray of shape (n_rows, n_units)
            Constant drive of each row.
        initial : ndarray of shape (n_rows, n_state)
            Start state of each row.
        settings : Settings
            Step, tolerance, budget, divergence threshold, block size.
        workers : rnnapprox._thread_control.Workers
            The threads to run kernels in.
        start : tuple of ndarray, default=None
            ``(steps, windows)``: the Euler steps each row has made and its
            residual windows, to resume rows; ``None`` starts them fresh.
        dtype : {numpy.float64, numpy.float32}, default=numpy.float64
            Arithmetic of the integration.

        Returns
        -------
        result : rnnapprox._kernels.KernelResult
        """
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}()"
