"""RecurrentFixedPointTransformer: fixed-point responses of recurrent rate networks."""

import time
import warnings
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
from .networks import random_tanh_network

__all__ = ["RecurrentFixedPointTransformer", "FixedPointResult", "NonConvergenceError"]

#: Rows integrated per kernel call: bounds memory and lets verbose report progress.
CHUNK_ROWS = 8192
#: Rows integrated together in one matrix product per Euler step.
BLOCK_ROWS = 64

_BLAS_CONTROLLER = None


def _blas_controller():
    """Threadpool controller made once, used to pin BLAS to one thread in kernels."""
    global _BLAS_CONTROLLER
    if _BLAS_CONTROLLER is None:
        _BLAS_CONTROLLER = ThreadpoolController()
    return _BLAS_CONTROLLER


class NonConvergenceError(RuntimeError):
    """Raised when rows do not reach a fixed point and the policy is ``"raise"``."""


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
      ``"max_steps"``.
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
        return text


def _describe_failures(result, max_steps):
    failed = np.flatnonzero(~result.converged)
    shown = ", ".join(map(str, failed[:10])) + (", ..." if failed.size > 10 else "")
    n_diverged = int(np.sum(result.status == "diverged"))
    n_max = int(np.sum(result.status == "max_steps"))
    return (
        f"{failed.size} of {result.converged.size} rows did not reach a fixed point "
        f"(rows {shown}): {n_diverged} diverged, {n_max} reached max_steps={max_steps}. "
        "Diverging rows point to an unstable network; rows at max_steps to slow, "
        "oscillating or chaotic dynamics (raise max_steps or tol, or check the network)."
    )


class RecurrentFixedPointTransformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Fixed-point responses of a recurrent rate network to constant inputs.

    Each input row ``u`` drives the network ``tau dx/dt = -x + W f(x) + W_in u + b``
    from ``x0``; forward Euler integration (a numba kernel, rows in parallel)
    runs until the fixed-point residual is at most ``tol``, the state
    diverges, or ``max_steps`` updates have been made. ``transform`` returns
    the fixed-point rates ``f(x*)``.

    Parameters
    ----------
    network : RateNetwork, default=None
        The recurrent network (see :mod:`rnnapprox.networks`). ``None`` draws
        a stable random tanh network (gain 0.5) with one unit per feature at
        ``fit``, as :class:`~sklearn.kernel_approximation.RBFSampler` draws its
        weights.
    dt : float, default=0.1
        Euler step, in the units of ``tau``.
    tol : float, default=1e-6
        A row has converged when its residual ``max_i |-x + W f(x) + W_in u + b|_i``
        (``tau |dx/dt|`` in the infinity norm) is at most ``tol``.
    max_steps : int, default=10_000
        Maximum Euler updates per row.
    on_nonconvergence : {"warn", "raise", "nan"}, default="warn"
        What ``transform`` does with rows that did not converge: ``"warn"``
        returns them as they ended with a
        :class:`~sklearn.exceptions.ConvergenceWarning` naming them,
        ``"raise"`` raises :class:`NonConvergenceError` naming them, ``"nan"``
        sets them to NaN and warns.
    output : {"rate", "state"}, default="rate"
        Return the rates ``f(x*)`` or the states ``x*``.
    x0 : array-like of shape (n_units,), default=None
        Initial state of every row; ``None`` starts from zeros.
    divergence_threshold : float, default=1e6
        A row is declared diverged as soon as ``max|x|`` exceeds
        ``divergence_threshold * (1 + max|W_in u + b|)`` or becomes non-finite.
    random_state : int, RandomState instance or None, default=None
        Seeds the random network (``network=None``) and the random input
        projection (``input_weights=None`` with ``n_features != n_units``).
    n_jobs : int, default=None
        Threads integrating rows in parallel. ``None`` or ``-1`` use all the
        threads numba was started with.
    verbose : int, default=0
        Print progress per chunk of rows when positive.

    Attributes
    ----------
    weights_ : ndarray of shape (n_units, n_units)
        Recurrent weights used.
    input_weights_ : ndarray of shape (n_units, n_features_in_)
        Input weights used (drawn when the network gave none).
    bias_ : ndarray of shape (n_units,)
        Bias used.
    tau_ : ndarray of shape (n_units,)
        Time constants used.
    activation_ : str
        Activation used.
    x0_ : ndarray of shape (n_units,)
        Initial state used.
    n_units_ : int
        Number of units, the number of output features.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
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
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
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
        n_units = arrays["weights"].shape[0]
        input_weights = arrays["input_weights"]
        if input_weights is None:
            input_weights = rng.standard_normal((n_units, n_features)) / np.sqrt(n_features)
        if self.x0 is None:
            x0 = np.zeros(n_units)
        else:
            x0 = np.asarray(self.x0, dtype=np.float64)
            if x0.shape != (n_units,) or not np.all(np.isfinite(x0)):
                raise ValueError(
                    f"x0 must be a finite array of shape (n_units,) = ({n_units},); "
                    f"got shape {x0.shape}."
                )
            x0 = x0.copy()
        if self.dt > arrays["tau"].min():
            warnings.warn(
                f"dt={self.dt} exceeds the smallest time constant tau={arrays['tau'].min():g}: "
                "forward Euler may oscillate or diverge where the dynamics are stable. "
                "Use dt <= min(tau) (dt = 0.1 * min(tau) is a safe default).",
                UserWarning,
                stacklevel=2,
            )
        self.weights_ = arrays["weights"]
        self.input_weights_ = input_weights
        self.bias_ = arrays["bias"]
        self.tau_ = arrays["tau"]
        self.activation_ = arrays["activation"]
        self.x0_ = x0
        self.n_units_ = n_units
        self._n_features_out = n_units
        return self

    def _n_threads(self):
        available = numba.config.NUMBA_NUM_THREADS
        if self.n_jobs is None or self.n_jobs == -1:
            return available
        if self.n_jobs < -1:
            return max(1, available + 1 + self.n_jobs)
        if self.n_jobs == 0:
            raise ValueError("n_jobs == 0 has no meaning; use None, -1 or a positive integer.")
        return min(self.n_jobs, available)

    def _integrate(self, drive):
        """Run the Euler kernel on ``drive`` in chunks, BLAS pinned to one thread."""
        n_rows, n_units = drive.shape
        states = np.empty((n_rows, n_units))
        residual = np.empty(n_rows)
        n_steps = np.empty(n_rows, dtype=np.int64)
        status = np.empty(n_rows, dtype=np.int8)
        if n_rows == 0:
            return states, residual, n_steps, status
        n_threads = self._n_threads()
        # One specialisation of the kernel: C-ordered, writeable float64 arrays.
        weights, rate_scale = (
            np.require(a, dtype=np.float64, requirements=["C", "W"])
            for a in (self.weights_, self.dt / self.tau_)
        )
        activation = _kernels.ACTIVATION_CODES[self.activation_]
        previous_threads = numba.get_num_threads()
        start_time = time.perf_counter()
        try:
            numba.set_num_threads(n_threads)
            with _blas_controller().limit(limits=1, user_api="blas"):
                for start in range(0, n_rows, CHUNK_ROWS):
                    stop = min(start + CHUNK_ROWS, n_rows)
                    chunk = slice(start, stop)
                    initial = np.repeat(self.x0_[np.newaxis, :], stop - start, axis=0)
                    out = _kernels.euler_rate_fixed_points(
                        drive[chunk], initial, weights, rate_scale, float(self.tol),
                        int(self.max_steps), float(self.divergence_threshold), activation,
                        BLOCK_ROWS, 2 * n_threads,
                    )
                    states[chunk], residual[chunk], n_steps[chunk], status[chunk] = out
                    if self.verbose:
                        done = status[:stop] == _kernels.CONVERGED
                        print(
                            f"[{type(self).__name__}] {stop}/{n_rows} rows, "
                            f"{int(done.sum())} converged, "
                            f"{time.perf_counter() - start_time:.2f} s",
                            flush=True,
                        )
        finally:
            numba.set_num_threads(previous_threads)
        return states, residual, n_steps, status

    def solve(self, X):
        """Integrate every row and return per-row convergence diagnostics.

        Unlike :meth:`transform`, ``solve`` neither warns nor raises about
        rows that did not converge: it reports them.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows.

        Returns
        -------
        result : FixedPointResult
            ``states``, ``outputs``, ``converged``, ``n_steps``, ``residual``
            and ``status``, one entry per row.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        drive = np.ascontiguousarray(X @ self.input_weights_.T + self.bias_, dtype=np.float64)
        states, residual, n_steps, status_codes = self._integrate(drive)
        if self.output == "state":
            outputs = states.copy()
        elif self.activation_ == "relu":
            outputs = np.maximum(states, 0.0)
        else:
            outputs = np.tanh(states)
        with np.errstate(over="ignore", invalid="ignore"):
            outputs = outputs.astype(X.dtype, copy=False)
            states = states.astype(X.dtype, copy=False)
        outputs[~np.isfinite(outputs).all(axis=1)] = np.nan
        return FixedPointResult(
            states=states,
            outputs=outputs,
            converged=status_codes == _kernels.CONVERGED,
            n_steps=n_steps,
            residual=residual,
            status=_kernels.STATUS_NAMES[status_codes],
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
        if not result.converged.all():
            message = _describe_failures(result, self.max_steps)
            if self.on_nonconvergence == "raise":
                raise NonConvergenceError(message)
            if self.on_nonconvergence == "nan":
                result.outputs[~result.converged] = np.nan
                message += " They are set to NaN."
            warnings.warn(message, ConvergenceWarning, stacklevel=2)
        return result.outputs

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
