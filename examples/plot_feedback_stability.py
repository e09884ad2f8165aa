"""
==================================================
Stability of trained feedback networks
==================================================

A random network of gain :math:`g` closed by a rank-one feedback loop
(Mastrogiuseppe & Ostojic, *Neural Computation* 31(6):1139, 2019),

.. math::

    \\dot x = -x + \\chi \\tanh(x) + m\\, z + I, \\qquad
    z = \\frac{1}{N} n \\cdot \\tanh(x), \\qquad \\chi_{ij} \\sim \\mathcal N(0, g^2/N),

is trained to answer the stationary input :math:`I` with a target output
:math:`z = A`. The open-loop least-squares solution clamps :math:`z = A`, finds
the fixed point :math:`x_{ol}` of the clamped network and picks the
minimum-norm readout with :math:`n \\cdot \\tanh(x_{ol}) / N = A`
(:func:`~rnnapprox.feedback.train_feedback_readout`). By construction
:math:`x_{ol}` is a fixed point of the closed loop; whether it is *stable*
(every eigenvalue of :math:`-I + (\\chi + m n^T / N)\\,\\mathrm{diag}(1 -
\\tanh^2 x_{ol})` in the left half-plane) and whether the closed loop started
at rest actually *reaches* it is what
:func:`~rnnapprox.feedback.check_feedback_target` reports.

The input here is weak (``input_scale=0.2``) and correlated with the feedback
vector (``input_correlation=0.8``). The map over target and bulk gain shows
three regimes: targets of the input's sign are stable and reached; targets of
the opposite sign are stable but the network at rest falls into another
attractor (a failure of *global* stability); a band of small opposite-sign
targets, and small targets in a strongly coupled (``g > 1``) bulk, are
unstable.
"""

# %%
# One trained network
# -------------------
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap

from rnnapprox.feedback import check_feedback_target, train_feedback_readout
from rnnapprox.networks import random_feedback_network

n_units = 100
network = random_feedback_network(
    n_units, gain=0.8, input_correlation=0.8, input_scale=0.2, random_state=0
)
training = train_feedback_readout(network, target=0.5)
report = check_feedback_target(training)
print(f"target 0.5: reached={report.reached}, stable={report.stable}, "
      f"leading eigenvalue {report.leading_eigenvalue:.3f}, output {report.output:.4f}")

# %%
# Target and bulk gain
# --------------------
# The same draw of :math:`\chi` (rescaled by :math:`g`), :math:`m` and :math:`I`
# at every grid point.
targets = np.linspace(-1.5, 1.5, 13)
gains = np.linspace(0.2, 2.0, 7)
category = np.empty((gains.size, targets.size))
leading = np.empty((gains.size, targets.size))
for i, gain in enumerate(gains):
    network = random_feedback_network(
        n_units, gain=gain, input_correlation=0.8, input_scale=0.2, random_state=0
    )
    for j, target in enumerate(targets):
        report = check_feedback_target(
            train_feedback_readout(network, target, max_steps=3000), max_steps=5000
        )
        leading[i, j] = report.leading_eigenvalue.real
        category[i, j] = 2 if report.reached else (1 if report.stable else 0)

fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
extent = [targets[0], targets[-1], gains[0], gains[-1]]
colours = ListedColormap(["tab:red", "tab:orange", "tab:green"])
axes[0].imshow(category, origin="lower", aspect="auto", extent=extent, cmap=colours,
               vmin=-0.5, vmax=2.5, interpolation="nearest")
axes[0].set(xlabel="target output A", ylabel="bulk gain g", title="target fixed point")
handles = [plt.Rectangle((0, 0), 1, 1, color=colours(k)) for k in range(3)]
axes[0].legend(handles, ["unstable", "stable, not reached from rest", "stable and reached"],
               loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=3, fontsize="small")

limit = np.abs(leading).max()
image = axes[1].imshow(leading, origin="lower", aspect="auto", extent=extent, cmap="RdBu_r",
                       vmin=-limit, vmax=limit, interpolation="nearest")
axes[1].contour(targets, gains, leading, levels=[0.0], colors="k")
axes[1].set(xlabel="target output A", ylabel="bulk gain g",
            title="real part of the leading eigenvalue")
fig.colorbar(image, ax=axes[1])
plt.show()
