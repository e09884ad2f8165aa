"""
==============================================================
Pipelines and search: a recurrent feature map on digits
==============================================================

Both estimators are ordinary scikit-learn citizens. Here the fixed points of a
random tanh network,

.. math::

   x^* = W \\tanh(x^*) + W_\\text{in}\\,u, \\qquad
   W_{ij} \\sim \\mathcal N(0, g^2/N),\\ g = 0.9,

serve as a nonlinear feature map of the 8x8 digit images
(:func:`sklearn.datasets.load_digits`): ``StandardScaler ->
RecurrentFixedPointTransformer -> LogisticRegression``, compared with the
same pipeline without the recurrent step. Then ``GridSearchCV`` chooses the
hidden-layer size and the L2 penalty of a
:class:`~rnnapprox.FeedforwardApproximator` that learns the feature map, and
the classifier runs on the approximation's features instead.
"""

# %%
# The recurrent network as a feature map in a Pipeline
# ----------------------------------------------------
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from rnnapprox import FeedforwardApproximator, RecurrentFixedPointTransformer
from rnnapprox.networks import random_tanh_network

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.3, stratify=y, random_state=0
)

baseline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
baseline.fit(X_train, y_train)

network = random_tanh_network(100, gain=0.9, n_inputs=64, random_state=0)
recurrent = make_pipeline(
    StandardScaler(),
    RecurrentFixedPointTransformer(network=network, dt=0.1, tol=1e-6, on_nonconvergence="raise"),
    LogisticRegression(max_iter=2000),
)
start = time.perf_counter()
recurrent.fit(X_train, y_train)
print(f"recurrent pipeline fit: {time.perf_counter() - start:.1f} s (numba compiles on first use)")
features = recurrent[:-1]  # StandardScaler -> RecurrentFixedPointTransformer, fitted
print(features[-1].solve(features[0].transform(X_train)).summary())
print(f"test accuracy: StandardScaler -> LogisticRegression {baseline.score(X_test, y_test):.3f}; "
      f"with the recurrent feature map {recurrent.score(X_test, y_test):.3f}")

# %%
# On digits the recurrent features classify about as well as the standardised
# pixels, not better: a linear classifier already does well on this data set,
# and a random network adds no information about the labels. The point here
# is the mechanics: the transformer is one step of a ``Pipeline``, fitted and
# applied with the rest.
#
# The network is a parameter of the pipeline like any other (``get_params``
# reaches into it), so it can be inspected or searched over:
params = recurrent.get_params()
print("recurrentfixedpointtransformer__network__activation =",
      params["recurrentfixedpointtransformer__network__activation"])

# %%
# Searching the approximator's hyperparameters
# --------------------------------------------
# The targets are the recurrent features of the training images (100 outputs
# per row). ``GridSearchCV`` scores each candidate by its held-out
# :math:`R^2` (``score``: the uniform average over the outputs) over 3 folds,
# with the inputs standardised inside each fold by a ``StandardScaler`` in the
# pipeline.
R_train = features.transform(X_train)
R_test = features.transform(X_test)
search = GridSearchCV(
    make_pipeline(StandardScaler(), FeedforwardApproximator(max_iter=100, random_state=0)),
    {
        "feedforwardapproximator__hidden_layer_size": [32, 128],
        "feedforwardapproximator__alpha": [0.1, 10.0],
    },
    cv=3,
    n_jobs=2,
)
start = time.perf_counter()
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)  # 100 L-BFGS iterations per fit
    search.fit(X_train, R_train)
print(f"grid search: {time.perf_counter() - start:.1f} s for "
      f"{len(search.cv_results_['params'])} candidates x 3 folds")
print(f"best: {search.best_params_}, cross-validated R^2 {search.best_score_:.3f}")
approximation = search.best_estimator_
print(f"held-out R^2 of the best approximation: {approximation.score(X_test, R_test):.3f}")

sizes = search.param_grid["feedforwardapproximator__hidden_layer_size"]
alphas = search.param_grid["feedforwardapproximator__alpha"]
scores = np.full((len(sizes), len(alphas)), np.nan)
for params, score in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"],
                        strict=True):
    scores[sizes.index(params["feedforwardapproximator__hidden_layer_size"]),
           alphas.index(params["feedforwardapproximator__alpha"])] = score
fig, ax = plt.subplots(figsize=(5, 3), layout="constrained")
image = ax.imshow(scores, cmap="viridis")
for (i, j), score in np.ndenumerate(scores):
    ax.text(j, i, f"{score:.3f}", ha="center", va="center", color="w")
ax.set(xticks=range(len(alphas)), xticklabels=alphas, yticks=range(len(sizes)),
       yticklabels=sizes, xlabel="alpha (L2)", ylabel="hidden_layer_size",
       title="Cross-validated $R^2$ of the approximation")
fig.colorbar(image, ax=ax)

# %%
# The approximation in place of the recurrent network
# ---------------------------------------------------
# The classifier trained on the recurrent features also classifies the
# approximation's features; a classifier trained on the approximation's
# features does as well. The approximation computes the features in one pass.
classifier = recurrent[-1]


def best_time(function, X, repeats):
    """Shortest wall time of ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function(X)
        times.append(time.perf_counter() - start)
    return min(times)


time_recurrent = best_time(features.transform, X_test, repeats=3)
time_ff = best_time(approximation.predict, X_test, repeats=20)
F_test = approximation.predict(X_test)
refit = LogisticRegression(max_iter=2000).fit(approximation.predict(X_train), y_train)
accuracies = {
    "no recurrent step": baseline.score(X_test, y_test),
    "recurrent features": recurrent.score(X_test, y_test),
    "approximated features,\nsame classifier": classifier.score(F_test, y_test),
    "approximated features,\nclassifier refitted": refit.score(F_test, y_test),
}
for name, accuracy in accuracies.items():
    print(f"{name.replace(chr(10), ' '):>45}: test accuracy {accuracy:.3f}")
print(f"features of {len(X_test)} test images (best of several runs): recurrent "
      f"{1e3 * time_recurrent:.1f} ms, "
      f"feedforward {1e3 * time_ff:.2f} ms ({time_recurrent / time_ff:.0f}x faster)")

fig, ax = plt.subplots(figsize=(7, 3), layout="constrained")
ax.barh(range(len(accuracies)), list(accuracies.values()), color="tab:blue")
ax.set(yticks=range(len(accuracies)), yticklabels=list(accuracies), xlim=(0.9, 1.0),
       xlabel="test accuracy", title="Digits, 540 test images")
ax.invert_yaxis()
plt.show()
