"""
=====================================================
Inputs drive a stable gated network into chaos
=====================================================

A gated recurrent network (Krishnamurthy, Can & Schwab, *Phys. Rev. X* 12,
011011, 2022)

.. math::

    \\dot h = \\sigma_z(z) \\odot \\left(-h + J_h (\\sigma_r(r) \\odot \\phi(h))
              + u\\right), \\quad
    \\tau_z \\dot z = -z + J_z \\phi(h), \\quad
    \\tau_r \\dot r = -r + J_r \\phi(h)

with :math:`\\sigma_k(v) = 1 / (1 + e^{-\\alpha_k v + \\beta_k})` has an
*output gate* :math:`\\sigma_r` that scales the effective coupling gain. Without
input, the silent state is stable when :math:`g\\,\\sigma_r(0) < 1`, that is
:math:`\\beta_r > \\ln(g - 1)`: a strongly coupled network (here :math:`g = 3`)
with mostly closed output gates is quiet. A constant input moves :math:`h` away
from 0, spreads :math:`r = J_r \\phi(h)` and opens the gates of some units; the
effective gain rises past the edge of chaos, and the network never settles.

:class:`~rnnapprox.RecurrentFixedPointTransformer` reports exactly this: rows
whose integration reaches ``max_steps`` are not claimed converged, and
``solve(X, stability=True)`` tells chaotic rows (positive Lyapunov exponent)
from oscillating and slowly settling ones.
"""

# %%
# A strongly coupled network with closed output gates
# ---------------------------------------------------
# ``gain=3`` for :math:`J_h` (and :math:`J_r`), a weaker update-gate coupling
# so the update gate does not freeze units, and a steep output gate
# (``alpha_r=10``). Each input row is a random direction scaled to a strength
# ``s``; every row starts from the same small random state.
import matplotlib.pyplot as plt
import numpy as np

from rnnapprox import RecurrentFixedPointTransformer
from rnnapprox.networks import random_gated_network

n_units, gain, alpha_r = 80, 3.0, 10.0
rng = np.random.default_rng(0)
directions = rng.standard_normal((10, n_units))
x0 = np.concatenate([0.1 * rng.standard_normal(n_units), np.zeros(2 * n_units)])
strengths = np.linspace(0.0, 0.3, 11)
U = np.concatenate([s * directions for s in strengths])


def solver(beta_r, **kwargs):
    network = random_gated_network(
        n_units, gain=gain, gain_z=1.0, alpha_r=alpha_r, beta_r=beta_r, random_state=1
    )
    return RecurrentFixedPointTransformer(
        network=network, max_steps=2000, x0=x0, **kwargs
    ).fit(U)


# %%
# Without input the network is stable
# -----------------------------------
# With ``beta_r = 4`` the silent state's leading Jacobian eigenvalue is
# negative and every row without input returns to it.
quiet = solver(beta_r=4.0).solve(np.zeros((4, n_units)), stability=True)
print(quiet.summary())
print("leading eigenvalue of the silent state:", np.round(quiet.leading_eigenvalue[0], 3))

# %%
# Fraction of rows that never settle
# ----------------------------------
# Over input strength and the output-gate offset ``beta_r``. Below the
# dashed line (``beta_r < ln(g - 1)``) the silent network is already unstable;
# above it, a network that is quiet without input is driven into sustained
# activity by weak inputs, and the more closed its output gates (larger
# ``beta_r``), the stronger the input it takes.
betas = np.arange(0.0, 8.1, 1.0)
fraction = np.empty((betas.size, strengths.size))
for k, beta_r in enumerate(betas):
    result = solver(beta_r).solve(U)
    fraction[k] = (~result.converged).reshape(strengths.size, -1).mean(axis=1)

fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
image = axes[0].imshow(
    fraction, origin="lower", aspect="auto", cmap="magma", vmin=0, vmax=1,
    extent=[strengths[0], strengths[-1], betas[0] - 0.5, betas[-1] + 0.5],
)
axes[0].axhline(np.log(gain - 1), color="tab:cyan", ls="--", lw=1.5)
axes[0].set(xlabel="input strength s", ylabel=r"output-gate offset $\beta_r$",
            title=rf"non-converged rows ($g={gain:g}$, $\alpha_r={alpha_r:g}$)")
fig.colorbar(image, ax=axes[0], label="fraction of rows")

# %%
# Chaotic, oscillating or slow?
# -----------------------------
# For ``beta_r = 4``, the Lyapunov estimate of ``solve(X, stability=True)``
# splits the non-converged rows: most are chaotic.
result = solver(beta_r=4.0).solve(U, stability=True)
dynamics = result.dynamics.reshape(strengths.size, -1)
for label in ["chaotic", "oscillating", "slow"]:
    axes[1].plot(strengths, (dynamics == label).mean(axis=1), marker="o", label=label)
axes[1].plot(strengths, (~result.converged).reshape(strengths.size, -1).mean(axis=1),
             "k--", label="not converged")
axes[1].set(xlabel="input strength s", ylabel="fraction of rows",
            title=r"$\beta_r = 4$: how rows end")
axes[1].legend()
print(result.summary())
plt.show()
