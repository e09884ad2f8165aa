"""The rate network family, ``tau dx/dt = -x + W f(x) + W_in u + b``."""

import numpy as np

from .._activations import get_activation
from .._kernels import RATE
from .._kernels.rate import rate_model
from ._base import Family


def unique_active_sets(masks):
    """The distinct rows of the boolean ``masks`` (relu active sets), without comparing them bit by bit.

    Returns ``(keys, first, inverse)``: per row its set's key (bytes of the
    packed mask, as a void scalar), the index of each distinct set's first row,
    and per row the index of its set among the distinct ones.
    """
    packed = np.packbits(masks, axis=1)
    keys = np.ascontiguousarray(packed).view(np.dtype((np.void, packed.shape[1]))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    return keys, first, np.ravel(inverse)


class RateFamily(Family):
    """Rate networks (:class:`~rnnapprox.networks.RateNetwork` and its subclasses).

    The response is ``f(x*)``; the Jacobian ``diag(1 / tau) (-I + W
    diag(f'(x)))``. Relu networks are piecewise linear: one linear system per
    sign pattern of ``x``.
    """

    name = "rate"
    kernel_code = RATE
    attributes = ("weights", "input_weights", "bias", "tau", "activation")

    def __init__(self, **arrays):
        super().__init__(**arrays)
        self._activation = get_activation(self.activation)

    @property
    def piecewise_linear(self):
        return self.activation == "relu"

    def outputs(self, states):
        return self._activation.rate(states)

    def residual(self, states, drives):
        """``max_i |W f(x) + d - x|_i`` of each row: the fixed-point residual the kernels report."""
        field = self.outputs(states) @ self.weights.T + drives - states
        return np.abs(field).max(axis=1, initial=0.0)

    def jacobian(self, state, drive):
        jacobian = self.weights * self._activation.slope(state)[np.newaxis, :]
        jacobian[np.diag_indices_from(jacobian)] -= 1.0
        return jacobian / self.tau[:, np.newaxis]

    dtypes = (np.float64, np.float32)

    def kernel_model(self, dt, dtype=np.float64):
        return rate_model(self.weights, dt / self.tau, self._activation.code, dtype)

    def weight_row_norm(self):
        """``||W||_inf``, the largest row sum of ``|W|``: the scale of the field's rounding."""
        return float(np.abs(self.weights).sum(axis=1).max(initial=0.0))

    def _weight_norm_bound(self):
        """``sqrt(||W||_1 ||W||_inf)``, a bound of ``||W||_2`` without a singular value decomposition."""
        column_norm = np.abs(self.weights).sum(axis=0).max(initial=0.0)
        return float(np.sqrt(column_norm * self.weight_row_norm()))

    def fixed_point_unique(self):
        """True when ``||W||_2 < 1``: ``x -> W f(x) + d`` is then a contraction.

        Every activation here is 1-Lipschitz, with slopes in ``[0, 1]``.
        """
        return self._weight_norm_bound() < 1.0

    def euler_map_radius(self, states, drives, dt, pool=None):
        """Spectral radius of the Euler map's Jacobian at each state, cheaply where the structure allows.

        When the fixed point is unique (:meth:`fixed_point_unique`), the bound
        ``max(|1 - dt / tau|) + max(dt / tau) ||W||_2`` for every row. For relu
        the Jacobian ``I + diag(dt / tau) (-I + W D_A)`` depends only on the
        active set ``A``: one eigenvalue problem of the active block per
        distinct set (inactive units contribute ``1 - dt / tau``). Otherwise
        one dense problem per state.
        """
        weights = self.weights
        scale = dt / self.tau
        if self.fixed_point_unique():
            bound = np.abs(1.0 - scale).max() + scale.max() * self._weight_norm_bound()
            return np.full(len(states), bound)
        if not self.piecewise_linear:
            return super().euler_map_radius(states, drives, dt, pool)
        _, first, inverse = unique_active_sets(states > 0)
        masks = states[first] > 0
        radii = np.array([np.abs(1.0 - scale[~m]).max(initial=0.0) for m in masks])
        sizes = masks.sum(axis=1)
        for size in np.unique(sizes):
            group = np.flatnonzero(sizes == size)
            if size == 0:
                continue
            # The active units of each set, one row per set: I + S_A (W_AA - I) for all at once.
            index = np.nonzero(masks[group])[1].reshape(group.size, size)
            blocks = weights[index[:, :, np.newaxis], index[:, np.newaxis, :]]
            blocks -= np.eye(size)
            blocks *= scale[index][:, :, np.newaxis]
            blocks += np.eye(size)
            radii[group] = np.maximum(radii[group], np.abs(np.linalg.eigvals(blocks)).max(axis=1))
        return radii[inverse]
