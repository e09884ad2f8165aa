"""Distillation: labelling inputs with a teacher, and the teacher-driven sampling loop.

The estimator (:mod:`rnnapprox._feedforward`) owns the network and its training;
this module owns what the teacher adds: its fixed points as targets, which rows
to leave out, where to draw new inputs, and when to stop asking.
"""

import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import r2_score

from ._recurrent import NonConvergenceError, _describe_failures

# Warm training rounds (after new rows or hidden units) start near a solution: they
# get at most this many iterations (and stop earlier when the held-out score stalls),
# which bounds the cost of a round. The round that spends the last of the budget gets
# max_iter: no later round of new rows continues its training.
_WARM_ROUND_ITERATIONS = 200
# Each round draws as many new rows as there are training rows (up to the budget):
# doubling reaches a given number of rows in few rounds, each a warm training.
_DRAW_FACTOR = 1.0
# A round "stalls" when it removed less than this fraction of the unexplained
# variance 1 - score: of the training score, before the width may grow; of the
# held-out score, after a growth, which then is not repeated.
_STALL_FRACTION = 0.1
# Share of the new rows whose seeds are chosen in proportion to the current
# squared error (the rest uniformly, so that the whole distribution of X stays covered).
# A quarter reached 0.99 held-out on the 5-partition WTA where a half stalled at 0.9897:
# too many rows at the ties skew the training rows away from the distribution of X.
_ERROR_SHARE = 0.25
# With hidden_layer_size="auto", the width doubles when training rows are fitted
# worse than the target, up to this multiple of the starting width.
_MAX_WIDTH_FACTOR = 4
# Share of the teacher-labelled rows of X kept back to measure the score against
# target_score (validation_fraction if larger): the target is judged on enough rows
# that its estimate is not at the mercy of a few near ties.
MIN_HELD_OUT_FRACTION = 0.25


def teacher_targets(teacher, X):
    """The teacher's fixed points of ``X`` and which rows reached one.

    Returns ``(outputs, converged)``: ``outputs`` float64 of shape
    (n_samples, n_outputs), ``converged`` bool of shape (n_samples,), False
    also where an output is not finite. The teacher's own non-convergence
    warning is silenced: callers count the rows and warn once. A teacher with
    ``on_nonconvergence="raise"`` raises
    :class:`~rnnapprox.NonConvergenceError` instead, as its ``transform`` would.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        result = teacher.solve(X)
    outputs = np.asarray(result.outputs, dtype=np.float64)
    converged = np.asarray(result.converged, dtype=bool) & np.isfinite(outputs).all(axis=1)
    if getattr(teacher, "on_nonconvergence", None) == "raise" and not converged.all():
        if result.converged.all():
            failures = (f"{int((~converged).sum())} rows reached a fixed point beyond the range "
                        f"of {outputs.dtype}.")
        else:
            failures = _describe_failures(result, teacher.max_steps, teacher.tol)
        raise NonConvergenceError(
            failures + " Raised because the teacher's on_nonconvergence is 'raise'; with "
            "'warn' such rows are left out of distillation and counted."
        )
    return outputs, converged


def variance_weighted_r2(Y, Y_pred, sample_weight=None):
    """Variance-weighted :math:`R^2`: the fraction of the total response variance explained."""
    return float(r2_score(Y, Y_pred, sample_weight=sample_weight, multioutput="variance_weighted"))


def silverman_factor(n_rows, n_features):
    """Silverman's rule-of-thumb bandwidth of a Gaussian kernel density estimate, in standard deviations."""
    return (n_rows * (n_features + 2) / 4.0) ** (-1.0 / (n_features + 4))


def draw_inputs(X, row_errors, n_new, rng):
    """Draw ``n_new`` inputs from the distribution of ``X``, concentrated where errors are large.

    A smoothed bootstrap: each new row is a row of ``X`` (a share ``_ERROR_SHARE``
    of them chosen with probability proportional to ``row_errors``, the others
    uniformly) plus Gaussian noise, clipped to the range of ``X``. The noise has
    Silverman's rule-of-thumb bandwidth for a Gaussian kernel density estimate
    of ``X``, ``(4 / (d + 2))^(1 / (d + 4)) n^(-1 / (d + 4))`` times each
    feature's standard deviation (``n`` rows, ``d`` features; Silverman, 1986,
    eq. 4.14), so the uniformly seeded rows are draws from that estimate of the
    distribution of ``X``: 0.2 standard deviations for 3,000 rows of one
    feature, 0.5 for ten, whose rows lie far apart.
    """
    n_rows, n_features = X.shape
    bandwidth = silverman_factor(n_rows, n_features)
    n_targeted = int(round(_ERROR_SHARE * n_new))
    total_error = row_errors.sum()
    if total_error <= 0 or not np.isfinite(total_error):
        n_targeted = 0
    seeds = rng.randint(0, n_rows, size=n_new)
    if n_targeted:
        seeds[:n_targeted] = rng.choice(n_rows, size=n_targeted, p=row_errors / total_error)
    noise = rng.standard_normal((n_new, n_features)) * (bandwidth * X.std(axis=0))
    return np.clip(X[seeds] + noise, X.min(axis=0), X.max(axis=0))


def _stalled(scores):
    """Whether the last round removed less than ``_STALL_FRACTION`` of the unexplained variance."""
    if len(scores) < 2:
        return False
    return scores[-1] - scores[-2] < _STALL_FRACTION * (1.0 - scores[-2])


def _short_of_capacity(scores, train_scores, target, grew):
    """Whether more hidden units, rather than more rows, should close the gap to ``target``.

    The held-out error ``1 - score`` is the training error ``1 - train_score``
    plus the generalisation gap ``train_score - score``. New rows narrow the gap;
    only capacity lowers the training error. So: grow when the training rows
    themselves are fitted worse than the target, their error is the larger part,
    and either the last round was a growth (that helped: the caller checks) or it
    added rows and did not lower the training error by a tenth (a training error
    that still falls is the optimiser's, not the width's).
    """
    score, train_score = scores[-1], train_scores[-1]
    return (
        train_score < target
        and 1.0 - train_score > train_score - score
        and (grew or _stalled(train_scores))
    )


class DistillationLoop:
    """Train on teacher rows until a held-out score reaches a target, or the budget ends.

    ``estimator`` is a :class:`~rnnapprox.FeedforwardApproximator`, whose
    ``_train`` is the training step (warm unless ``initialize``) and
    ``_grow_hidden`` widens its hidden layer without changing its function;
    ``teacher`` is the fitted transformer that labels the rows.
    """

    def __init__(self, estimator, rng, teacher):
        self.estimator = estimator
        self.rng = rng
        self.teacher = teacher
        self.teacher_time = 0.0
        self.training_time = 0.0
        self.n_failed = 0
        self.n_solved = 0

    def label(self, X):
        """Teacher targets of ``X``; rows without a fixed point are dropped and counted."""
        start = time.perf_counter()
        outputs, converged = teacher_targets(self.teacher, X)
        self.teacher_time += time.perf_counter() - start
        self.n_solved += X.shape[0]
        self.n_failed += int((~converged).sum())
        return X[converged], outputs[converged], converged

    def _say(self, message):
        """Progress of the rounds, printed with the estimator's ``verbose``."""
        if self.estimator.verbose:
            print(message, flush=True)

    def train(self, *args, **kwargs):
        start = time.perf_counter()
        self.estimator._train(*args, **kwargs)
        self.training_time += time.perf_counter() - start

    def run(self, X, Y, sample_weight, validation, initialize=True):
        """The sampling rounds; returns the record stored as ``distillation_``."""
        est, rng = self.estimator, self.rng
        X_val, Y_val, w_val = validation
        grows = est.hidden_layer_size == "auto"
        warm_iter = min(_WARM_ROUND_ITERATIONS, est.max_iter)
        scores, train_scores, widths, rows = [], [], [], []
        growth_helped = True  # no growth yet
        with warnings.catch_warnings():
            # One warning at the end says whether the target was reached.
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.train(X, Y, sample_weight, validation=validation, initialize=initialize)
            width_cap = _MAX_WIDTH_FACTOR * est.hidden_layer_size_
            while True:
                scores.append(variance_weighted_r2(Y_val, est._forward(X_val), w_val))
                predicted = est._forward(X)
                train_scores.append(variance_weighted_r2(Y, predicted, sample_weight))
                widths.append(est.hidden_layer_size_)
                rows.append(X.shape[0])
                self._say(
                    f"Distillation round {len(scores)}: {rows[-1]} training rows, {widths[-1]} "
                    f"hidden units, held-out score {scores[-1]:.4f}, training score "
                    f"{train_scores[-1]:.4f} (target {est.target_score})"
                )
                if scores[-1] >= est.target_score:
                    break
                remaining = est.max_teacher_rows - self.n_solved
                grew = len(widths) > 1 and widths[-1] > widths[-2]
                if grew:
                    # A growth that did not move the held-out score says the map is not short
                    # of hidden units (or that training cannot use them): no more growth.
                    growth_helped = not _stalled(scores)
                if (grows and growth_helped and 2 * widths[-1] <= width_cap
                        and _short_of_capacity(scores, train_scores, est.target_score, grew)):
                    self._say(f"  the width doubles to {2 * widths[-1]} hidden units")
                    est._grow_hidden(2 * widths[-1], rng)
                    self.train(X, Y, sample_weight, validation=validation, initialize=False,
                               max_iter=warm_iter if remaining > 0 else est.max_iter)
                    continue
                if remaining <= 0:
                    break
                errors = sample_weight * ((predicted - Y) ** 2).sum(axis=1)
                weighted = sample_weight > 0  # rows of weight zero are not part of the data
                n_new = min(remaining, max(int(_DRAW_FACTOR * weighted.sum()), 1))
                last = " (the last of the budget)" if n_new == remaining else ""
                self._say(f"  the teacher solves {n_new} new rows{last}")
                X_new = draw_inputs(X[weighted], errors[weighted], n_new, rng)
                X_new, Y_new, _ = self.label(X_new)
                X, Y = np.vstack([X, X_new]), np.vstack([Y, Y_new])
                # New rows weigh as much as an average training row, whatever the
                # scale of the user's sample weights.
                new_weight = np.full(X_new.shape[0], sample_weight[weighted].mean())
                sample_weight = np.concatenate([sample_weight, new_weight])
                final = self.n_solved >= est.max_teacher_rows
                self.train(X, Y, sample_weight, validation=validation, initialize=False,
                           max_iter=est.max_iter if final else warm_iter)
        reached = scores[-1] >= est.target_score
        record = self.record(scores, train_scores, widths, rows, reached)
        if not reached:
            if train_scores[-1] >= est.target_score:
                advice = "raise max_teacher_rows (the training rows are fitted well enough)"
            elif grows and not growth_helped:
                advice = (
                    f"doubling the width to {est.hidden_layer_size_} removed less than a tenth "
                    "of the held-out error, so two layers may not represent this map to the "
                    "target"
                )
                if est.max_iter < _WARM_ROUND_ITERATIONS:
                    advice += (
                        f", or max_iter={est.max_iter} cut training short before it used the "
                        "new units; raise max_iter"
                    )
                advice += "; raise max_teacher_rows"
            elif grows and 2 * est.hidden_layer_size_ > width_cap:
                advice = (
                    f"the width grew to its cap ({est.hidden_layer_size_}); give a larger "
                    "hidden_layer_size or raise max_iter"
                )
            elif grows:
                advice = (
                    "raise max_teacher_rows (the rows ran out while new rows were still "
                    "narrowing the gap between training and held-out scores or lowering the "
                    "training error, before the width had cause to grow) or give a larger "
                    "hidden_layer_size"
                )
            else:
                advice = "raise hidden_layer_size (or set it to 'auto') or max_iter"
            warnings.warn(
                f"Distillation stopped at a held-out score of {scores[-1]:.4f}, below "
                f"target_score={est.target_score} (training score {train_scores[-1]:.4f}, "
                f"{self.n_solved} teacher rows of max_teacher_rows={est.max_teacher_rows}, "
                f"{est.hidden_layer_size_} hidden units). To reach it: {advice}; or lower "
                "target_score.",
                ConvergenceWarning,
            )
        return X, Y, record

    def record(self, scores, train_scores, widths, rows, reached):
        # A plain dict, not a Bunch: skops loads it without asking users to trust a type.
        return dict(
            n_rounds=len(train_scores),
            validation_scores=scores,
            training_scores=train_scores,
            hidden_layer_sizes=widths,
            n_training_rows=rows,
            n_teacher_rows=self.n_solved,
            n_rows_drawn=self.n_solved - self.estimator._n_given_rows,
            n_failed=self.n_failed,
            target_reached=reached,
            teacher_time=self.teacher_time,
            training_time=self.training_time,
        )
