"""The GRU network family (PyTorch's ``nn.GRU`` cell) on its hidden state ``h``."""

import numpy as np
from scipy.special import expit

from .._kernels import GRU
from .._kernels.gru import gru_model
from ._base import Family


class GRUFamily(Family):
    """GRU networks (:class:`~rnnapprox.networks.GRUNetwork`).

    The state and the response are ``h`` (``n_units``). ``weights`` is the
    stacked ``W_h`` (``3 n_units x n_units``, rows in PyTorch's gate order
    ``r, z, n``), ``input_weights`` the stacked ``W_i`` and ``bias`` its bias
    ``b_i`` (``3 n_units``), so that the drive ``W_i u + b_i`` of each row,
    computed once, holds the input part of all three gates; ``hidden_bias``
    is ``b_h``, which cannot join ``b_i`` since the reset gate multiplies
    ``W_hn h + b_hn``.
    """

    name = "gru"
    kernel_code = GRU
    attributes = ("weights", "input_weights", "bias", "hidden_bias")

    @property
    def n_units(self):
        return self.weights.shape[1]

    def time_constants(self):
        """One time unit: ``h`` relaxes at rate ``1 - z``, at most 1."""
        return [np.ones(self.n_units)]

    def outputs(self, states):
        return states.copy()

    def kernel_model(self, dt, dtype=np.float64):
        return gru_model(self.weights, self.hidden_bias, dt)

    def gates(self, state, drive):
        """``r``, ``z``, ``n`` and ``q_n = W_hn h + b_hn`` at one state."""
        n = self.n_units
        hidden = self.weights @ state + self.hidden_bias
        reset = expit(drive[:n] + hidden[:n])
        update = expit(drive[n : 2 * n] + hidden[n : 2 * n])
        candidate = np.tanh(drive[2 * n :] + reset * hidden[2 * n :])
        return reset, update, candidate, hidden[2 * n :]

    def jacobian(self, state, drive):
        """The derivative of ``dh/dt = (1 - z) (n - h)``.

        With ``q_n = W_hn h + b_hn``::

            J = diag(1 - z) (diag(1 - n^2) (diag(r) W_hn + diag(q_n r (1 - r)) W_hr) - I)
                - diag((n - h) z (1 - z)) W_hz

        whose last term vanishes at a fixed point.
        """
        n = self.n_units
        reset, update, candidate, hidden_n = self.gates(state, drive)
        w_r, w_z, w_n = self.weights[:n], self.weights[n : 2 * n], self.weights[2 * n :]
        dn = (1.0 - candidate**2)[:, np.newaxis] * (
            reset[:, np.newaxis] * w_n + (hidden_n * reset * (1.0 - reset))[:, np.newaxis] * w_r
        )
        dn[np.diag_indices(n)] -= 1.0
        jacobian = (1.0 - update)[:, np.newaxis] * dn
        jacobian -= ((candidate - state) * update * (1.0 - update))[:, np.newaxis] * w_z
        return jacobian
