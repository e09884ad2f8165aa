"""Trained feedback networks (Mastrogiuseppe & Ostojic, 2019): training the readout, checking the target.

A :class:`~rnnapprox.networks.FeedbackNetwork` is a random bulk plus a rank-one
loop through a readout ``n``. :func:`train_feedback_readout` trains ``n`` so that a
stationary input gives a target output; :func:`check_feedback_target` asks the
transformer whether the network, started from rest, settles there and whether
that fixed point is stable. The networks themselves are data in
:mod:`rnnapprox.networks`; this module uses the estimators.
"""

import numpy as np
from scipy.optimize import root
from sklearn.utils import Bunch

from ._recurrent import RecurrentFixedPointTransformer
from ._stability import leading_eigenvalue
from .networks import FeedbackNetwork, RateNetwork

__all__ = ["train_feedback_readout", "check_feedback_target"]


def _open_loop_fixed_point(bulk, drive, x0, tol, max_steps):
    """Fixed point of ``dx/dt = -x + bulk tanh(x) + drive``: Euler, then Newton polish."""
    open_loop = RateNetwork(weights=bulk, bias=drive, activation="tanh")
    solver = RecurrentFixedPointTransformer(
        network=open_loop, tol=max(tol, 1e-9), max_steps=max_steps, x0=x0, output="state"
    )
    result = solver.fit(np.zeros((1, 1))).solve(np.zeros((1, 1)))
    start = result.states[0] if np.all(np.isfinite(result.states[0])) else drive.copy()

    def field(x):
        return -x + bulk @ np.tanh(x) + drive

    def jacobian(x):
        jac = bulk * (1.0 - np.tanh(x) ** 2)[np.newaxis, :]
        jac[np.diag_indices_from(jac)] -= 1.0
        return jac

    polished = root(field, start, jac=jacobian, method="hybr", tol=1e-14)
    better = np.max(np.abs(field(polished.x))) < np.max(np.abs(field(start)))
    state = polished.x if better else start
    return state, bool(result.converged[0]), float(np.max(np.abs(field(state))))


def train_feedback_readout(network, target, *, input_amplitude=1.0, tol=1e-8, max_steps=20_000):
    """Train the readout so that a stationary input gives a target output.

    The open-loop least-squares solution: clamp the fed-back output to the
    target, ``z = A``, find the fixed point ``x_ol`` of the open loop
    ``dx/dt = -x + chi tanh(x) + m A + I u``, and choose the minimum-norm
    readout with ``n . tanh(x_ol) / N = A``. Then ``x_ol`` is a fixed point
    of the closed loop with output ``A``; whether it is stable and reached is
    :func:`check_feedback_target`'s question.

    Parameters
    ----------
    network : FeedbackNetwork
        Supplies ``chi``, ``m``, ``I`` and ``tau`` (its readout is ignored).
    target : float
        Target output ``A``.
    input_amplitude : float, default=1.0
        Amplitude ``u`` of the stationary input ``I u``.
    tol : float, default=1e-8
        Residual tolerance of the open-loop Euler integration, which is then
        polished by Newton's method (``scipy.optimize.root``).
    max_steps : int, default=20_000
        Euler steps for the open loop.

    Returns
    -------
    training : Bunch
        ``network`` (the closed-loop :class:`FeedbackNetwork` with the trained
        readout), ``readout`` (``n``), ``open_loop_state`` (``x_ol``),
        ``open_loop_reached`` (whether the clamped network settled on
        ``x_ol`` from ``x = 0``; when it did not, ``x_ol`` is the fixed point
        Newton's method found from where the integration stopped),
        ``open_loop_residual`` (``max|-x_ol + chi tanh(x_ol) + m A + I u|``),
        ``target`` and ``input_amplitude``.

    Notes
    -----
    With ``phi = tanh(x_ol)``, the minimum-norm solution of ``n . phi / N =
    A`` is ``n = N A phi / ||phi||^2``: the readout is aligned with the
    open-loop activity. At ``x_ol`` the closed-loop field is ``-x_ol + chi
    phi + m (n . phi / N) + I u = -x_ol + chi phi + m A + I u = 0``. Its
    stability is that of ``J = -I + (chi + m n^T / N) diag(1 - phi^2)``
    (divided by ``tau``), a rank-one perturbation of the bulk's Jacobian
    (Mastrogiuseppe & Ostojic, 2019).

    Examples
    --------
    >>> import numpy as np
    >>> from rnnapprox.networks import random_feedback_network
    >>> from rnnapprox.feedback import train_feedback_readout
    >>> net = random_feedback_network(100, gain=0.5, random_state=0)
    >>> training = train_feedback_readout(net, target=0.3)
    >>> round(float(training.network.output(np.tanh(training.open_loop_state))), 6)
    0.3
    """
    if not isinstance(network, FeedbackNetwork):
        raise TypeError(f"network must be a FeedbackNetwork; got {type(network).__name__}.")
    if not np.isfinite(target) or not np.isfinite(input_amplitude):
        raise ValueError("target and input_amplitude must be finite numbers.")
    parts = network._checked_parts()
    bulk, feedback, input_vector = parts["bulk"], parts["feedback"], parts["input_vector"]
    n_units = bulk.shape[0]
    drive = feedback * target + input_vector * input_amplitude
    state, reached, residual = _open_loop_fixed_point(
        bulk, drive, np.zeros(n_units), tol, max_steps
    )
    rates = np.tanh(state)
    power = float(rates @ rates)
    if power == 0.0:
        if target != 0.0:
            raise ValueError(
                "the open-loop activity is zero, so no readout gives a non-zero target; "
                "give the network an input (input_vector) or a non-zero target drive."
            )
        readout = np.zeros(n_units)
    else:
        readout = n_units * target * rates / power
    trained = FeedbackNetwork(bulk, feedback, readout=readout, input_vector=input_vector,
                              tau=network.tau)
    return Bunch(
        network=trained,
        readout=readout,
        open_loop_state=state,
        open_loop_reached=reached,
        open_loop_residual=residual,
        target=float(target),
        input_amplitude=float(input_amplitude),
    )


def check_feedback_target(training, *, x0=None, dt=0.1, tol=1e-8, max_steps=20_000, atol=1e-4):
    """Is the trained target fixed point stable, and does the closed loop reach it?

    Parameters
    ----------
    training : Bunch
        The result of :func:`train_feedback_readout`.
    x0 : array-like of shape (n_units,), default=None
        Initial state of the closed loop; ``None`` starts from zeros.
    dt, tol, max_steps : float, float, int
        Euler integration of the closed loop, as for
        :class:`~rnnapprox.RecurrentFixedPointTransformer`.
    atol : float, default=1e-4
        The target is reached when the closed loop converges to a state
        within ``atol * (1 + max|x_ol|)`` of ``x_ol`` (infinity norm).

    Returns
    -------
    report : Bunch
        ``reached`` (bool), ``stable`` (bool: every Jacobian eigenvalue at
        ``x_ol`` has negative real part), ``leading_eigenvalue`` (complex, in
        units of 1/time), ``output`` (``z = n . tanh(x*) / N`` at the state
        the closed loop ended in; NaN unless it converged), ``target``,
        ``status`` and ``dynamics`` of the closed-loop integration (as in
        :meth:`~rnnapprox.RecurrentFixedPointTransformer.solve`),
        ``distance`` (``max|x* - x_ol|``) and ``state`` (``x*``).

    Notes
    -----
    Local stability and being reached are different questions: a stable
    target can lie outside the basin of the initial state (the closed loop
    then settles elsewhere, often on an output of the wrong sign), and an
    unstable target is never reached from a generic state.

    Examples
    --------
    >>> from rnnapprox.networks import random_feedback_network
    >>> from rnnapprox.feedback import check_feedback_target, train_feedback_readout
    >>> net = random_feedback_network(100, gain=0.5, random_state=0)
    >>> report = check_feedback_target(train_feedback_readout(net, target=0.3))
    >>> bool(report.reached), bool(report.stable), round(report.output, 4)
    (True, True, 0.3)
    """
    network = training.network
    target_state = np.asarray(training.open_loop_state, dtype=np.float64)
    U = np.full((1, 1), training.input_amplitude)
    solver = RecurrentFixedPointTransformer(
        network=network, dt=dt, tol=tol, max_steps=max_steps, x0=x0, output="state"
    ).fit(U)
    result = solver.solve(U)
    jacobian = solver.jacobian(U, target_state[np.newaxis, :])[0]
    leading = leading_eigenvalue(jacobian)
    state = result.states[0]
    converged = bool(result.converged[0])
    distance = float(np.max(np.abs(state - target_state)))
    reached = converged and distance <= atol * (1.0 + np.max(np.abs(target_state)))
    output = float(network.output(np.tanh(state))) if converged else float("nan")
    return Bunch(
        reached=bool(reached),
        stable=bool(leading.real < 0),
        leading_eigenvalue=leading,
        output=output,
        target=training.target,
        status=str(result.status[0]),
        dynamics=str(result.dynamics[0]),
        distance=distance,
        state=state,
    )
