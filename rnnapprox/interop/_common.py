"""What the importers share: the result, the readout transformer, layered networks and stability."""

from typing import NamedTuple

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import Bunch
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["ImportedNetwork", "Readout", "fixed_point_stability"]


class Readout(TransformerMixin, BaseEstimator):
    """Select units of a network's response and optionally map them linearly.

    The step that follows a :class:`~rnnapprox.RecurrentFixedPointTransformer`
    in a pipeline when only some units are the answer: the last layer of an
    imported stacked ``torch.nn.RNN``, or a Rockpool ``Linear`` readout after
    the last ``Rate`` module. ``fit`` learns nothing: it checks the sizes.

    Parameters
    ----------
    units : array-like of int, slice or None, default=None
        Columns of the input kept (``None``: all), in the given order.
    weights : array-like of shape (n_selected, n_outputs), default=None
        Linear map applied to the kept columns from the right (the Rockpool
        and scikit-learn convention ``R @ weights``); ``None`` keeps them as
        they are.
    bias : float or array-like of shape (n_outputs,), default=None
        Added after ``weights``; ``None`` adds nothing.

    Attributes
    ----------
    n_features_in_ : int
        Number of units of the response seen at :term:`fit`.

    units_ : ndarray of int
        The kept columns.

    Examples
    --------
    >>> import numpy as np
    >>> from rnnapprox.interop import Readout
    >>> R = np.arange(8.0).reshape(2, 4)
    >>> Readout(units=slice(2, 4)).fit_transform(R)
    array([[2., 3.],
           [6., 7.]])
    >>> Readout(units=[0], weights=[[1.0, -1.0]], bias=0.5).fit_transform(R)
    array([[ 0.5,  0.5],
           [ 4.5, -3.5]])
    """

    def __init__(self, units=None, weights=None, bias=None):
        self.units = units
        self.weights = weights
        self.bias = bias

    def fit(self, X, y=None):
        """Check the sizes against the response ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_units)
            Responses of the network.
        y : None
            Ignored.

        Returns
        -------
        self : Readout
            The fitted readout.
        """
        X = validate_data(self, X, reset=True, dtype=np.float64, ensure_all_finite="allow-nan")
        n_units = X.shape[1]
        if self.units is None:
            units = np.arange(n_units)
        elif isinstance(self.units, slice):
            units = np.arange(n_units)[self.units]
        else:
            units = np.asarray(self.units)
            if units.ndim != 1 or not np.issubdtype(units.dtype, np.integer):
                raise ValueError(f"units must be a 1-D array of integers or a slice; got {self.units!r}.")
            if units.size and (units.min() < -n_units or units.max() >= n_units):
                raise ValueError(f"units must index the {n_units} columns of the response; got {units}.")
            units = np.arange(n_units)[units]
        if units.size == 0:
            raise ValueError(f"units selects no column of the {n_units}-unit response.")
        if self.weights is not None:
            weights = np.asarray(self.weights, dtype=np.float64)
            if weights.ndim != 2 or weights.shape[0] != units.size:
                raise ValueError(
                    f"weights must have shape (n_selected, n_outputs) with n_selected={units.size}; "
                    f"got {weights.shape}."
                )
        self.units_ = units
        return self

    def transform(self, X):
        """Kept columns of ``X``, mapped by ``weights`` and ``bias`` when given.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_units)
            Responses of the network.

        Returns
        -------
        R : ndarray of shape (n_samples, n_outputs)
            The readout.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64, ensure_all_finite="allow-nan")
        R = X[:, self.units_]
        if self.weights is not None:
            R = R @ np.asarray(self.weights, dtype=np.float64)
        if self.bias is not None:
            R = R + np.asarray(self.bias, dtype=np.float64)
        return R

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


class ImportedNetwork(NamedTuple):
    """A network imported from another framework, and how to read its answer.

    Unpacks as ``network, readout, x0 = imported``.

    Attributes
    ----------
    network : RateNetwork
        The rate network whose fixed points are the imported model's.
    readout : Readout
        Turns the network's rates into the imported model's output (for
        example the last layer's units of a stacked RNN).
    x0 : ndarray of shape (n_units,)
        The state the imported model starts from (its zero state), to give
        :class:`~rnnapprox.RecurrentFixedPointTransformer` as ``x0`` so that
        both reach the same attractor.
    """

    network: object
    readout: Readout
    x0: np.ndarray

    def pipeline(self, **transformer_params):
        """A pipeline: the fixed-point transformer on the network, then the readout.

        Parameters
        ----------
        **transformer_params
            Passed to :class:`~rnnapprox.RecurrentFixedPointTransformer`
            (``dt``, ``tol``, ``method``...); ``x0`` defaults to this import's.

        Returns
        -------
        pipeline : sklearn.pipeline.Pipeline
            Steps ``"fixed_point"`` and ``"readout"``.
        """
        from sklearn.pipeline import Pipeline

        from rnnapprox import RecurrentFixedPointTransformer

        transformer_params.setdefault("x0", self.x0)
        return Pipeline(
            [
                ("fixed_point", RecurrentFixedPointTransformer(network=self.network, **transformer_params)),
                ("readout", self.readout),
            ]
        )


def _block_network(layers, n_features, scale=1.0):
    """Assemble stacked layers into one block lower-triangular rate network's arrays.

    ``layers`` is a list of ``(recurrent, input, bias)`` with ``recurrent`` of
    shape (n_k, n_k) acting on layer k's own rates, ``input`` of shape (n_k,
    n_{k-1}) acting on the previous layer's rates (on the network's input for
    k = 0), ``bias`` (n_k,). Every block is multiplied by ``scale`` (2 maps a
    logistic of ``2 y`` onto a logistic of the state ``z = 2 y``).
    """
    sizes = [layer[0].shape[0] for layer in layers]
    edges = np.concatenate([[0], np.cumsum(sizes)])
    n_units = int(edges[-1])
    weights = np.zeros((n_units, n_units))
    input_weights = np.zeros((n_units, n_features))
    bias = np.zeros(n_units)
    for k, (recurrent, inputs, layer_bias) in enumerate(layers):
        rows = slice(edges[k], edges[k + 1])
        weights[rows, rows] = scale * recurrent
        if k == 0:
            input_weights[rows] = scale * inputs
        else:
            weights[rows, edges[k - 1] : edges[k]] = scale * inputs
        bias[rows] = scale * layer_bias
    return weights, input_weights, bias, edges


def fixed_point_stability(network, result, X=None):
    """Per row: is the fixed point stable for the rate dynamics, and for the discrete RNN map?

    A fixed point ``x*`` of ``x = W f(x) + d`` is, with ``D = diag(f'(x*))``,

    - stable for the continuous rate dynamics ``tau dx/dt = -x + W f(x) + d``
      (what :class:`~rnnapprox.RecurrentFixedPointTransformer` integrates)
      when every eigenvalue of ``diag(1/tau) (-I + W D)`` has a negative real
      part;
    - stable for the discrete map ``h <- f(W_hh h + d)`` iterated by a
      ``torch.nn.RNN`` (``h = f(x)``) when every eigenvalue of ``D W`` has
      modulus below 1.

    The two differ: a row can settle here and oscillate (or diverge) in torch,
    as for ``W = -3`` near zero. Such rows are flagged in ``rnn_unstable``:
    their fixed point is the torch model's fixed point, but not what the torch
    model reaches by running. For a stacked RNN imported with
    :func:`from_torch` the block lower-triangular ``W`` gives the spectrum of
    the stacked map (the union of each layer's ``D_k W_hh_k``).

    For a :class:`~rnnapprox.networks.GRUNetwork` (``nn.GRU``) the continuous
    dynamics are ``dh/dt = (1 - z) (n - h)`` with Jacobian ``J`` (which
    depends on the input: pass ``X``), and the GRU cell's update is their
    Euler step with ``dt = 1``, whose Jacobian is ``I + J``:
    ``spectral_radius`` is then that of ``I + J``.

    Parameters
    ----------
    network : RateNetwork or GRUNetwork
        The network, typically ``from_torch(module).network``.
    result : FixedPointResult or array-like of shape (n_samples, n_units)
        The result of ``solve`` (its ``states``; rows that did not converge
        are reported unstable with NaN spectra), or fixed-point states.
    X : array-like of shape (n_samples, n_features), default=None
        The inputs of the rows; needed for a GRU network only.

    Returns
    -------
    stability : sklearn.utils.Bunch
        One entry per row: ``continuous_stable`` and ``discrete_stable``
        (bool), ``leading_eigenvalue`` (complex, of largest real part, of the
        continuous Jacobian, in units of 1/time; of a conjugate pair, the one
        with imaginary part >= 0, as in ``solve(X, stability=True)``), ``spectral_radius`` (of
        ``D W``), and ``rnn_unstable`` (bool: stable here, not for the
        discrete map).

    Examples
    --------
    >>> import numpy as np
    >>> from rnnapprox import RecurrentFixedPointTransformer
    >>> from rnnapprox.networks import RateNetwork
    >>> from rnnapprox.interop import fixed_point_stability
    >>> net = RateNetwork(weights=[[-3.0]], activation="tanh")
    >>> U = np.array([[0.0], [6.0]])
    >>> result = RecurrentFixedPointTransformer(network=net, tol=1e-10).fit(U).solve(U)
    >>> s = fixed_point_stability(net, result)
    >>> s.continuous_stable, s.discrete_stable, s.rnn_unstable
    (array([ True,  True]), array([False,  True]), array([ True, False]))
    """
    from rnnapprox import RecurrentFixedPointTransformer
    from rnnapprox._activations import get_activation
    from rnnapprox._families import RateFamily
    from rnnapprox._stability import leading_eigenvalue
    from rnnapprox.networks import GRUNetwork, RateNetwork

    states = getattr(result, "states", result)
    states = np.asarray(states, dtype=np.float64)
    converged = np.asarray(getattr(result, "converged", np.all(np.isfinite(states), axis=1)), dtype=bool)
    n_rows = states.shape[0] if states.ndim == 2 else 0
    leading = np.full(n_rows, np.nan + 1j * np.nan)
    radius = np.full(n_rows, np.nan)
    if isinstance(network, GRUNetwork):
        if X is None:
            raise ValueError("A GRU's Jacobian depends on the input: pass the rows' inputs as X.")
        rnn = RecurrentFixedPointTransformer(network=network).fit(X)
        rows = np.flatnonzero(converged)
        if states.ndim != 2 or states.shape[1] != rnn.n_state_:
            raise ValueError(f"states must have shape (n_samples, {rnn.n_state_}) for this network; "
                             f"got {states.shape}.")
        family = rnn._family()
        drives = family.drive(validate_data(rnn, X, dtype=np.float64, reset=False)[rows])
        for i, state, drive in zip(rows, states[rows], drives):
            leading[i] = leading_eigenvalue(family.jacobian(state, drive))
        # The cell's update h <- h + (1 - z)(n - h) is the Euler map with dt = 1.
        radius[rows] = family.euler_map_radius(states[rows], drives, dt=1.0)
    else:
        if not isinstance(network, RateNetwork):
            raise TypeError(f"fixed_point_stability takes a RateNetwork or a GRUNetwork; got {network!r}.")
        input_weights = getattr(network, "input_weights", None)
        n_features = np.shape(network.weights)[0] if input_weights is None else np.shape(input_weights)[1]
        arrays = network.validated_arrays(n_features)
        family = RateFamily(**{name: arrays[name] for name in RateFamily.attributes})
        weights = family.weights
        if states.ndim != 2 or states.shape[1] != weights.shape[0]:
            raise ValueError(
                f"states must have shape (n_samples, {weights.shape[0]}) for this network; "
                f"got {states.shape}."
            )
        slope = get_activation(family.activation).slope
        for i in np.flatnonzero(converged):
            leading[i] = leading_eigenvalue(family.jacobian(states[i], None))
            radius[i] = np.abs(np.linalg.eigvals(slope(states[i])[:, np.newaxis] * weights)).max()  # D W
    continuous = converged & (leading.real < 0)
    discrete = converged & (radius < 1)
    return Bunch(
        continuous_stable=continuous,
        discrete_stable=discrete,
        leading_eigenvalue=leading,
        spectral_radius=radius,
        rnn_unstable=continuous & ~discrete,
    )
