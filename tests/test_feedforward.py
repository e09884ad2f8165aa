"""Tests of FeedforwardApproximator: gradient, fitting behaviour, API, distillation."""

import pickle
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

from rnnapprox import FeedforwardApproximator, RecurrentFixedPointTransformer
from rnnapprox._two_layer import ProjectedLoss, joint_loss_and_gradient

# Short fits on purpose; tests about warnings catch them explicitly.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def smooth_data():
    """A smooth three-output function of three inputs."""
    rng = np.random.RandomState(0)
    X = rng.uniform(-1.0, 1.0, size=(300, 3))
    Y = np.column_stack([np.sin(2 * X[:, 0]) + X[:, 1] ** 2, X[:, 0] * X[:, 2], np.cos(X[:, 1])])
    return X, Y


@pytest.fixture(scope="module")
def rate_data():
    """Non-negative 'rates' with many exact zeros, as a relu network gives."""
    rng = np.random.RandomState(1)
    X = rng.uniform(0.0, 1.0, size=(300, 3))
    Y = np.maximum(X @ np.array([[1.0, -1.0, 0.5], [-1.0, 1.0, 0.5], [0.5, 0.5, -1.0]]), 0.0)
    return X, Y


def _central_differences(function, x, step=1e-6):
    """Gradient of the scalar ``function`` at ``x`` by central differences."""
    return np.array(
        [(function(x + step * e) - function(x - step * e)) / (2 * step) for e in np.eye(x.size)]
    )


def _weighted_problem(rng, n_samples, n_features, n_outputs):
    """Inputs, signed targets and normalised integer row weights (some zero) drawn from ``rng``."""
    X = rng.standard_normal((n_samples, n_features))
    Y = rng.uniform(-0.5, 1.0, size=(n_samples, n_outputs))
    weights = rng.randint(0, 4, n_samples).astype(float)
    return X, Y, weights / weights.sum()


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("output_activation", ["identity", "relu", "tanh"])
def test_gradient_matches_central_differences(activation, output_activation):
    rng = np.random.RandomState(0)
    n_features, n_hidden, n_outputs = 3, 5, 4
    X, Y, row_weights = _weighted_problem(rng, 20, n_features, n_outputs)
    n_params = n_features * n_hidden + n_hidden + n_hidden * n_outputs + n_outputs
    params = 0.7 * rng.standard_normal(n_params)
    l2 = 0.3

    def loss_and_gradient(p):
        return joint_loss_and_gradient(
            p, X, Y, row_weights, l2, n_hidden, activation, output_activation
        )

    _, gradient = loss_and_gradient(params)
    numeric = _central_differences(lambda p: loss_and_gradient(p)[0], params)
    assert_allclose(gradient, numeric, rtol=1e-6, atol=1e-8 * np.abs(gradient).max())


def test_fits_smooth_multioutput_function(smooth_data):
    X, Y = smooth_data
    ff = FeedforwardApproximator(hidden_layer_size=30, random_state=0).fit(X, Y)
    assert ff.out_activation_ == "identity"  # targets take both signs
    assert ff.predict(X).shape == Y.shape
    assert ff.score(X, Y) > 0.99
    assert ff.n_outputs_ == 3 and ff.n_features_in_ == 3
    assert [c.shape for c in ff.coefs_] == [(3, 30), (30, 3)]
    assert [b.shape for b in ff.intercepts_] == [(30,), (3,)]
    assert len(ff.loss_curve_) == ff.n_iter_ > 0


def test_relu_output_represents_exact_zeros(rate_data):
    X, Y = rate_data
    ff = FeedforwardApproximator(hidden_layer_size=20, solver="lbfgs", random_state=0).fit(X, Y)
    assert ff.out_activation_ == "relu"
    assert_array_equal(ff.target_offset_, 0.0)
    predicted = ff.predict(X)
    assert predicted.min() == 0.0
    silent = Y == 0
    assert np.mean(predicted[silent] == 0.0) > 0.9
    assert ff.score(X, Y) > 0.99


def test_varpro_relu_output_clips_the_linear_solution(rate_data):
    X, Y = rate_data
    ff = FeedforwardApproximator(hidden_layer_size=20, random_state=0).fit(X, Y)
    assert np.mean(Y == 0) < 0.5 and ff.solver_ == "varpro"
    assert ff.out_activation_ == "relu"
    predicted = ff.predict(X)
    assert predicted.min() == 0.0
    # Silent units come out as zero or as a small rate: the linear solution, clipped.
    assert predicted[Y == 0].max() < 0.01 * Y.max()
    assert ff.score(X, Y) > 0.9999


def test_auto_solver_choice(rate_data, smooth_data):
    X, Y = rate_data
    assert FeedforwardApproximator(5, max_iter=5).fit(*smooth_data).solver_ == "varpro"
    mostly_silent = np.where(Y < np.quantile(Y, 0.6), 0.0, Y)
    assert FeedforwardApproximator(5, max_iter=5).fit(X, mostly_silent).solver_ == "lbfgs"
    tanh = FeedforwardApproximator(5, output_activation="tanh", max_iter=5).fit(X, Y)
    assert tanh.solver_ == "lbfgs"
    with pytest.raises(ValueError, match="solver='varpro'.*not 'tanh'"):
        FeedforwardApproximator(5, solver="varpro", output_activation="tanh").fit(X, Y)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_projected_loss_matches_joint_loss_and_central_differences(activation):
    rng = np.random.RandomState(0)
    n_features, n_hidden, n_outputs = 3, 5, 4
    X, Y, row_weights = _weighted_problem(rng, 30, n_features, n_outputs)
    l2 = 0.01
    projected = ProjectedLoss(X, Y, row_weights, l2, n_hidden, activation)
    hidden_params = 0.7 * rng.standard_normal((n_features + 1) * n_hidden)
    loss, gradient = projected(hidden_params)

    # The output layer is the minimiser: the joint loss there equals the projected
    # loss and its gradient in the output weights vanishes.
    w2, b2 = projected.output_layer(hidden_params)
    joint = np.concatenate([hidden_params, w2.ravel(), b2])
    joint_loss, joint_gradient = joint_loss_and_gradient(
        joint, X, Y, row_weights, l2, n_hidden, activation, "identity"
    )
    assert_allclose(loss, joint_loss, rtol=1e-12)
    n_hidden_params = hidden_params.size
    assert_allclose(joint_gradient[n_hidden_params:], 0.0, atol=1e-12)
    assert_allclose(gradient, joint_gradient[:n_hidden_params], rtol=1e-10, atol=1e-14)

    # And that gradient is the reduced loss's own (readout re-solved at every point).
    numeric = _central_differences(lambda p: projected(p)[0], hidden_params)
    assert_allclose(gradient, numeric, rtol=1e-5, atol=1e-8 * np.abs(gradient).max())


def test_target_scaling_keeps_raw_units(rate_data):
    X, Y = rate_data
    ff = FeedforwardApproximator(hidden_layer_size=20, random_state=0).fit(1e3 * X + 5, 1e-3 * Y)
    assert_allclose(ff.target_scale_, 1e-3 * np.sqrt(np.mean(Y**2, axis=0)))
    assert ff.score(1e3 * X + 5, 1e-3 * Y) > 0.99


@pytest.mark.parametrize("output_activation", ["identity", "relu", "tanh"])
def test_explicit_output_activation(rate_data, output_activation):
    X, Y = rate_data
    ff = FeedforwardApproximator(
        hidden_layer_size=20, output_activation=output_activation, random_state=0
    ).fit(X, Y)
    assert ff.out_activation_ == output_activation
    assert ff.score(X, Y) > 0.98


def test_relu_output_refuses_negative_targets(rate_data):
    X, Y = rate_data
    Y = Y.copy()
    Y[0] -= 10.0
    ff = FeedforwardApproximator(output_activation="relu")
    with pytest.raises(ValueError, match=r"output_activation='relu' .* targets are negative"):
        ff.fit(X, Y)
    with pytest.raises(NotFittedError):  # a failed first fit leaves no half-fitted network
        ff.predict(X)
    # Negative targets on rows of weight zero do not count.
    weights = np.ones(len(X))
    weights[0] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ff = FeedforwardApproximator(5, output_activation="relu", max_iter=5).fit(
            X, Y, sample_weight=weights
        )
    assert ff.out_activation_ == "relu"


def test_integer_sample_weight_equals_repeated_rows(smooth_data):
    X, Y = smooth_data
    X, Y = X[:60], Y[:60]
    weights = np.random.RandomState(3).randint(0, 4, size=60)
    # Converged fits (no warning) land on the same minimum; unconverged L-BFGS
    # paths would drift apart by rounding.
    params = dict(hidden_layer_size=5, alpha=1.0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        weighted = FeedforwardApproximator(**params).fit(X, Y, sample_weight=weights)
        repeated = FeedforwardApproximator(**params).fit(
            X.repeat(weights, axis=0), Y.repeat(weights, axis=0)
        )
    assert_allclose(weighted.predict(X), repeated.predict(X), rtol=1e-6, atol=1e-8)


def test_deterministic_given_random_state(smooth_data):
    X, Y = smooth_data
    first = FeedforwardApproximator(hidden_layer_size=10, max_iter=50, random_state=7)
    second = FeedforwardApproximator(hidden_layer_size=10, max_iter=50, random_state=7)
    assert_array_equal(first.fit(X, Y).predict(X), second.fit(X, Y).predict(X))


@pytest.mark.parametrize("solver", ["varpro", "lbfgs", "adam"])
def test_warm_start_continues(smooth_data, solver):
    X, Y = smooth_data
    ff = FeedforwardApproximator(hidden_layer_size=10, solver=solver, max_iter=20, random_state=0)
    ff.fit(X, Y)
    loss_after_first_fit = ff.loss_curve_[-1]
    scale_after_first_fit = ff.target_scale_
    ff.set_params(warm_start=True).fit(X, Y)
    assert ff.n_iter_ == 20
    assert ff.target_scale_ is scale_after_first_fit  # scalers are kept
    # The second fit starts where the first stopped, not from a fresh draw.
    assert ff.loss_curve_[0] < 1.5 * loss_after_first_fit
    assert ff.loss_curve_[-1] < loss_after_first_fit


def test_warm_start_rejects_different_number_of_outputs(smooth_data):
    X, Y = smooth_data
    ff = FeedforwardApproximator(hidden_layer_size=5, max_iter=5, warm_start=True, random_state=0)
    ff.fit(X, Y)
    with pytest.raises(ValueError, match="outputs"):
        ff.fit(X, Y[:, :2])


def test_partial_fit_with_adam(smooth_data):
    X, Y = smooth_data
    ff = FeedforwardApproximator(
        hidden_layer_size=20, solver="adam", learning_rate_init=0.01, batch_size=32, random_state=0
    )
    for _ in range(30):
        ff.partial_fit(X, Y)
    assert ff.n_iter_ == 30 and len(ff.loss_curve_) == 30
    assert ff.loss_curve_[-1] < 0.1 * ff.loss_curve_[0]
    assert ff.score(X, Y) > 0.95


def test_partial_fit_unavailable_for_lbfgs(smooth_data):
    X, Y = smooth_data
    ff = FeedforwardApproximator(solver="lbfgs")
    assert not hasattr(ff, "partial_fit")
    with pytest.raises(AttributeError, match="partial_fit") as excinfo:
        ff.partial_fit(X, Y)
    assert "only available with solver='adam'" in str(excinfo.value.__cause__)


def test_partial_fit_rejects_early_stopping(smooth_data):
    X, Y = smooth_data
    ff = FeedforwardApproximator(solver="adam", early_stopping=True)
    with pytest.raises(ValueError, match="early_stopping"):
        ff.partial_fit(X, Y)


@pytest.mark.parametrize("solver", ["varpro", "lbfgs", "adam"])
def test_early_stopping_records_validation_scores(smooth_data, solver):
    X, Y = smooth_data
    ff = FeedforwardApproximator(
        hidden_layer_size=10,
        solver=solver,
        early_stopping=True,
        max_iter=1000,
        learning_rate_init=0.01,
        random_state=0,
    ).fit(X, Y)
    assert len(ff.validation_scores_) == ff.n_iter_ < 1000  # stopped by the validation score
    assert ff.best_validation_score_ == max(ff.validation_scores_) > 0.95
    assert ff.score(X, Y) > 0.95

    plain = FeedforwardApproximator(hidden_layer_size=5, max_iter=5, random_state=0).fit(X, Y)
    assert plain.validation_scores_ is None and plain.best_validation_score_ is None


@pytest.mark.parametrize("patience", [5, 30])
def test_early_stopping_waits_patience_after_the_last_relative_improvement(smooth_data, patience):
    # An improvement removes at least 1 % of the unexplained variance left at the last one
    # (and at least 1e-4): replaying that rule on the recorded scores, the fit ends exactly
    # `patience` iterations after the last improvement.
    X, Y = smooth_data
    ff = FeedforwardApproximator(hidden_layer_size=10, early_stopping=True, max_iter=2000,
                                 n_iter_no_change=patience, random_state=0).fit(X, Y)
    scores = ff.validation_scores_
    reference, last_improvement = -np.inf, None
    for iteration, score in enumerate(scores):
        if not np.isfinite(reference) or score > reference + max(1e-4, 0.01 * (1 - reference)):
            reference, last_improvement = score, iteration
    assert ff.n_iter_ == len(scores) == last_improvement + 1 + patience < 2000
    assert ff.best_validation_score_ == max(scores)


@pytest.mark.parametrize("solver", ["varpro", "lbfgs", "adam"])
def test_convergence_warning_at_max_iter(smooth_data, solver):
    X, Y = smooth_data
    ff = FeedforwardApproximator(hidden_layer_size=5, solver=solver, max_iter=3, random_state=0)
    with pytest.warns(ConvergenceWarning, match="max_iter=3"):
        ff.fit(X, Y)
    assert ff.n_iter_ == 3


def test_prediction_shape_follows_target_shape(smooth_data):
    X, Y = smooth_data
    ff = FeedforwardApproximator(hidden_layer_size=10, random_state=0)
    assert ff.fit(X, Y[:, 0]).predict(X).shape == (300,)
    assert ff.fit(X, Y[:, :1]).predict(X).shape == (300, 1)


def test_pickle_round_trip_gives_identical_predictions(rate_data):
    X, Y = rate_data
    ff = FeedforwardApproximator(hidden_layer_size=10, random_state=0).fit(X, Y)
    restored = pickle.loads(pickle.dumps(ff))
    assert_array_equal(restored.predict(X), ff.predict(X))


def test_inputs_are_not_modified(rate_data):
    X, Y = rate_data
    weights = np.linspace(0.5, 2.0, X.shape[0])
    X_copy, Y_copy, weights_copy = X.copy(), Y.copy(), weights.copy()
    ff = FeedforwardApproximator(hidden_layer_size=5, random_state=0, early_stopping=True)
    ff.fit(X, Y, sample_weight=weights).predict(X)
    assert_array_equal(X, X_copy)
    assert_array_equal(Y, Y_copy)
    assert_array_equal(weights, weights_copy)


def test_clear_errors(smooth_data):
    X, Y = smooth_data
    Y_nan = Y.copy()
    Y_nan[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        FeedforwardApproximator().fit(X, Y_nan)
    with pytest.raises(ValueError, match="requires y"):
        FeedforwardApproximator().fit(X)
    with pytest.raises(InvalidParameterError, match="solver"):
        FeedforwardApproximator(solver="sgd").fit(X, Y)
    ff = FeedforwardApproximator(hidden_layer_size=5, random_state=0).fit(X, Y)
    with pytest.raises(ValueError, match="3 features"):
        ff.predict(X[:, :2])


def test_verbose_prints_loss(smooth_data, capsys):
    X, Y = smooth_data
    FeedforwardApproximator(hidden_layer_size=5, max_iter=2, verbose=True).fit(X, Y)
    assert "Iteration 2, loss = " in capsys.readouterr().out


def test_pipeline_and_grid_search_on_multioutput_targets(rate_data):
    X, Y = rate_data
    pipeline = make_pipeline(MinMaxScaler(), FeedforwardApproximator(random_state=0, max_iter=100))
    grid = GridSearchCV(
        pipeline,
        {
            "feedforwardapproximator__hidden_layer_size": [5, 20],
            "feedforwardapproximator__alpha": [1e-5, 1.0],
        },
        cv=2,
        n_jobs=2,
    ).fit(X, Y)
    assert grid.best_estimator_.predict(X).shape == Y.shape
    assert grid.best_score_ > 0.9


# -- distillation -------------------------------------------------------------------


def test_distillation_learns_the_teacher(wta_network, wta_inputs):
    teacher = RecurrentFixedPointTransformer(network=wta_network)
    ff = FeedforwardApproximator(hidden_layer_size=20, teacher=teacher, tol=1e-4, random_state=0)
    ff.fit(wta_inputs)
    assert ff.teacher_ is not teacher and hasattr(ff.teacher_, "weights_")
    assert not hasattr(teacher, "weights_")  # the given teacher stays unfitted
    assert ff.teacher_converged_.all() and ff.n_teacher_rows_ == len(wta_inputs)
    targets = ff.teacher_.transform(wta_inputs)
    assert ff.n_outputs_ == targets.shape[1] and ff.out_activation_ == "relu"
    assert ff.score(wta_inputs, targets) > 0.9


def test_distillation_ignores_y_so_a_pipeline_step_fits_its_teacher(wta_network, wta_inputs):
    # In a pipeline, an intermediate step's fit receives the downstream target (class
    # labels here): a teacher-mode approximator must distil from its teacher regardless.
    labels = (wta_inputs[:, 0] > 0.5).astype(int)
    teacher = RecurrentFixedPointTransformer(network=wta_network)
    params = dict(hidden_layer_size=5, teacher=teacher, max_iter=50, random_state=0)
    with_labels = FeedforwardApproximator(**params).fit(wta_inputs, labels)
    without = FeedforwardApproximator(**params).fit(wta_inputs)
    assert with_labels.n_outputs_ == wta_network.n_units
    assert_array_equal(with_labels.predict(wta_inputs), without.predict(wta_inputs))


def test_distillation_drops_rows_that_did_not_converge(wta_network, wta_inputs):
    reference = RecurrentFixedPointTransformer(network=wta_network).fit(wta_inputs)
    max_steps = int(np.median(reference.solve(wta_inputs).n_steps))
    teacher = RecurrentFixedPointTransformer(network=wta_network, max_steps=max_steps)
    expected = teacher.fit(wta_inputs).solve(wta_inputs).converged
    n_failed = int((~expected).sum())
    assert 0 < n_failed < len(wta_inputs)

    ff = FeedforwardApproximator(hidden_layer_size=5, teacher=teacher, random_state=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ff.fit(wta_inputs)
    convergence = [
        w
        for w in caught
        if issubclass(w.category, ConvergenceWarning) and "L-BFGS" not in str(w.message)
    ]
    assert len(convergence) == 1  # the teacher's own warning is replaced by this one
    assert f"{n_failed} of {len(wta_inputs)} rows" in str(convergence[0].message)
    assert_array_equal(ff.teacher_converged_, expected)
    assert ff.n_teacher_rows_ == len(wta_inputs) - n_failed


def test_distillation_fails_clearly_when_no_row_converges(wta_network, wta_inputs):
    teacher = RecurrentFixedPointTransformer(network=wta_network, max_steps=1)
    with pytest.raises(ValueError, match="none of the 60 rows"):
        FeedforwardApproximator(teacher=teacher).fit(wta_inputs)


def test_distillation_with_partial_fit(wta_network, wta_inputs):
    teacher = RecurrentFixedPointTransformer(network=wta_network)
    ff = FeedforwardApproximator(
        hidden_layer_size=10, solver="adam", teacher=teacher, random_state=0
    )
    ff.partial_fit(wta_inputs[:30])
    first_teacher = ff.teacher_
    ff.partial_fit(wta_inputs[30:])
    assert ff.teacher_ is first_teacher  # fitted once, then reused
    assert ff.n_iter_ == 2


# -- scikit-learn's estimator checks ------------------------------------------------
# The default estimator is checked in test_common.py with the package's other
# estimators; here the stochastic solver, which adds the partial_fit checks.


@parametrize_with_checks([FeedforwardApproximator(solver="adam", max_iter=300)])
def test_sklearn_estimator_checks_with_adam(estimator, check):
    check(estimator)


def test_float32_fit_is_finished_in_float64():
    # 3,000 rows x 30 hidden x 40 outputs: the loss and gradient run in float32, whose
    # line search gives up near the minimum (here at a gradient of 2.4e-6); the float64
    # finish must bring the largest gradient component down to tol, as L-BFGS promises.
    rng = np.random.RandomState(0)
    X = rng.uniform(-1, 1, (3000, 2))
    Y = np.tanh(2 * X @ rng.standard_normal((2, 40))) + 0.3 * np.sin(3 * X[:, :1])
    ff = FeedforwardApproximator(30, solver="varpro", early_stopping=False, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        ff.fit(X, Y)
    X_scaled = (X - ff.input_mean_) / ff.input_scale_
    Y_scaled = (Y - ff.target_offset_) / ff.target_scale_
    loss = ProjectedLoss(X_scaled, Y_scaled, np.full(3000, 1 / 3000), ff.alpha / 3000, 30, "tanh")
    _, gradient = loss(np.concatenate([ff.coefs_[0].ravel(), ff.intercepts_[0]]))
    assert np.abs(gradient).max() <= ff.tol


def test_solver_follows_the_parameter_between_fits(smooth_data):
    X, Y = smooth_data
    ff = FeedforwardApproximator(hidden_layer_size=10, max_iter=20, random_state=0).fit(X, Y)
    assert ff.solver_ == "varpro"
    ff.set_params(solver="lbfgs", warm_start=True).fit(X, Y)
    assert ff.solver_ == "lbfgs" and ff.n_iter_ == 20
    ff.set_params(solver="adam").partial_fit(X, Y)  # one Adam epoch, not a full-batch fit
    assert ff.solver_ == "adam" and ff.n_iter_ == 21
    ff.set_params(solver="auto").fit(X, Y)  # a warm "auto" after Adam chooses afresh
    assert ff.solver_ == "varpro"
    ff.set_params(solver="varpro", output_activation="tanh")
    with pytest.raises(ValueError, match="not 'tanh'"):
        ff.fit(X, Y)


def test_auto_solver_counts_zeros_by_sample_weight(rate_data):
    X, Y = rate_data
    silent_rows = (Y == 0).mean(axis=1) >= 2 / 3
    assert 0.2 < silent_rows.mean() < 0.5
    uniform = FeedforwardApproximator(5, max_iter=2).fit(X, Y)
    on_silent_rows = FeedforwardApproximator(5, max_iter=2).fit(X, Y, silent_rows.astype(float))
    assert (uniform.solver_, on_silent_rows.solver_) == ("varpro", "lbfgs")


def test_varpro_without_iterations_keeps_its_solved_output_layer(smooth_data):
    # tol so loose that L-BFGS stops before its first iteration: no validation score is
    # recorded, and the output layer solved for the starting hidden layer must be kept
    # (not the random one the weights were initialised with).
    X, Y = smooth_data
    for early_stopping in (False, True):
        ff = FeedforwardApproximator(10, tol=1.0, early_stopping=early_stopping, random_state=0)
        ff.fit(X, Y)
        assert ff.n_iter_ == 0
        assert ff.score(X, Y) > 0.5


def test_projected_loss_keeps_the_ridge_in_float32(monkeypatch):
    # Six nearly identical hidden units: rounded to float32, their Gram matrix is not
    # positive definite once a ridge far below float32 resolution is added. The output
    # layer must then be solved from a float64 Gram matrix (the ridge kept), not by a
    # minimum-norm least-squares fallback.
    rng = np.random.RandomState(0)
    X = rng.standard_normal((500, 3))
    Y = np.tanh(X @ rng.standard_normal((3, 4)))
    weights = np.full(500, 1 / 500)
    w1 = rng.standard_normal((3, 6))
    w1[:, 1:] = w1[:, :1] + 1e-3 * rng.standard_normal((3, 5))
    hidden_params = np.concatenate([w1.ravel(), np.full(6, 0.1)])
    monkeypatch.setattr("scipy.linalg.lstsq", lambda *a, **k: pytest.fail("lstsq fallback"))
    loss32, _ = ProjectedLoss(X.astype(np.float32), Y.astype(np.float32),
                              weights.astype(np.float32), 1e-9, 6, "tanh")(hidden_params)
    loss64, _ = ProjectedLoss(X, Y, weights, 1e-9, 6, "tanh")(hidden_params)
    assert_allclose(loss32, loss64, rtol=1e-3)
