"""
======================================================
Competition: a soft winner-take-all network, distilled
======================================================

A soft winner-take-all (WTA) circuit of linear-threshold units: ``P``
excitatory partitions, each exciting itself (total weight :math:`\\alpha`) and
a shared inhibitory pool (:math:`\\beta_{EI}`), which inhibits every excitatory
unit (:math:`\\beta_{IE}`). With :math:`\\alpha > 1` the difference between two
active partitions grows, so one partition wins; the winner's fixed-point rate
is

.. math::

   r = \\frac{g\\,u}{1 - \\alpha + \\beta_{IE}\\beta_{EI}},

stable when :math:`\\beta_{IE}\\beta_{EI} > \\alpha - 1` and :math:`\\alpha < 2`
(see :func:`rnnapprox.networks.soft_wta`). With :math:`\\alpha = 1.5` and
:math:`\\beta_{IE}\\beta_{EI} = 1` the winner is amplified by 2 while the
losers are silenced: *selective amplification*.

We compute the recurrent network's fixed points for random inputs, train a
two-layer :class:`~rnnapprox.FeedforwardApproximator` on them, and compare the
two on held-out inputs: overall :math:`R^2`, agreement on the winning
partition, the amplification of the winner, and the response curves as one
input varies against another held fixed (Muir, 2018).
"""

# %%
# The network and its fixed points
# ---------------------------------
# Five partitions of 16 excitatory units and 8 inhibitory units (88 units);
# inputs are uniform in :math:`[0, 1]` per partition.
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import r2_score

from rnnapprox import FeedforwardApproximator, RecurrentFixedPointTransformer
from rnnapprox.networks import soft_wta, winning_partition

N_PARTITIONS, UNITS_PER_PARTITION, N_INHIBITORY = 5, 16, 8
ALPHA, BETA_IE, BETA_EI = 1.5, 1.0, 1.0
network = soft_wta(
    N_PARTITIONS,
    UNITS_PER_PARTITION,
    N_INHIBITORY,
    self_excitation=ALPHA,
    inhibition=BETA_IE,
    excitation_to_inhibition=BETA_EI,
    random_state=0,
)
n_excitatory = N_PARTITIONS * UNITS_PER_PARTITION

rng = np.random.default_rng(0)
U = rng.uniform(0.0, 1.0, size=(4000, N_PARTITIONS))
U_train, U_test = U[:3000], U[3000:]

rnn = RecurrentFixedPointTransformer(network=network, dt=0.1, tol=1e-6).fit(U)
start = time.perf_counter()
result = rnn.solve(U)
print(f"recurrent fixed points: {time.perf_counter() - start:.1f} s (numba compiles on first use)")
print(result.summary())
R = result.outputs
R_train, R_test = R[:3000], R[3000:]


def partition_rates(responses):
    """Mean rate of each excitatory partition, shape (n_samples, n_partitions)."""
    excitatory = responses[:, :n_excitatory]
    return excitatory.reshape(len(responses), N_PARTITIONS, UNITS_PER_PARTITION).mean(axis=2)


# %%
# The feedforward approximation
# -----------------------------
# A hidden layer of 100 tanh units (the default activation); the output layer
# is rectified (``output_activation="auto"`` picks relu for non-negative
# targets), so the silent losers can be predicted as exact zeros. 500 L-BFGS
# iterations are enough here; we silence the warning that more would lower the
# training loss a little further.
ff = FeedforwardApproximator(hidden_layer_size=100, max_iter=500, random_state=0)
start = time.perf_counter()
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    ff.fit(U_train, R_train)
print(f"feedforward fit: {time.perf_counter() - start:.1f} s, {ff.n_iter_} iterations, "
      f"output activation {ff.out_activation_!r}")

P_rnn = partition_rates(R_test)
P_ff = partition_rates(ff.predict(U_test))
winner_rnn = winning_partition(R_test, N_PARTITIONS, UNITS_PER_PARTITION)
winner_ff = winning_partition(ff.predict(U_test), N_PARTITIONS, UNITS_PER_PARTITION)
winner_input = U_test.argmax(1)
print(f"held-out R^2, uniform average over the 88 units: {ff.score(U_test, R_test):.3f}; "
      f"variance-weighted: "
      f"{r2_score(R_test, ff.predict(U_test), multioutput='variance_weighted'):.3f}")
print(f"winner agreement, feedforward vs recurrent: {np.mean(winner_ff == winner_rnn):.1%}")
print(f"winner = largest input: recurrent {np.mean(winner_rnn == winner_input):.1%}, "
      f"feedforward {np.mean(winner_ff == winner_input):.1%}")

# %%
# Selective amplification
# -----------------------
# Each partition's output rate against its input. The recurrent winner lies on
# the line of slope :math:`1/(1 - \alpha + \beta_{IE}\beta_{EI}) = 2` (up to
# the weight jitter); losers are silent whatever their input. The
# approximation reproduces both branches.
theory_gain = 1.0 / (1.0 - ALPHA + BETA_IE * BETA_EI)
rows = np.arange(len(U_test))
gain_rnn = P_rnn[rows, winner_rnn] / U_test[rows, winner_rnn]
gain_ff = P_ff[rows, winner_rnn] / U_test[rows, winner_rnn]
losers = np.ones_like(P_rnn, dtype=bool)
losers[rows, winner_rnn] = False
print(f"winner gain (median): theory {theory_gain:.2f}, recurrent {np.median(gain_rnn):.2f}, "
      f"feedforward {np.median(gain_ff):.2f}")
print(f"mean loser rate: recurrent {P_rnn[losers].mean():.4f}, "
      f"feedforward {P_ff[losers].mean():.4f}")
print(f"losers exactly silent: recurrent {np.mean(P_rnn[losers] == 0):.1%}, "
      f"feedforward {np.mean(P_ff[losers] == 0):.1%}")

fig, axes = plt.subplots(1, 2, figsize=(9, 3.8), sharey=True, layout="constrained")
for ax, P, name in [(axes[0], P_rnn, "recurrent fixed point"),
                    (axes[1], P_ff, "feedforward approximation")]:
    ax.scatter(U_test[losers], P[losers], s=4, alpha=0.3, color="tab:gray", label="losers")
    ax.scatter(U_test[rows, winner_rnn], P[rows, winner_rnn], s=4, alpha=0.5,
               color="tab:red", label="winner")
    ax.plot([0, 1], [0, theory_gain], "k--", lw=1, label=f"slope {theory_gain:g}")
    ax.plot([0, 1], [0, 1], ":", color="0.5", lw=1, label="no recurrence")
    ax.set(title=name, xlabel="partition input $u_p$")
axes[0].set_ylabel("partition mean rate")
axes[0].legend(loc="upper left", markerscale=3)
fig.suptitle("Selective amplification: the winner is amplified, the losers silenced")

# %%
# Example inputs
# --------------
# Inputs, recurrent responses and approximations for four held-out rows, from
# an easy contest to a close one: the gap between the two largest inputs is at
# its 95th, 50th, 10th and 1st percentile. The closest contests are where the
# approximation errs.
gaps = np.diff(np.sort(U_test, axis=1)[:, -2:], axis=1).ravel()
order = np.argsort(gaps)
examples = order[(np.array([0.95, 0.5, 0.1, 0.01]) * (len(order) - 1)).astype(int)]
close = gaps < np.quantile(gaps, 0.05)
print(f"winner agreement on the 5% closest contests: "
      f"{np.mean(winner_ff[close] == winner_rnn[close]):.1%}")
fig, axes = plt.subplots(1, 4, figsize=(11, 3), sharey=True, layout="constrained")
positions = np.arange(N_PARTITIONS)
for ax, row in zip(axes, examples, strict=True):
    ax.bar(positions - 0.27, U_test[row], 0.27, color="0.7", label="input $u_p$")
    ax.bar(positions, P_rnn[row], 0.27, color="tab:blue", label="recurrent")
    ax.bar(positions + 0.27, P_ff[row], 0.27, color="tab:orange", label="feedforward")
    ax.set(xticks=positions, xlabel="partition", title=f"gap {gaps[row]:.3f}")
axes[0].set_ylabel("rate")
axes[0].legend(fontsize="small")

# %%
# Response curves
# ---------------
# Input to partition 0 varies from 0 to 1 while partition 1 is held at 0.5 and
# the others at 0.2. Each point is a fresh fixed point from ``x0 = 0``. The
# recurrent network switches winner near :math:`u_0 = u_1` (shifted by the
# jitter of the weights); the approximation switches with it.
sweep = np.linspace(0.0, 1.0, 201)
U_sweep = np.full((sweep.size, N_PARTITIONS), 0.2)
U_sweep[:, 0] = sweep
U_sweep[:, 1] = 0.5
curve_rnn = partition_rates(rnn.transform(U_sweep))
curve_ff = partition_rates(ff.predict(U_sweep))
switch_rnn = sweep[np.argmax(curve_rnn[:, 0] > curve_rnn[:, 1])]
switch_ff = sweep[np.argmax(curve_ff[:, 0] > curve_ff[:, 1])]
print(f"winner switches to partition 0 at u_0 = {switch_rnn:.3f} (recurrent), "
      f"{switch_ff:.3f} (feedforward)")

fig, ax = plt.subplots(figsize=(6, 3.8), layout="constrained")
for p, color in [(0, "tab:blue"), (1, "tab:red"), (2, "tab:green")]:
    ax.plot(sweep, curve_rnn[:, p], color=color, lw=2, label=f"partition {p}, recurrent")
    ax.plot(sweep, curve_ff[:, p], color=color, ls="--", lw=1.5,
            label=f"partition {p}, feedforward")
ax.axvline(0.5, color="0.6", lw=0.8)
ax.set(xlabel="input to partition 0, $u_0$ ($u_1 = 0.5$, others 0.2)",
       ylabel="partition mean rate", title="Competition between two inputs")
ax.legend(fontsize="small")
plt.show()
