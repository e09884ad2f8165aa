"""What a solver method is to the transformer: the interface every method implements."""

from collections import namedtuple

#: How to integrate: Euler step, convergence tolerance, step budget, divergence
#: threshold and rows per block (see ``RecurrentFixedPointTransformer``).
Settings = namedtuple("Settings", ["dt", "tol", "max_steps", "divergence_threshold", "block_size"])


class SolverMethod:
    """A way of finding the fixed point that Euler's trajectory reaches from ``x0``.

    Subclasses set ``name`` and implement ``solve``; ``check`` rejects the
    families they cannot handle, with a message that says what to use.
    """

    name = None

    def check(self, family):
        """Raise ``ValueError`` when this method cannot integrate ``family``."""

    def solve(self, family, drive, initial, settings, workers):
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

        Returns
        -------
        result : rnnapprox._kernels.KernelResult
        """
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}()"
