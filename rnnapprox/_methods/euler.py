"""``method="euler"``: forward Euler, the method that defines the answer."""

import numpy as np

from .._kernels import EULER, KernelResult, integrate
from ._base import SolverMethod, resume_arrays


class Euler(SolverMethod):
    """Forward Euler for every row until it converges, diverges or runs out of steps."""

    name = "euler"

    def solve(self, family, drive, initial, settings, workers, start=None, dtype=np.float64):
        model = family.kernel_model(settings.dt, dtype)
        steps, windows = resume_arrays(start, len(drive))

        def run(rows):
            row_windows = windows[rows]
            result = integrate(family.kernel_code, EULER, model, (), (), drive[rows], initial[rows],
                               settings.tol, settings.max_steps, settings.divergence_threshold,
                               settings.block_size, steps[rows], row_windows)
            return (*result, row_windows)

        *arrays, windows[:] = workers.map_rows(run, len(drive))
        return KernelResult(*arrays)
