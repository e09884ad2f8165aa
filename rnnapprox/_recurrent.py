"""RecurrentFixedPointTransformer: fixed-point responses of recurrent rate networks, and its result."""

import time
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import Bunch, check_random_state
from sklearn.utils._param_validation import Interval, InvalidParameterError, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ._chunked import integrate_in_chunks
from ._families import ALL_ATTRIBUTES, get_family
from ._kernels import CONVERGED, DIVERGED, MAX_STEPS, STATUS_NAMES
from ._methods import METHODS, Settings
from ._stability import stability_diagnostics
from ._thread_control import n_threads
from .networks import random_tanh_network

__all__ = ["RecurrentFixedPointTransformer", "FixedPointResult", "NonConvergenceError"]

#: A max_steps row whose largest residual over the last quarter of the steps is
#: below this fraction of the smallest over the second quarter is still settling.
SLOW_CONTRACTION = 0.5
#: A row whose scale s (max |W_in u + b|, or max |x| when stopped at max_steps)
#: has PRECISION_ULPS * eps * s > tol cannot settle to tol in float64.
PRECISION_ULPS = 4.0


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

    def status_counts(self):
        """Number of rows per status.

        Returns
        -------
        counts : dict
            ``{"converged": ..., "diverged": ..., "max_steps": ...}``.
        """
        return {name: int(np.sum(self.status == name)) for name in STATUS_NAMES}

    def summary(self):
        """One-paragraph text summary of convergence.

        Returns
        -------
        text : str
        """
        n_rows = len(self.converged)
        counts = self.status_counts()
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
    network : RateNetwork, GatedNetwork or GRUNetwork, default=None
        The recurrent network, an object of :mod:`rnnapprox.networks` (a
        weight matrix alone goes in as ``RateNetwork(weights=W)``; a
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
        Rows are split among the threads; BLAS runs on one thread meanwhile.
    verbose : int, default=0
        Print progress per chunk of 8,192 rows when positive.
    method : {"euler", "anderson", "active_set"}, default="euler"
        ``"euler"`` integrates every row by forward Euler and defines the
        answer: the attractor reached from ``x0``. ``"anderson"`` (rate
        networks) accelerates the Euler map by Anderson mixing once a row has
        settled and redoes by Euler every row whose end point it cannot vouch
        for; ``n_steps`` then counts Euler steps plus Anderson iterations.
        ``"active_set"`` (relu rate networks) follows Euler until it can prove
        where the row ends, then ends it on that fixed point, solved for;
        ``n_steps`` counts the Euler steps taken. See :ref:`solver-methods`.
        ``"newton"`` is the deprecated name of ``"active_set"``.
    precision : {"float64", "mixed"}, default="float64"
        Arithmetic of the integration. ``"mixed"`` (rate networks, with
        ``method="euler"`` or ``"anderson"``) integrates the transient in
        float32, about twice as fast per step, until the residual is at most
        ``1e-5`` (or ``tol``, if larger), then goes on in float64 to ``tol``:
        every converged row's residual is measured in float64. Rows that
        diverge or reach ``max_steps`` in float32 are integrated again in
        float64. See :ref:`mixed-precision`.

    Attributes
    ----------
    family_ : {"rate", "gated", "gru"}
        Kind of network integrated (see ``rnnapprox._families``).
    weights_ : ndarray of shape (n_units, n_units)
        Recurrent weights used (``J_h`` for gated networks; the stacked
        ``(3 n_units, n_units)`` ``W_h`` of GRU networks).
    input_weights_ : ndarray of shape (n_units, n_features_in_)
        Input weights used (drawn when the network gave none; ``(3 n_units,
        n_features_in_)`` for GRU networks).
    bias_ : ndarray of shape (n_units,)
        Bias used (the input biases ``b_i``, ``3 n_units``, for GRU networks).
    hidden_bias_ : ndarray of shape (3 * n_units,)
        Hidden biases ``b_h``; GRU networks only.
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
    with ``r(x) <= tol``, and that state's residual is the one reported. Rows
    are integrated in blocks of 64, one matrix-matrix product per step; the
    arithmetic is float64 and the output has the input's dtype. The user guide
    explains the gated dynamics, the solver methods and what each guarantees
    (:ref:`solver-methods`), and the stability diagnostics of :meth:`solve`.

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
        "network": "no_validation",  # checked in fit, with a message that says what to pass
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
        "method": [StrOptions(set(METHODS), deprecated={"newton"})],
        "precision": [StrOptions({"float64", "mixed"})],
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
        precision="float64",
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
        self.precision = precision

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
        elif not (hasattr(network, "validated_arrays") and hasattr(network, "get_params")):
            wrap = (": wrap a weight matrix W as network=RateNetwork(weights=W)"
                    if hasattr(network, "shape") or isinstance(network, (list, tuple)) else "")
            raise InvalidParameterError(
                f"The 'network' parameter of {type(self).__name__} must be a network of "
                "rnnapprox.networks (RateNetwork, GatedNetwork, GRUNetwork, FeedbackNetwork, or a builder's "
                f"result such as soft_wta()) or None; got {type(network).__name__}{wrap}."
            )
        arrays = dict(network.validated_arrays(n_features))
        family_class = get_family(arrays.pop("family", "rate"))
        if arrays["input_weights"] is None:
            n_units = arrays["weights"].shape[0]
            arrays["input_weights"] = rng.standard_normal((n_units, n_features)) / np.sqrt(n_features)
        family = family_class(**arrays)
        METHODS[self.method]().check(family)
        if self.precision == "mixed" and (np.float32 not in family.dtypes or self.method == "active_set"
                                          or self.method == "newton"):
            raise ValueError(
                f"precision='mixed' needs a rate network and method='euler' or 'anderson'; got a "
                f"{family.name} network with method={self.method!r}. Use precision='float64'."
            )
        n_units, n_state = family.n_units, family.n_state
        if self.x0 is None:
            x0 = np.zeros(n_state)
        else:
            x0 = np.asarray(self.x0, dtype=np.float64)
            shapes = [(n_units,)] + ([(n_state,)] if n_state != n_units else [])
            if x0.shape not in shapes or not np.all(np.isfinite(x0)):
                expected = " or ".join(f"({s[0]},)" for s in shapes)
                meaning = "n_units" + (f" or {n_state // n_units} * n_units, the "
                                       f"{family.state_description} state" if n_state != n_units else "")
                raise ValueError(
                    f"x0 must be a finite array of shape {expected} ({meaning}); "
                    f"got shape {x0.shape}."
                )
            x0 = np.concatenate([x0, np.zeros(n_state - x0.shape[0])])
        smallest_tau = min(float(t.min()) for t in family.time_constants())
        if self.dt > smallest_tau:
            warnings.warn(
                f"dt={self.dt} exceeds the smallest time constant tau={smallest_tau:g}: "
                "forward Euler may oscillate or diverge where the dynamics are stable. "
                "Use dt <= min(tau) (dt = 0.1 * min(tau) is a safe default).",
                ConvergenceWarning,
                stacklevel=2,
            )
        self.family_ = family.name
        for name in ALL_ATTRIBUTES:
            if name in family.attributes:
                setattr(self, name + "_", getattr(family, name))
            elif hasattr(self, name + "_"):
                delattr(self, name + "_")
        self.x0_ = x0
        self.n_units_ = n_units
        self.n_state_ = n_state
        self._n_features_out = n_state if self.output == "state" else n_units
        return self

    def _family(self):
        """The fitted network family, remade from the fitted attributes."""
        family_class = get_family(self.family_)
        return family_class(**{name: getattr(self, name + "_") for name in family_class.attributes})

    def _settings(self):
        # block_size is the chunked driver's to set (_chunked.BLOCK_ROWS).
        return Settings(dt=float(self.dt), tol=float(self.tol), max_steps=int(self.max_steps),
                        divergence_threshold=float(self.divergence_threshold), block_size=0,
                        precision=self.precision)

    def _progress(self):
        if not self.verbose:
            return None
        start = time.perf_counter()

        def report(done, n_rows, n_converged):
            print(f"[{type(self).__name__}] {done}/{n_rows} rows, {n_converged} converged, "
                  f"{time.perf_counter() - start:.2f} s", flush=True)

        return report

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
        A fixed point is stable when every eigenvalue of the Jacobian
        (:meth:`jacobian`) has negative real part; a leading real part within
        rounding of 0 (a closed update gate, a marginal mode) is reported as
        it is computed. A max_steps row is ``"chaotic"`` when its finite-time
        Lyapunov exponent ``lambda`` over the horizon ``T`` (400 times the
        largest time constant) has ``lambda T > 5``, ``"slow"`` when its
        residual kept shrinking or ``lambda T < -5``, and ``"oscillating"``
        otherwise; the user guide (:ref:`nonexistence`) gives the estimator
        and its limits.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        family = self._family()
        drive = family.drive(X)
        settings = self._settings()
        threads = n_threads(self.n_jobs)
        states, residual, n_steps, status_codes, contraction, _ = integrate_in_chunks(
            METHODS[self.method](), family, drive, self.x0_, settings, threads, self._progress()
        )
        outputs = states.copy() if self.output == "state" else family.outputs(states)
        converged = status_codes == CONVERGED
        dynamics = np.empty(len(status_codes), dtype=object)
        dynamics[converged] = "fixed_point"
        dynamics[status_codes == DIVERGED] = "diverged"
        at_max = status_codes == MAX_STEPS
        slow = at_max & (contraction < SLOW_CONTRACTION)
        dynamics[slow] = "slow"
        dynamics[at_max & ~slow] = "sustained"
        extra = {}
        if stability:
            extra = stability_diagnostics(family, drive, states, converged, at_max, dynamics,
                                          settings, threads)
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
            status=STATUS_NAMES[status_codes],
            dynamics=dynamics,
            contraction=contraction,
            **extra,
        )

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
        Rate networks: ``J = diag(1 / tau) (-I + W diag(f'(x)))`` with
        ``relu'(0) = 0``. Gated networks: the ``3N x 3N`` derivative of
        ``(dh/dt, dz/dt, dr/dt)``, including the time rescaling by ``sigma_z``
        and the ``1 / tau_z``, ``1 / tau_r`` factors; the user guide writes
        out its blocks (:ref:`gated-networks`).

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
        family = self._family()
        drive = family.drive(X)
        if not len(X):
            return np.empty((0, self.n_state_, self.n_state_))
        return np.stack([family.jacobian(s, d) for s, d in zip(states, drive)])

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
