"""Two-layer feedforward approximation of a recurrent network's fixed-point map."""

import contextlib
import warnings
from numbers import Integral, Real

import joblib
import numpy as np
import scipy.optimize
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    RegressorMixin,
    TransformerMixin,
    _fit_context,
    clone,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import _safe_indexing, check_random_state, gen_batches
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import (
    _check_sample_weight,
    _num_samples,
    check_is_fitted,
    validate_data,
)

from ._distillation import (
    MIN_HELD_OUT_FRACTION,
    DistillationLoop,
    teacher_targets,
    variance_weighted_r2,
)
from ._thread_control import single_threaded_blas
from ._two_layer import (
    Buffers,
    ProjectedLoss,
    activate,
    joint_loss_and_gradient,
    pack,
    unpack,
    unpack_hidden,
)

__all__ = ["FeedforwardApproximator"]

# Adam's moment decay rates and denominator guard (Kingma & Ba, 2015).
_ADAM_BETA_1, _ADAM_BETA_2, _ADAM_EPSILON = 0.9, 0.999, 1e-8
# L-BFGS memory: corrections kept for the inverse-Hessian estimate (scipy's default
# is 10). Each costs two vectors of the parameters' size, negligible next to a
# gradient, and 30 reaches a given loss in noticeably fewer iterations here.
_LBFGS_MEMORY = 30
# early_stopping="auto" holds out validation_fraction of the rows from this many rows on.
_AUTO_EARLY_STOPPING_ROWS = 1000
# BLAS threads: one while the largest matrix product of a pass has fewer multiply-adds
# than these; measured on the 2-core machine of benchmarks/bench_distillation.py
# (OpenBLAS 0.3.30/0.3.31, Haswell kernel).
# Training alternates numpy's OpenBLAS (the products) and scipy's (L-BFGS-B, the
# Cholesky solve), and each pool's idle threads spin while the other works: a whole fit
# on 4,000 rows and 100 hidden units ran 3 to 7 times slower per iteration with 2
# threads on an idle machine; varpro with 480 hidden units (wta8 of the benchmark), the
# Gram matrix counted, 1.4 times slower on 16,000 rows (3.7e9 multiply-adds), 1.1 times
# on 24,000 (5.5e9), and 1.9 times faster on 40,000 (9.2e9).
_SINGLE_THREAD_TWO_POOLS = 8e9
# predict and Adam use numpy's pool alone: on an idle machine 2 threads predicted
# 400,000 rows (3.5e9) in 0.22 s against 0.34 s; below this bound, next to numba's
# threads (a recurrent transformer in the same process), 2 threads made predict 30
# times slower.
_SINGLE_THREAD_ONE_POOL = 2e9
# Working precision of the loss and gradient (the optimiser's own state stays float64):
# float32 from this many multiply-adds in the largest product on. It halves the cost of
# the matrix products, which are nearly all of an iteration, and the held-out scores of
# benchmarks/bench_distillation.py matched float64's to 1e-3; on smaller problems an
# iteration costs little either way and float64 finds the minimum to full precision.
_FLOAT32_MULTIPLY_ADDS = 1e6
# Early stopping on a held-out score: an iteration improves when the unexplained
# variance 1 - score has fallen by this fraction since the last improvement (and by
# at least _ABSOLUTE_IMPROVEMENT and tol: gains of R^2 below 1e-4 per patience window are
# not worth their iterations); "auto" patience, in L-BFGS iterations, before stopping
# without one.
_RELATIVE_IMPROVEMENT = 0.01
_ABSOLUTE_IMPROVEMENT = 1e-4
_LBFGS_PATIENCE = 100


# solver="auto": variable projection, unless the output is tanh (not linear) or relu
# with at least this fraction of the training targets exactly zero. A linear output
# layer can only make exact zeros by cancellation; where silent units are most of the
# targets (the losing partitions of a winner-take-all circuit) L-BFGS through the relu
# output fits them better (see the user guide's distillation page).
_SILENT_TARGET_FRACTION = 0.5


def _largest_product(shape, n_hidden, n_outputs, solver=None):
    """Multiply-adds of the largest matrix product of a pass over ``shape`` rows x features.

    A pass of ``solver="varpro"`` also forms the ``(n_hidden + 1)``-square Gram
    matrix of the hidden layer.
    """
    n_samples, n_features = shape
    inner = max(n_features, n_outputs, n_hidden + 1 if solver == "varpro" else 0)
    return n_samples * n_hidden * inner


def _working_dtype(shape, n_hidden, n_outputs):
    """Arithmetic of the loss and gradient for training on ``shape`` rows x features."""
    largest = _largest_product(shape, n_hidden, n_outputs)
    return np.float32 if largest >= _FLOAT32_MULTIPLY_ADDS else np.float64


def _blas_threads(shape, n_hidden, n_outputs, solver=None):
    """BLAS thread limit for a pass over ``shape`` rows x features (None: leave as is).

    ``solver``: the training solver, or None for a forward pass (``predict``).
    """
    largest = _largest_product(shape, n_hidden, n_outputs, solver)
    two_pools = solver in ("lbfgs", "varpro")  # numpy's BLAS and scipy's, in turn
    return 1 if largest < (_SINGLE_THREAD_TWO_POOLS if two_pools else _SINGLE_THREAD_ONE_POOL) else None


def _blas_limit(shape, n_hidden, n_outputs, solver=None):
    """Context limiting BLAS to the thread count :func:`_blas_threads` chooses.

    The one-thread limit is the package's shared, reference-counted one
    (``_thread_control.single_threaded_blas``), so it nests safely with the
    transformer's kernels running in other threads.
    """
    if _blas_threads(shape, n_hidden, n_outputs, solver) is None:
        return contextlib.nullcontext()
    return single_threaded_blas()


def _check_validation_split(weight_val, weight_train):
    if weight_val.shape[0] < 2 or weight_val.sum() == 0 or weight_train.sum() == 0:
        raise ValueError(
            "The validation split needs at least 2 rows with weight on each side; "
            "raise validation_fraction or add rows."
        )


def _column_peak(A):
    """Largest magnitude per column (1 for all-zero columns), to compute statistics safely."""
    peak = np.abs(A).max(axis=0)
    return np.where(peak > 0, peak, 1.0)


def _weighted_mean_and_std(A, weights):
    # Divide by the column peak first: (A - mean)**2 overflows for values near 1e154.
    peak = _column_peak(A)
    B = A / peak
    mean = np.average(B, axis=0, weights=weights)
    std = np.sqrt(np.average((B - mean) ** 2, axis=0, weights=weights))
    return mean * peak, std * peak


def _nonzero_scale(scale, magnitude):
    """Replace scales that are zero relative to the column's magnitude by 1."""
    scale = scale.copy()
    scale[scale <= 1e-12 * np.maximum(magnitude, 1.0)] = 1.0
    return scale


def _target_scaling(Y, weights, output_activation):
    """Per-output ``(offset, scale)`` with ``Y = offset + scale * Y_scaled``.

    Only the identity output is shifted; relu and tanh outputs are divided by
    a positive factor, so an exact zero target stays an exact zero.
    """
    magnitude = np.abs(Y[weights > 0]).max(axis=0)
    if output_activation == "identity":
        offset, scale = _weighted_mean_and_std(Y, weights)
        return offset, _nonzero_scale(scale, np.abs(offset))
    offset = np.zeros(Y.shape[1])
    if output_activation == "relu":
        peak = _column_peak(Y)
        root_mean_square = peak * np.sqrt(np.average((Y / peak) ** 2, axis=0, weights=weights))
        return offset, _nonzero_scale(root_mean_square, magnitude)
    return offset, np.maximum(magnitude, 1.0)  # tanh: into [-1, 1], the range of tanh


class _VarianceWeightedR2:
    """:func:`variance_weighted_r2` against fixed ``Y, weights``, without re-validating them.

    Called after every iteration, where scikit-learn's input checks in
    ``r2_score`` cost a fifth of an L-BFGS iteration on a few thousand rows.
    Outputs of zero variance are left out, as ``r2_score`` does.
    """

    def __init__(self, Y, weights):
        self.Y = Y.reshape(Y.shape[0], -1)
        self.weights = weights[:, np.newaxis]
        total = np.sum(self.weights * (self.Y - np.average(self.Y, axis=0, weights=weights)) ** 2,
                       axis=0)
        self.varying = total > 0
        self.total = total.sum()
        self.raw_Y, self.raw_weights = Y, weights  # for all-constant targets (r2_score's rules)

    def __call__(self, prediction):
        if self.total == 0:
            return variance_weighted_r2(self.raw_Y, prediction, self.raw_weights)
        error = np.sum(self.weights * (prediction.reshape(self.Y.shape) - self.Y) ** 2, axis=0)
        return float(1.0 - error[self.varying].sum() / self.total)


class _TrainingMonitor:
    """Records each iteration (epoch) on the estimator and says when to stop.

    Without a validation set it tracks the training loss (an improvement is a
    fall by more than ``tol`` below the best). With one it tracks the validation
    score (variance-weighted R^2 in raw units), keeping the best parameters; an
    improvement is then a fall of the unexplained variance ``1 - score`` by at
    least ``_RELATIVE_IMPROVEMENT`` of its value at the last improvement (and by
    more than ``_ABSOLUTE_IMPROVEMENT`` and ``tol``), so slow creeping does not
    keep a fit running while large late gains after a dip do. Either way training should stop once
    ``patience`` iterations in a row brought no improvement.
    """

    def __init__(self, estimator, validation, patience):
        self.estimator = estimator
        self.validation = validation
        self.patience = patience
        self.best = np.inf if validation is None else -np.inf
        self.reference = -np.inf  # validation score at the last improvement
        self.best_params = pack(estimator.coefs_, estimator.intercepts_)
        self.no_improvement_count = 0
        if validation is not None:
            _, Y_val, weight_val = validation
            self.score_validation = _VarianceWeightedR2(Y_val, weight_val)

    def end_iteration(self, loss):
        """Record the iteration that just ended; return True when training should stop."""
        est = self.estimator
        est.n_iter_ += 1
        est.loss_curve_.append(float(loss))
        message = f"Iteration {est.n_iter_}, loss = {loss:.8f}"
        if self.validation is None:
            improved = loss < self.best - est.tol
            self.best = min(self.best, loss)
        else:
            score = self.score_validation(est._forward(self.validation[0]))
            est.validation_scores_.append(score)
            message += f", validation score = {score:.6f}"
            improved = not np.isfinite(self.reference) or score > self.reference + max(
                est.tol, _ABSOLUTE_IMPROVEMENT, _RELATIVE_IMPROVEMENT * (1.0 - self.reference)
            )
            if improved:
                self.reference = score
            if score > self.best:
                self.best = est.best_validation_score_ = score
                self.best_params = pack(est.coefs_, est.intercepts_)
        self.no_improvement_count = 0 if improved else self.no_improvement_count + 1
        if est.verbose:
            print(message)
        return self.no_improvement_count >= self.patience


class FeedforwardApproximator(
    ClassNamePrefixFeaturesOutMixin, RegressorMixin, TransformerMixin, BaseEstimator
):
    """Two-layer feedforward network trained on a recurrent network's fixed points.

    A hidden layer of ``hidden_layer_size`` units and an output layer with
    one unit per target. Trained on input rows and the fixed-point responses
    of a recurrent network (given as ``y``, or computed by ``teacher``), it
    answers in one deterministic pass the question the recurrent network
    answers by integrating its dynamics to a fixed point (Muir, 2018).

    Parameters
    ----------
    hidden_layer_size : int or "auto", default=100
        Number of hidden units. ``"auto"`` starts with as many as there are
        outputs (the recurrent network's units, the width Muir (2018)
        compares with) and, in teacher mode with ``target_score``, doubles the
        width (up to 4 times the start) when the training rows themselves are
        fitted worse than the target, their error is the larger part of the
        held-out error, and new rows did not lower it (see Notes).

    activation : {"relu", "tanh"}, default="tanh"
        Hidden-layer activation; ``"relu"`` gives linear-threshold units.
        Smooth tanh units fit the sharp switches of competitive circuits in
        fewer L-BFGS iterations (see Notes), hence the default.

    output_activation : {"auto", "identity", "relu", "tanh"}, default="auto"
        Output-layer activation. ``"relu"`` represents the non-negative rates
        of linear-threshold networks (trained by ``"lbfgs"``, silent units as
        exact zeros; by ``"varpro"``, as zeros or small rates);
        ``"tanh"`` bounded signed rates. ``"auto"`` chooses ``"relu"`` when
        every training target is non-negative and ``"identity"`` otherwise.

    solver : {"auto", "varpro", "lbfgs", "adam"}, default="auto"
        ``"varpro"``: variable projection, full-batch L-BFGS-B
        (:func:`scipy.optimize.minimize`) on the hidden layer's weights alone,
        the output layer being solved exactly (a ridge regression) for every
        hidden layer it tries; it reaches a given score in several times
        fewer iterations than ``"lbfgs"``. Needs a linear output layer:
        ``"identity"``, or ``"relu"``, which then clips the linear solution at
        zero (it is the linear output's loss that is minimised, and recorded
        in ``loss_curve_``). ``"lbfgs"``: full-batch L-BFGS-B on all weights
        at once, through the output activation. ``"adam"``: mini-batch Adam, for large data
        sets and :meth:`partial_fit`. ``"auto"``: ``"varpro"``, except
        ``"lbfgs"`` for a tanh output and for a relu output where at least
        half of the training targets are exactly zero (silent units, as in a
        winner-take-all circuit: a linear output makes exact zeros only by
        cancellation). The choice made is ``solver_``.

    alpha : float, default=1e-5
        Strength of the L2 penalty on the weights (not the intercepts).

    batch_size : int or "auto", default="auto"
        Mini-batch size of ``"adam"``; ``"auto"`` is ``min(200, n_samples)``.
        Ignored by the full-batch solvers.

    learning_rate_init : float, default=1e-3
        Step size of ``"adam"``. Ignored by the full-batch solvers.

    max_iter : int, default=2000
        Maximum number of L-BFGS iterations, or of Adam epochs. Distilling a
        competitive circuit keeps improving slowly for thousands of L-BFGS
        iterations; with early stopping (on by default from 1,000 rows) the
        fit usually ends before the budget, when the held-out score stops
        improving.

    tol : float, default=1e-6
        Convergence tolerance. ``"varpro"`` and ``"lbfgs"`` stop when the
        largest component of the gradient (in the hidden weights, or in all
        weights) is ``<= tol`` (or the relative loss decrease stalls at
        machine precision); ``"adam"`` when the training loss has not
        improved by at least ``tol`` for ``n_iter_no_change`` consecutive
        epochs. With ``early_stopping``, all stop when the validation score
        has not improved for ``n_iter_no_change`` iterations, where an
        improvement removes at least 1 % of the unexplained variance
        ``1 - score`` left at the last improvement, and at least ``1e-4`` and
        ``tol`` of score.

    early_stopping : bool or "auto", default="auto"
        Hold out ``validation_fraction`` of the rows, track the validation
        score (variance-weighted :math:`R^2`, as :meth:`score`) after each
        iteration or epoch, stop when it has not improved (see ``tol``) for
        ``n_iter_no_change`` iterations, and keep the best weights. Works with
        every solver. ``"auto"`` turns it on for :meth:`fit` on 1,000 rows or
        more (on fewer, every row is needed for training), never for
        :meth:`partial_fit`.

    validation_fraction : float, default=0.1
        Fraction of rows held out when ``early_stopping=True``.

    n_iter_no_change : int or "auto", default="auto"
        Number of iterations (epochs) without improvement before stopping;
        see ``tol`` and ``early_stopping``. ``"auto"``: 10 Adam epochs, or
        100 L-BFGS iterations. Since an improvement must be a relative one,
        a fit that only creeps stops after about 100 iterations, whatever
        ``max_iter`` is.

    warm_start : bool, default=False
        Start :meth:`fit` from the previous solution (weights, scalers,
        output activation, and fitted teacher, fitted again if ``teacher``'s
        parameters changed) instead of a fresh one.

    teacher : RecurrentFixedPointTransformer, default=None
        Recurrent network whose fixed points are the targets (distillation).
        A clone is fitted on ``X`` and its ``solve`` results are the targets;
        rows that did not converge are left out with one
        :class:`~sklearn.exceptions.ConvergenceWarning` counting them (with
        the teacher's ``on_nonconvergence="raise"``,
        :class:`~rnnapprox.NonConvergenceError` is raised). With a
        teacher, ``y`` is ignored: as an intermediate pipeline step the
        approximator's ``fit`` receives the downstream target (class labels,
        say), which it must not learn. To train on fixed points you computed
        yourself, leave ``teacher=None`` and pass them as ``y``.

    target_score : float, default=None
        Teacher mode only: the held-out score (variance-weighted :math:`R^2`)
        to reach. ``fit(X)`` keeps back a quarter of the teacher-labelled rows
        of ``X`` (``validation_fraction`` if larger) and, while their score is
        below the target and ``max_teacher_rows`` allows, draws new inputs from
        the distribution of ``X`` concentrated where the approximator errs
        most, has the teacher solve them, and continues training (warm start).
        See Notes. ``None``: train once on the rows of ``X``. Needs a
        ``teacher``; :meth:`partial_fit` (one epoch on the rows given) does
        not take it.

    max_teacher_rows : int, default=20_000
        Budget of the target loop: the most rows the teacher solves in one
        :meth:`fit`, those of ``X`` included (so at least as many as ``X``
        has). When the target is not reached within it, one
        :class:`~sklearn.exceptions.ConvergenceWarning` names the score
        reached and what to change. Used only with ``target_score``.

    random_state : int, RandomState instance or None, default=None
        Seed of the weight initialisation, the mini-batch order and the
        validation split. An int makes ``fit`` deterministic.

    verbose : bool, default=False
        Print the loss after each iteration (epoch), and in teacher mode with
        ``target_score`` a line per round: rows, width, held-out and training
        scores, and what the next round does.

    Attributes
    ----------
    coefs_ : list of two ndarrays
        Weights ``W1`` of shape (n_features, hidden_layer_size) and ``W2``
        of shape (hidden_layer_size, n_outputs), acting on scaled inputs and
        giving scaled outputs (see Notes).

    intercepts_ : list of two ndarrays
        Biases ``b1`` of shape (hidden_layer_size,) and ``b2`` of shape
        (n_outputs,).

    input_mean_ : ndarray of shape (n_features,)
        Mean of the training inputs, subtracted before the hidden layer.

    input_scale_ : ndarray of shape (n_features,)
        Standard deviation of the training inputs (1 for constant features).

    target_offset_ : ndarray of shape (n_outputs,)
        Offset added to the network's outputs: the target mean for an
        identity output, zero for relu and tanh outputs.

    target_scale_ : ndarray of shape (n_outputs,)
        Positive factor multiplying the network's outputs: the target
        standard deviation (identity), root mean square (relu), or
        ``max(1, max |y|)`` (tanh).

    out_activation_ : str
        The output activation used, ``"auto"`` resolved.

    solver_ : str
        The solver used, ``"auto"`` resolved.

    n_iter_ : int
        Iterations (L-BFGS) or epochs (Adam) run by the last ``fit``; with
        ``partial_fit``, epochs run in total.

    loss_curve_ : list of float
        Training loss (scaled units, see Notes) after each iteration or epoch.

    validation_scores_ : list of float or None
        Validation score after each iteration when ``early_stopping=True``,
        else ``None``.

    best_validation_score_ : float or None
        Best validation score, whose weights were kept, when
        ``early_stopping=True``, else ``None``.

    n_features_in_ : int
        Number of features seen during :term:`fit`.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`. Defined only when `X`
        has feature names that are all strings.

    n_outputs_ : int
        Number of outputs (targets, or teacher units).

    teacher_ : RecurrentFixedPointTransformer
        The fitted clone of ``teacher``. Only set by distillation
        (``teacher`` given and ``y=None``).

    teacher_converged_ : ndarray of bool of shape (n_samples,)
        Which rows of the last distilled ``X`` reached a fixed point; the
        others were left out. With ``target_score``, a share of the rows that
        did is held out to measure the score. Only set by distillation.

    n_teacher_rows_ : int
        Number of rows of ``X`` that reached a fixed point, that is
        ``teacher_converged_.sum()`` (``distillation_["n_teacher_rows"]``
        counts every row the teacher solved, drawn rows included). Only set
        by distillation.

    hidden_layer_size_ : int
        Number of hidden units of the fitted network (differs from
        ``hidden_layer_size`` when that is ``"auto"``).

    distillation_ : dict
        What distillation did. Only set with a teacher. Keys: ``n_rounds``;
        per round ``validation_scores`` (held-out score, empty without
        ``target_score``), ``training_scores``, ``hidden_layer_sizes`` and
        ``n_training_rows``; ``n_teacher_rows`` (rows the teacher solved),
        ``n_rows_drawn`` (of those, new inputs), ``n_failed`` (rows without a
        fixed point, left out), ``target_reached`` (None without a target),
        ``teacher_time`` and ``training_time`` (seconds).

    See Also
    --------
    RecurrentFixedPointTransformer : Fixed points of a recurrent network.
    sklearn.neural_network.MLPRegressor : General multi-layer perceptron.

    Notes
    -----
    Inputs are standardised and targets scaled per output inside the
    estimator, ``x = (u - input_mean_) / input_scale_`` and
    ``y = (r - target_offset_) / target_scale_``, so raw inputs and raw
    fixed points go in and predictions come out in raw units. The network is

    .. math::

        h = f(x W_1 + b_1), \\qquad \\hat y = g(h W_2 + b_2),

    with ``f`` the hidden ``activation`` and ``g`` the output activation.
    Because relu and tanh targets are only divided by a positive factor, a
    relu output can predict silent units as exact zeros (trained by
    ``"lbfgs"`` it does; ``"varpro"`` clips a linear solution at zero, and
    silent units come out as zero or a small rate). Training minimises

    .. math::

        L = \\frac{1}{2Sq} \\sum_i w_i \\lVert \\hat y_i - y_i \\rVert^2
            + \\frac{\\alpha}{2S} \\left(\\lVert W_1 \\rVert_F^2
            + \\lVert W_2 \\rVert_F^2\\right), \\qquad S = \\sum_i w_i,

    with ``q`` the number of outputs and sample weights ``w_i`` (1 by
    default); integer weights are the same as repeated rows. The first term
    is half the mean squared error per output in scaled units, so the best
    constant prediction has a loss of at most 0.5 whatever the data. Weights
    start from Glorot-uniform draws (relu output biases shifted to be
    positive, so no output starts silent). ``"lbfgs"`` minimises ``L`` on
    the exact gradient; ``"varpro"`` minimises it over the hidden layer with
    the output layer solved exactly, for ``g`` the identity (a relu output
    clips that solution; see the user guide); Adam works on mini-batch
    estimates of the gradient.

    :meth:`predict` is two matrix products and two element-wise
    activations, so its cost per row is the same for every input, however
    long the recurrent network takes to settle.

    **Score.** :meth:`score` is the variance-weighted :math:`R^2`, the
    fraction of the total variance of the network's response that the
    approximation reproduces; the uniform mean of per-unit :math:`R^2`
    (scikit-learn's default) is dominated by rarely active units. The
    early-stopping and target scores are the same number.

    **Teacher mode with a target.** Each round scores the held-out teacher
    rows; if they are below ``target_score``, the training rows too, and the
    training error ``1 - training score`` is the larger part of the held-out
    error (more rows narrow only the rest, the gap between the two),
    ``hidden_layer_size="auto"`` doubles the width (not again once a doubling
    did not help); otherwise as many new inputs as there are training rows
    (up to the budget) are drawn by a smoothed bootstrap of ``X``: a training row
    (a quarter of them chosen in proportion to the current squared error on
    the row, the rest uniformly) plus Gaussian noise of Silverman's
    kernel-density bandwidth (0.2 to 0.5 of each feature's standard deviation
    for 3,000 rows of 1 to 10 features), clipped to the range of ``X``. So the
    draws follow the distribution of ``X`` where it is learned and crowd where
    it errs (near ties of a competitive circuit). The teacher solves them
    (rows that do not converge are left out and counted), they join the
    training rows (with the training rows' average weight), and training
    continues from the current weights for at most 200 L-BFGS iterations per
    round (``max_iter`` in the round that spends the last of the budget), with
    the held-out rows as its early-stopping set. Everything is deterministic
    for a fixed ``random_state``.

    **Precision and threads.** L-BFGS computes the loss and gradient in
    float32 once the largest matrix product has 1e6 multiply-adds or more
    (the optimiser's state stays float64): half the cost, and held-out
    scores within 1e-3 of float64's on the benchmark networks; without
    early stopping, a fit whose line search runs out of float32 resolution
    is finished in float64. ``"varpro"`` and ``"lbfgs"`` run their matrix
    products on one BLAS thread when the largest (with ``"varpro"``, the
    hidden layer's Gram matrix included) has fewer than 8e9 multiply-adds
    (4,000 rows, 100 hidden units and 88 outputs is 3.5e7; varpro on 16,000
    teacher rows and 480 hidden units 3.7e9): below that, on a 2-core
    machine, a second thread cost more than it saved (numpy's and scipy's
    OpenBLAS each keep spinning threads), 3 to 7 times the single-thread fit
    time on 4,000 rows even on an idle machine. Adam and prediction, on
    numpy's BLAS alone, do so below 2e9: next to numba's threads (a
    recurrent transformer in the same process) a second thread made
    prediction 30 times slower. Larger problems keep the caller's thread
    settings.

    Benchmarks on seven recurrent networks, against
    :class:`~sklearn.neural_network.MLPRegressor`, are in
    ``benchmarks/bench_distillation.py`` and the documentation's
    distillation page.

    References
    ----------
    Muir, D. R. (2018). Feedforward approximations to dynamic recurrent
    network architectures. *Neural Computation*, 30(2), 546-567.

    Kingma, D. P. & Ba, J. (2015). Adam: a method for stochastic
    optimization. *ICLR*.

    Examples
    --------
    >>> import numpy as np
    >>> from rnnapprox import FeedforwardApproximator
    >>> rng = np.random.RandomState(0)
    >>> U = rng.uniform(size=(200, 2))
    >>> R = np.maximum(U @ [[1.0, -1.0], [-1.0, 1.0]], 0.0)  # two competing rates
    >>> ff = FeedforwardApproximator(hidden_layer_size=10, random_state=0).fit(U, R)
    >>> ff.out_activation_
    'relu'
    >>> ff.predict(U[:3]).shape
    (3, 2)
    >>> round(ff.score(U, R), 2)
    1.0

    Distillation: the targets are the fixed points of a soft winner-take-all
    circuit, computed by the teacher.

    >>> from rnnapprox import RecurrentFixedPointTransformer
    >>> from rnnapprox.networks import soft_wta
    >>> net = soft_wta(n_partitions=3, units_per_partition=4, n_inhibitory=2, random_state=0)
    >>> teacher = RecurrentFixedPointTransformer(network=net)
    >>> U = rng.uniform(size=(300, 3))
    >>> ff = FeedforwardApproximator(
    ...     hidden_layer_size=20, teacher=teacher, max_iter=500, tol=1e-4, random_state=0
    ... )
    >>> ff.fit(U).n_teacher_rows_
    300
    >>> ff.predict(U[:2]).shape
    (2, 14)
    >>> ff.score(U) > 0.9  # without y: against the teacher's fixed points
    True
    """

    _parameter_constraints: dict = {
        "hidden_layer_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "activation": [StrOptions({"relu", "tanh"})],
        "output_activation": [StrOptions({"auto", "identity", "relu", "tanh"})],
        "solver": [StrOptions({"auto", "varpro", "lbfgs", "adam"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "early_stopping": ["boolean", StrOptions({"auto"})],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "warm_start": ["boolean"],
        "teacher": [HasMethods(["fit", "solve"]), None],
        "target_score": [Interval(Real, 0, 1, closed="right"), None],
        "max_teacher_rows": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        hidden_layer_size=100,
        *,
        activation="tanh",
        output_activation="auto",
        solver="auto",
        alpha=1e-5,
        batch_size="auto",
        learning_rate_init=1e-3,
        max_iter=2000,
        tol=1e-6,
        early_stopping="auto",
        validation_fraction=0.1,
        n_iter_no_change="auto",
        warm_start=False,
        teacher=None,
        target_score=None,
        max_teacher_rows=20_000,
        random_state=None,
        verbose=False,
    ):
        self.hidden_layer_size = hidden_layer_size
        self.activation = activation
        self.output_activation = output_activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.tol = tol
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.warm_start = warm_start
        self.teacher = teacher
        self.target_score = target_score
        self.max_teacher_rows = max_teacher_rows
        self.random_state = random_state
        self.verbose = verbose

    # The teacher is an estimator given by the user: let its own fit validate it.
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None, sample_weight=None):
        """Fit the network to inputs and fixed-point responses.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows, in raw units.

        y : array-like of shape (n_samples,) or (n_samples, n_outputs), default=None
            Targets, in raw units (fixed-point rates). Required unless
            ``teacher`` is set; with a teacher it is ignored (the targets are
            the teacher's fixed points of ``X``; see ``teacher``).

        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative row weights; integer weights act as repeated rows.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight, incremental=False)

    def _check_partial_fit(self):
        if self.solver != "adam":
            raise AttributeError(
                f"partial_fit is only available with solver='adam' (a stochastic "
                f"solver); this estimator has solver={self.solver!r}."
            )
        return True

    @available_if(_check_partial_fit)
    @_fit_context(prefer_skip_nested_validation=False)
    def partial_fit(self, X, y=None, sample_weight=None):
        """Update the network with one Adam epoch over the given rows.

        Only available with ``solver="adam"``. The first call fixes the
        scalers and the output activation from its rows and, when distilling,
        fits the teacher (fitted again if ``teacher``'s parameters change).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows, in raw units.

        y : array-like of shape (n_samples,) or (n_samples, n_outputs), default=None
            Targets; ignored with a ``teacher``, as in :meth:`fit`.

        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative row weights.

        Returns
        -------
        self : object
            The updated estimator.
        """
        if self.early_stopping is True:
            raise ValueError("partial_fit does not support early_stopping=True.")
        if self.target_score is not None:
            raise ValueError(
                "partial_fit trains one epoch on the rows it is given and draws none, so it "
                f"cannot pursue target_score={self.target_score}; use fit, or set "
                "target_score=None."
            )
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X):
        """Predict fixed-point responses in one feedforward pass.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows, in raw units.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            Predicted responses in raw units; 1-D when ``y`` was 1-D at fit.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        # Small products on one BLAS thread: next to numba's threads (a recurrent
        # transformer in the same process) two BLAS threads made predict 30 times slower.
        with np.errstate(over="ignore", invalid="ignore"), _blas_limit(
            X.shape, self.hidden_layer_size_, self.n_outputs_
        ):
            y_pred = self._forward(X)
        bad = ~np.isfinite(y_pred).all(axis=1)
        if bad.any():
            rows = np.flatnonzero(bad)
            shown = ", ".join(map(str, rows[:10])) + (", ..." if rows.size > 10 else "")
            raise ValueError(
                f"The prediction overflowed for {rows.size} rows (rows {shown}): inputs of "
                f"magnitude up to "
                f"{np.abs(X[rows]).max():.3g} are too large for float64 after the input "
                "scaling; rescale X."
            )
        return y_pred.ravel() if self._target_ndim == 1 else y_pred

    def transform(self, X):
        """Approximate fixed-point responses, as a pipeline step: what :meth:`predict` returns.

        Lets a fitted approximator stand where its
        :class:`~rnnapprox.RecurrentFixedPointTransformer` stood in a
        pipeline.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows, in raw units.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_outputs)
            :meth:`predict`'s responses, always 2-D (a 1-D ``y`` at fit gives
            one column).
        """
        y_pred = self.predict(X)
        return y_pred.reshape(y_pred.shape[0], -1)

    def score(self, X, y=None, sample_weight=None):
        """Variance-weighted :math:`R^2` of the predictions: the fraction of the response variance explained.

        .. math::

            R^2 = 1 - \\frac{\\sum_{i,j} w_i (y_{ij} - \\hat y_{ij})^2}
                              {\\sum_{i,j} w_i (y_{ij} - \\bar y_j)^2},

        that is :func:`~sklearn.metrics.r2_score` with
        ``multioutput="variance_weighted"``: each unit counts in proportion to
        its variance. The uniform average of per-unit :math:`R^2` (scikit-learn's
        default for multi-output regressors) lets a unit active on a handful of
        rows, whose own :math:`R^2` can be far below zero over a tiny variance,
        dominate the mean; the variance-weighted score measures how much of
        the network's response is reproduced. For one output both agree.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input rows.

        y : array-like of shape (n_samples,) or (n_samples, n_outputs), default=None
            True responses. ``None`` scores against the fitted teacher's fixed
            points of ``X`` (only after distillation); rows where the teacher
            does not converge are left out with a
            :class:`~sklearn.exceptions.ConvergenceWarning` (a teacher with
            ``on_nonconvergence="raise"`` raises instead).

        sample_weight : array-like of shape (n_samples,), default=None
            Row weights.

        Returns
        -------
        score : float
            Variance-weighted :math:`R^2` (1 is perfect; 0 is the constant mean).
        """
        check_is_fitted(self)
        if y is None:
            if not hasattr(self, "teacher_"):
                raise ValueError(
                    "score needs y (the true responses): this approximator was fitted on "
                    "given targets, not distilled from a teacher, so there is nothing to score "
                    "against; pass y."
                )
            # The teacher was fitted on the validated array (no feature names).
            X_array = validate_data(self, X, reset=False, dtype=np.float64)
            y, converged = teacher_targets(self.teacher_, X_array)
            if not converged.any():
                raise ValueError(
                    f"The teacher reached a fixed point for none of the {converged.size} rows; "
                    "there is nothing to score against."
                )
            if not converged.all():
                warnings.warn(
                    f"The teacher did not reach a fixed point for {(~converged).sum()} of "
                    f"{converged.size} rows; they were left out of the score.",
                    ConvergenceWarning,
                )
                X, y = _safe_indexing(X, converged), y[converged]
                if sample_weight is not None:
                    sample_weight = np.asarray(sample_weight)[converged]
        return variance_weighted_r2(y, self.predict(X), sample_weight)

    @property
    def _n_features_out(self):
        """Number of transformed output features (the mixin's feature names use it)."""
        return self.n_outputs_

    def __sklearn_is_fitted__(self):
        # A fit that fails after validating X has set n_features_in_, not the network.
        return hasattr(self, "coefs_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags

    # -- fitting --------------------------------------------------------------------

    def _fit(self, X, y, sample_weight, incremental):
        # The generator is state of one fit only: fitted estimators hold arrays and scalars.
        self._rng = check_random_state(self.random_state)
        try:
            return self._fit_with_rng(X, y, sample_weight, incremental)
        finally:
            del self._rng

    def _fit_with_rng(self, X, y, sample_weight, incremental):
        first_fit = not hasattr(self, "coefs_") or not (incremental or self.warm_start)
        if self.teacher is not None:
            # Distillation: the targets are the teacher's, whatever y is (in a pipeline,
            # y is the downstream target, which an intermediate step must not fit).
            return self._fit_teacher(X, sample_weight, first_fit, incremental)
        if self.target_score is not None:
            raise ValueError(
                f"target_score={self.target_score} needs a teacher, which labels the new rows "
                "drawn to reach it; set teacher to a RecurrentFixedPointTransformer, or "
                "target_score=None to fit the given y."
            )
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None: "
                "pass the fixed-point responses as y, or set teacher to a "
                "RecurrentFixedPointTransformer to distil its fixed points."
            )
        X, Y = validate_data(
            self, X, y, reset=first_fit, multi_output=True, y_numeric=True, dtype=np.float64
        )
        if Y.dtype.kind not in "biuf":
            raise ValueError(f"y must be numeric; got an array of dtype {Y.dtype}.")
        sample_weight = _check_sample_weight(sample_weight, X, ensure_non_negative=True)
        for name in ("teacher_", "teacher_converged_", "n_teacher_rows_", "distillation_"):
            if hasattr(self, name):
                delattr(self, name)  # left from an earlier distillation
        self._train(X, Y, sample_weight, initialize=first_fit, incremental=incremental)
        return self

    def _fit_teacher(self, X, sample_weight, first_fit, incremental):
        n_rows = _num_samples(X)
        if self.target_score is not None and not incremental and n_rows > self.max_teacher_rows:
            raise ValueError(
                f"X has {n_rows} rows, more than max_teacher_rows={self.max_teacher_rows}, "
                "the teacher's budget for one fit, the rows of X included; raise "
                "max_teacher_rows above the rows of X (new rows are drawn from what is left) "
                "or pass fewer rows."
            )
        X = validate_data(self, X, reset=first_fit, dtype=np.float64)
        sample_weight = _check_sample_weight(sample_weight, X, ensure_non_negative=True)
        if hasattr(self, "distillation_"):
            del self.distillation_  # a fit that fails leaves no record of an earlier one
        # The user's teacher, hashed as given: a fitted clone's parameters may differ (a
        # RandomState it drew from, arrays copied contiguous).
        teacher_hash = joblib.hash(self.teacher.get_params(deep=True))
        if first_fit or getattr(self, "_teacher_hash", None) != teacher_hash:
            teacher = clone(self.teacher)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                teacher.fit(X)
        else:
            teacher = self.teacher_
        loop = DistillationLoop(self, self._rng, teacher)
        self._n_given_rows = X.shape[0]
        X, Y, converged = loop.label(X)
        if not first_fit:
            self._check_n_outputs(Y.shape[1])  # before a changed teacher replaces the old
        self.teacher_, self._teacher_hash = teacher, teacher_hash
        sample_weight = sample_weight[converged]
        self.teacher_converged_ = converged
        self.n_teacher_rows_ = int(converged.sum())
        n_failed = converged.size - self.n_teacher_rows_
        if self.n_teacher_rows_ == 0:
            raise ValueError(
                f"The teacher reached a fixed point for none of the {converged.size} rows, so "
                "there is nothing to distil; check its network's stability, or raise its "
                "max_steps or tol."
            )
        if n_failed:
            warnings.warn(
                f"The teacher did not reach a fixed point for {n_failed} of {converged.size} "
                "rows; they were left out of training (see teacher_converged_).",
                ConvergenceWarning,
            )
        if self.target_score is None or incremental:
            loop.train(X, Y, sample_weight, initialize=first_fit, incremental=incremental)
            score = variance_weighted_r2(Y, self._forward(X), sample_weight)
            self.distillation_ = loop.record([], [score], [self.hidden_layer_size_],
                                             [X.shape[0]], None)
            return self
        X, X_val, Y, Y_val, sample_weight, weight_val = train_test_split(
            X,
            Y,
            sample_weight,
            test_size=max(self.validation_fraction, MIN_HELD_OUT_FRACTION),
            random_state=self._rng,
        )
        _check_validation_split(weight_val, sample_weight)
        _, _, self.distillation_ = loop.run(
            X, Y, sample_weight, (X_val, Y_val, weight_val), initialize=first_fit
        )
        return self

    def _patience(self):
        """Iterations (epochs) without improvement before training stops."""
        if self.n_iter_no_change != "auto":
            return self.n_iter_no_change
        return 10 if self.solver_ == "adam" else _LBFGS_PATIENCE

    def _uses_early_stopping(self, n_samples):
        if self.early_stopping == "auto":
            return n_samples >= _AUTO_EARLY_STOPPING_ROWS
        return self.early_stopping

    def _train(
        self, X, Y, sample_weight, *, initialize, incremental=False, validation=None, max_iter=None
    ):
        """Train on raw ``X, Y``; warm (from the current weights) unless ``initialize``.

        ``validation``, raw ``(X_val, Y_val, weight_val)``, is the held-out set
        that stops training and chooses the weights kept; without it one is
        split off ``X`` when early stopping is on. ``max_iter`` overrides the
        parameter (the warm rounds of distillation take fewer).
        """
        max_iter = self.max_iter if max_iter is None else max_iter
        rng = self._rng
        target_ndim = Y.ndim
        Y = Y.reshape(Y.shape[0], -1)
        if self.solver == "varpro" and self.output_activation == "tanh":
            raise ValueError(
                "solver='varpro' solves a linear output layer exactly, so it needs "
                "output_activation 'identity' or 'relu' (or 'auto'), not 'tanh'; use "
                "solver='lbfgs' for a tanh output."
            )
        if initialize:
            self._initialize(X, Y, sample_weight, target_ndim, rng)
        else:
            self._check_n_outputs(Y.shape[1])
        self.solver_ = self._resolve_solver(Y, sample_weight, initialize)
        if initialize or not incremental:
            self.n_iter_ = 0
            self.loss_curve_ = []

        if validation is None and not incremental and self._uses_early_stopping(X.shape[0]):
            X, X_val, Y, Y_val, sample_weight, weight_val = train_test_split(
                X, Y, sample_weight, test_size=self.validation_fraction, random_state=rng
            )
            _check_validation_split(weight_val, sample_weight)
            validation = (X_val, Y_val, weight_val)
        self.validation_scores_ = None if validation is None else []
        self.best_validation_score_ = None if validation is None else -np.inf
        monitor = _TrainingMonitor(self, validation, self._patience())

        X_scaled = (X - self.input_mean_) / self.input_scale_
        Y_scaled = (Y - self.target_offset_) / self.target_scale_
        # alpha/(2S) ||W||^2 with S the total weight, also for Adam's mini-batches.
        l2 = self.alpha / sample_weight.sum()
        with _blas_limit(X.shape, self.hidden_layer_size_, self.n_outputs_, self.solver_):
            if self.solver_ in ("lbfgs", "varpro"):
                fit = self._fit_lbfgs if self.solver_ == "lbfgs" else self._fit_varpro
                fit(X_scaled, Y_scaled, sample_weight / sample_weight.sum(), l2, monitor, max_iter)
            else:
                self._fit_adam(
                    X_scaled, Y_scaled, sample_weight, l2, monitor, incremental, rng, max_iter
                )
        if self.validation_scores_:  # (no iteration, no score: keep the weights as they are)
            self._set_params_vector(monitor.best_params)

        if not all(np.isfinite(p).all() for p in self.coefs_ + self.intercepts_):
            raise ValueError(
                "The solver produced non-finite weights; lower learning_rate_init or "
                "check the inputs for extreme values."
            )

    def _check_n_outputs(self, n_outputs):
        """A warm training keeps the outputs of the network it starts from."""
        if n_outputs != self.n_outputs_:
            raise ValueError(
                f"The targets (columns of y, or the teacher's units) number {n_outputs}, but "
                f"{type(self).__name__} was fitted with {self.n_outputs_} outputs; refit "
                "without warm_start to change them."
            )

    def _initialize(self, X, Y, sample_weight, target_ndim, rng):
        weighted_targets = Y[sample_weight > 0]
        non_negative = np.all(weighted_targets >= 0)
        if self.output_activation == "relu" and not non_negative:
            raise ValueError(
                f"output_activation='relu' predicts no negative values, but "
                f"{np.sum(weighted_targets < 0)} targets are negative (down to "
                f"{weighted_targets.min():.4g}); use 'identity' or 'auto' "
                "(which chooses relu only for non-negative targets)."
            )
        self.n_outputs_ = Y.shape[1]
        self._target_ndim = target_ndim
        self.out_activation_ = self.output_activation
        if self.output_activation == "auto":
            self.out_activation_ = "relu" if non_negative else "identity"

        mean, std = _weighted_mean_and_std(X, sample_weight)
        self.input_mean_ = mean
        self.input_scale_ = _nonzero_scale(std, np.abs(X[sample_weight > 0]).max(axis=0))
        self.target_offset_, self.target_scale_ = _target_scaling(
            Y, sample_weight, self.out_activation_
        )

        auto = self.hidden_layer_size == "auto"
        self.hidden_layer_size_ = self.n_outputs_ if auto else self.hidden_layer_size
        layer_sizes = [X.shape[1], self.hidden_layer_size_, self.n_outputs_]
        self.coefs_, self.intercepts_ = [], []
        for fan_in, fan_out in zip(layer_sizes[:-1], layer_sizes[1:]):
            bound = np.sqrt(6.0 / (fan_in + fan_out))  # Glorot & Bengio (2010)
            self.coefs_.append(rng.uniform(-bound, bound, (fan_in, fan_out)))
            self.intercepts_.append(rng.uniform(-bound, bound, fan_out))
        if self.out_activation_ == "relu":
            # Start every relu output in its active range, so none is born silent.
            self.intercepts_[1] = np.abs(self.intercepts_[1]) + 0.5
        self._adam_state = None

    def _resolve_solver(self, Y, sample_weight, initialize):
        """The solver of this training: ``solver``, with ``"auto"`` resolved.

        A warm ``"auto"`` training (more rows of a distillation, say) keeps the
        choice of the first, so the solver does not change under a fit.
        """
        if self.solver != "auto":
            return self.solver
        if not initialize and getattr(self, "solver_", None) in ("varpro", "lbfgs"):
            return self.solver_
        if self.out_activation_ == "tanh":
            return "lbfgs"
        if self.out_activation_ == "relu":
            silent = np.average(np.mean(Y == 0, axis=1), weights=sample_weight)
            if silent >= _SILENT_TARGET_FRACTION:
                return "lbfgs"
        return "varpro"

    def _grow_hidden(self, width, rng):
        """Widen the hidden layer to ``width`` units without changing the network's function.

        New units get Glorot-uniform input weights and zero output weights, so
        the next (warm) training starts from the same predictions (with
        ``"varpro"``, from the output layer re-solved for the wider hidden
        layer, whose training loss is no larger).
        """
        n_new = width - self.hidden_layer_size_
        bound = np.sqrt(6.0 / (self.n_features_in_ + width))
        w1, w2 = self.coefs_
        b1, b2 = self.intercepts_
        self.coefs_ = [
            np.hstack([w1, rng.uniform(-bound, bound, (self.n_features_in_, n_new))]),
            np.vstack([w2, np.zeros((n_new, self.n_outputs_))]),
        ]
        self.intercepts_ = [np.concatenate([b1, rng.uniform(-bound, bound, n_new)]), b2]
        self.hidden_layer_size_ = width
        self._adam_state = None

    def _set_params_vector(self, params):
        w1, b1, w2, b2 = unpack(
            params, self.n_features_in_, self.hidden_layer_size_, self.n_outputs_
        )
        self.coefs_ = [w1.copy(), w2.copy()]
        self.intercepts_ = [b1.copy(), b2.copy()]

    def _minimize(self, make_objective, start, set_params, monitor, max_iter, shape):
        """L-BFGS-B from ``start`` on the objective ``make_objective(dtype)`` builds.

        The objective (loss and gradient of a flat vector) is computed in the
        working precision of a problem of ``shape`` (rows x features). In
        float32 and without early stopping, a fit that L-BFGS itself ends
        before ``max_iter`` (converged, or its loss no longer decreasing at
        float32 resolution) is finished in float64 with the iterations left.
        ``set_params`` stores a vector's weights on the estimator, after every
        iteration for ``monitor`` and at the end.
        """
        stopped_early = False

        def callback(intermediate_result):
            nonlocal stopped_early
            set_params(intermediate_result.x)
            if monitor.end_iteration(intermediate_result.fun) and monitor.validation is not None:
                stopped_early = True
                raise StopIteration

        def run(dtype, start, iterations):
            return scipy.optimize.minimize(
                make_objective(dtype),
                start,
                method="L-BFGS-B",
                jac=True,
                callback=callback,
                options={
                    "maxiter": iterations,
                    "maxfun": 10 * iterations,
                    "maxcor": _LBFGS_MEMORY,
                    "gtol": self.tol,
                },
            )

        dtype = _working_dtype(shape, self.hidden_layer_size_, self.n_outputs_)
        result = run(dtype, start, max_iter)
        # With a validation set, the held-out score, not the loss's last digits, says
        # when to stop: a float32 line search that gives up ends the fit too.
        if (dtype != np.float64 and monitor.validation is None and result.status != 1
                and result.nit < max_iter):
            result = run(np.float64, result.x, max_iter - result.nit)
        set_params(result.x)
        if result.status == 1 and not stopped_early:
            warnings.warn(
                f"L-BFGS reached max_iter={max_iter} iterations without converging "
                f"(tol={self.tol}); raise max_iter or tol.",
                ConvergenceWarning,
            )

    def _fit_lbfgs(self, X, Y, row_weights, l2, monitor, max_iter):
        """L-BFGS on all weights, through the output activation."""
        hidden, activation, out_activation = (
            self.hidden_layer_size_, self.activation, self.out_activation_
        )

        def make_objective(dtype):
            arrays = X.astype(dtype), Y.astype(dtype), row_weights.astype(dtype)
            buffers = Buffers(dtype)

            def objective(params):
                return joint_loss_and_gradient(
                    params, *arrays, l2, hidden, activation, out_activation, buffers
                )

            return objective

        start = pack(self.coefs_, self.intercepts_)
        self._minimize(make_objective, start, self._set_params_vector, monitor, max_iter, X.shape)

    def _fit_varpro(self, X, Y, row_weights, l2, monitor, max_iter):
        """L-BFGS on the hidden weights, the output layer solved exactly (variable projection).

        The output layer is the ridge solution for a linear output; a relu
        output then clips it at zero, which for non-negative targets never
        increases an error.
        """
        objective = None

        def make_objective(dtype):
            nonlocal objective
            objective = ProjectedLoss(
                X.astype(dtype), Y.astype(dtype), row_weights.astype(dtype), l2,
                self.hidden_layer_size_, self.activation,
            )
            return objective

        def set_params(hidden_params):
            w1, b1 = unpack_hidden(hidden_params, self.n_features_in_, self.hidden_layer_size_)
            w2, b2 = objective.output_layer(hidden_params)
            self.coefs_ = [w1.copy(), w2.copy()]
            self.intercepts_ = [b1.copy(), b2.copy()]

        start = np.concatenate([self.coefs_[0].ravel(), self.intercepts_[0]])
        self._minimize(make_objective, start, set_params, monitor, max_iter, X.shape)

    def _fit_adam(self, X, Y, sample_weight, l2, monitor, incremental, rng, max_iter):
        params = pack(self.coefs_, self.intercepts_)
        if not incremental or self._adam_state is None:
            self._adam_state = {"step": 0, "m": np.zeros_like(params), "v": np.zeros_like(params)}
        state = self._adam_state
        n_samples = X.shape[0]
        batch_size = min(200 if self.batch_size == "auto" else self.batch_size, n_samples)
        total_weight = sample_weight.sum()
        buffers = Buffers()

        stopped = False
        for _ in range(1 if incremental else max_iter):
            order = rng.permutation(n_samples)
            epoch_loss = 0.0
            for batch in gen_batches(n_samples, batch_size):
                rows = order[batch]
                batch_weight = sample_weight[rows]
                batch_total = batch_weight.sum()
                if batch_total == 0:
                    continue
                loss, gradient = joint_loss_and_gradient(
                    params, X[rows], Y[rows], batch_weight / batch_total, l2,
                    self.hidden_layer_size_, self.activation, self.out_activation_, buffers,
                )
                epoch_loss += loss * batch_total / total_weight
                state["step"] += 1
                state["m"] += (1.0 - _ADAM_BETA_1) * (gradient - state["m"])
                state["v"] += (1.0 - _ADAM_BETA_2) * (gradient**2 - state["v"])
                step_size = (
                    self.learning_rate_init
                    * np.sqrt(1.0 - _ADAM_BETA_2 ** state["step"])
                    / (1.0 - _ADAM_BETA_1 ** state["step"])
                )
                params -= step_size * state["m"] / (np.sqrt(state["v"]) + _ADAM_EPSILON)
            self._set_params_vector(params)
            if monitor.end_iteration(epoch_loss) and not incremental:
                stopped = True
                break
        if not incremental and not stopped:
            warnings.warn(
                f"Adam reached max_iter={max_iter} epochs without converging "
                f"(tol={self.tol}); raise max_iter or tol.",
                ConvergenceWarning,
            )

    # -- prediction -----------------------------------------------------------------

    def _folded_layers(self):
        """The network on raw units: ``(W1, b1, W2, b2, scale, offset)``.

        The input standardisation is folded into the first layer and, for
        identity and relu outputs (where a positive factor commutes with the
        activation), the target scaling into the second (``scale`` and
        ``offset`` None); a tanh output is followed by ``* scale + offset``.
        Used by :meth:`predict` and by the ONNX export.
        """
        (w1, w2), (b1, b2) = self.coefs_, self.intercepts_
        first = w1 / self.input_scale_[:, np.newaxis]
        first_bias = b1 - (self.input_mean_ / self.input_scale_) @ w1
        if self.out_activation_ == "tanh":
            return first, first_bias, w2, b2, self.target_scale_, self.target_offset_
        # relu outputs have a zero offset, so it passes through the activation.
        second_bias = b2 * self.target_scale_ + self.target_offset_
        return first, first_bias, w2 * self.target_scale_, second_bias, None, None

    def _forward(self, X):
        """Raw-unit predictions for validated raw inputs: two matrix products."""
        first, first_bias, second, second_bias, scale, offset = self._folded_layers()
        hidden = X @ first
        hidden += first_bias
        activate(self.activation, hidden)
        output = hidden @ second
        output += second_bias
        if scale is None:
            return activate(self.out_activation_, output)
        return np.tanh(output, out=output) * scale + offset
