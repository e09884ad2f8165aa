"""Import of Rockpool rate networks (``Rate`` modules, with ``Linear`` input weights)."""

import warnings

import numpy as np

from ._common import ImportedNetwork, Readout, _block_network

__all__ = ["from_rockpool"]


def _numpy(value, shape, name):
    array = np.asarray(value, dtype=np.float64)
    try:
        return np.broadcast_to(array, shape).copy()
    except ValueError:
        raise ValueError(f"{name} of shape {array.shape} does not fit shape {shape}.") from None


def _rate_activation(module):
    """The package's activation and state scale for a Rate module's ``act_fn``."""
    from rockpool.nn.modules.native import rate as native_rate

    act_fn = module.act_fn
    table = {
        native_rate.H_ReLU: ("relu", 1.0),
        native_rate.H_tanh: ("tanh", 1.0),
        native_rate.H_sigmoid: ("sigmoid", 2.0),  # (tanh(y) + 1) / 2 = logistic(2 y)
    }
    for function, mapped in table.items():
        if act_fn is function:
            return mapped
    raise ValueError(
        f"Rate module {module.name!r} has activation_func {act_fn!r}; only Rockpool's 'relu', 'tanh' and "
        "'sigmoid' have a rate-network counterpart."
    )


def from_rockpool(module):
    """A rate network with the fixed points of a Rockpool rate network.

    Parameters
    ----------
    module : rockpool Rate or Sequential
        A ``rockpool.nn.modules.Rate`` (its input enters with identity
        weights), or a ``Sequential`` of ``Linear`` and ``Rate`` modules: each
        ``Rate`` takes the output of the ``Linear`` before it (or the
        previous ``Rate``'s rates, or the input), and a ``Linear`` after the
        last ``Rate`` is a readout. Consecutive ``Linear`` modules are
        multiplied together. All ``Rate`` modules must share one activation
        (``"relu"``, ``"tanh"`` or ``"sigmoid"``).

    Returns
    -------
    imported : ImportedNetwork
        ``network`` (a :class:`~rnnapprox.networks.RateNetwork` of all the
        ``Rate`` units, in order), ``readout`` (the last ``Rate``'s units, or
        the final ``Linear`` applied to them: what the module outputs) and
        ``x0`` (Rockpool's zero state in the network's coordinates).

    Raises
    ------
    TypeError
        For modules other than the numpy ``Linear`` and ``Rate`` (the JAX and
        torch variants included), or no ``Rate`` at all.
    ValueError
        For a custom ``activation_func``, mixed activations, or sizes that do
        not chain.

    Warns
    -----
    UserWarning
        When a ``Rate`` module has ``noise_std > 0``: the fixed points are
        those of the noiseless dynamics.

    Notes
    -----
    Rockpool's ``Rate`` integrates
    ``x += dt / tau (-x + i + bias + H(x - threshold) @ w_rec)`` with
    ``tau`` clipped below at ``10 dt``, and outputs ``H(x - threshold)``;
    ``i = u @ weight + linear_bias`` comes from a preceding ``Linear``. With
    ``y = x - threshold`` this is the rate network
    ``tau dy/dt = -y + W H(y) + W_in u + b`` with ``W = w_rec.T``,
    ``W_in = weight.T`` and ``b = bias - threshold + linear_bias``, whose rates
    ``H(y)`` are Rockpool's outputs. Rockpool's relu and tanh are the
    package's; its sigmoid ``(tanh(y) + 1) / 2`` is the logistic of ``2 y``,
    so the state is doubled: ``z = 2 y`` has
    ``tau dz/dt = -z + 2 W logistic(z) + 2 W_in u + 2 b``, a
    ``RateNetwork(activation="sigmoid")`` with the same rates. Stacked
    ``Rate`` modules make one block lower-triangular network. The network's
    ``tau`` is Rockpool's (clipped) ``tau`` divided by its smallest entry: the
    time unit is the fastest unit's time constant, so the transformer's
    default ``dt=0.1`` suits it, and the dynamics are Rockpool's up to that
    change of time unit (fixed points do not depend on ``tau``).

    Examples
    --------
    >>> import numpy as np
    >>> from rockpool.nn.modules import Linear, Rate
    >>> from rockpool.nn.combinators import Sequential
    >>> from rnnapprox.interop import from_rockpool
    >>> module = Sequential(
    ...     Linear((2, 3), weight=np.ones((2, 3))),
    ...     Rate(3, has_rec=True, w_rec=0.1 * np.eye(3), activation_func="tanh", bias=0.1),
    ... )
    >>> network, readout, x0 = from_rockpool(module)
    >>> network.activation, network.weights.shape, network.input_weights.shape
    ('tanh', (3, 3), (3, 2))
    >>> U = np.array([[0.5, -0.2]])
    >>> pipe = from_rockpool(module).pipeline(tol=1e-10).fit(U)
    >>> pipe.transform(U).round(4)
    array([[0.4149, 0.4149, 0.4149]])
    """
    try:
        from rockpool.nn.combinators.sequential import SequentialMixin
        from rockpool.nn.modules.native.linear import Linear
        from rockpool.nn.modules.native.rate import Rate
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("from_rockpool needs Rockpool: pip install 'rnnapprox[rockpool]'.") from error
    from rnnapprox.networks import RateNetwork

    if isinstance(module, Rate):
        modules = [module]
    elif isinstance(module, SequentialMixin):
        modules = list(module.modules().values())
    else:
        raise TypeError(
            "from_rockpool takes Rockpool's numpy Rate module or a Sequential of numpy Linear and Rate "
            f"modules; got {type(module).__name__}."
        )
    n_features = None
    width = None  # size of the signal flowing at this point of the chain
    pending = None  # (weight, bias) of Linear modules not yet consumed, row convention
    layers, activations, taus, thresholds = [], set(), [], []
    for sub in modules:
        if isinstance(sub, Linear):
            weight = np.array(sub.weight, dtype=np.float64)  # a copy: the readout may keep it
            bias = np.asarray(sub.bias, dtype=np.float64) * np.ones(weight.shape[1])
            if width is None:
                n_features = width = weight.shape[0]
            if weight.shape[0] != width:
                raise ValueError(
                    f"Linear module {sub.name!r} takes {weight.shape[0]} inputs but receives {width}."
                )
            if pending is not None:
                weight, bias = pending[0] @ weight, pending[1] @ weight + bias
            pending = (weight, bias)
            width = weight.shape[1]
        elif isinstance(sub, Rate):
            n = int(sub.size_out)
            if width is None:
                n_features = width = n
            if width != n:
                raise ValueError(f"Rate module {sub.name!r} has {n} units but receives {width} inputs.")
            activation, scale = _rate_activation(sub)
            activations.add((activation, scale))
            if float(sub.noise_std) > 0:
                warnings.warn(
                    f"Rate module {sub.name!r} has noise_std={float(sub.noise_std)}; the imported network's "
                    "fixed points are those of the noiseless dynamics.",
                    UserWarning,
                    stacklevel=2,
                )
            w_rec = getattr(sub, "w_rec", None)
            recurrent = np.zeros((n, n)) if w_rec is None else _numpy(w_rec, (n, n), "w_rec").T
            inputs, linear_bias = (np.eye(n), np.zeros(n)) if pending is None else (pending[0].T, pending[1])
            threshold = _numpy(sub.threshold, (n,), "threshold")
            bias = _numpy(sub.bias, (n,), "bias") - threshold + linear_bias
            layers.append((recurrent, inputs, bias))
            dt = float(sub.dt)
            taus.append(np.maximum(_numpy(sub.tau, (n,), "tau"), 10 * dt))
            thresholds.append(threshold)
            pending = None
        else:
            raise TypeError(
                f"from_rockpool supports Rockpool's numpy Linear and Rate modules; got "
                f"{type(sub).__name__} ({getattr(sub, 'name', '')!r})."
            )
    if not layers:
        raise TypeError("from_rockpool needs at least one Rate module; the Sequential has none.")
    if len(activations) > 1:
        raise ValueError(
            f"All Rate modules must share one activation to make one rate network; got "
            f"{sorted(a for a, _ in activations)}."
        )
    ((activation, scale),) = activations
    tau = np.concatenate(taus)
    weights, input_weights, bias, edges = _block_network(layers, n_features, scale=scale)
    network = RateNetwork(
        weights=weights,
        input_weights=input_weights,
        bias=bias,
        tau=tau / tau.min(),
        activation=activation,
    )
    last = np.arange(edges[-2], edges[-1])
    if pending is None:
        readout = Readout(units=last)
    else:  # a Linear after the last Rate: Rockpool's output is its map of the rates
        readout = Readout(units=last, weights=pending[0], bias=pending[1])
    x0 = -scale * np.concatenate(thresholds)  # Rockpool starts at x = 0, that is y = -threshold
    return ImportedNetwork(network, readout, x0)
