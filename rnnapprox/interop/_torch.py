"""Import of PyTorch recurrent modules (``nn.RNN``, ``nn.RNNCell``, one-layer ``nn.GRU``, ``nn.GRUCell``)."""

import numpy as np

from ._common import ImportedNetwork, Readout, _block_network

__all__ = ["from_torch"]

def _array(tensor):
    return tensor.detach().to(device="cpu").double().numpy().copy()


def from_torch(module):
    """A network with the fixed points of a PyTorch ``nn.RNN`` or ``nn.GRU``.

    Parameters
    ----------
    module : torch.nn.RNN, torch.nn.RNNCell, torch.nn.GRU or torch.nn.GRUCell
        A unidirectional Elman RNN with ``nonlinearity="tanh"`` or
        ``"relu"``, any number of layers, with or without biases; or a
        one-layer unidirectional GRU, with or without biases, imported as a
        :class:`~rnnapprox.networks.GRUNetwork`. ``batch_first`` and
        ``dropout`` do not matter (a fixed point is a property of one sample
        in evaluation mode).

    Returns
    -------
    imported : ImportedNetwork
        ``network`` (a :class:`~rnnapprox.networks.RateNetwork` of
        ``num_layers * hidden_size`` units, layer by layer), ``readout`` (a
        :class:`Readout` of the last layer's units: the torch module's
        ``h_n[-1]``) and ``x0`` (zeros: torch's default ``h_0``).
        ``imported.pipeline(**params)`` chains the transformer and the readout.

    Raises
    ------
    NotImplementedError
        For an ``nn.GRU`` of several layers (the layer input of the ``n``
        gate is not gated by ``r``: a stacked GRU is not one GRUNetwork).
    ValueError
        For a bidirectional module, or an ``nn.RNN`` with an unknown nonlinearity.
    TypeError
        For ``nn.LSTM`` and any other module.

    See Also
    --------
    fixed_point_stability : Which fixed points the torch module reaches by running.

    Notes
    -----
    A layer of ``nn.RNN`` maps ``h_t = f(W_ih u + b_ih + W_hh h_{t-1} + b_hh)``.
    With a constant input its fixed point ``h* = f(W_hh h* + d)``,
    ``d = W_ih u + b_ih + b_hh``, is ``f(x*)`` for the fixed point ``x*`` of
    the rate network ``x = W f(x) + W_in u + b`` with ``W = W_hh``,
    ``W_in = W_ih`` and ``b = b_ih + b_hh`` (``x* = W_hh h* + d``). Stacked
    layers make one block lower-triangular network: layer ``k``'s ``W_hh``
    on the diagonal, its ``W_ih`` (acting on layer ``k - 1``'s rates) below
    it, so the network's rates are every layer's ``h*`` and the readout keeps
    the last layer's.

    The fixed points are the same; their stability is not. The rate network
    settles where every eigenvalue of ``-I + W D`` (``D = diag f'(x*)``) has a
    negative real part, the RNN iterated in time where every eigenvalue of
    ``D W`` lies inside the unit circle. A row can settle here and oscillate
    in torch (a single tanh unit with ``W_hh = -3`` near zero): check with
    :func:`fixed_point_stability`.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from rnnapprox.interop import from_torch
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> rnn = torch.nn.RNN(input_size=3, hidden_size=4, num_layers=2).double()
    >>> imported = from_torch(rnn)
    >>> imported.network.weights.shape, imported.network.input_weights.shape
    ((8, 8), (8, 3))
    >>> U = np.random.RandomState(0).uniform(-1, 1, size=(2, 3))
    >>> pipe = imported.pipeline(tol=1e-12).fit(U)
    >>> R = pipe.transform(U)  # the last layer's fixed-point rates
    >>> with torch.no_grad():
    ...     _, h_n = rnn(torch.from_numpy(U)[None].repeat(500, 1, 1))
    >>> bool(np.allclose(R, h_n[-1].numpy(), atol=1e-9))
    True
    """
    try:
        from torch import nn
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("from_torch needs PyTorch: pip install 'rnnapprox[torch]'.") from error
    from rnnapprox.networks import RateNetwork

    if isinstance(module, (nn.GRU, nn.GRUCell)):
        return _from_torch_gru(module, nn)
    if isinstance(module, (nn.LSTM, nn.LSTMCell)):
        raise TypeError(
            f"{type(module).__name__} is not supported: an LSTM's fixed point (c* = i g / (1 - f), "
            "h* = o tanh(c*), all gates functions of h*) is not a rate network's and would need a network "
            "family of its own. Supported: torch.nn.RNN and torch.nn.RNNCell."
        )
    if isinstance(module, nn.RNN):
        if module.bidirectional:
            raise ValueError(
                "Bidirectional RNNs have no fixed point of their own: the backward direction runs over a "
                "sequence's future. Import a unidirectional nn.RNN (bidirectional=False)."
            )
        n_layers, nonlinearity = module.num_layers, module.nonlinearity
        names = [
            (f"weight_hh_l{k}", f"weight_ih_l{k}", f"bias_ih_l{k}", f"bias_hh_l{k}") for k in range(n_layers)
        ]
    elif isinstance(module, nn.RNNCell):
        nonlinearity = module.nonlinearity
        names = [("weight_hh", "weight_ih", "bias_ih", "bias_hh")]
    else:
        raise TypeError(
            f"from_torch supports torch.nn.RNN and torch.nn.RNNCell; got {type(module).__name__}."
        )
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu'; the module has {nonlinearity!r}.")

    layers = []
    for hh, ih, bias_ih, bias_hh in names:
        recurrent, inputs = _array(getattr(module, hh)), _array(getattr(module, ih))
        bias = np.zeros(recurrent.shape[0])
        for name in (bias_ih, bias_hh):
            if getattr(module, name, None) is not None:
                bias = bias + _array(getattr(module, name))
        layers.append((recurrent, inputs, bias))
    n_features = layers[0][1].shape[1]
    weights, input_weights, bias, edges = _block_network(layers, n_features)
    network = RateNetwork(
        weights=weights, input_weights=input_weights, bias=bias, tau=1.0, activation=nonlinearity
    )
    readout = Readout(units=np.arange(edges[-2], edges[-1]))
    return ImportedNetwork(network, readout, np.zeros(weights.shape[0]))


def _from_torch_gru(module, nn):
    """A one-layer ``nn.GRU`` or an ``nn.GRUCell`` as a :class:`~rnnapprox.networks.GRUNetwork`.

    The gates are stacked in PyTorch's order ``r, z, n`` in both frameworks, so
    the weights are copied as they are; the state and the response are ``h``.
    """
    from rnnapprox.networks import GRUNetwork

    suffix = ""
    if isinstance(module, nn.GRU):
        if module.bidirectional:
            raise ValueError(
                "Bidirectional GRUs have no fixed point of their own: the backward direction runs over a "
                "sequence's future. Import a unidirectional nn.GRU (bidirectional=False)."
            )
        if module.num_layers != 1:
            raise NotImplementedError(
                f"nn.GRU with num_layers={module.num_layers} is not supported: a layer's input enters its "
                "n gate ungated by r, so a stack of GRUs is not one GRUNetwork. Import each layer as a "
                "one-layer nn.GRU, or use num_layers=1."
            )
        suffix = "_l0"
    hidden_weights = _array(getattr(module, "weight_hh" + suffix))
    input_weights = _array(getattr(module, "weight_ih" + suffix))
    biases = {}
    for name in ("ih", "hh"):
        tensor = getattr(module, f"bias_{name}{suffix}", None)
        biases[name] = 0.0 if tensor is None else _array(tensor)
    network = GRUNetwork(hidden_weights, input_weights, hidden_bias=biases["hh"], input_bias=biases["ih"])
    n_units = hidden_weights.shape[1]
    return ImportedNetwork(network, Readout(units=np.arange(n_units)), np.zeros(n_units))
