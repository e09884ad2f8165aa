"""RecurrentFixedPointTransformer: fixed-point responses of recurrent rate networks."""

import contextlib
import os
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from numbers import Integral, Real

import numba
import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import Bunch, check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import ThreadpoolController

from . import _kernels
from ._active_set import ActiveSetCertifier, max_analysed_active
from .networks import random_tanh_network

__all__ = ["RecurrentFixedPointTransformer", "FixedPointResult", "NonConvergenceError"]

#: Rows integrated per kernel call: bounds memory and lets verbose report progress.
CHUNK_ROWS = 8192
#: Rows integrated together in one matrix product per Euler step.
BLOCK_ROWS = 64
#: A max_steps row whose largest residual over the last quarter of the steps is
#: below this fraction of the smallest over the second quarter is still settling.
SLOW_CONTRACTION = 0.5
#: Finite-time Lyapunov estimate (``solve(stability=True)``): a discarded warm-up
#: round and LYAPUNOV_ROUNDS rounds of LYAPUNOV_ROUND_TIME (in units of the
#: largest time constant), renormalising a perturbation of size LYAPUNOV_EPSILON
#: after each round.
LYAPUNOV_ROUNDS = 20
LYAPUNOV_ROUND_TIME = 20.0
LYAPUNOV_EPSILON = 1e-7
#: A not-settling row is chaotic when its perturbation grew by more than
#: exp(LYAPUNOV_E_FOLDS) over the estimation horizon T (lambda T > 5), and
#: settling when it shrank by as much (lambda T < -5); otherwise oscillating.
LYAPUNOV_E_FOLDS = 5.0

#: ``method="newton"``: a row whose relu active set has not changed for this many
#: Euler steps gets the fixed point of that set as candidate.
NEWTON_SETTLE_STEPS = 10
#: ... and a row that has settled this many times without being certified (an
#: oscillating or chaotic row, each set change a round trip to Python) goes on
#: as plain Euler.
NEWTON_MAX_ATTEMPTS = 20
#: ... and no row is certified unless tol >= NEWTON_RESOLUTION_ULPS * eps * (1 +
#: ||W||_inf) * max(|d|, |x*|): Euler's residual, rounded at that scale, could stall
#: above a smaller tol.
NEWTON_RESOLUTION_ULPS = 64.0

#: Values of the ``dynamics`` field of :class:`FixedPointResult`.
DYNAMICS = ("fixed_point", "diverged", "slow", "sustained", "oscillating", "chaotic", "precision")
#: A row whose scale s (max |W_in u + b|, or max |x| when stopped at max_steps)
#: has PRECISION_ULPS * eps * s > tol cannot settle to tol in float64.
PRECISION_ULPS = 4.0
#: Fitted attributes of gated networks only (removed when refitting a rate network).
_GATED_ATTRIBUTES = (
    "z_weights_", "r_weights_", "alpha_z_", "beta_z_", "alpha_r_", "beta_r_", "tau_z_", "tau_r_",
)

_BLAS_CONTROLLER = None


def _blas_controller():
    """Threadpool controller made once, used to pin BLAS to one thread in kernels."""
    global _BLAS_CONTROLLER
    if _BLAS_CONTROLLER is None:
        _BLAS_CONTROLLER = ThreadpoolController()
    return _BLAS_CONTROLLER


_BLAS_LOCK = threading.Lock()
_BLAS_USERS = 0
_BLAS_LIMITER = None


@contextlib.contextmanager
def _single_threaded_blas():
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


class NonConvergenceError(RuntimeError):
    """Raised when rows do not reach a fixed point and the policy is ``"raise"``.

    The message names how many rows failed, which ones, and how they ended.

    Examples
    --------
    >>> import numpy as np
    >>> from rnnapprox import NonConvergenceError, RecurrentFixedPointTransformer
    >>> from rnnapprox.networks import RateNetwork
    >>> exploding = RateNetwork(weights=1.5 * np.eye(2))
    >>> rnn = RecurrentFixedPointTransformer(network=exploding, on_nonconvergence="raise")
    >>> try:
    ...     rnn.fit_transform(np.ones((3, 2)))
    ... except NonConvergenceError as error:
    ...     print(str(error)[:60])
    3 of 3 rows did not reach a fixed point (rows 0, 1, 2): 3 di
    """


class FixedPointResult(Bunch):
    """Per-row outcome of :meth:`RecurrentFixedPointTransformer.solve`.

    A dictionary whose keys are also attributes, one entry per input row:

    - ``states`` : ndarray of shape (n_samples, n_units), the state ``x`` at
      the end of integration;
    - ``outputs`` : ndarray of shape (n_samples, n_units), the response
      (``f(x)``, or ``x`` when ``output="state"``) as ``transform`` returns
      it with ``on_nonconvergence="warn"``; rows whose state overflowed are
      NaN;
    - ``converged`` : bool ndarray, residual ``<= tol``;
    - ``n_steps`` : int ndarray, Euler updates applied;
    - ``residual`` : float ndarray, ``max|-x + W f(x) + W_in u + b|`` of the
      returned state (inf or NaN when the state overflowed);
    - ``status`` : str ndarray, ``"converged"``, ``"diverged"`` or
      ``"max_steps"``;
    - ``dynamics`` : str ndarray, a finer reading of how the row ended, as
      far as the integration can tell: ``"fixed_point"`` (converged),
      ``"diverged"`` (blew up), and for ``max_steps`` rows ``"slow"`` (the
      residual was still shrinking: more steps would likely converge) or
      ``"sustained"`` (bounded but not settling: oscillation or chaos); with
      ``stability=True`` the sustained rows are split into ``"oscillating"``
      and ``"chaotic"`` by a finite-time Lyapunov exponent ``lambda`` over a
      horizon ``T``: ``lambda T > 5`` is chaotic, ``lambda T < -5`` (still
      contracting) is ``"slow"``, anything between is oscillating;
    - ``contraction`` : float ndarray, for ``max_steps`` rows the largest
      residual over the last quarter of the steps divided by the smallest over
      the second quarter (NaN elsewhere); ``"slow"`` means below 0.5, a
      residual that kept shrinking; oscillating or chaotic rows give about 1
      or more.

    With ``solve(X, stability=True)`` also:

    - ``leading_eigenvalue`` : complex ndarray, for converged rows the
      eigenvalue of largest real part of the Jacobian of the vector field at
      the fixed point, in units of 1/time (NaN elsewhere);
    - ``stable`` : bool ndarray, converged and ``leading_eigenvalue.real < 0``;
    - ``lyapunov_exponent`` : float ndarray, for ``max_steps`` rows a
      finite-time estimate of the largest Lyapunov exponent, in units of
      1/time (NaN elsewhere).

    Examples
    --------
    >>> import numpy as np
    >>> from rnnapprox import RecurrentFixedPointTransformer
    >>> from rnnapprox.networks import RateNetwork
    >>> net = RateNetwork(weights=np.array([[0.5, 0.0], [0.0, 1.5]]))
    >>> U = np.array([[1.0, -1.0], [1.0, 1.0]])
    >>> result = RecurrentFixedPointTransformer(network=net).fit(U).solve(U)
    >>> result.status
    array(['converged', 'diverged'], dtype='<U9')
    >>> result.outputs[0].round(4)
    array([2., 0.])
    >>> print(result.summary().split(";")[0])
    1 of 2 rows converged, 1 diverged, 0 reached max_steps
    """

    def summary(self):
        """One-paragraph text summary of convergence.

        Returns
        -------
        text : str
        """
        n_rows = len(self.converged)
        counts = {name: int(np.sum(self.status == name)) for name in _kernels.STATUS_NAMES}
        text = (
            f"{counts['converged']} of {n_rows} rows converged, "
            f"{counts['diverged']} diverged, {counts['max_steps']} reached max_steps"
        )
        if counts["converged"]:
            steps = self.n_steps[self.converged]
            text += (
                f"; Euler steps of converged rows: min {steps.min()}, median "
                f"{int(np.median(steps))}, max {steps.max()}; largest residual "
                f"{self.residual[self.converged].max():.3g}"
            )
        if counts["max_steps"] and "dynamics" in self:
            text += "; max_steps rows: " + _dynamics_counts(self.dynamics)
        if "stable" in self and counts["converged"]:
            text += f"; {int(self.stable.sum())} of {counts['converged']} fixed points stable"
        return text


def _dynamics_counts(dynamics):
    labels = {
        "slow": "still settling (slow)",
        "sustained": "bounded, not settling (oscillation or chaos)",
        "oscillating": "oscillating",
        "chaotic": "chaotic",
        "precision": "limited by float64 precision",
    }
    parts = [f"{int(np.sum(dynamics == key))} {text}" for key, text in labels.items()
             if np.any(dynamics == key)]
    return ", ".join(parts)


def _describe_failures(result, max_steps, tol):
    failed = np.flatnonzero(~result.converged)
    shown = ", ".join(map(str, failed[:10])) + (", ..." if failed.size > 10 else "")
    n_diverged = int(np.sum(result.status == "diverged"))
    n_max = int(np.sum(result.status == "max_steps"))
    n_precision = int(np.sum(result.dynamics == "precision"))
    return (
        f"{failed.size} of {result.converged.size} rows did not reach a fixed point "
        f"(rows {shown}): {n_diverged} diverged, {n_max} reached max_steps={max_steps}. "
        "Diverging rows point to an unstable network; rows at max_steps to slow, "
        "oscillating or chaotic dynamics (raise max_steps or tol, or check the network)."
        + (f" Max_steps rows: {_dynamics_counts(result.dynamics)}." if n_max else "")
        + (f" {n_precision} of them are limited by float64 precision: their inputs or states "
           f"are so large that rounding alone exceeds tol={tol}; rescale X (e.g. with "
           "StandardScaler) or raise tol." if n_precision else "")
    )


class RecurrentFixedPointTransformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Fixed-point responses of a recurrent rate network to constant inputs.

    Each input row ``u`` drives the network ``tau dx/dt = -x + W f(x) + W_in u + b``
    from ``x0``; forward Euler integration (a numba kernel, rows in parallel)
    runs until the fixed-point residual is at most ``tol``, the state
    diverges, or ``max_steps`` updates have been made. ``transform`` returns
    the fixed-point rates ``f(x*)``. Gated networks
    (:class:`~rnnapprox.networks.GatedNetwork`) are integrated on their whole
    ``(h, z, r)`` state by a kernel of their own and answer ``phi(h*)``.

    Parameters
    ----------
    network : RateNetwork or GatedNetwork, default=None
        The recurrent network (see :mod:`rnnapprox.networks`; a
        :class:`~rnnapprox.networks.FeedbackNetwork` is a rate network). ``None`` draws
        a stable random tanh network (gain 0.5) with one unit per feature at
        ``fit``, as :class:`~sklearn.kernel_approximation.RBFSampler` draws its
        weights.
    dt : float, default=0.1
        Euler step, in the units of ``tau``.
    tol : float, default=1e-6
        A row has converged when its residual ``max_i |-x + W f(x) + W_in u + b|_i``
        (``tau |dx/dt|`` in the infinity norm) is at most ``tol``. For gated
        networks the residual is the infinity norm of ``(-h + J_h (sigma_r(r)
        phi(h)) + W_in u + b, -z + J_z phi(h), -r + J_r phi(h))``, see
        :class:`~rnnapprox.networks.GatedNetwork`.
    max_steps : int, default=10_000
        Maximum Euler updates per row.
    on_nonconvergence : {"warn", "raise", "nan"}, default="warn"
        What ``transform`` does with rows that did not converge: ``"warn"``
        returns them as they ended with a
        :class:`~sklearn.exceptions.ConvergenceWarning` naming them,
        ``"raise"`` raises :class:`NonConvergenceError` naming them, ``"nan"``
        sets them to NaN and warns.
    output : {"rate", "state"}, default="rate"
        Return the rates ``f(x*)`` or the states ``x*``; for gated networks
        ``phi(h*)`` (n_units columns) or the concatenated state ``(h*, z*,
        r*)`` (``3 * n_units`` columns).
    x0 : array-like of shape (n_units,), default=None
        Initial state of every row; ``None`` starts from zeros. For gated
        networks either ``h0`` (``z0 = r0 = 0``) or the whole ``(h0, z0, r0)``
        of shape ``(3 * n_units,)``.
    divergence_threshold : float, default=1e6
        A row is declared diverged as soon as ``max|x|`` exceeds
        ``divergence_threshold * (1 + max|W_in u + b|)`` or becomes non-finite.
    random_state : int, RandomState instance or None, default=None
        Seeds the random network (``network=None``) and the random input
        projection (``input_weights=None`` with ``n_features != n_units``).
    n_jobs : int, default=None
        Threads integrating rows in parallel. ``None`` or ``-1`` use all the
        threads numba was started with (``NUMBA_NUM_THREADS``), capped by
        ``OMP_NUM_THREADS`` when set, so joblib (loky) and Dask worker
        processes, which set those variables, do not oversubscribe the cores.
        numba's thread count is restored after each call.
    verbose : int, default=0
        Print progress per chunk of rows when positive.
    method : {"euler", "anderson", "newton"}, default="euler"
        ``"euler"`` integrates every row by forward Euler and defines the
        answer: the attractor reached from ``x0``. ``"anderson"`` (rate
        networks only) follows the same Euler trajectory until it has settled
        (relu: active set unchanged and residual shrinking for 10 steps; tanh:
        residual shrinking for 10 steps), then accelerates it by Anderson
        mixing of the Euler map; a row that reaches ``tol`` this way is
        accepted only if the found point is stable for the Euler map, and is
        integrated again by plain Euler otherwise (see Notes). ``n_steps``
        then counts Euler steps plus Anderson iterations. ``"newton"`` (relu
        rate networks only) follows the Euler trajectory until it can prove
        where it ends: once a row's active set has been unchanged for
        ``NEWTON_SETTLE_STEPS`` steps, the fixed point of that linear region
        is solved for, and the row ends on it as soon as a bound on the
        region's Euler map shows that Euler stays in the region and converges
        there (see Notes). Certified rows end on the region's fixed point,
        solved for (residual near rounding rather than near ``tol``); the
        others end as with ``"euler"``. ``n_steps`` counts the Euler steps
        taken.

    Attributes
    ----------
    family_ : {"rate", "gated"}
        Kind of network integrated.
    weights_ : ndarray of shape (n_units, n_units)
        Recurrent weights used (``J_h`` for gated networks).
    input_weights_ : ndarray of shape (n_units, n_features_in_)
        Input weights used (drawn when the network gave none).
    bias_ : ndarray of shape (n_units,)
        Bias used.
    tau_ : ndarray of shape (n_units,)
        Time constants used (ones for the ``h`` of gated networks).
    activation_ : str
        Activation used (``"tanh"`` for gated networks).
    z_weights_, r_weights_ : ndarray of shape (n_units, n_units)
        Gate couplings ``J_z``, ``J_r``; gated networks only.
    alpha_z_, beta_z_, alpha_r_, beta_r_, tau_z_, tau_r_ : ndarray of shape (n_units,)
        Gate gains, offsets and time constants; gated networks only.
    x0_ : ndarray of shape (`n_state_`,)
        Initial state used.
    n_units_ : int
        Number of units, the number of output features (with ``output="rate"``).
    n_state_ : int
        Size of the integrated state: ``n_units_``, or ``3 * n_units_`` for
        gated networks.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when they are all strings.

    See Also
    --------
    FeedforwardApproximator : Learns this transformer's input-output map.
    rnnapprox.networks.soft_wta : Soft winner-take-all network.

    Notes
    -----
    Forward Euler: ``x <- x + (dt / tau) * (-x + W f(x) + W_in u + b)``. Before
    each update the residual ``r(x) = max_i |-x + W f(x) + W_in u + b|_i`` is
    computed from the same matrix product; the row stops at the first state
    with ``r(x) <= tol``, and that state's residual is the one reported. Near a
    fixed point with invertible Jacobian ``J = -I + W diag(f'(x*))`` the
    distance to it is at most ``||J^-1|| tol``.

    Rows are integrated in blocks of 64, one matrix-matrix product per step;
    a converged row leaves its block and the next pending row takes its slot.
    The arithmetic is float64; the output has the input's dtype.

    Gated networks take the Euler step ``h <- h + dt sigma_z(z) B``, ``z <- z
    + (dt / tau_z) (-z + J_z phi(h))``, ``r <- r + (dt / tau_r) (-r + J_r
    phi(h))`` with ``B = -h + J_h (sigma_r(r) phi(h)) + W_in u + b``: two
    matrix products per step for a block (``J_h`` on the gated rates, the
    stacked ``[J_z; J_r]`` on the rates). The residual uses ``B`` rather than
    ``dh/dt = sigma_z B``: the update gate only rescales time, and a unit it
    has nearly frozen is not at a fixed point.

    ``method="anderson"``: once a row's Euler trajectory has settled, the
    Euler map ``G(x) = x + (dt / tau) (-x + W f(x) + W_in u + b)`` is iterated
    with Anderson(5) mixing (memory of the last 5 differences of ``x`` and
    ``G(x) - x``, an ``m x m`` least-squares problem per iteration, the same
    one matrix product per block); the Euler state at the start is kept, and
    an attempt that leaves the relu active set of that state, lets the
    residual grow tenfold or exceeds 60 iterations is dropped: the row
    resumes Euler from the kept state, exactly as ``method="euler"`` would.
    A row that reached ``tol`` on an Anderson iterate is then checked: when
    ``||W||_2 < 1`` the fixed point is unique (``x -> W f(x) + d`` is a
    contraction for relu and tanh), so nothing can differ; otherwise the
    found point must be stable for the Euler map (spectral radius of ``I +
    diag(dt / tau) (-I + W diag(f'(x*)))`` below 1; for relu it depends only
    on the active set and is computed once per distinct set, for tanh it is
    one dense eigenvalue problem per row). Rows that fail are integrated
    again from ``x0`` by plain Euler. This rejects saddles, the points
    Anderson reaches but Euler leaves; it cannot prove that a stable point
    is the one Euler's trajectory would have chosen among several, which
    the warm-up gate is there to make likely.

    ``method="newton"``: on an active set ``A = {i : x_i > 0}`` a relu
    network is linear, and so is its Euler map: ``G(x) - x* = M (x - x*)``
    with ``M = I - S + S W D_A`` (``S = diag(dt / tau)``, ``D_A`` the 0/1
    diagonal of ``A``) and ``x*`` the region's fixed point, ``(I - W_AA)
    x*_A = d_A``, ``x*_I = W_IA x*_A + d_I``. A row whose active set has not
    changed for ``NEWTON_SETTLE_STEPS`` Euler steps gets ``x*`` as candidate
    when ``x*`` has the region's signs (then it is a fixed point of the
    network). For the region, bounds ``c_i >= sup_r ||row_i(M^r)||_1`` and a
    ``J`` with ``||M^J||_inf <= 1/2`` are computed once (eigenvalues of
    ``M_AA``, then powers of ``M_AA`` with a bound for the inactive rows; no
    certificate when ``M_AA`` is unstable). While the row keeps its active
    set, each Euler step checks ``c_i ||x - x*||_inf < |x*_i|`` for every
    unit: then every later Euler iterate keeps the signs of ``x*``, so it
    stays in the region, where the iterates are ``x* + M^j (x - x*)`` and
    converge to ``x*``. The row ends on ``x*``: the point Euler's trajectory
    converges to, whatever other attractors the network has, proved rather
    than made likely (for the exact ``x*``; the computed one must have a
    residual at most ``tol``). The certificate also requires that the
    iterates stay below the divergence bound (``|x*_i| + c_i ||x - x*|| <=
    divergence_threshold (1 + max|d|)``), that a bound on the steps Euler
    still needs (``J`` per halving of ``||R|| max(c) ||x - x*|| / tol``,
    ``R = W D_A - I``) fits in ``max_steps``, and that ``tol`` stands well
    above float64 resolution at the row's scale (``NEWTON_RESOLUTION_ULPS``;
    the proof is in exact arithmetic, and there Euler may stall short of
    ``tol``); otherwise the row goes on by Euler. A fixed point with a unit exactly at
    0 is never certified, and a row that settles ``NEWTON_MAX_ATTEMPTS``
    times without a certificate (an oscillating or chaotic row) gets no
    more candidates. Rows never certified end as with ``method="euler"``, up
    to the rounding of the block matrix products (which rows share a block
    differs). The speed-up is limited by the Euler transient before the
    active set settles.

    ``solve(X, stability=True)`` adds the leading Jacobian eigenvalue of each
    converged row and a finite-time Lyapunov exponent of each row stopped at
    ``max_steps``, which tells oscillation from chaos (see :meth:`solve`).

    References
    ----------
    Muir, D. R. (2018). Feedforward approximations to dynamic recurrent
    network architectures. *Neural Computation*, 30(2), 546-567.

    Examples
    --------
    >>> import numpy as np
    >>> from rnnapprox import RecurrentFixedPointTransformer
    >>> from rnnapprox.networks import soft_wta
    >>> net = soft_wta(n_partitions=3, units_per_partition=4, n_inhibitory=2, random_state=0)
    >>> U = np.array([[1.0, 0.2, 0.1], [0.1, 0.3, 0.9]])
    >>> rnn = RecurrentFixedPointTransformer(network=net).fit(U)
    >>> R = rnn.transform(U)
    >>> R.shape
    (2, 14)
    >>> R[:, :12].reshape(2, 3, 4).mean(axis=2).argmax(axis=1)  # winning partition
    array([0, 2])
    >>> rnn.solve(U).converged
    array([ True,  True])
    """

    _parameter_constraints: dict = {
        "network": [HasMethods(["validated_arrays", "get_params"]), None],
        "dt": [Interval(Real, 0, None, closed="neither")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "max_steps": [Interval(Integral, 1, None, closed="left")],
        "on_nonconvergence": [StrOptions({"warn", "raise", "nan"})],
        "output": [StrOptions({"rate", "state"})],
        "x0": ["array-like", None],
        "divergence_threshold": [Interval(Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
        "n_jobs": [Interval(Integral, None, -1, closed="right"),
                   Interval(Integral, 1, None, closed="left"), None],
        "verbose": ["verbose"],
        "method": [StrOptions({"euler", "anderson", "newton"})],
    }

    def __init__(
        self,
        network=None,
        *,
        dt=0.1,
        tol=1e-6,
        max_steps=10_000,
        on_nonconvergence="warn",
        output="rate",
        x0=None,
        divergence_threshold=1e6,
        random_state=None,
        n_jobs=None,
        verbose=0,
        method="euler",
    ):
        self.network = network
        self.dt = dt
        self.tol = tol
        self.max_steps = max_steps
        self.on_nonconvergence = on_nonconvergence
        self.output = output
        self.x0 = x0
        self.divergence_threshold = divergence_threshold
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.method = method

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Validate the network against the data and build its arrays.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows; only their number of features is used.
        y : None
            Ignored.

        Returns
        -------
        self : object
            Fitted transformer.
        """
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        n_features = X.shape[1]
        rng = check_random_state(self.random_state)
        network = self.network
        if network is None:
            network = random_tanh_network(n_features, gain=0.5, random_state=rng)
        arrays = network.validated_arrays(n_features)
        family = arrays.get("family", "rate")
        if family not in ("rate", "gated"):
            raise ValueError(f"network family must be 'rate' or 'gated'; got {family!r}.")
        if family == "gated" and self.method != "euler":
            raise ValueError(
                f"method={self.method!r} is available for rate networks only; gated networks "
                "are integrated with method='euler'."
            )
        if self.method == "newton" and arrays["activation"] != "relu":
            raise ValueError(
                f"method='newton' needs a relu network (its active sets are linear regions); "
                f"this network's activation is {arrays['activation']!r}: use method='euler' "
                "or method='anderson'."
            )
        n_units = arrays["weights"].shape[0]
        n_state = 3 * n_units if family == "gated" else n_units
        input_weights = arrays["input_weights"]
        if input_weights is None:
            input_weights = rng.standard_normal((n_units, n_features)) / np.sqrt(n_features)
        if self.x0 is None:
            x0 = np.zeros(n_state)
        else:
            x0 = np.asarray(self.x0, dtype=np.float64)
            shapes = [(n_units,)] + ([(n_state,)] if n_state != n_units else [])
            if x0.shape not in shapes or not np.all(np.isfinite(x0)):
                expected = " or ".join(f"({s[0]},)" for s in shapes)
                meaning = "n_units" + (" or 3 * n_units, the (h, z, r) state"
                                       if family == "gated" else "")
                raise ValueError(
                    f"x0 must be a finite array of shape {expected} ({meaning}); "
                    f"got shape {x0.shape}."
                )
            x0 = np.concatenate([x0, np.zeros(n_state - x0.shape[0])])
        taus = [arrays["tau"]] + [arrays[k] for k in ("tau_z", "tau_r") if k in arrays]
        smallest_tau = min(float(t.min()) for t in taus)
        if self.dt > smallest_tau:
            warnings.warn(
                f"dt={self.dt} exceeds the smallest time constant tau={smallest_tau:g}: "
                "forward Euler may oscillate or diverge where the dynamics are stable. "
                "Use dt <= min(tau) (dt = 0.1 * min(tau) is a safe default).",
                ConvergenceWarning,
                stacklevel=2,
            )
        self.family_ = family
        self.weights_ = arrays["weights"]
        self.input_weights_ = input_weights
        self.bias_ = arrays["bias"]
        self.tau_ = arrays["tau"]
        self.activation_ = arrays["activation"]
        for name in _GATED_ATTRIBUTES:
            if family == "gated":
                setattr(self, name, arrays[name[:-1]])
            elif hasattr(self, name):
                delattr(self, name)
        self.x0_ = x0
        self.n_units_ = n_units
        self.n_state_ = n_state
        self._n_features_out = n_state if self.output == "state" else n_units
        return self

    def _n_threads(self):
        """Numba threads for this call; see ``n_jobs``.

        ``None`` and ``-1`` take every thread numba was started with, capped
        by ``OMP_NUM_THREADS`` when set: joblib's loky workers start numba
        with ``NUMBA_NUM_THREADS`` = their share of the cores, and Dask's
        worker processes set ``OMP_NUM_THREADS=1``, so workers do not
        oversubscribe the cores.
        """
        available = numba.config.NUMBA_NUM_THREADS
        omp_threads = os.environ.get("OMP_NUM_THREADS", "")
        if omp_threads.isdigit() and int(omp_threads) > 0:
            available = min(available, int(omp_threads))
        if self.n_jobs is None or self.n_jobs == -1:
            return available
        if self.n_jobs < -1:
            return max(1, available + 1 + self.n_jobs)
        if self.n_jobs == 0:
            raise ValueError("n_jobs == 0 has no meaning; use None, -1 or a positive integer.")
        return min(self.n_jobs, available)

    def _kernel_call(self, method="euler"):
        """The kernel of the fitted family and ``method``, bound to its network arrays.

        Returns ``run(drive, initial, tol, max_steps)``; for ``"anderson"`` it
        returns the ``accelerated`` flags as a sixth array. Every array is made
        C-ordered, writeable float64 and every scalar a Python float or int, so
        each kernel has one numba specialisation.
        """

        def c_array(a):
            return np.require(a, dtype=np.float64, requirements=["C", "W"])

        threshold = float(self.divergence_threshold)
        if getattr(self, "family_", "rate") == "gated":
            matrices = [c_array(a) for a in (self.weights_, self.z_weights_, self.r_weights_)]
            gates = [c_array(a) for a in (self.alpha_z_, self.beta_z_, self.alpha_r_, self.beta_r_,
                                          self.dt / self.tau_z_, self.dt / self.tau_r_)]
            dt = float(self.dt)

            def run(drive, initial, tol, max_steps):
                return _kernels.euler_gated_fixed_points(
                    drive, initial, *matrices, *gates, dt, float(tol), int(max_steps),
                    threshold, BLOCK_ROWS, 1,
                )

            return run
        weights, rate_scale = (c_array(a) for a in (self.weights_, self.dt / self.tau_))
        activation = _kernels.ACTIVATION_CODES[self.activation_]

        if method == "newton":
            max_active = max_analysed_active(self.n_units_)

            def run(drive, initial, tol, max_steps, *candidate_arrays):
                return _kernels.euler_certified_rate_fixed_points(
                    drive, initial, *candidate_arrays, weights, rate_scale, float(tol),
                    int(max_steps), threshold, BLOCK_ROWS, NEWTON_SETTLE_STEPS, max_active,
                )

            return run
        if method == "anderson":
            options = _kernels.ANDERSON_DEFAULTS.copy()

            def run(drive, initial, tol, max_steps):
                return _kernels.anderson_rate_fixed_points(
                    drive, initial, weights, rate_scale, float(tol), int(max_steps), threshold,
                    activation, BLOCK_ROWS, 1, options,
                )

            return run

        def run(drive, initial, tol, max_steps):
            return _kernels.euler_rate_fixed_points(
                drive, initial, weights, rate_scale, float(tol), int(max_steps), threshold,
                activation, BLOCK_ROWS, 1,
            )

        return run

    def _integrate(self, drive, initial=None, tol=None, max_steps=None, verbose=None,
                   method="euler"):
        """Run the kernel of ``method`` on ``drive`` in chunks, BLAS pinned to one thread.

        ``initial`` defaults to ``x0_`` for every row, ``tol`` and ``max_steps``
        to the estimator's. Returns states, residual, n_steps, status codes
        and contraction. With ``method="anderson"`` the rows that converged on
        an Anderson iterate are verified (``_verify_accelerated``) and those
        that fail are integrated again by Euler.
        """
        n_rows = drive.shape[0]
        states, residual, n_steps, status, contraction = _kernels.result_arrays(
            n_rows, self.n_state_
        )
        if n_rows == 0:
            return states, residual, n_steps, status, contraction
        tol = self.tol if tol is None else tol
        max_steps = self.max_steps if max_steps is None else max_steps
        verbose = self.verbose if verbose is None else verbose
        run = self._kernel_call(method)
        accelerated = np.zeros(n_rows, dtype=bool) if method == "anderson" else None
        certifier = None
        if method == "newton":
            certifier = ActiveSetCertifier(self.weights_, self.dt / self.tau_)
        n_threads = self._n_threads()
        start_time = time.perf_counter()
        with contextlib.ExitStack() as stack:
            stack.enter_context(_single_threaded_blas())
            pool = None
            if n_threads > 1:
                pool = stack.enter_context(ThreadPoolExecutor(max_workers=n_threads))
            for start in range(0, n_rows, CHUNK_ROWS):
                stop = min(start + CHUNK_ROWS, n_rows)
                chunk = slice(start, stop)
                if initial is None:
                    first = np.repeat(self.x0_[np.newaxis, :], stop - start, axis=0)
                else:
                    first = np.ascontiguousarray(initial[chunk], dtype=np.float64)
                if certifier is not None:
                    out = _certified_euler(run, certifier, np.ascontiguousarray(drive[chunk]),
                                           first, tol, max_steps, 2 * n_threads, pool)
                else:
                    out = _run_groups(run, np.ascontiguousarray(drive[chunk]), first, tol,
                                      max_steps, 2 * n_threads, pool)
                (states[chunk], residual[chunk], n_steps[chunk], status[chunk],
                 contraction[chunk]) = out[:5]
                if accelerated is not None:
                    accelerated[chunk] = out[5]
                if verbose:
                    done = status[:stop] == _kernels.CONVERGED
                    print(
                        f"[{type(self).__name__}] {stop}/{n_rows} rows, "
                        f"{int(done.sum())} converged, "
                        f"{time.perf_counter() - start_time:.2f} s",
                        flush=True,
                    )
        if accelerated is not None:
            check = np.flatnonzero(accelerated & (status == _kernels.CONVERGED))
            failed = check[~self._verify_accelerated(states[check])] if check.size else check
            if failed.size:
                redo = self._integrate(
                    drive[failed], None if initial is None else initial[failed], tol=tol,
                    max_steps=max_steps, verbose=0,
                )
                (states[failed], residual[failed], n_steps[failed], status[failed],
                 contraction[failed]) = redo
        return states, residual, n_steps, status, contraction

    def _verify_accelerated(self, states):
        """Whether each state, a fixed point found by Anderson, is one Euler can settle on.

        True for every row when ``||W||_2 < 1`` (unique fixed point);
        otherwise the spectral radius of the Euler map's Jacobian ``I +
        diag(dt / tau) (-I + W diag(f'(x)))`` must be below 1. For relu it
        depends only on the active set ``x > 0``: one eigenvalue problem of
        the active block per distinct set (inactive units contribute ``1 -
        dt / tau``).
        """
        weights = self.weights_
        # sqrt(||W||_1 ||W||_inf) bounds ||W||_2 without a singular value decomposition.
        if np.sqrt(np.abs(weights).sum(axis=0).max() * np.abs(weights).sum(axis=1).max()) < 1.0:
            return np.ones(len(states), dtype=bool)
        scale = self.dt / self.tau_
        n = self.n_units_
        if self.activation_ == "relu":
            packed = np.packbits(states > 0, axis=1)
            keys = np.ascontiguousarray(packed).view(np.dtype((np.void, packed.shape[1])))
            _, first, inverse = np.unique(keys.ravel(), return_index=True, return_inverse=True)
            masks = states[first] > 0
            ok_sets = np.ones(len(masks), dtype=bool)
            passive_ok = np.array([np.all(np.abs(1.0 - scale[~m]) < 1.0) for m in masks], dtype=bool)
            ok_sets &= passive_ok
            sizes = masks.sum(axis=1)
            for size in np.unique(sizes):
                group = np.flatnonzero((sizes == size) & passive_ok)
                if size == 0 or group.size == 0:
                    continue
                blocks = np.empty((group.size, size, size))
                for b, k in enumerate(group):
                    m = masks[k]
                    blocks[b] = weights[np.ix_(m, m)]
                    blocks[b] -= np.eye(size)
                    blocks[b] *= scale[m][:, np.newaxis]
                    blocks[b] += np.eye(size)
                ok_sets[group] = np.abs(np.linalg.eigvals(blocks)).max(axis=1) < 1.0
            return ok_sets[np.ravel(inverse)]
        eye = np.eye(n)

        def euler_stable(state):
            jacobian = weights * (1.0 - np.tanh(state) ** 2)[np.newaxis, :] - eye
            return np.abs(np.linalg.eigvals(eye + scale[:, np.newaxis] * jacobian)).max() < 1.0

        with _single_threaded_blas():
            with ThreadPoolExecutor(max_workers=self._n_threads()) as pool:
                return np.array(list(pool.map(euler_stable, states)), dtype=bool)

    def _drive(self, X):
        return np.ascontiguousarray(X @ self.input_weights_.T + self.bias_, dtype=np.float64)

    def solve(self, X, stability=False):
        """Integrate every row and return per-row convergence diagnostics.

        Unlike :meth:`transform`, ``solve`` neither warns nor raises about
        rows that did not converge: it reports them.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows.
        stability : bool, default=False
            Also analyse each row's end state: the leading Jacobian
            eigenvalue of converged rows (``leading_eigenvalue``, ``stable``)
            and a finite-time Lyapunov exponent of rows that reached
            ``max_steps`` (``lyapunov_exponent``, which splits their
            ``dynamics`` into ``"oscillating"`` and ``"chaotic"``). This costs
            one dense eigenvalue problem per converged row (of size
            ``n_state_``) and two trajectories of ``21 * 20 * max(tau) / dt``
            extra Euler steps per max_steps row.

        Returns
        -------
        result : FixedPointResult
            ``states``, ``outputs``, ``converged``, ``n_steps``, ``residual``,
            ``status``, ``dynamics`` and ``contraction``, one entry per row;
            with ``stability=True`` also ``leading_eigenvalue``, ``stable``
            and ``lyapunov_exponent``. For gated networks ``states`` holds the
            concatenated ``(h, z, r)``.

        Notes
        -----
        The Jacobian of a rate network at a fixed point ``x*`` is
        ``J = diag(1 / tau) (-I + W diag(f'(x*)))`` (``relu'(0) = 0``); that of
        a gated network is the ``3N x 3N`` derivative of ``(dh/dt, dz/dt,
        dr/dt)``, including the time rescaling by ``sigma_z`` and the ``1 /
        tau_z``, ``1 / tau_r`` factors (see :meth:`jacobian`). A fixed point is
        stable when every eigenvalue has negative real part; a leading real
        part within rounding of 0 (a closed update gate, a marginal mode) is
        reported as it is computed.

        The Lyapunov exponent is estimated from the end state ``s``: a
        perturbed copy ``s + eps v`` (``eps = LYAPUNOV_EPSILON``, ``v`` a
        seeded random unit vector) is integrated alongside ``s`` by the same
        kernel; after each round of ``m`` Euler steps the separation
        ``delta`` is measured and rescaled to ``eps``, and ``lambda =
        sum log(delta / eps) / T`` over ``LYAPUNOV_ROUNDS`` rounds after one
        discarded warm-up round, ``T = LYAPUNOV_ROUNDS * m * dt``.
        Each round lasts ``LYAPUNOV_ROUND_TIME`` (20) times the largest time
        constant, so ``T`` is 400 of them. A max_steps row is then
        ``"chaotic"`` when ``lambda T > 5`` (the perturbation grew by more
        than ``e^5``), ``"slow"`` when its residual kept shrinking
        (``contraction < 0.5``) or ``lambda T < -5`` (the perturbation shrank
        as much: the row is still settling), and otherwise ``"oscillating"``
        (a limit cycle or torus neither grows nor shrinks a perturbation along
        it, so its exponent is 0). The finite horizon blurs exponents within
        about ``5 / T`` of 0: weak chaos can be reported as oscillating.
        Small networks often end on limit cycles where large ones are
        chaotic.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        drive = self._drive(X)
        states, residual, n_steps, status_codes, contraction = self._integrate(
            drive, method=self.method
        )
        n_units = self.n_units_
        if self.output == "state":
            outputs = states.copy()
        elif self.activation_ == "relu":
            outputs = np.maximum(states, 0.0)
        else:
            outputs = np.tanh(states[:, :n_units])
        converged = status_codes == _kernels.CONVERGED
        dynamics = np.empty(len(status_codes), dtype=object)
        dynamics[converged] = "fixed_point"
        dynamics[status_codes == _kernels.DIVERGED] = "diverged"
        at_max = status_codes == _kernels.MAX_STEPS
        slow = at_max & (contraction < SLOW_CONTRACTION)
        dynamics[slow] = "slow"
        dynamics[at_max & ~slow] = "sustained"
        extra = {}
        if stability:
            extra = self._stability(drive, states, converged, at_max, dynamics)
        with np.errstate(over="ignore", invalid="ignore"):
            scale = np.abs(drive).max(axis=1, initial=0.0)
            stuck = np.where(at_max, np.abs(states).max(axis=1, initial=0.0), 0.0)
            resolution = PRECISION_ULPS * np.finfo(np.float64).eps * np.maximum(scale, stuck)
        dynamics[~converged & ~(resolution <= self.tol)] = "precision"
        dynamics = dynamics.astype(str) if len(dynamics) else np.array([], dtype="<U11")
        with np.errstate(over="ignore", invalid="ignore"):
            outputs = outputs.astype(X.dtype, copy=False)
            states = states.astype(X.dtype, copy=False)
        outputs[~np.isfinite(outputs).all(axis=1)] = np.nan
        return FixedPointResult(
            states=states,
            outputs=outputs,
            converged=converged,
            n_steps=n_steps,
            residual=residual,
            status=_kernels.STATUS_NAMES[status_codes],
            dynamics=dynamics,
            contraction=contraction,
            **extra,
        )

    def _stability(self, drive, states, converged, at_max, dynamics):
        n_rows = len(states)
        leading = np.full(n_rows, np.nan + 1j * np.nan, dtype=complex)
        rows = np.flatnonzero(converged)

        def leading_eigenvalue(i):
            eigenvalues = np.linalg.eigvals(self._jacobian(states[i], drive[i]))
            k = np.argmax(eigenvalues.real)
            return complex(eigenvalues[k].real, abs(eigenvalues[k].imag))

        if rows.size:
            # LAPACK releases the GIL: one single-threaded eigenproblem per thread.
            with _single_threaded_blas():
                with ThreadPoolExecutor(max_workers=self._n_threads()) as pool:
                    leading[rows] = list(pool.map(leading_eigenvalue, rows))
        with np.errstate(invalid="ignore"):
            stable = converged & (leading.real < 0)
        lyapunov = np.full(n_rows, np.nan)
        rows = np.flatnonzero(at_max)
        if rows.size:
            steps, horizon = self._lyapunov_schedule()
            lyapunov[rows] = self._lyapunov(drive[rows], states[rows], steps, horizon)
            growth = lyapunov[rows] * horizon
            settling = (dynamics[rows] == "slow") | (growth < -LYAPUNOV_E_FOLDS)
            dynamics[rows] = np.where(settling, "slow", "oscillating")
            dynamics[rows[growth > LYAPUNOV_E_FOLDS]] = "chaotic"
        return {"leading_eigenvalue": leading, "stable": stable, "lyapunov_exponent": lyapunov}

    def _lyapunov_schedule(self):
        """Euler steps per round and the estimation horizon ``T`` (time units)."""
        taus = [self.tau_] + [getattr(self, k) for k in ("tau_z_", "tau_r_") if hasattr(self, k)]
        slowest = max(float(t.max()) for t in taus)
        steps = max(1, int(np.ceil(LYAPUNOV_ROUND_TIME * slowest / self.dt)))
        return steps, LYAPUNOV_ROUNDS * steps * self.dt

    def _lyapunov(self, drive, states, steps, horizon):
        """Finite-time largest Lyapunov exponent from each state (see ``solve``)."""
        n_rows, n_state = states.shape
        rng = np.random.default_rng(0)
        direction = rng.standard_normal((n_rows, n_state))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        base = np.asarray(states, dtype=np.float64).copy()
        perturbed = base + LYAPUNOV_EPSILON * direction
        both_drives = np.concatenate([drive, drive])
        total = np.zeros(n_rows)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            for k in range(LYAPUNOV_ROUNDS + 1):
                out = self._integrate(both_drives, np.concatenate([base, perturbed]), tol=0.0,
                                      max_steps=steps, verbose=0)
                base, perturbed = out[0][:n_rows], out[0][n_rows:]
                separation = np.linalg.norm(perturbed - base, axis=1)
                if k > 0:
                    total += np.log(separation / LYAPUNOV_EPSILON)
                scale = np.where(separation > 0, LYAPUNOV_EPSILON / separation, 1.0)
                perturbed = base + (perturbed - base) * scale[:, np.newaxis]
            exponent = total / horizon
        exponent[~np.isfinite(exponent)] = np.nan
        return exponent

    def _jacobian(self, state, drive):
        if self.family_ == "gated":
            return _gated_jacobian(self, state, drive)
        if self.activation_ == "relu":
            slope = (state > 0).astype(np.float64)
        else:
            slope = 1.0 - np.tanh(state) ** 2
        jacobian = self.weights_ * slope[np.newaxis, :]
        jacobian[np.diag_indices_from(jacobian)] -= 1.0
        return jacobian / self.tau_[:, np.newaxis]

    def jacobian(self, X, states):
        """Jacobian of the vector field at given states, in units of 1/time.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows.
        states : array-like of shape (n_samples, n_state_)
            States, one per row: ``x`` for rate networks, the concatenated
            ``(h, z, r)`` for gated networks (as ``solve(X).states``).

        Returns
        -------
        jacobians : ndarray of shape (n_samples, n_state_, n_state_)
            ``d(dx/dt)/dx`` at each state.

        Notes
        -----
        Rate networks: ``J = diag(1 / tau) (-I + W diag(f'(x)))``. Gated
        networks, with ``a = phi(h)``, ``a' = 1 - a^2``, ``s_k = sigma_k``,
        ``s_k' = alpha_k s_k (1 - s_k)`` and the bracket ``B = -h + J_h (s_r
        a) + W_in u + b``::

            dh/dh = diag(s_z) (-I + J_h diag(s_r a'))
            dh/dz = diag(s_z' B)              (0 at a fixed point)
            dh/dr = diag(s_z) J_h diag(s_r' a)
            dz/dh = diag(1 / tau_z) J_z diag(a'),   dz/dz = -diag(1 / tau_z)
            dr/dh = diag(1 / tau_r) J_r diag(a'),   dr/dr = -diag(1 / tau_r)

        Examples
        --------
        >>> import numpy as np
        >>> from rnnapprox import RecurrentFixedPointTransformer
        >>> from rnnapprox.networks import RateNetwork
        >>> net = RateNetwork(weights=[[0.5, 0.0], [0.0, 0.5]], tau=2.0)
        >>> rnn = RecurrentFixedPointTransformer(network=net).fit(np.ones((1, 2)))
        >>> rnn.jacobian(np.ones((1, 2)), [[1.0, -1.0]])[0]
        array([[-0.25,  0.  ],
               [ 0.  , -0.5 ]])
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        states = np.asarray(states, dtype=np.float64)
        if states.shape != (X.shape[0], self.n_state_):
            raise ValueError(
                f"states must have shape (n_samples, n_state_) = ({X.shape[0]}, "
                f"{self.n_state_}); got {states.shape}."
            )
        drive = self._drive(X)
        return np.stack([self._jacobian(s, d) for s, d in zip(states, drive)]) if len(X) else (
            np.empty((0, self.n_state_, self.n_state_))
        )

    def transform(self, X):
        """Fixed-point responses of the network to each input row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows.

        Returns
        -------
        responses : ndarray of shape (n_samples, n_units)
            ``f(x*)`` per row (``x*`` with ``output="state"``), in the dtype of
            ``X``. Rows that did not converge are handled as
            ``on_nonconvergence`` says; the result never holds inf.

        Raises
        ------
        NonConvergenceError
            With ``on_nonconvergence="raise"``, when any row did not converge.
        """
        result = self.solve(X)
        overflow = result.converged & np.isnan(result.outputs).any(axis=1)
        failed = ~result.converged | overflow
        if failed.any():
            parts = []
            if not result.converged.all():
                parts.append(_describe_failures(result, self.max_steps, self.tol))
            if overflow.any():
                rows = np.flatnonzero(overflow)
                shown = ", ".join(map(str, rows[:10])) + (", ..." if rows.size > 10 else "")
                parts.append(
                    f"{rows.size} rows (rows {shown}) reached a fixed point beyond the range "
                    f"of {result.outputs.dtype}, the dtype of X: they are NaN; pass float64 X."
                )
            message = " ".join(parts)
            if self.on_nonconvergence == "raise":
                raise NonConvergenceError(message)
            if self.on_nonconvergence == "nan":
                result.outputs[failed] = np.nan
                message += " They are set to NaN."
            warnings.warn(message, ConvergenceWarning, stacklevel=2)
        return result.outputs

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


def _run_groups(run, drive, initial, tol, max_steps, n_groups, pool, row_arrays=()):
    """Run the serial, GIL-releasing kernel on interleaved groups of rows, in threads.

    Group ``w`` holds rows ``w, w + n_groups, ...``, so each group mixes slow
    and fast rows and the threads stay balanced; no numba threading layer is
    used, so calls from several threads and from forked processes are safe.
    ``row_arrays`` are further per-row arguments of ``run``, split the same way.
    """
    n_rows = drive.shape[0]
    n_groups = max(1, min(n_groups, n_rows))
    groups = [np.arange(w, n_rows, n_groups) for w in range(n_groups)]

    def one(rows):
        return run(drive[rows], initial[rows], tol, max_steps, *(a[rows] for a in row_arrays))

    parts = list(pool.map(one, groups)) if pool is not None else [one(g) for g in groups]
    outputs = [np.empty((n_rows,) + a.shape[1:], dtype=a.dtype) for a in parts[0]]
    for rows, part in zip(groups, parts, strict=True):
        for output, array in zip(outputs, part, strict=True):
            output[rows] = array
    return outputs


def _certified_euler(run, certifier, drive, initial, tol, max_steps, n_groups, pool):
    """Euler integration with certified jumps to the fixed point (``method="newton"``).

    ``run`` is the certified Euler kernel. Rounds: the kernel integrates the
    pending rows until each converges, diverges, reaches ``max_steps``, is
    certified (it ends on its candidate, with the Euler steps it took, if the
    candidate's residual meets ``tol``), or settles in an active set without
    a candidate; the settled rows get their region's fixed point from
    ``certifier`` (when it lies in the region and the region has a
    certificate) and resume where they stopped. After
    ``NEWTON_MAX_ATTEMPTS`` settlings a row gets no more candidates. Rows
    that are never certified end as ``method="euler"`` ends them (up to the
    rounding of block products, which depends on which rows share a block).
    Returns the kernel's five arrays.
    """
    n_rows, n_units = drive.shape
    states, residual, n_steps, status, contraction = _kernels.result_arrays(n_rows, n_units)
    first_steps = np.zeros(n_rows, dtype=np.int64)
    modes = np.full(n_rows, _kernels.FRESH, dtype=np.int8)
    candidates = np.zeros((n_rows, n_units))
    bounds = np.zeros((n_rows, n_units))
    infos = np.zeros((n_rows, 3))
    windows = np.tile([np.inf, -1.0], (n_rows, 1))
    attempts = np.zeros(n_rows, dtype=np.int64)
    weight_norm = 1.0 + np.abs(certifier.weights).sum(axis=1).max(initial=0.0)
    pending = np.arange(n_rows)
    current = initial
    while pending.size:
        out = _run_groups(run, drive[pending], current, tol, max_steps, n_groups, pool,
                          (first_steps[pending], modes[pending], candidates[pending],
                           bounds[pending], infos[pending], windows[pending]))
        codes = out[3]
        ended = codes <= _kernels.MAX_STEPS
        rows = pending[ended]
        for target, source in zip((states, residual, n_steps, status, contraction), out):
            target[rows] = source[ended]
        certified = np.flatnonzero(codes == _kernels.CERTIFIED)
        fixed = candidates[pending[certified]]
        fixed_residual = np.abs(
            np.maximum(fixed, 0.0) @ certifier.weights.T + drive[pending[certified]] - fixed
        ).max(axis=1, initial=0.0)
        # The reported residual must meet tol as Euler's does, and tol must stand well
        # above the rounding of Euler's own residual at the row's scale: the proof is in
        # exact arithmetic, and near float resolution Euler may stall short of tol.
        # Otherwise the candidate is dropped and the row goes on by Euler.
        scale = np.maximum(np.abs(drive[pending[certified]]).max(axis=1, initial=0.0),
                           np.abs(fixed).max(axis=1, initial=0.0))
        resolution = NEWTON_RESOLUTION_ULPS * np.finfo(np.float64).eps * scale * weight_norm
        accepted = (fixed_residual <= tol) & (resolution <= tol)
        rows = pending[certified[accepted]]
        states[rows], residual[rows] = fixed[accepted], fixed_residual[accepted]
        n_steps[rows] = out[2][certified[accepted]]
        status[rows] = _kernels.CONVERGED
        resumed = codes == _kernels.SETTLED
        resumed[certified[~accepted]] = True
        pending, current = pending[resumed], out[0][resumed]
        first_steps[pending] = out[2][resumed]
        windows[pending] = out[5][resumed]
        modes[pending] = _kernels.NO_CANDIDATE
        settled = codes[resumed] == _kernels.SETTLED
        attempts[pending[settled]] += 1
        retired = attempts[pending] > NEWTON_MAX_ATTEMPTS
        modes[pending[retired]] = _kernels.RETIRED
        offered = np.flatnonzero(settled & ~retired)
        found, points, row_bounds, row_infos = certifier.candidates(
            current[offered], drive[pending[offered]], tol, pool,
            n_groups if offered.size >= 4 * n_groups else 1,
        )
        rows = pending[offered[found]]
        modes[rows] = _kernels.CANDIDATE
        candidates[rows], bounds[rows], infos[rows] = points[found], row_bounds[found], row_infos[found]
    return states, residual, n_steps, status, contraction


def _gate(value, gain, offset):
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(offset - gain * value))


def _gated_jacobian(fitted, state, drive):
    """Jacobian of the gated vector field ``(dh/dt, dz/dt, dr/dt)`` at ``state``."""
    n = fitted.n_units_
    h, z, r = state[:n], state[n : 2 * n], state[2 * n :]
    a = np.tanh(h)
    slope = 1.0 - a**2
    s_z = _gate(z, fitted.alpha_z_, fitted.beta_z_)
    s_r = _gate(r, fitted.alpha_r_, fitted.beta_r_)
    ds_z = fitted.alpha_z_ * s_z * (1.0 - s_z)
    ds_r = fitted.alpha_r_ * s_r * (1.0 - s_r)
    bracket = -h + fitted.weights_ @ (s_r * a) + drive
    jacobian = np.zeros((3 * n, 3 * n))
    hh = fitted.weights_ * (s_r * slope)[np.newaxis, :]
    hh[np.diag_indices(n)] -= 1.0
    jacobian[:n, :n] = s_z[:, np.newaxis] * hh
    jacobian[:n, n : 2 * n] = np.diag(ds_z * bracket)
    jacobian[:n, 2 * n :] = s_z[:, np.newaxis] * fitted.weights_ * (ds_r * a)[np.newaxis, :]
    jacobian[n : 2 * n, :n] = fitted.z_weights_ * slope / fitted.tau_z_[:, np.newaxis]
    jacobian[n : 2 * n, n : 2 * n] = -np.diag(1.0 / fitted.tau_z_)
    jacobian[2 * n :, :n] = fitted.r_weights_ * slope / fitted.tau_r_[:, np.newaxis]
    jacobian[2 * n :, 2 * n :] = -np.diag(1.0 / fitted.tau_r_)
    return jacobian
