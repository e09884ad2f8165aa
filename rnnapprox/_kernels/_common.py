"""What every kernel shares: the jit decorator, exit codes, slot layout, residual windows."""

import os
import warnings

import numba
import numpy as np

_SETTING = os.environ.get("RNNAPPROX_NUMBA_CACHE", "").strip().lower()
#: Compiled kernels are cached on disk unless RNNAPPROX_NUMBA_CACHE is 0/false/no/off ...
_CACHE = _SETTING not in ("0", "false", "no", "off")
#: ... and a failure to cache is reported only when caching was asked for explicitly.
_ASKED = _SETTING in ("1", "true", "yes", "on")


def jit(**options):
    """``numba.njit`` with the on-disk cache where it can be written, in memory otherwise.

    numba caches next to the package (``__pycache__``) or in the user's cache
    directory (``NUMBA_CACHE_DIR``, else the platform's), whichever is
    writable, and raises ``RuntimeError`` at decoration time when neither is
    (a read-only install without a cache directory): then the kernels are
    compiled in memory, silently unless ``RNNAPPROX_NUMBA_CACHE=1`` asked for
    the cache.
    """

    def decorate(function):
        global _CACHE
        if _CACHE:
            try:
                return numba.njit(cache=True, **options)(function)
            except RuntimeError as exc:
                _CACHE = False
                if _ASKED:
                    warnings.warn(
                        f"RNNAPPROX_NUMBA_CACHE is set but numba cannot cache here ({exc}); "
                        "the kernels are compiled in memory.", RuntimeWarning, stacklevel=3,
                    )
        return numba.njit(**options)(function)

    return decorate


#: Exit codes of a row, see ``STATUS_NAMES``; ``SETTLED`` and ``CERTIFIED`` are
#: internal to the active-set method and never reach users.
CONVERGED, DIVERGED, MAX_STEPS, SETTLED, CERTIFIED = 0, 1, 2, 3, 4
STATUS_NAMES = np.array(["converged", "diverged", "max_steps"])
#: What a method's per-step decision returns besides an exit code: take the
#: family's Euler step, or nothing more this step (the method moved the row).
ADVANCE, HANDLED = -1, -2

#: Per-slot layout. Floats: the state (``n_state``), the drive (``n_drive``), then
#: the divergence bound and the two residual windows (the method's floats are a
#: row of their own). Integers: the row index and the Euler step count, then the
#: method's integers.
BOUND, WINDOW_MID, WINDOW_LATE, SLOT_FLOATS = 0, 1, 2, 3
ROW, STEPS, SLOT_INTS = 0, 1, 2


@numba.njit(inline="always")
def window_update(slot_f, i, base, step, max_steps, residual):
    """Track the residual's minimum over the 2nd and maximum over the 4th quarter.

    The second quarter is ``max_steps / 4 <= step < max_steps / 2``, the last
    ``step >= 3 max_steps / 4``. Their ratio ``max(last) / min(second)`` is
    well below 1 only for a row whose residual is still shrinking at
    ``max_steps``; the dips of a chaotic or oscillating residual do not fake
    it, since the maximum over the last quarter catches the peaks.
    """
    if 4 * step >= max_steps and 2 * step < max_steps:
        if residual < slot_f[i, base + WINDOW_MID]:
            slot_f[i, base + WINDOW_MID] = residual
    if 4 * step >= 3 * max_steps:
        if residual > slot_f[i, base + WINDOW_LATE] or not np.isfinite(residual):
            slot_f[i, base + WINDOW_LATE] = residual


@numba.njit(inline="always")
def window_ratio(code, window_mid, window_late):
    """``contraction`` of a row that ended with ``code`` (NaN unless ``MAX_STEPS``)."""
    if code != MAX_STEPS or not (np.isfinite(window_mid) and np.isfinite(window_late)):
        return np.nan
    if window_mid == 0.0 or window_late < 0.0:
        return np.nan
    return window_late / window_mid


@numba.njit(inline="always")
def euler_exit(slot_f, slot_i, i, base, residual, largest, tol, max_steps):
    """The exit code of slot ``i`` at its current state, or ``ADVANCE``.

    Converged when the residual is at most ``tol``; diverged when the state is
    not finite or ``max|x|`` exceeds the row's bound; ``MAX_STEPS`` after
    ``max_steps`` updates. Updates the residual windows first.
    """
    finite = np.isfinite(residual) and np.isfinite(largest)
    window_update(slot_f, i, base, slot_i[i, STEPS], max_steps, residual)
    if finite and residual <= tol:
        return CONVERGED
    if not finite or largest > slot_f[i, base + BOUND]:
        return DIVERGED
    if slot_i[i, STEPS] >= max_steps:
        return MAX_STEPS
    return ADVANCE
