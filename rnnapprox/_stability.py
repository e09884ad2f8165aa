"""Stability of fixed points and the Lyapunov exponent of rows that never settle."""

import numpy as np

from ._chunked import integrate_in_chunks
from ._methods import Euler
from ._thread_control import Workers

#: Finite-time Lyapunov estimate: a discarded warm-up round and LYAPUNOV_ROUNDS
#: rounds of LYAPUNOV_ROUND_TIME (in units of the largest time constant),
#: renormalising a perturbation of size LYAPUNOV_EPSILON after each round.
LYAPUNOV_ROUNDS = 20
LYAPUNOV_ROUND_TIME = 20.0
LYAPUNOV_EPSILON = 1e-7
#: A not-settling row is chaotic when its perturbation grew by more than
#: exp(LYAPUNOV_E_FOLDS) over the estimation horizon T (lambda T > 5), and
#: settling when it shrank by as much (lambda T < -5); otherwise oscillating.
LYAPUNOV_E_FOLDS = 5.0


def leading_eigenvalue(jacobian):
    """Eigenvalue of largest real part of ``jacobian`` (of a conjugate pair, the one with imag >= 0)."""
    eigenvalues = np.linalg.eigvals(jacobian)
    k = np.argmax(eigenvalues.real)
    return complex(eigenvalues[k].real, abs(eigenvalues[k].imag))


def leading_eigenvalues(family, states, drives, n_threads):
    """Per state, :func:`leading_eigenvalue` of the family's Jacobian."""

    def leading(i):
        return leading_eigenvalue(family.jacobian(states[i], drives[i]))

    # LAPACK releases the GIL: one single-threaded eigenproblem per thread.
    with Workers(n_threads) as workers:
        return np.array(workers.map(leading, range(len(states))), dtype=complex)


def lyapunov_schedule(family, dt):
    """Euler steps per round and the estimation horizon ``T`` (time units)."""
    slowest = max(float(t.max()) for t in family.time_constants())
    steps = max(1, int(np.ceil(LYAPUNOV_ROUND_TIME * slowest / dt)))
    return steps, LYAPUNOV_ROUNDS * steps * dt


def lyapunov_exponents(family, drives, states, settings, n_threads):
    """Finite-time largest Lyapunov exponent from each state (see ``solve`` and the user guide).

    A perturbed copy ``s + eps v`` (``v`` a seeded random unit vector) is
    integrated alongside ``s`` by Euler; after each round the separation is
    measured and rescaled to ``eps``; the exponent is the mean log growth per
    unit time over ``LYAPUNOV_ROUNDS`` rounds after one discarded warm-up.
    Returns the exponents and the horizon ``T``.
    """
    steps, horizon = lyapunov_schedule(family, settings.dt)
    n_rows, n_state = states.shape
    rng = np.random.default_rng(0)
    direction = rng.standard_normal((n_rows, n_state))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    base = np.asarray(states, dtype=np.float64).copy()
    perturbed = base + LYAPUNOV_EPSILON * direction
    both_drives = np.concatenate([drives, drives])
    # Every round runs its full steps (tol 0), so a float32 phase would only be redone in
    # float64: the rounds integrate in float64 whatever the transformer's precision.
    round_settings = settings._replace(tol=0.0, max_steps=steps, precision="float64")
    total = np.zeros(n_rows)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for k in range(LYAPUNOV_ROUNDS + 1):
            out = integrate_in_chunks(Euler(), family, both_drives, np.concatenate([base, perturbed]),
                                      round_settings, n_threads)
            base, perturbed = out.states[:n_rows], out.states[n_rows:]
            separation = np.linalg.norm(perturbed - base, axis=1)
            if k > 0:
                total += np.log(separation / LYAPUNOV_EPSILON)
            scale = np.where(separation > 0, LYAPUNOV_EPSILON / separation, 1.0)
            perturbed = base + (perturbed - base) * scale[:, np.newaxis]
        exponent = total / horizon
    exponent[~np.isfinite(exponent)] = np.nan
    return exponent, horizon


def stability_diagnostics(family, drive, states, converged, at_max, dynamics, settings, n_threads):
    """``leading_eigenvalue``, ``stable`` and ``lyapunov_exponent`` of ``solve(stability=True)``.

    Converged rows get their leading Jacobian eigenvalue; max_steps rows a
    Lyapunov exponent, which splits their ``dynamics`` (updated in place) into
    ``"slow"``, ``"oscillating"`` and ``"chaotic"``.
    """
    n_rows = len(states)
    leading = np.full(n_rows, np.nan + 1j * np.nan, dtype=complex)
    rows = np.flatnonzero(converged)
    if rows.size:
        leading[rows] = leading_eigenvalues(family, states[rows], drive[rows], n_threads)
    with np.errstate(invalid="ignore"):
        stable = converged & (leading.real < 0)
    lyapunov = np.full(n_rows, np.nan)
    rows = np.flatnonzero(at_max)
    if rows.size:
        lyapunov[rows], horizon = lyapunov_exponents(family, drive[rows], states[rows], settings,
                                                     n_threads)
        growth = lyapunov[rows] * horizon
        settling = (dynamics[rows] == "slow") | (growth < -LYAPUNOV_E_FOLDS)
        dynamics[rows] = np.where(settling, "slow", "oscillating")
        dynamics[rows[growth > LYAPUNOV_E_FOLDS]] = "chaotic"
    return {"leading_eigenvalue": leading, "stable": stable, "lyapunov_exponent": lyapunov}
