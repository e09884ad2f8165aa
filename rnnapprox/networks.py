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

__all__ = [
    "RateNetwork",
    "soft_wta",
    "random_ei_network",
    "random_tanh_network",
]

ACTIVATIONS = ("relu", "tanh")


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
        raise ValueError(f"{name} must have {' or '.join(map(str, ndim))} dimensions; got shape {array.shape}.")
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
    activation : {"relu", "tanh"}, default="relu"
        Transfer function ``f``: ``"relu"`` gives linear-threshold units.

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
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}; got {self.activation!r}.")
        weights = _as_finite_array(self.weights, "weights", ndim=(2,))
        n_units = weights.shape[0]
        if weights.shape != (n_units, n_units):
            raise ValueError(f"weights must be a square matrix; got shape {weights.shape}.")
        input_weights = None
        if self.input_weights is not None:
            input_weights = _as_finite_array(self.input_weights, "input_weights", ndim=(2,))
            if input_weights.shape != (n_units, n_features):
                raise ValueError(
                    f"input_weights must have shape (n_units, n_features) = ({n_units}, "
                    f"{n_features}); got {input_weights.shape}."
                )
            input_weights = input_weights.copy()
        elif n_features == n_units:
            input_weights = np.eye(n_units)
        return {
            "weights": weights.copy(),
            "input_weights": input_weights,
            "bias": _per_unit(self.bias, "bias", n_units),
            "tau": _per_unit(self.tau, "tau", n_units, positive=True),
            "activation": self.activation,
        }


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
    activation : {"relu", "tanh"}, default="relu"
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
