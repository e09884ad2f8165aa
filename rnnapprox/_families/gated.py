"""The gated network family (Krishnamurthy, Can & Schwab, 2022) on its ``(h, z, r)`` state."""

import numpy as np

from .._kernels import GATED
from .._kernels.gated import gated_model
from ._base import Family


def _gate(value, gain, offset):
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(offset - gain * value))


class GatedFamily(Family):
    """Gated networks (:class:`~rnnapprox.networks.GatedNetwork`).

    The state is ``(h, z, r)`` (``3 n_units``), the response ``phi(h*)``
    with ``phi = tanh``; ``tau`` (ones) and ``activation`` (``"tanh"``) are
    those of ``h``.
    """

    name = "gated"
    kernel_code = GATED
    attributes = ("weights", "input_weights", "bias", "tau", "activation", "z_weights", "r_weights",
                  "alpha_z", "beta_z", "alpha_r", "beta_r", "tau_z", "tau_r")
    state_description = "(h, z, r)"

    @property
    def n_state(self):
        return 3 * self.n_units

    def time_constants(self):
        return [self.tau, self.tau_z, self.tau_r]

    def outputs(self, states):
        return np.tanh(states[:, : self.n_units])

    def kernel_model(self, dt, dtype=np.float64):
        return gated_model(self.weights, self.z_weights, self.r_weights, self.alpha_z, self.beta_z,
                           self.alpha_r, self.beta_r, dt / self.tau_z, dt / self.tau_r, dt)

    def jacobian(self, state, drive):
        """The ``3N x 3N`` derivative of ``(dh/dt, dz/dt, dr/dt)``.

        With ``a = phi(h)``, ``a' = 1 - a^2``, ``s_k = sigma_k``, ``s_k' =
        alpha_k s_k (1 - s_k)`` and the bracket ``B = -h + J_h (s_r a) + W_in
        u + b``: ``dh/dh = diag(s_z) (-I + J_h diag(s_r a'))``, ``dh/dz =
        diag(s_z' B)``, ``dh/dr = diag(s_z) J_h diag(s_r' a)``, ``dz/dh =
        diag(1 / tau_z) J_z diag(a')``, ``dz/dz = -diag(1 / tau_z)``, and the
        same for ``r``.
        """
        n = self.n_units
        h, z, r = state[:n], state[n : 2 * n], state[2 * n :]
        a = np.tanh(h)
        slope = 1.0 - a**2
        s_z = _gate(z, self.alpha_z, self.beta_z)
        s_r = _gate(r, self.alpha_r, self.beta_r)
        ds_z = self.alpha_z * s_z * (1.0 - s_z)
        ds_r = self.alpha_r * s_r * (1.0 - s_r)
        bracket = -h + self.weights @ (s_r * a) + drive
        jacobian = np.zeros((3 * n, 3 * n))
        hh = self.weights * (s_r * slope)[np.newaxis, :]
        hh[np.diag_indices(n)] -= 1.0
        jacobian[:n, :n] = s_z[:, np.newaxis] * hh
        jacobian[:n, n : 2 * n] = np.diag(ds_z * bracket)
        jacobian[:n, 2 * n :] = s_z[:, np.newaxis] * self.weights * (ds_r * a)[np.newaxis, :]
        jacobian[n : 2 * n, :n] = self.z_weights * slope / self.tau_z[:, np.newaxis]
        jacobian[n : 2 * n, n : 2 * n] = -np.diag(1.0 / self.tau_z)
        jacobian[2 * n :, :n] = self.r_weights * slope / self.tau_r[:, np.newaxis]
        jacobian[2 * n :, 2 * n :] = -np.diag(1.0 / self.tau_r)
        return jacobian
