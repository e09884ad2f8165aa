"""
==============================================================
Information transformation: an excitatory/inhibitory network
==============================================================

A random network of 80 excitatory and 20 inhibitory linear-threshold units
(Dale's law, :func:`rnnapprox.networks.random_ei_network`) receives three
signed inputs through non-negative random weights. Its fixed points

.. math::

   x^* = W\\,[x^*]_+ + W_\\text{in} u, \\qquad r = [x^*]_+

are a piecewise-linear map of the input: every unit switches between silent
and active somewhere in the input space, and recurrent excitation and
inhibition reshape each unit's tuning. The map is far from linear, which the
per-unit :math:`R^2` of the best linear fit shows; the two-layer
:class:`~rnnapprox.FeedforwardApproximator` reproduces it unit by unit.
"""

# %%
# Fixed points of the E/I network
# -------------------------------
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression
from sklearn.metrics import r2_score

from rnnapprox import FeedforwardApproximator, RecurrentFixedPointTransformer
from rnnapprox.networks import random_ei_network

network = random_ei_network(80, 20, n_inputs=3, spectral_radius=0.9, random_state=0)
rng = np.random.default_rng(1)
U = rng.uniform(-1.0, 1.0, size=(4000, 3))
U_train, U_test = U[:3000], U[3000:]

rnn = RecurrentFixedPointTransformer(network=network, dt=0.1, tol=1e-6).fit(U)
result = rnn.solve(U)
print(result.summary())
R = result.outputs
R_train, R_test = R[:3000], R[3000:]
active = R > 0
print(f"units active per input: median {int(np.median(active.sum(1)))} of {R.shape[1]}; "
      f"units that are active for some inputs and silent for others: "
      f"{np.sum(active.any(0) & ~active.all(0))}")

# %%
# Linear fit and two-layer approximation
# --------------------------------------
# Both are fitted on 3000 rows and scored per output unit on 1000 held-out
# rows.
linear = LinearRegression().fit(U_train, R_train)
ff = FeedforwardApproximator(hidden_layer_size=100, max_iter=400, random_state=0)
start = time.perf_counter()
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)  # 400 L-BFGS iterations suffice
    ff.fit(U_train, R_train)
print(f"feedforward fit: {time.perf_counter() - start:.1f} s")

r2_linear = r2_score(R_test, linear.predict(U_test), multioutput="raw_values")
r2_ff = r2_score(R_test, ff.predict(U_test), multioutput="raw_values")
for name, r2 in [("linear", r2_linear), ("feedforward", r2_ff)]:
    q = np.percentile(r2, [0, 10, 50])
    print(f"per-unit R^2, {name:>11}: worst {q[0]:.4f}, 10th percentile {q[1]:.4f}, "
          f"median {q[2]:.4f}")
print(f"units with R^2 > 0.99: linear {np.sum(r2_linear > 0.99)}, "
      f"feedforward {np.sum(r2_ff > 0.99)} of {R.shape[1]}")

fig, ax = plt.subplots(figsize=(6.5, 3.8), layout="constrained")
units = np.arange(R.shape[1])
ax.semilogy(units, np.sort(1 - r2_linear)[::-1], ".", label="best linear map")
ax.semilogy(units, np.sort(1 - r2_ff)[::-1], ".", label="two-layer approximation")
ax.set(xlabel="output unit (sorted by error)", ylabel="$1 - R^2$ (held out)",
       title="Approximation quality per output unit")
ax.legend()

# %%
# Tuning surfaces
# ---------------
# The rate of the three units the linear map fits worst, as a function of
# :math:`(u_0, u_1)` with :math:`u_2 = 0`: the recurrent fixed point, the
# approximation and the linear fit. Silent regions and bends are where the
# network's rectification and recurrence act.
grid = np.linspace(-1.0, 1.0, 61)
g0, g1 = np.meshgrid(grid, grid)
U_grid = np.column_stack([g0.ravel(), g1.ravel(), np.zeros(g0.size)])
surfaces = {
    "recurrent": rnn.transform(U_grid),
    "feedforward": ff.predict(U_grid),
    "linear": linear.predict(U_grid),
}
worst = np.argsort(r2_linear)[:3]
fig, axes = plt.subplots(3, 3, figsize=(8.5, 7.5), sharex=True, sharey=True,
                         layout="constrained")
for i, unit in enumerate(worst):
    vmax = surfaces["recurrent"][:, unit].max()
    for j, (name, S) in enumerate(surfaces.items()):
        image = axes[i, j].imshow(S[:, unit].reshape(g0.shape), origin="lower",
                                  extent=(-1, 1, -1, 1), vmin=0, vmax=vmax, cmap="viridis")
        if i == 0:
            axes[i, j].set_title(name)
    axes[i, 0].set_ylabel(f"unit {unit}\n$u_1$")
    fig.colorbar(image, ax=axes[i, :], shrink=0.8, label="rate")
for ax in axes[-1]:
    ax.set_xlabel("$u_0$")
plt.show()
