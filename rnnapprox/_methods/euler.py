"""``method="euler"``: forward Euler, the method that defines the answer."""

from .._kernels import EULER, KernelResult, integrate
from ._base import SolverMethod


class Euler(SolverMethod):
    """Forward Euler for every row until it converges, diverges or runs out of steps."""

    name = "euler"

    def solve(self, family, drive, initial, settings, workers):
        model = family.kernel_model(settings.dt)

        def run(rows):
            return integrate(family.kernel_code, EULER, model, (), (), drive[rows], initial[rows],
                             settings.tol, settings.max_steps, settings.divergence_threshold,
                             settings.block_size)

        return KernelResult(*workers.map_rows(run, len(drive)))
