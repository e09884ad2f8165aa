"""``method="anderson"``: Anderson acceleration of the Euler map, verified against Euler."""

import numpy as np

from .._kernels import ANDERSON, CONVERGED, KernelResult, integrate
from .._kernels.anderson import DEFAULTS, VERIFY_FLOPS
from ._base import SolverMethod, resume_arrays
from .euler import Euler


class Anderson(SolverMethod):
    """Euler until a row settles, then Anderson(5) mixing; rows it cannot vouch for redone by Euler.

    A row that reached ``tol`` on an Anderson iterate is accepted only if the
    point is a stable fixed point of the Euler map (``Family.euler_map_radius``
    below 1) and Euler, contracting by about that radius per step, would have
    reached ``tol`` within ``max_steps``; the others go on by plain Euler from
    the Euler state their attempt started from. A row is accelerated only where the Euler steps it
    would save outweigh that check's cost (``_kernels.anderson._pays``);
    others go on by Euler. The user guide explains what this guarantees.
    """

    name = "anderson"
    families = ("rate",)

    def solve(self, family, drive, initial, settings, workers, start=None, dtype=np.float64):
        model = family.kernel_model(settings.dt, dtype)
        tuning = DEFAULTS.copy()
        if family.fixed_point_unique():
            tuning[VERIFY_FLOPS] = 0.0  # nothing to verify: any fixed point found is the one
        options = (tuning, bool(family.piecewise_linear))
        steps, windows = resume_arrays(start, len(drive))

        def run(rows):
            row_data = (np.zeros(len(rows), dtype=np.bool_), np.empty((len(rows), family.n_state)),
                        np.zeros(len(rows), dtype=np.int64))
            row_windows = windows[rows]
            result = integrate(family.kernel_code, ANDERSON, model, options, row_data,
                               drive[rows], initial[rows], settings.tol, settings.max_steps,
                               settings.divergence_threshold, settings.block_size, steps[rows],
                               row_windows)
            return (*result, row_windows, *row_data)

        *arrays, windows[:], accelerated, saved_states, saved_steps = workers.map_rows(run, len(drive))
        result = KernelResult(*arrays)
        check = np.flatnonzero(accelerated & (result.status == CONVERGED))
        if check.size:
            radius = family.euler_map_radius(result.states[check], drive[check], settings.dt, workers)
            # Euler's residual shrinks by about the radius per step near the point: from the
            # attempt's start it would need about log(r / tol) / -log(radius) more steps. A
            # row that would not finish within max_steps is Euler's, which stops it there.
            begin_residual = family.residual(saved_states[check], drive[check])
            final_tol = settings.tol if settings.final_tol is None else settings.final_tol
            with np.errstate(divide="ignore"):
                needed = np.log(begin_residual / final_tol) / -np.log(radius)
            in_time = saved_steps[check] + np.nan_to_num(needed, nan=np.inf) <= settings.max_steps
            failed = check[~((radius < 1.0) & in_time)]
            if failed.size:
                # Euler goes on from the state the attempt started from, as it would have.
                redo = Euler().solve(family, drive[failed], saved_states[failed], settings, workers,
                                     (saved_steps[failed], windows[failed]), dtype)
                for whole, part in zip(result, redo, strict=True):
                    whole[failed] = part
        return result
