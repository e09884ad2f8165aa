"""
=====================================================================
Distilling a Rockpool rate network
=====================================================================

`Rockpool <https://rockpool.ai>`_ builds rate networks from ``Linear`` and
``Rate`` modules. Here a competitive circuit in Rockpool: four excitatory
relu units with tuned inputs from a 2-D stimulus and self-excitation, and one
inhibitory unit pooling them and inhibiting them all, the soft winner-take-all
motif of Muir (2018). :func:`~rnnapprox.interop.from_rockpool` turns the
module into a :class:`~rnnapprox.networks.RateNetwork` with the same steady
states, the transformer computes them for thousands of stimuli, and a
:class:`~rnnapprox.FeedforwardApproximator` distils the stimulus -> steady
state map.
"""

# %%
# The circuit in Rockpool
# -----------------------
import time

import matplotlib.pyplot as plt
import numpy as np
from rockpool.nn.combinators import Sequential
from rockpool.nn.modules import Linear, Rate

from rnnapprox import FeedforwardApproximator
from rnnapprox.interop import from_rockpool

n_exc = 4
angles = np.linspace(0, 2 * np.pi, n_exc, endpoint=False)
tuning = np.stack([np.cos(angles), np.sin(angles)])  # (2 stimulus dimensions, 4 excitatory units)
input_weights = np.hstack([tuning, np.zeros((2, 1))])  # the inhibitory unit gets no direct input

w_rec = np.zeros((n_exc + 1, n_exc + 1))  # Rockpool's row convention: w_rec[source, target]
w_rec[np.arange(n_exc), np.arange(n_exc)] = 0.5  # self-excitation
w_rec[:n_exc, n_exc] = 0.6  # excitatory -> inhibitory
w_rec[n_exc, :n_exc] = -1.5  # inhibitory -> excitatory

module = Sequential(
    Linear((2, n_exc + 1), weight=input_weights),
    Rate(n_exc + 1, has_rec=True, w_rec=w_rec, activation_func="relu", bias=0.1,
         tau=np.r_[np.full(n_exc, 20e-3), 10e-3], dt=1e-3),
)
print(module)

# %%
# Rockpool's own steady state, and the imported network's
# -------------------------------------------------------
# Rockpool integrates in time with its ``evolve`` (here 1,500 steps of 1 ms
# per stimulus); the imported network answers with the transformer.
rng = np.random.default_rng(0)
U_check = rng.uniform(-1.0, 1.0, size=(20, 2))
start = time.perf_counter()
module = module.reset_state()
out, _, _ = module(np.repeat(U_check[:, None, :], 1500, axis=1))
rockpool_time = time.perf_counter() - start
R_rockpool = out[:, -1]

imported = from_rockpool(module)
print(imported.network)
pipe = imported.pipeline(tol=1e-10).fit(U_check)
R_check = pipe.transform(U_check)
print(f"largest |transformer - Rockpool| over {len(U_check)} stimuli: "
      f"{np.abs(R_check - R_rockpool).max():.1e}")

# %%
# Distillation
# ------------
# The transformer's fixed points of 3,000 stimuli train the approximator,
# which then answers for a grid of stimuli in one pass.
U = rng.uniform(-1.0, 1.0, size=(3000, 2))
fixed_point = imported.pipeline(tol=1e-8).fit(U)
R = fixed_point.transform(U)
ff = FeedforwardApproximator(hidden_layer_size=40, max_iter=500, tol=1e-4, random_state=0)
ff.fit(U[:2500], R[:2500])
print(f"held-out R^2 of the approximator: {ff.score(U[2500:], R[2500:]):.4f}; winner agrees on "
      f"{np.mean(ff.predict(U[2500:]).argmax(1) == R[2500:].argmax(1)):.1%} of held-out stimuli")

start = time.perf_counter()
fixed_point.transform(U[2500:])
transformer_time = (time.perf_counter() - start) / 500
start = time.perf_counter()
ff.predict(U[2500:])
ff_time = (time.perf_counter() - start) / 500
print(f"per stimulus: Rockpool evolve {rockpool_time / len(U_check) * 1e6:.0f} us, transformer "
      f"{transformer_time * 1e6:.1f} us, approximator {ff_time * 1e6:.2f} us "
      f"({rockpool_time / len(U_check) / ff_time:.0f} x and {transformer_time / ff_time:.0f} x faster)")

grid = np.linspace(-1.0, 1.0, 60)
G = np.stack(np.meshgrid(grid, grid), axis=-1).reshape(-1, 2)
R_grid = fixed_point.transform(G)
P_grid = ff.predict(G)

fig, axes = plt.subplots(2, n_exc, figsize=(11, 5), sharex=True, sharey=True)
for j in range(n_exc):
    for row, (rates, label) in enumerate([(R_grid, "recurrent"), (P_grid, "feedforward")]):
        ax = axes[row, j]
        image = ax.imshow(rates[:, j].reshape(60, 60), origin="lower", extent=(-1, 1, -1, 1),
                          vmin=0, vmax=R_grid[:, :n_exc].max(), cmap="viridis")
        ax.set_title(f"unit {j}, {label}", fontsize=9)
fig.colorbar(image, ax=axes, shrink=0.8, label="steady-state rate")
fig.supxlabel("stimulus dimension 1")
fig.supylabel("stimulus dimension 2")
plt.show()
