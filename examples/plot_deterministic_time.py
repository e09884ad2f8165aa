"""
=======================================================
Deterministic time: Euler steps against one pass
=======================================================

The recurrent answer to an input costs as many Euler steps as the network
takes to settle, and that number depends on the input; for some inputs the
network never settles. The feedforward approximation costs two matrix
products per row, whatever the input (Muir, 2018).

We measure both on a random tanh network with coupling gain :math:`g = 1.5`,

.. math::

   \\dot x = -x + W \\tanh(x) + W_\\text{in} u, \\qquad
   W_{ij} \\sim \\mathcal N(0, g^2/N),

whose autonomous dynamics are chaotic for large :math:`N`; a strong enough
input suppresses the chaos and creates a stable fixed point (Rajan, Abbott &
Sompolinsky, 2010), a weak one may not. Then we time both as the network
grows, on soft winner-take-all networks of increasing size.
"""

# %%
# The distribution of Euler steps
# -------------------------------
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import NullFormatter
from sklearn.exceptions import ConvergenceWarning

from rnnapprox import FeedforwardApproximator, RecurrentFixedPointTransformer
from rnnapprox.networks import random_tanh_network, soft_wta

network = random_tanh_network(100, gain=1.5, n_inputs=3, random_state=0)
rng = np.random.default_rng(0)
U = rng.uniform(-2.0, 2.0, size=(1500, 3))
MAX_STEPS = 4000
rnn = RecurrentFixedPointTransformer(network=network, dt=0.1, tol=1e-6, max_steps=MAX_STEPS)
rnn.fit(U)
rnn.solve(U[:10])  # compile the numba kernel before timing
result = rnn.solve(U)
print(result.summary())
steps = result.n_steps
settled = result.converged
print(f"Euler steps of converged rows: 5th percentile {np.percentile(steps[settled], 5):.0f}, "
      f"median {np.median(steps[settled]):.0f}, 95th percentile "
      f"{np.percentile(steps[settled], 95):.0f}; {np.sum(~settled)} rows stopped at "
      f"max_steps={MAX_STEPS} without settling")

# %%
# The approximation is distilled from the recurrent network with
# ``teacher=``: the targets are the teacher's fixed points, and the rows that
# never settled are left out of training (a ``ConvergenceWarning`` counts
# them). It answers for every row, in the same time.
U_train, U_test = U[:1000], U[1000:]
ff = FeedforwardApproximator(hidden_layer_size=100, max_iter=300, teacher=rnn, random_state=0)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always", ConvergenceWarning)
    ff.fit(U_train)
for w in caught:
    if "teacher" in str(w.message):
        print("warning:", w.message)
test_settled = settled[1000:]
print(f"trained on {ff.n_teacher_rows_} of {len(U_train)} rows; held-out R^2 on rows that "
      f"settle: {ff.score(U_test[test_settled], result.outputs[1000:][test_settled]):.3f}")

# %%
# Time per row on the fastest and the slowest rows
# ------------------------------------------------
# The rows that settle fastest, the slowest that settle, and those that never
# settle, 50 each, timed as a batch (best of 3). The recurrent cost follows the
# step count; the feedforward cost does not move.


def time_per_row(function, X, repeats=3):
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        function(X)
        best = min(best, time.perf_counter() - start)
    return best / len(X)


order = np.argsort(np.where(settled, steps, np.inf), kind="stable")
groups = {
    "fastest to settle": order[:50],
    "slowest to settle": order[np.sum(settled) - 50:np.sum(settled)],
    "never settle": np.flatnonzero(~settled)[:50],
}
print(f"{'rows':>20} | median steps | recurrent (µs/row) | feedforward (µs/row)")
timings = {}
for name, rows in groups.items():
    if len(rows) == 0:
        continue
    t_rnn = time_per_row(rnn.solve, U[rows])
    t_ff = time_per_row(ff.predict, U[rows], repeats=50)
    timings[name] = (t_rnn, t_ff)
    print(f"{name:>20} | {np.median(steps[rows]):12.0f} | {1e6 * t_rnn:18.1f} | "
          f"{1e6 * t_ff:20.2f}")

fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
bins = np.geomspace(max(steps.min(), 1), MAX_STEPS, 40)
axes[0].hist(steps[settled], bins=bins, color="tab:blue", label="settled")
axes[0].hist(steps[~settled], bins=bins, color="tab:red",
             label=f"never settled ({np.sum(~settled)} rows)")
axes[0].set(xscale="log", xlabel="Euler steps", ylabel="rows",
            title="Recurrent cost varies with the input")
axes[0].legend()
amplitude = np.linalg.norm(U, axis=1)
axes[1].scatter(amplitude[settled], steps[settled], s=4, color="tab:blue", label="settled")
axes[1].scatter(amplitude[~settled], steps[~settled], s=8, color="tab:red", marker="x",
                label="never settled")
axes[1].set(yscale="log", xlabel="input amplitude $\\|u\\|$", ylabel="Euler steps",
            title="Weak inputs do not quench the chaos")
axes[1].legend()
ticks = [300, 500, 1000, 2000, MAX_STEPS]
axes[0].set_xticks(ticks, [str(t) for t in ticks])
axes[0].xaxis.set_minor_formatter(NullFormatter())
axes[1].set_yticks(ticks, [str(t) for t in ticks])
axes[1].yaxis.set_minor_formatter(NullFormatter())

# %%
# Time per row as the network grows
# ---------------------------------
# Soft winner-take-all networks of 5 partitions with 4 to 64 excitatory units
# each (28 to 328 units), 200 random inputs each. Each Euler step costs a
# matrix-vector product of the network's size, :math:`O(N^2)`, times a number
# of steps; one feedforward pass costs :math:`O(N H)` with :math:`H = 100`
# hidden units. The approximations here are trained briefly: only their
# timing matters.
sizes, rnn_times, ff_times, median_steps = [], [], [], []
for units_per_partition in (4, 8, 16, 32, 64):
    wta = soft_wta(5, units_per_partition, 8, random_state=0)
    X = np.random.default_rng(1).uniform(0.0, 1.0, size=(200, 5))
    model = RecurrentFixedPointTransformer(network=wta).fit(X)
    fixed_points = model.solve(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        approx = FeedforwardApproximator(hidden_layer_size=100, max_iter=50, random_state=0)
        approx.fit(X, fixed_points.outputs)
    sizes.append(wta.n_units)
    median_steps.append(np.median(fixed_points.n_steps))
    rnn_times.append(time_per_row(model.transform, X))
    ff_times.append(time_per_row(approx.predict, X, repeats=20))
    print(f"{wta.n_units:4d} units: median {median_steps[-1]:.0f} steps, recurrent "
          f"{1e6 * rnn_times[-1]:8.1f} µs/row, feedforward {1e6 * ff_times[-1]:6.2f} µs/row, "
          f"ratio {rnn_times[-1] / ff_times[-1]:6.0f}")

fig, ax = plt.subplots(figsize=(6, 3.8), layout="constrained")
ax.loglog(sizes, 1e6 * np.array(rnn_times), "o-", label="recurrent (Euler to tol)")
ax.loglog(sizes, 1e6 * np.array(ff_times), "s-", label="feedforward (one pass)")
ax.set(xlabel="network units $N$", ylabel="time per row (µs)",
       title="Time per row as the network grows")
ax.legend()
plt.show()
