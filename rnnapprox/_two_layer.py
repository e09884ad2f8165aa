"""Arithmetic of the two-layer network: activations, parameters, losses and gradients.

Arrays in, arrays out; the estimator (``_feedforward.py``) owns validation,
scaling and the optimiser loop. Two objectives of the same loss:

* :func:`joint_loss_and_gradient`, over all weights ``(W1, b1, W2, b2)``;
* :class:`ProjectedLoss`, over the hidden layer ``(W1, b1)`` alone, the output
  layer being the exact minimiser of the loss for the given hidden layer
  (variable projection, Golub & Pereyra, 1973), for linear outputs.
"""

import numpy as np
import scipy.linalg


def activate(name, z):
    """Apply activation ``name`` to the pre-activations ``z`` in place."""
    if name == "relu":
        np.maximum(z, 0.0, out=z)
    elif name == "tanh":
        np.tanh(z, out=z)
    return z


def activation_slope(name, activated, out):
    """Derivative of activation ``name`` where its output is ``activated``, into ``out``.

    Returns None for the identity, whose slope is 1 everywhere.
    """
    if name == "relu":
        return np.greater(activated, 0.0, out=out)
    if name == "tanh":
        np.multiply(activated, activated, out=out)
        return np.subtract(1.0, out, out=out)
    return None


class Buffers(dict):
    """Scratch arrays reused across loss evaluations of the same shapes.

    Fresh multi-megabyte arrays cost page faults on every call; reusing them
    halves the cost of an L-BFGS iteration on a few thousand rows.
    """

    def __init__(self, dtype=np.float64):
        super().__init__()
        self.dtype = dtype

    def get_array(self, name, shape):
        key = (name, shape)
        if key not in self:
            self[key] = np.empty(shape, dtype=self.dtype)
        return self[key]


def pack(coefs, intercepts):
    """Flatten ``[W1, W2]`` and ``[b1, b2]`` into one vector ``[W1, b1, W2, b2]``."""
    return np.concatenate([coefs[0].ravel(), intercepts[0], coefs[1].ravel(), intercepts[1]])


def unpack(params, n_features, n_hidden, n_outputs):
    """Views ``(W1, b1, W2, b2)`` into the flat vector made by :func:`pack`."""
    sizes = [n_features * n_hidden, n_hidden, n_hidden * n_outputs, n_outputs]
    w1, b1, w2, b2 = np.split(params, np.cumsum(sizes)[:-1])
    return w1.reshape(n_features, n_hidden), b1, w2.reshape(n_hidden, n_outputs), b2


def joint_loss_and_gradient(
    params, X, Y, row_weights, l2, n_hidden, activation, output_activation, buffers=None
):
    """Regularised squared error of the two-layer network and its gradient.

    ``loss = 1/(2 q) sum_i row_weights[i] ||out(act(X_i W1 + b1) W2 + b2) - Y_i||^2
    + l2/2 (||W1||^2 + ||W2||^2)`` with ``q`` the number of outputs, where
    ``params`` is the flat vector of :func:`pack` and ``row_weights`` are
    normalised sample weights. ``buffers`` (a :class:`Buffers`) lets repeated
    calls reuse their scratch arrays.
    """
    buffers = Buffers(X.dtype) if buffers is None else buffers
    n_samples, n_outputs = Y.shape
    w1, b1, w2, b2 = unpack(params.astype(X.dtype, copy=False), X.shape[1], n_hidden, n_outputs)
    hidden_shape, output_shape = (n_samples, n_hidden), (n_samples, n_outputs)

    hidden = np.matmul(X, w1, out=buffers.get_array("hidden", hidden_shape))
    hidden += b1
    activate(activation, hidden)
    output = np.matmul(hidden, w2, out=buffers.get_array("output", output_shape))
    output += b2
    activate(output_activation, output)
    output_slope = activation_slope(
        output_activation, output, buffers.get_array("output_slope", output_shape)
    )

    error = np.subtract(output, Y, out=output)
    delta_output = np.multiply(
        error,
        (row_weights / n_outputs)[:, np.newaxis],
        out=buffers.get_array("delta_output", output_shape),
    )
    # In float32 the loss is rounded to about 1e-7 relative, well below the decreases the
    # line search compares until a fit is close to its end (where early stopping ends it).
    loss = 0.5 * float(np.vdot(delta_output, error)) + 0.5 * l2 * float(
        np.vdot(w1, w1) + np.vdot(w2, w2)
    )
    if output_slope is not None:
        delta_output *= output_slope
    delta_hidden = np.matmul(
        delta_output, w2.T, out=buffers.get_array("delta_hidden", hidden_shape)
    )
    delta_hidden *= activation_slope(
        activation, hidden, buffers.get_array("hidden_slope", hidden_shape)
    )

    gradient = pack(
        [X.T @ delta_hidden + l2 * w1, hidden.T @ delta_output + l2 * w2],
        [delta_hidden.sum(axis=0), delta_output.sum(axis=0)],
    )
    return loss, gradient.astype(np.float64, copy=False)


def unpack_hidden(params, n_features, n_hidden):
    """Views ``(W1, b1)`` into the first ``(n_features + 1) * n_hidden`` entries of ``params``."""
    w1 = params[: n_features * n_hidden].reshape(n_features, n_hidden)
    return w1, params[n_features * n_hidden : (n_features + 1) * n_hidden]


def _penalised_gram(features, weighted, ridge):
    """``[h, 1]^T diag(w) [h, 1] + ridge diag(1, ..., 1, 0)`` in float64 (the bias is not penalised).

    ``weighted`` is ``diag(w) [h, 1]``.
    """
    gram = (features.T @ weighted).astype(np.float64)
    n_weights = gram.shape[0] - 1
    gram[np.arange(n_weights), np.arange(n_weights)] += ridge
    return gram


class ProjectedLoss:
    """The loss of :func:`joint_loss_and_gradient` for an identity output, as a function of the hidden layer.

    For hidden weights ``(W1, b1)``, the output layer ``(W2, b2)`` minimising

    ``L = 1/(2 q) sum_i w_i ||h_i W2 + b2 - Y_i||^2 + l2/2 (||W1||^2 + ||W2||^2)``,
    ``h = act(X W1 + b1)``,

    is a ridge regression of ``Y`` on ``[h, 1]``: the solution of
    ``([h, 1]^T diag(w) [h, 1] + q l2 diag(1, ..., 1, 0)) [W2; b2] = [h, 1]^T diag(w) Y``.
    Calling the object with the flat hidden weights returns ``L`` at that
    output layer and the gradient of this reduced loss; since the output layer
    is a stationary point of ``L``, that gradient is the partial gradient in
    ``(W1, b1)`` with the output layer held (Golub & Pereyra, 1973), one
    backward pass. Minimising the reduced loss (with L-BFGS) is variable
    projection: the output layer is always optimal, so the optimiser only
    searches the ``(n_features + 1) * n_hidden`` hidden weights and converges in
    far fewer iterations than on all weights at once.

    Parameters
    ----------
    X, Y : ndarray of shape (n_samples, n_features), (n_samples, n_outputs)
        Scaled inputs and targets, in the working precision.
    row_weights : ndarray of shape (n_samples,)
        Normalised row weights (summing to 1).
    l2 : float
        Penalty ``l2`` above.
    n_hidden : int
        Hidden units.
    activation : {"relu", "tanh"}
        Hidden activation.
    """

    def __init__(self, X, Y, row_weights, l2, n_hidden, activation):
        self.X, self.Y, self.row_weights = X, Y, row_weights
        self.l2, self.n_hidden, self.activation = l2, n_hidden, activation
        self.buffers = Buffers(X.dtype)
        self._last = (None, None)  # (hidden params, output layer) of the last evaluation

    def _features(self, params):
        """``[h, 1]`` and the hidden weights in the working precision."""
        n_samples = self.X.shape[0]
        w1, b1 = unpack_hidden(params.astype(self.X.dtype, copy=False), self.X.shape[1], self.n_hidden)
        features = self.buffers.get_array("features", (n_samples, self.n_hidden + 1))
        hidden = features[:, : self.n_hidden]
        np.matmul(self.X, w1, out=hidden)
        hidden += b1
        activate(self.activation, hidden)
        features[:, -1] = 1.0
        return features, w1

    def _solve_output_layer(self, features):
        """Ridge solution ``[W2; b2]`` (float64) for the features ``[h, 1]``."""
        weighted = np.multiply(
            features,
            self.row_weights[:, np.newaxis],
            out=self.buffers.get_array("weighted", features.shape),
        )
        rhs = (weighted.T @ self.Y).astype(np.float64)
        ridge = self.Y.shape[1] * self.l2
        gram = _penalised_gram(features, weighted, ridge)
        try:
            return scipy.linalg.cho_solve(scipy.linalg.cho_factor(gram), rhs)
        except np.linalg.LinAlgError:
            pass
        if features.dtype != np.float64:
            # A float32 Gram matrix rounds away a ridge below float32 resolution
            # (alpha's default is): form it in float64 and try again.
            features = features.astype(np.float64)
            weighted = features * self.row_weights.astype(np.float64)[:, np.newaxis]
            gram = _penalised_gram(features, weighted, ridge)
            try:
                return scipy.linalg.cho_solve(scipy.linalg.cho_factor(gram), rhs)
            except np.linalg.LinAlgError:
                pass
        # Features collinear to working precision (dead or duplicate units, no
        # penalty): the least-squares solution of smallest norm.
        return scipy.linalg.lstsq(gram, rhs)[0]

    def output_layer(self, params):
        """``(W2, b2)`` (float64) optimal for the hidden weights ``params``."""
        last_params, last_output = self._last
        if last_params is None or not np.array_equal(last_params, params):
            last_output = self._solve_output_layer(self._features(params)[0])
        return last_output[:-1], last_output[-1]

    def __call__(self, params):
        features, w1 = self._features(params)
        output_layer = self._solve_output_layer(features)
        self._last = (params.copy(), output_layer)
        readout = output_layer.astype(self.X.dtype)
        n_outputs = self.Y.shape[1]
        error = np.matmul(features, readout, out=self.buffers.get_array("error", self.Y.shape))
        error -= self.Y
        delta = np.multiply(
            error,
            (self.row_weights / n_outputs)[:, np.newaxis],
            out=self.buffers.get_array("delta", self.Y.shape),
        )
        w2 = output_layer[:-1]
        loss = 0.5 * float(np.vdot(delta, error)) + 0.5 * self.l2 * (
            float(np.vdot(w1, w1)) + float(np.vdot(w2, w2))
        )
        hidden = features[:, : self.n_hidden]
        delta_hidden = np.matmul(
            delta, readout[:-1].T, out=self.buffers.get_array("delta_hidden", hidden.shape)
        )
        delta_hidden *= activation_slope(
            self.activation, hidden, self.buffers.get_array("slope", hidden.shape)
        )
        gradient = np.concatenate(
            [(self.X.T @ delta_hidden + self.l2 * w1).ravel(), delta_hidden.sum(axis=0)]
        )
        return loss, gradient.astype(np.float64, copy=False)
