"""Recurrent network parameter objects and the builders of the field's circuits.

A network here is *data*: a small object holding weight arrays and scalars,
with ``get_params``/``set_params`` (the pattern of scikit-learn's
Gaussian-process kernels) so that ``GridSearchCV`` can tune
``network__tau``. It holds no compiled code; the numba kernels that integrate
its dynamics live in :mod:`rnnapprox._kernels` and receive plain arrays.
"""

import inspect
import numbers

import numpy as np
from sklearn.utils import check_random_state

from ._activations import get_activation

__all__ = [
    "RateNetwork",
    "GatedNetwork",
    "GRUNetwork",
    "FeedbackNetwork",
    "soft_wta",
    "winning_partition",
    "random_ei_network",
    "random_tanh_network",
    "random_gated_network",
    "random_gru_network",
    "random_feedback_network",
]



class NetworkParams:
    """Base class giving networks ``get_params``, ``set_params`` and a repr.

    Parameters are the arguments of the subclass ``__init__``, stored under
    the same names, as for scikit-learn estimators.
    """

    @classmethod
    def _get_param_names(cls):
        signature = inspect.signature(cls.__init__)
        return sorted(p.name for p in signature.parameters.values() if p.name != "self")

    def get_params(self, deep=True):
        """Get the parameters of this network.

        Parameters
        ----------
        deep : bool, default=True
            Ignored; networks hold no nested objects. Present for
            scikit-learn's API.

        Returns
        -------
        params : dict
            Parameter names mapped to their values.
        """
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params):
        """Set the parameters of this network.

        Parameters
        ----------
        **params : dict
            Network parameters.

        Returns
        -------
        self : object
            The network.
        """
        valid = self._get_param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(
                    f"Invalid parameter {name!r} for network {type(self).__name__}. "
                    f"Valid parameters are: {valid}."
                )
            setattr(self, name, value)
        return self

    def __repr__(self):
        parts = []
        for name, value in self.get_params().items():
            if isinstance(value, np.ndarray):
                text = f"<array {'x'.join(map(str, value.shape))}>"
            else:
                text = repr(value)
            parts.append(f"{name}={text}")
        return f"{type(self).__name__}({', '.join(parts)})"


def _as_finite_array(value, name, ndim):
    if np.iscomplexobj(value):
        raise TypeError(f"{name} must be real, got a complex array.")
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a real numeric array; got {type(value).__name__}.") from exc
    if array.ndim not in ndim:
        raise ValueError(
            f"{name} must have {' or '.join(map(str, ndim))} dimensions; got shape {array.shape}."
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinity.")
    return array


def _per_unit(value, name, n_units, positive=False):
    array = _as_finite_array(value, name, ndim=(0, 1))
    if array.ndim == 1 and array.shape[0] != n_units:
        raise ValueError(f"{name} has {array.shape[0]} entries; the network has {n_units} units.")
    if positive and np.any(array <= 0):
        raise ValueError(f"{name} must be strictly positive; got minimum {array.min()!r}.")
    return np.broadcast_to(array, (n_units,)).astype(np.float64)


class RateNetwork(NetworkParams):
    """A recurrent rate network, ``tau dx/dt = -x + W f(x) + W_in u + b``.

    Parameters
    ----------
    weights : array-like of shape (n_units, n_units)
        Recurrent weights ``W``; ``weights[i, j]`` is the weight from unit
        ``j`` onto unit ``i``.
    input_weights : array-like of shape (n_units, n_features), default=None
        Input weights ``W_in``. ``None`` means the identity when the input has
        ``n_units`` features, and otherwise a random projection drawn by the
        transformer at ``fit``.
    bias : float or array-like of shape (n_units,), default=0.0
        Constant drive ``b``.
    tau : float or array-like of shape (n_units,), default=1.0
        Time constants, strictly positive.
    activation : {"relu", "tanh", "sigmoid"}, default="relu"
        Transfer function ``f``: ``"relu"`` gives linear-threshold units,
        ``"sigmoid"`` the logistic ``1 / (1 + exp(-x))``; any other name is an
        error.

    See Also
    --------
    soft_wta : Soft winner-take-all circuit.
    random_ei_network : Random excitatory/inhibitory network (Dale's law).
    random_tanh_network : Random tanh network with gain ``g``.

    Notes
    -----
    A fixed point ``x*`` solves ``0 = -x* + W f(x*) + W_in u + b``. Its
    response is the rate vector ``f(x*)``. The fixed-point residual of a state
    is ``max_i |-x + W f(x) + W_in u + b|_i``, that is ``tau |dx/dt|`` in the
    infinity norm.

    Examples
    --------
    >>> import numpy as np
    >>> from rnnapprox.networks import RateNetwork
    >>> net = RateNetwork(weights=0.5 * np.eye(3), activation="relu")
    >>> net.n_units
    3
    >>> net.set_params(tau=2.0).tau
    2.0
    """

    def __init__(self, weights, input_weights=None, bias=0.0, tau=1.0, activation="relu"):
        self.weights = weights
        self.input_weights = input_weights
        self.bias = bias
        self.tau = tau
        self.activation = activation

    @property
    def n_units(self):
        """Number of units (rows of ``weights``)."""
        return np.shape(self.weights)[0]

    def validated_arrays(self, n_features):
        """Check the parameters against the data and return them as arrays.

        Parameters
        ----------
        n_features : int
            Number of input features the network will receive.

        Returns
        -------
        arrays : dict
            ``weights`` (n_units, n_units), ``input_weights`` (n_units,
            n_features) or ``None`` when a projection must be drawn, ``bias``
            and ``tau`` (n_units,), all float64 copies, and ``activation``.

        Raises
        ------
        ValueError, TypeError
            With a message naming the offending parameter.
        """
        get_activation(self.activation)
        weights = _square(self.weights, "weights")
        n_units = weights.shape[0]
        return {
            "family": "rate",
            "weights": weights,
            "input_weights": _input_weights(self.input_weights, n_units, n_features),
            "bias": _per_unit(self.bias, "bias", n_units),
            "tau": _per_unit(self.tau, "tau", n_units, positive=True),
            "activation": self.activation,
        }


def _square(value, name, n_units=None):
    array = _as_finite_array(value, name, ndim=(2,))
    if array.shape[0] != array.shape[1]:
        raise ValueError(f"{name} must be a square matrix; got shape {array.shape}.")
    if array.shape[0] == 0:
        raise ValueError(f"{name} must have at least one unit; got shape (0, 0).")
    if n_units is not None and array.shape[0] != n_units:
        raise ValueError(
            f"{name} must have shape ({n_units}, {n_units}) like weights; got {array.shape}."
        )
    return array.copy()


def _input_weights(value, n_units, n_features):
    """``W_in`` checked against the network and the data's ``n_features``; the message names the culprit."""
    if value is None:
        return np.eye(n_units) if n_features == n_units else None
    input_weights = _as_finite_array(value, "input_weights", ndim=(2,))
    shape = input_weights.shape
    if shape == (n_units, n_features):
        return input_weights.copy()
    if shape == (n_features, n_units):
        raise ValueError(
            f"input_weights looks transposed: input_weights must have shape (n_units, n_features) = "
            f"({n_units}, {n_features}) (row i holds the weights onto unit i); got {shape}. "
            "Pass input_weights.T."
        )
    if shape[0] == n_units:
        raise ValueError(
            f"X has {n_features} features, but the network's input_weights has shape {shape}: it "
            f"expects {shape[1]} input features. Pass X with {shape[1]} columns, or input_weights "
            f"for this X (input_weights must have shape (n_units, n_features) = ({n_units}, "
            f"{n_features}))."
        )
    raise ValueError(
        f"input_weights must have shape (n_units, n_features) = ({n_units}, {n_features}); "
        f"got {shape}: its first axis must match the {n_units} units of weights."
    )


class GatedNetwork(NetworkParams):
    """A gated recurrent network with an update (z) and an output (r) gate.

    The continuous-time gated network of Krishnamurthy, Can & Schwab (2022),
    with state ``(h, z, r)`` of ``3 n_units`` entries::

        dh/dt       = sigma_z(z) * (-h + J_h (sigma_r(r) * phi(h)) + W_in u + b)
        tau_z dz/dt = -z + J_z phi(h)
        tau_r dr/dt = -r + J_r phi(h)

    with ``phi = tanh`` and ``sigma_k(v) = 1 / (1 + exp(-alpha_k v + beta_k))``.

    Parameters
    ----------
    weights : array-like of shape (n_units, n_units)
        Recurrent couplings ``J_h``.
    z_weights : array-like of shape (n_units, n_units)
        Couplings ``J_z`` onto the update gate.
    r_weights : array-like of shape (n_units, n_units)
        Couplings ``J_r`` onto the output gate.
    input_weights : array-like of shape (n_units, n_features), default=None
        Input weights ``W_in``; ``None`` as for :class:`RateNetwork`.
    bias : float or array-like of shape (n_units,), default=0.0
        Constant drive ``b`` of ``h``.
    alpha_z, beta_z : float or array-like of shape (n_units,), default=1.0, 0.0
        Gain and offset of the update gate ``sigma_z``. A large ``alpha_z``
        makes ``sigma_z`` a switch that freezes the units with ``z < beta_z /
        alpha_z``: slow, marginally stable dynamics.
    alpha_r, beta_r : float or array-like of shape (n_units,), default=1.0, 0.0
        Gain and offset of the output gate ``sigma_r``, which scales the
        effective coupling gain ``g sigma_r``.
    tau_z, tau_r : float or array-like of shape (n_units,), default=1.0
        Time constants of the gates, strictly positive; ``h`` has time
        constant 1 (stretched by ``1 / sigma_z``).

    See Also
    --------
    random_gated_network : Draws the couplings with gain ``g``.
    RateNetwork : The ungated rate network.

    Notes
    -----
    A fixed point ``(h*, z*, r*)`` solves ``h* = J_h (sigma_r(r*) phi(h*)) +
    W_in u + b``, ``z* = J_z phi(h*)``, ``r* = J_r phi(h*)``; ``sigma_z``
    only rescales time and does not move fixed points. The transformer's
    response is ``phi(h*)``. The fixed-point residual of a state is the
    infinity norm of the time-constant-scaled field::

        max( |-h + J_h (sigma_r(r) phi(h)) + W_in u + b|,
             |-z + J_z phi(h)|,  |-r + J_r phi(h)| )

    (``tau_z |dz/dt|``, ``tau_r |dr/dt|`` and ``|dh/dt| / sigma_z(z)``): the
    ``h`` part leaves out ``sigma_z`` so that a unit frozen by a closed update
    gate is not mistaken for a unit at its fixed point.

    References
    ----------
    Krishnamurthy, K., Can, T., & Schwab, D. J. (2022). Theory of gating in
    recurrent neural networks. *Physical Review X*, 12(1), 011011.

    Examples
    --------
    >>> import numpy as np
    >>> from rnnapprox.networks import GatedNetwork
    >>> J = 0.5 * np.eye(3)
    >>> net = GatedNetwork(J, z_weights=J, r_weights=J, alpha_r=4.0)
    >>> net.n_units
    3
    >>> arrays = net.validated_arrays(3)
    >>> arrays["family"], arrays["alpha_r"]
    ('gated', array([4., 4., 4.]))
    """

    def __init__(
        self,
        weights,
        z_weights,
        r_weights,
        input_weights=None,
        bias=0.0,
        alpha_z=1.0,
        beta_z=0.0,
        alpha_r=1.0,
        beta_r=0.0,
        tau_z=1.0,
        tau_r=1.0,
    ):
        self.weights = weights
        self.z_weights = z_weights
        self.r_weights = r_weights
        self.input_weights = input_weights
        self.bias = bias
        self.alpha_z = alpha_z
        self.beta_z = beta_z
        self.alpha_r = alpha_r
        self.beta_r = beta_r
        self.tau_z = tau_z
        self.tau_r = tau_r

    @property
    def n_units(self):
        """Number of units (rows of ``weights``); the state has ``3 n_units`` entries."""
        return np.shape(self.weights)[0]

    def validated_arrays(self, n_features):
        """Check the parameters against the data and return them as arrays.

        Parameters
        ----------
        n_features : int
            Number of input features the network will receive.

        Returns
        -------
        arrays : dict
            ``family`` (``"gated"``), ``weights``, ``z_weights``,
            ``r_weights`` (n_units, n_units), ``input_weights`` (n_units,
            n_features) or ``None`` when a projection must be drawn, and
            ``bias``, ``alpha_z``, ``beta_z``, ``alpha_r``, ``beta_r``,
            ``tau_z``, ``tau_r`` (n_units,), all float64 copies; ``tau``
            (ones: the time constant of ``h``) and ``activation`` (``"tanh"``).

        Raises
        ------
        ValueError, TypeError
            With a message naming the offending parameter.
        """
        weights = _square(self.weights, "weights")
        n_units = weights.shape[0]
        arrays = {
            "family": "gated",
            "weights": weights,
            "z_weights": _square(self.z_weights, "z_weights", n_units),
            "r_weights": _square(self.r_weights, "r_weights", n_units),
            "input_weights": _input_weights(self.input_weights, n_units, n_features),
            "bias": _per_unit(self.bias, "bias", n_units),
        }
        for name in ("alpha_z", "beta_z", "alpha_r", "beta_r"):
            arrays[name] = _per_unit(getattr(self, name), name, n_units)
        for name in ("tau_z", "tau_r"):
            arrays[name] = _per_unit(getattr(self, name), name, n_units, positive=True)
        arrays["tau"] = np.ones(n_units)
        arrays["activation"] = "tanh"
        return arrays


def soft_wta(
    n_partitions=5,
    units_per_partition=16,
    n_inhibitory=8,
    *,
    self_excitation=1.2,
    excitation_to_inhibition=1.0,
    inhibition=2.0,
    input_gain=1.0,
    tau=1.0,
    tau_inhibitory=None,
    jitter=0.1,
    random_state=None,
):
    """Soft winner-take-all circuit of linear-threshold units.

    Excitatory partitions excite themselves and a shared pool of inhibitory
    units, which inhibit every excitatory unit: the competitive circuit
    studied by Muir (2018).

    Parameters
    ----------
    n_partitions : int, default=5
        Number of excitatory partitions, each with one input.
    units_per_partition : int, default=16
        Excitatory units per partition.
    n_inhibitory : int, default=8
        Shared inhibitory units.
    self_excitation : float, default=1.2
        Total recurrent excitation a partition gives itself (``alpha``).
        Above 1 a partition amplifies its own activity and competition
        selects one winner; below 1 several partitions can stay active.
    excitation_to_inhibition : float, default=1.0
        Gain from each partition's mean rate onto the inhibitory units.
    inhibition : float, default=2.0
        Total inhibition the inhibitory pool gives each excitatory unit.
    input_gain : float, default=1.0
        Weight of a partition's input onto its excitatory units.
    tau : float, default=1.0
        Time constant of excitatory units.
    tau_inhibitory : float, default=None
        Time constant of inhibitory units; ``None`` uses ``tau``.
    jitter : float, default=0.1
        Relative Gaussian jitter of every non-zero weight, so units within a
        partition are not identical.
    random_state : int, RandomState instance or None, default=None
        Seed of the jitter.

    Returns
    -------
    network : RateNetwork
        ``relu`` network with ``n_partitions * units_per_partition +
        n_inhibitory`` units (excitatory first, partition ``p`` holding units
        ``p * units_per_partition`` to ``(p + 1) * units_per_partition - 1``)
        and ``input_weights`` of shape ``(n_units, n_partitions)``.

    Notes
    -----
    Without jitter, with one partition active at rate ``r`` and inhibitory
    rate ``r_I = beta_EI r``, the winner's fixed point is
    ``r = g u / (1 - alpha + beta_IE beta_EI)``, stable when
    ``beta_IE beta_EI > alpha - 1`` and ``alpha < 2``, while the difference
    mode between two active partitions grows at rate ``alpha - 1``: with
    ``alpha > 1`` exactly one partition wins. Losers receive net input
    ``g u' - beta_IE beta_EI r`` and are silent when it is negative.

    References
    ----------
    Muir, D. R. (2018). Feedforward approximations to dynamic recurrent
    network architectures. *Neural Computation*, 30(2), 546-567.

    Examples
    --------
    >>> from rnnapprox.networks import soft_wta
    >>> net = soft_wta(n_partitions=3, units_per_partition=4, n_inhibitory=2, random_state=0)
    >>> net.weights.shape, net.input_weights.shape
    ((14, 14), (14, 3))
    """
    for name, value in [
        ("n_partitions", n_partitions),
        ("units_per_partition", units_per_partition),
        ("n_inhibitory", n_inhibitory),
    ]:
        if not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name} must be a positive integer; got {value!r}.")
    if jitter < 0:
        raise ValueError(f"jitter must be non-negative; got {jitter!r}.")
    rng = check_random_state(random_state)
    n_exc = n_partitions * units_per_partition
    n_units = n_exc + n_inhibitory
    weights = np.zeros((n_units, n_units))
    input_weights = np.zeros((n_units, n_partitions))
    for p in range(n_partitions):
        members = slice(p * units_per_partition, (p + 1) * units_per_partition)
        weights[members, members] = self_excitation / units_per_partition
        input_weights[members, p] = input_gain
    weights[n_exc:, :n_exc] = excitation_to_inhibition / units_per_partition
    weights[:n_exc, n_exc:] = -inhibition / n_inhibitory
    weights *= 1.0 + jitter * rng.standard_normal(weights.shape)
    input_weights *= 1.0 + jitter * rng.standard_normal(input_weights.shape)
    taus = np.full(n_units, float(tau))
    taus[n_exc:] = tau if tau_inhibitory is None else tau_inhibitory
    return RateNetwork(
        weights=weights,
        input_weights=input_weights,
        tau=taus if tau_inhibitory is not None else float(tau),
        activation="relu",
    )


def winning_partition(rates, n_partitions, units_per_partition):
    """Winning partition of each row of soft winner-take-all rates.

    The winner is the partition whose excitatory units have the largest mean
    rate, with units laid out as :func:`soft_wta` builds them (excitatory
    first, partition ``p`` holding units ``p * units_per_partition`` to
    ``(p + 1) * units_per_partition - 1``); columns after the excitatory
    units (the inhibitory pool) are ignored.

    Parameters
    ----------
    rates : array-like of shape (n_samples, n_units)
        Rates of each row, for example the outputs of
        :meth:`~rnnapprox.RecurrentFixedPointTransformer.transform` or the
        predictions of :class:`~rnnapprox.FeedforwardApproximator`, with
        ``n_units >= n_partitions * units_per_partition``.
    n_partitions : int
        Number of excitatory partitions.
    units_per_partition : int
        Excitatory units per partition.

    Returns
    -------
    winners : ndarray of int of shape (n_samples,)
        Index of the winning partition of each row; on a tie, the lowest
        index (as :func:`numpy.argmax`).

    Raises
    ------
    ValueError
        If ``rates`` is not 2-D, has fewer columns than the excitatory units,
        or holds NaN or infinity among them (rows that did not converge: drop
        them first), or if a size is not a positive integer.

    See Also
    --------
    soft_wta : The circuit whose rates this reads.

    Examples
    --------
    >>> import numpy as np
    >>> from rnnapprox.networks import winning_partition
    >>> rates = np.array([[0.0, 0.0, 2.0, 1.0, 0.5],    # 2 partitions of 2 units + 1 inhibitory
    ...                   [1.0, 3.0, 0.0, 0.0, 0.9]])
    >>> winning_partition(rates, n_partitions=2, units_per_partition=2)
    array([1, 0])
    """
    for name, value in [("n_partitions", n_partitions), ("units_per_partition", units_per_partition)]:
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer; got {value!r}.")
    rates = np.asarray(rates)
    n_excitatory = n_partitions * units_per_partition
    if rates.ndim != 2:
        raise ValueError(
            f"rates must be 2-D (n_samples, n_units); got an array of shape {rates.shape}. "
            "Reshape a single row with rates.reshape(1, -1)."
        )
    if rates.shape[1] < n_excitatory:
        raise ValueError(
            f"rates has {rates.shape[1]} columns, fewer than the {n_excitatory} excitatory units of "
            f"{n_partitions} partitions x {units_per_partition} units."
        )
    excitatory = rates[:, :n_excitatory].astype(np.float64, copy=False)
    bad = np.flatnonzero(~np.all(np.isfinite(excitatory), axis=1))
    if bad.size:
        raise ValueError(
            f"rates has NaN or infinity in {bad.size} rows (first: {bad[:5].tolist()}); drop rows that "
            "did not converge (FixedPointResult.converged) before asking for winners."
        )
    means = excitatory.reshape(len(rates), n_partitions, units_per_partition).mean(axis=2)
    return means.argmax(axis=1)


def _spectral_radius(matrix):
    return np.max(np.abs(np.linalg.eigvals(matrix)))


def random_ei_network(
    n_excitatory=80,
    n_inhibitory=20,
    *,
    n_inputs=None,
    spectral_radius=0.8,
    connection_probability=0.2,
    activation="relu",
    random_state=None,
):
    """Random excitatory/inhibitory rate network obeying Dale's law.

    Each unit's outgoing weights share one sign: non-negative for excitatory
    units, non-positive for inhibitory ones. Inhibitory weights are scaled by
    ``n_excitatory / n_inhibitory`` so that excitation and inhibition balance
    on average, then the matrix is rescaled to the requested spectral radius.

    Parameters
    ----------
    n_excitatory, n_inhibitory : int, default=80, 20
        Population sizes; excitatory units come first.
    n_inputs : int, default=None
        Number of input features. ``None`` leaves ``input_weights`` unset
        (identity for ``n_excitatory + n_inhibitory`` features, otherwise a
        random projection drawn at fit). Otherwise non-negative random input
        weights of shape ``(n_units, n_inputs)`` are drawn.
    spectral_radius : float, default=0.8
        Spectral radius of the returned weight matrix.
    connection_probability : float, default=0.2
        Probability of each connection.
    activation : {"relu", "tanh", "sigmoid"}, default="relu"
        Transfer function.
    random_state : int, RandomState instance or None, default=None
        Seed.

    Returns
    -------
    network : RateNetwork

    Examples
    --------
    >>> import numpy as np
    >>> from rnnapprox.networks import random_ei_network
    >>> net = random_ei_network(40, 10, spectral_radius=0.5, random_state=0)
    >>> bool(np.all(net.weights[:, :40] >= 0) and np.all(net.weights[:, 40:] <= 0))
    True
    >>> round(float(np.max(np.abs(np.linalg.eigvals(net.weights)))), 6)
    0.5
    """
    if n_excitatory < 1 or n_inhibitory < 1:
        raise ValueError("n_excitatory and n_inhibitory must be positive integers.")
    if spectral_radius <= 0:
        raise ValueError(f"spectral_radius must be positive; got {spectral_radius!r}.")
    if not 0 < connection_probability <= 1:
        raise ValueError(f"connection_probability must be in (0, 1]; got {connection_probability!r}.")
    rng = check_random_state(random_state)
    n_units = n_excitatory + n_inhibitory
    mask = rng.random_sample((n_units, n_units)) < connection_probability
    np.fill_diagonal(mask, False)
    magnitudes = rng.lognormal(mean=0.0, sigma=0.5, size=(n_units, n_units)) * mask
    signs = np.ones(n_units)
    signs[n_excitatory:] = -n_excitatory / n_inhibitory
    weights = magnitudes * signs[np.newaxis, :]
    radius = _spectral_radius(weights)
    if radius == 0:
        raise ValueError("the drawn network has no connections; raise connection_probability.")
    weights *= spectral_radius / radius
    input_weights = None
    if n_inputs is not None:
        input_weights = rng.random_sample((n_units, n_inputs)) / np.sqrt(n_inputs)
    return RateNetwork(weights=weights, input_weights=input_weights, activation=activation)


def random_tanh_network(n_units=100, *, gain=0.5, n_inputs=None, random_state=None):
    """Random tanh rate network with couplings ``W_ij ~ N(0, g^2 / N)``.

    Parameters
    ----------
    n_units : int, default=100
        Number of units ``N``.
    gain : float, default=0.5
        Coupling gain ``g``. For large ``N`` the silent state is the only,
        stable fixed point for ``g < 1``; above 1 the autonomous network is
        chaotic (Sompolinsky, Crisanti & Sommers, 1988).
    n_inputs : int, default=None
        ``None`` leaves ``input_weights`` unset; otherwise Gaussian input
        weights ``N(0, 1 / n_inputs)`` of shape ``(n_units, n_inputs)``.
    random_state : int, RandomState instance or None, default=None
        Seed.

    Returns
    -------
    network : RateNetwork

    Examples
    --------
    >>> from rnnapprox.networks import random_tanh_network
    >>> random_tanh_network(50, gain=2.0, random_state=0).activation
    'tanh'
    """
    if n_units < 1:
        raise ValueError(f"n_units must be a positive integer; got {n_units!r}.")
    if gain < 0:
        raise ValueError(f"gain must be non-negative; got {gain!r}.")
    rng = check_random_state(random_state)
    weights = rng.standard_normal((n_units, n_units)) * (gain / np.sqrt(n_units))
    input_weights = None
    if n_inputs is not None:
        input_weights = rng.standard_normal((n_units, n_inputs)) / np.sqrt(n_inputs)
    return RateNetwork(weights=weights, input_weights=input_weights, activation="tanh")


def random_gated_network(
    n_units=100,
    *,
    gain=2.0,
    gain_z=None,
    gain_r=None,
    n_inputs=None,
    alpha_z=1.0,
    beta_z=0.0,
    alpha_r=1.0,
    beta_r=0.0,
    tau_z=1.0,
    tau_r=1.0,
    random_state=None,
):
    """Random gated network with couplings ``J ~ N(0, g^2 / N)``.

    Parameters
    ----------
    n_units : int, default=100
        Number of units ``N``.
    gain : float, default=2.0
        Gain ``g_h`` of ``J_h``.
    gain_z, gain_r : float, default=None
        Gains of ``J_z`` and ``J_r``; ``None`` uses ``gain``.
    n_inputs : int, default=None
        ``None`` leaves ``input_weights`` unset; otherwise Gaussian input
        weights ``N(0, 1 / n_inputs)`` of shape ``(n_units, n_inputs)``.
    alpha_z, beta_z, alpha_r, beta_r : float, default=1.0, 0.0, 1.0, 0.0
        Gate gains and offsets, see :class:`GatedNetwork`.
    tau_z, tau_r : float, default=1.0
        Gate time constants.
    random_state : int, RandomState instance or None, default=None
        Seed.

    Returns
    -------
    network : GatedNetwork

    Notes
    -----
    Without input or bias the silent state ``h = z = r = 0`` is a fixed point
    whose Jacobian has the ``h`` block ``sigma_z(0) (-I + sigma_r(0) J_h)``
    (the gates do not enter at first order, since ``phi(0) = 0``): for large
    ``N`` it is stable when ``g_h sigma_r(0) < 1``, with ``sigma_r(0) = 1 /
    (1 + exp(beta_r))``. A large ``beta_r`` thus keeps a strongly coupled
    network quiet; an input that moves ``h`` away from 0 spreads ``r = J_r
    phi(h)`` and can open the output gates of some units, raising the
    effective gain past the edge of chaos (Krishnamurthy, Can & Schwab, 2022).

    Examples
    --------
    >>> from rnnapprox.networks import random_gated_network
    >>> net = random_gated_network(50, gain=3.0, n_inputs=2, beta_r=2.0, random_state=0)
    >>> net.weights.shape, net.z_weights.shape, net.input_weights.shape
    ((50, 50), (50, 50), (50, 2))
    """
    if not isinstance(n_units, numbers.Integral) or n_units < 1:
        raise ValueError(f"n_units must be a positive integer; got {n_units!r}.")
    gains = {"gain": gain, "gain_z": gain if gain_z is None else gain_z,
             "gain_r": gain if gain_r is None else gain_r}
    for name, value in gains.items():
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite non-negative number; got {value!r}.")
    rng = check_random_state(random_state)
    scale = 1.0 / np.sqrt(n_units)
    weights = rng.standard_normal((n_units, n_units)) * (gains["gain"] * scale)
    z_weights = rng.standard_normal((n_units, n_units)) * (gains["gain_z"] * scale)
    r_weights = rng.standard_normal((n_units, n_units)) * (gains["gain_r"] * scale)
    input_weights = None
    if n_inputs is not None:
        input_weights = rng.standard_normal((n_units, n_inputs)) / np.sqrt(n_inputs)
    return GatedNetwork(
        weights, z_weights, r_weights, input_weights=input_weights,
        alpha_z=alpha_z, beta_z=beta_z, alpha_r=alpha_r, beta_r=beta_r,
        tau_z=tau_z, tau_r=tau_r,
    )


def _gru_matrix(value, name, n_units, n_columns, columns):
    """A stacked ``(3 n_units, n_columns)`` GRU matrix; the message names the culprit and the fix."""
    array = _as_finite_array(value, name, ndim=(2,))
    expected = (3 * n_units, n_columns)
    if array.shape == expected:
        return array.copy()
    if array.shape == expected[::-1]:
        raise ValueError(
            f"{name} looks transposed: it must have shape (3 * n_units, {columns}) = {expected} "
            f"(the gates' rows stacked in the order r, z, n); got {array.shape}. Pass {name}.T."
        )
    raise ValueError(
        f"{name} must have shape (3 * n_units, {columns}) = {expected} (the gates' rows stacked "
        f"in the order r, z, n); got {array.shape}."
    )


class GRUNetwork(NetworkParams):
    """A gated recurrent unit network, the cell of PyTorch's ``nn.GRU``, at its fixed points.

    For a constant input ``u`` the GRU cell (one layer, gates in PyTorch's
    order ``r, z, n``) computes::

        r = sigmoid(W_ir u + b_ir + W_hr h + b_hr)
        z = sigmoid(W_iz u + b_iz + W_hz h + b_hz)
        n = tanh(W_in u + b_in + r * (W_hn h + b_hn))
        h_next = (1 - z) * n + z * h

    and the transformer integrates its continuous-time form ``dh/dt = (1 -
    z) * (n - h)``. The state and the response are ``h`` (``n_units``
    entries).

    Parameters
    ----------
    hidden_weights : array-like of shape (3 * n_units, n_units)
        Stacked ``[W_hr; W_hz; W_hn]``: PyTorch's ``weight_hh_l0``.
    input_weights : array-like of shape (3 * n_units, n_features), default=None
        Stacked ``[W_ir; W_iz; W_in]``: PyTorch's ``weight_ih_l0``. ``None``
        means the stacked identity ``[I; I; I]`` when ``n_features ==
        n_units``, else a random projection ``N(0, 1 / n_features)`` drawn at
        ``fit``.
    hidden_bias : float or array-like of shape (3 * n_units,), default=0.0
        Stacked ``[b_hr; b_hz; b_hn]``: PyTorch's ``bias_hh_l0``.
    input_bias : float or array-like of shape (3 * n_units,), default=0.0
        Stacked ``[b_ir; b_iz; b_in]``: PyTorch's ``bias_ih_l0``.

    See Also
    --------
    random_gru_network : Draws the weights with gain ``g``.
    GatedNetwork : The continuous-time gated network of Krishnamurthy et al.

    Notes
    -----
    A fixed point solves ``h* = n(h*)``; the update gate ``z`` only sets the
    speed (``1 - z``) and the stability. The fixed-point residual of a state
    is ``max_i |n(h)_i - h_i|``: it leaves out the rate ``1 - z`` so that a
    unit frozen by an update gate near 1 is not taken as settled. Forward
    Euler with step ``dt`` is ``h <- h + dt (1 - z) (n - h)``; with ``dt =
    1`` this is the GRU cell's own update, so ``dt=1.0`` reproduces the
    trajectory PyTorch follows when fed the same input again and again,
    while a smaller ``dt`` follows the continuous flow, which settles on the
    same fixed points and converges where the cell's iteration may oscillate.
    The drive ``W_i u + b_i`` of the three gates is computed once per row;
    each Euler step makes one matrix product ``h W_h^T`` for a block of rows.

    Examples
    --------
    >>> import numpy as np
    >>> from rnnapprox import RecurrentFixedPointTransformer
    >>> from rnnapprox.networks import GRUNetwork
    >>> rng = np.random.default_rng(0)
    >>> net = GRUNetwork(rng.normal(scale=0.3, size=(6, 2)), rng.normal(size=(6, 3)))
    >>> net.n_units
    2
    >>> U = rng.normal(size=(4, 3))
    >>> rnn = RecurrentFixedPointTransformer(network=net, dt=0.5).fit(U)
    >>> H = rnn.transform(U)
    >>> H.shape, bool(np.all(np.abs(H) < 1))
    ((4, 2), True)
    """

    def __init__(self, hidden_weights, input_weights=None, hidden_bias=0.0, input_bias=0.0):
        self.hidden_weights = hidden_weights
        self.input_weights = input_weights
        self.hidden_bias = hidden_bias
        self.input_bias = input_bias

    @property
    def n_units(self):
        """Number of units (columns of ``hidden_weights``)."""
        return np.shape(self.hidden_weights)[1]

    def validated_arrays(self, n_features):
        """Check the parameters against the data and return them as arrays.

        Parameters
        ----------
        n_features : int
            Number of input features the network will receive.

        Returns
        -------
        arrays : dict
            ``family`` (``"gru"``), ``weights`` (the stacked ``W_h``, of shape
            (3 n_units, n_units)), ``input_weights`` (the stacked ``W_i``, of
            shape (3 n_units, n_features), or ``None`` when a projection must
            be drawn), ``bias`` (``b_i``) and ``hidden_bias`` (``b_h``), of
            shape (3 n_units,); all float64 copies.

        Raises
        ------
        ValueError, TypeError
            With a message naming the offending parameter.
        """
        weights = _as_finite_array(self.hidden_weights, "hidden_weights", ndim=(2,))
        if weights.shape[1] == 0:
            raise ValueError(f"hidden_weights must have at least one unit; got shape {weights.shape}.")
        if weights.shape[0] != 3 * weights.shape[1]:
            n_units = weights.shape[0] if weights.shape[1] == 3 * weights.shape[0] else weights.shape[1]
            _gru_matrix(weights, "hidden_weights", n_units, n_units, "n_units")
        n_units = weights.shape[1]
        if self.input_weights is None:
            input_weights = np.vstack([np.eye(n_units)] * 3) if n_features == n_units else None
        else:
            input_weights = _gru_matrix(self.input_weights, "input_weights", n_units, n_features,
                                        "n_features")
        return {
            "family": "gru",
            "weights": weights.copy(),
            "input_weights": input_weights,
            "bias": _per_unit(self.input_bias, "input_bias", 3 * n_units),
            "hidden_bias": _per_unit(self.hidden_bias, "hidden_bias", 3 * n_units),
        }


def random_gru_network(n_units=100, *, gain=1.0, n_inputs=None, random_state=None):
    """Random GRU network with weights ``N(0, g^2 / N)`` in every gate.

    Parameters
    ----------
    n_units : int, default=100
        Number of units ``N``.
    gain : float, default=1.0
        Gain ``g`` of the hidden weights of all three gates.
    n_inputs : int, default=None
        ``None`` leaves ``input_weights`` unset; otherwise Gaussian input
        weights ``N(0, 1 / n_inputs)`` of shape ``(3 n_units, n_inputs)``.
    random_state : int, RandomState instance or None, default=None
        Seed.

    Returns
    -------
    network : GRUNetwork
        With zero biases.

    Notes
    -----
    Without input the silent state ``h = 0`` is a fixed point with Jacobian
    ``(I - diag(z)) (W_hn / 2 - I)`` (``r = z = 1/2`` there): for large ``N``
    it is stable when ``g < 2``.

    Examples
    --------
    >>> from rnnapprox.networks import random_gru_network
    >>> net = random_gru_network(20, gain=1.5, n_inputs=3, random_state=0)
    >>> net.hidden_weights.shape, net.input_weights.shape
    ((60, 20), (60, 3))
    """
    if not isinstance(n_units, numbers.Integral) or n_units < 1:
        raise ValueError(f"n_units must be a positive integer; got {n_units!r}.")
    if not np.isfinite(gain) or gain < 0:
        raise ValueError(f"gain must be a finite non-negative number; got {gain!r}.")
    rng = check_random_state(random_state)
    hidden_weights = rng.standard_normal((3 * n_units, n_units)) * (gain / np.sqrt(n_units))
    input_weights = None
    if n_inputs is not None:
        input_weights = rng.standard_normal((3 * n_units, n_inputs)) / np.sqrt(n_inputs)
    return GRUNetwork(hidden_weights, input_weights=input_weights)


class FeedbackNetwork(RateNetwork):
    """Random bulk closed by a rank-one feedback loop through a readout.

    The trained feedback network of Mastrogiuseppe & Ostojic (2019): a tanh
    rate network whose output ``z = n . tanh(x) / N`` is fed back along
    ``m``::

        dx/dt = -x + chi tanh(x) + m z + I u,    z = n . tanh(x) / N

    that is a :class:`RateNetwork` with ``weights = chi + outer(m, n) / N``,
    ``input_weights = I[:, None]`` (one input feature, the amplitude ``u`` of
    the stationary input), no bias and ``activation="tanh"``.

    Parameters
    ----------
    bulk : array-like of shape (n_units, n_units)
        Random bulk ``chi``.
    feedback : array-like of shape (n_units,)
        Feedback vector ``m``.
    readout : array-like of shape (n_units,), default=None
        Readout vector ``n``; ``None`` is the untrained (zero) readout.
    input_vector : array-like of shape (n_units,), default=None
        Input vector ``I``; ``None`` gives zero input weights.
    tau : float or array-like of shape (n_units,), default=1.0
        Time constants.

    Attributes
    ----------
    weights : ndarray of shape (n_units, n_units)
        ``chi + outer(m, n) / N``, computed from the parameters.
    input_weights : ndarray of shape (n_units, 1)
        ``I`` as a column.

    See Also
    --------
    random_feedback_network : Draws ``chi``, ``m`` and ``I``.
    rnnapprox.feedback.train_feedback_readout : Least-squares readout for a target output.
    rnnapprox.feedback.check_feedback_target : Is the target fixed point reached and stable?

    References
    ----------
    Mastrogiuseppe, F., & Ostojic, S. (2019). A geometrical analysis of global
    stability in trained feedback networks. *Neural Computation*, 31(6),
    1139-1182.

    Examples
    --------
    >>> import numpy as np
    >>> from rnnapprox.networks import FeedbackNetwork
    >>> net = FeedbackNetwork(np.zeros((2, 2)), feedback=[1.0, 0.0], readout=[0.0, 4.0])
    >>> net.weights
    array([[0., 2.],
           [0., 0.]])
    >>> net.activation
    'tanh'
    """

    bias = 0.0
    activation = "tanh"

    def __init__(self, bulk, feedback, readout=None, input_vector=None, tau=1.0):
        self.bulk = bulk
        self.feedback = feedback
        self.readout = readout
        self.input_vector = input_vector
        self.tau = tau

    @property
    def n_units(self):
        """Number of units (rows of ``bulk``)."""
        return np.shape(self.bulk)[0]

    def _checked_parts(self):
        bulk = _square(self.bulk, "bulk")
        n_units = bulk.shape[0]
        parts = {"bulk": bulk}
        for name in ("feedback", "readout", "input_vector"):
            value = getattr(self, name)
            if value is None and name != "feedback":
                parts[name] = np.zeros(n_units)
                continue
            array = _as_finite_array(value, name, ndim=(1,))
            if array.shape != (n_units,):
                raise ValueError(
                    f"{name} must have shape ({n_units},) like bulk; got {array.shape}."
                )
            parts[name] = array.copy()
        return parts

    @property
    def weights(self):
        parts = self._checked_parts()
        n_units = parts["bulk"].shape[0]
        return parts["bulk"] + np.outer(parts["feedback"], parts["readout"]) / n_units

    @property
    def input_weights(self):
        return self._checked_parts()["input_vector"][:, np.newaxis]

    def output(self, rates):
        """Readout ``z = n . rates / N`` of rate vectors.

        Parameters
        ----------
        rates : array-like of shape (n_units,) or (n_samples, n_units)
            ``tanh(x)``, e.g. the transformer's output.

        Returns
        -------
        z : float or ndarray of shape (n_samples,)
        """
        parts = self._checked_parts()
        return np.asarray(rates) @ parts["readout"] / parts["bulk"].shape[0]


def random_feedback_network(
    n_units=200,
    *,
    gain=0.8,
    input_correlation=0.5,
    input_scale=1.0,
    readout=None,
    tau=1.0,
    random_state=None,
):
    """Random feedback network: Gaussian bulk, feedback and input vectors.

    Draws ``chi_ij ~ N(0, g^2 / N)``, ``m_i ~ N(0, 1)`` and the input vector
    ``I = input_scale (rho m + sqrt(1 - rho^2) xi)`` with ``xi_i ~ N(0, 1)``
    independent of ``m``, so that ``I`` and ``m`` have correlation ``rho``
    (the overlap of the input with the feedback direction that decides the
    stability of trained solutions in Mastrogiuseppe & Ostojic, 2019).

    Parameters
    ----------
    n_units : int, default=200
        Number of units ``N``.
    gain : float, default=0.8
        Bulk gain ``g``; the bulk alone is chaotic for ``g > 1``.
    input_correlation : float, default=0.5
        Correlation ``rho`` in [-1, 1] between ``I`` and ``m``.
    input_scale : float, default=1.0
        Standard deviation of the entries of ``I``.
    readout : array-like of shape (n_units,), default=None
        Readout ``n``; ``None`` leaves the loop open (zero readout), ready for
        :func:`rnnapprox.feedback.train_feedback_readout`.
    tau : float, default=1.0
        Time constant.
    random_state : int, RandomState instance or None, default=None
        Seed.

    Returns
    -------
    network : FeedbackNetwork
        A :class:`RateNetwork` with ``weights = chi + outer(m, n) / N`` and
        one input feature (the input amplitude ``u``, drive ``I u``).

    Examples
    --------
    >>> import numpy as np
    >>> from rnnapprox.networks import random_feedback_network
    >>> net = random_feedback_network(1000, input_correlation=0.6, random_state=0)
    >>> round(float(np.corrcoef(net.feedback, net.input_vector)[0, 1]), 1)
    0.6
    """
    if not isinstance(n_units, numbers.Integral) or n_units < 1:
        raise ValueError(f"n_units must be a positive integer; got {n_units!r}.")
    if not np.isfinite(gain) or gain < 0:
        raise ValueError(f"gain must be a finite non-negative number; got {gain!r}.")
    if not -1.0 <= input_correlation <= 1.0:
        raise ValueError(f"input_correlation must be in [-1, 1]; got {input_correlation!r}.")
    rng = check_random_state(random_state)
    bulk = rng.standard_normal((n_units, n_units)) * (gain / np.sqrt(n_units))
    feedback = rng.standard_normal(n_units)
    independent = rng.standard_normal(n_units)
    input_vector = input_scale * (
        input_correlation * feedback + np.sqrt(1.0 - input_correlation**2) * independent
    )
    return FeedbackNetwork(bulk, feedback, readout=readout, input_vector=input_vector, tau=tau)
