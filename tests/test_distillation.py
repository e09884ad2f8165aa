"""Distillation from a teacher: target-driven sampling, scores, search, pipelines."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.stats import gaussian_kde
from sklearn.exceptions import ConvergenceWarning
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

from rnnapprox import FeedforwardApproximator, NonConvergenceError, RecurrentFixedPointTransformer
from rnnapprox._distillation import draw_inputs, silverman_factor
from rnnapprox._feedforward import _blas_threads
from rnnapprox.networks import RateNetwork, soft_wta


class CountingTeacher(RecurrentFixedPointTransformer):
    """A teacher that records how many rows each solve() call received (across clones)."""

    solved_rows = []

    def solve(self, X, stability=False):
        CountingTeacher.solved_rows.append(len(X))
        return super().solve(X, stability=stability)


@pytest.fixture(scope="module")
def labelled(wta_network):
    """Inputs, teacher fixed points and a held-out split for the shared small WTA."""
    U = np.random.default_rng(5).uniform(0.0, 1.0, size=(600, 4))
    teacher = RecurrentFixedPointTransformer(network=wta_network)
    R = teacher.fit(U).transform(U)
    return U[:400], R[:400], U[400:], R[400:]


def target_mode(wta_network, **params):
    defaults = dict(
        hidden_layer_size=10,
        teacher=RecurrentFixedPointTransformer(network=wta_network),
        target_score=0.999,
        max_teacher_rows=700,
        max_iter=60,
        random_state=0,
    )
    return FeedforwardApproximator(**{**defaults, **params})


def test_sampling_is_deterministic_under_random_state(wta_network, labelled):
    U = labelled[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        first = target_mode(wta_network).fit(U)
        second = target_mode(wta_network).fit(U)
        other = target_mode(wta_network, random_state=1).fit(U)
    assert first.distillation_["n_rounds"] > 1  # new rows were drawn
    assert first.distillation_["validation_scores"] == second.distillation_["validation_scores"]
    assert_array_equal(first.predict(U), second.predict(U))
    assert first.distillation_["validation_scores"] != other.distillation_["validation_scores"]


@pytest.mark.parametrize("n_rows, n_features", [(200, 1), (3000, 3), (5000, 10)])
def test_silverman_factor_matches_scipy(n_rows, n_features):
    data = np.random.RandomState(0).standard_normal((n_features, n_rows))
    assert_allclose(
        silverman_factor(n_rows, n_features), gaussian_kde(data, "silverman").factor
    )


def test_draw_inputs_stays_in_range_and_follows_errors():
    rng = np.random.RandomState(0)
    X = rng.uniform(0.0, 1.0, size=(5000, 3))
    X[7] = 0.5
    errors = np.zeros(5000)
    errors[7] = 1.0  # all the error on one row
    new = draw_inputs(X, errors, 4000, np.random.RandomState(1))
    assert new.shape == (4000, 3)
    assert (new >= X.min(axis=0)).all() and (new <= X.max(axis=0)).all()
    # Noise of 0.29 (Silverman) x 0.29 (std) per feature: 97 % of the draws seeded at
    # row 7 land within 0.25 of it, against 7 % of uniformly seeded ones.
    near = np.linalg.norm(new - X[7], axis=1) < 0.25
    assert 0.25 < near.mean() < 0.33  # a quarter of the draws are seeded at the erring row
    uniform = draw_inputs(X, np.zeros(5000), 4000, np.random.RandomState(1))
    assert np.linalg.norm(uniform - X[7], axis=1).__lt__(0.25).mean() < 0.1


def test_budget_is_respected(wta_network, labelled):
    U = labelled[0]
    CountingTeacher.solved_rows.clear()
    ff = target_mode(
        wta_network, teacher=CountingTeacher(network=wta_network), max_teacher_rows=550
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ff.fit(U)
    record = ff.distillation_
    assert sum(CountingTeacher.solved_rows) == record["n_teacher_rows"] <= 550
    assert record["n_rows_drawn"] == record["n_teacher_rows"] - len(U) > 0
    assert len(record["validation_scores"]) == record["n_rounds"] == len(record["n_training_rows"])
    assert record["teacher_time"] > 0 and record["training_time"] > 0


def test_warns_once_when_the_target_is_not_reached(wta_network, labelled):
    U = labelled[0]
    ff = target_mode(wta_network, hidden_layer_size=2, target_score=0.9999)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ff.fit(U)
    messages = [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert len(messages) == 1
    assert "target_score=0.9999" in messages[0] and "hidden_layer_size" in messages[0]
    assert not ff.distillation_["target_reached"]
    assert f"{ff.distillation_['validation_scores'][-1]:.4f}" in messages[0]


def test_reaches_a_reachable_target(wta_network, labelled):
    U, _, U_test, R_test = labelled
    ff = target_mode(wta_network, hidden_layer_size=30, target_score=0.95, max_iter=1000,
                     max_teacher_rows=1500)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # reached: no warning
        ff.fit(U)
    assert ff.distillation_["target_reached"]
    assert ff.distillation_["validation_scores"][-1] >= 0.95
    assert ff.score(U_test, R_test) > 0.9  # and it holds on rows it never saw


def test_auto_width_grows_when_training_rows_are_fitted_badly(wta_network, labelled):
    # Training rows fitted worse than the target, their error the larger part of the
    # held-out error, and a round of new rows that did not lower it: the width doubles.
    U = labelled[0]
    ff = target_mode(wta_network, hidden_layer_size="auto", target_score=0.99999, max_iter=30,
                     max_teacher_rows=3000)
    with pytest.warns(ConvergenceWarning, match="hidden units"):
        ff.fit(U)
    record = ff.distillation_
    sizes, scores = record["hidden_layer_sizes"], record["validation_scores"]
    assert sizes[0] == ff.n_outputs_ and ff.hidden_layer_size_ == sizes[-1] > sizes[0]
    assert ff.coefs_[0].shape[1] == ff.hidden_layer_size_
    grown = sizes.index(sizes[-1])
    before = grown - 1  # the round that decided to grow
    train = record["training_scores"]
    assert train[before] < 0.99999
    assert 1 - train[before] > train[before] - scores[before]
    grew_before = before > 0 and sizes[before] > sizes[before - 1]
    stalled = train[before] - train[before - 1] < 0.1 * (1 - train[before - 1])
    assert grew_before or stalled


def test_width_does_not_grow_while_new_rows_help(wta_network, labelled):
    U = labelled[0]
    ff = target_mode(wta_network, hidden_layer_size="auto", target_score=0.99999, max_iter=30)
    with pytest.warns(ConvergenceWarning, match="raise max_teacher_rows"):
        ff.fit(U)
    record = ff.distillation_
    assert set(record["hidden_layer_sizes"]) == {ff.n_outputs_}
    assert record["validation_scores"][-1] > record["validation_scores"][0]


def test_growing_the_hidden_layer_keeps_the_function(labelled):
    U, R = labelled[:2]
    ff = FeedforwardApproximator(hidden_layer_size=5, max_iter=20, random_state=0).fit(U, R)
    before = ff.predict(U)
    ff._grow_hidden(9, np.random.RandomState(0))
    assert ff.hidden_layer_size_ == 9 and ff.coefs_[1].shape == (9, R.shape[1])
    assert_allclose(ff.predict(U), before)


def test_score_is_variance_weighted(labelled):
    U, R, U_test, R_test = labelled
    ff = FeedforwardApproximator(hidden_layer_size=5, max_iter=30, random_state=0).fit(U, R)
    predicted = ff.predict(U_test)
    residual = ((R_test - predicted) ** 2).sum()
    total = ((R_test - R_test.mean(axis=0)) ** 2).sum()
    assert ff.score(U_test, R_test) == pytest.approx(1 - residual / total)


def test_score_without_y_uses_the_teacher(wta_network, labelled):
    U, _, U_test, R_test = labelled
    teacher = RecurrentFixedPointTransformer(network=wta_network)
    ff = FeedforwardApproximator(hidden_layer_size=10, teacher=teacher, max_iter=50,
                                 random_state=0).fit(U)
    assert ff.score(U_test) == pytest.approx(ff.score(U_test, R_test))
    plain = FeedforwardApproximator(hidden_layer_size=5, max_iter=5).fit(U, labelled[1])
    with pytest.raises(ValueError, match="score needs y"):
        plain.score(U_test)


def test_grid_search_and_cross_validation_with_a_teacher(wta_network, labelled):
    U = labelled[0]
    pipeline = make_pipeline(
        StandardScaler(),
        FeedforwardApproximator(
            teacher=RecurrentFixedPointTransformer(network=wta_network), max_iter=100,
            random_state=0,
        ),
    )
    grid = GridSearchCV(
        pipeline, {"feedforwardapproximator__hidden_layer_size": [1, 20]}, cv=2
    ).fit(U)
    scores = grid.cv_results_["mean_test_score"]
    assert np.isfinite(scores).all() and scores[1] > scores[0] + 0.1
    assert grid.best_params_ == {"feedforwardapproximator__hidden_layer_size": 20}
    cv_scores = cross_val_score(pipeline, U, cv=2)
    assert np.isfinite(cv_scores).all() and (cv_scores > 0.5).all()


def test_intermediate_pipeline_step(wta_network, labelled):
    U, R = labelled[:2]
    labels = R[:, :6].mean(axis=1) > R[:, 6:12].mean(axis=1)  # partition 0 beats partition 1
    teacher = RecurrentFixedPointTransformer(network=wta_network)
    ff = FeedforwardApproximator(hidden_layer_size=20, teacher=teacher, max_iter=100,
                                 random_state=0)
    pipeline = make_pipeline(ff, LogisticRegression()).fit(U, labels)
    step = pipeline[0]
    assert step.n_outputs_ == wta_network.n_units  # distilled, not fitted to the labels
    assert_array_equal(step.transform(U), step.predict(U))
    assert_array_equal(step.fit_transform(U, labels), step.transform(U))
    names = step.get_feature_names_out()
    assert names[0] == "feedforwardapproximator0" and len(names) == wta_network.n_units
    assert pipeline.score(U, labels) > 0.9


def test_frozen_approximator_in_a_pipeline(labelled):
    U, R = labelled[:2]
    labels = R[:, 0] > R[:, 6]
    ff = FeedforwardApproximator(hidden_layer_size=10, max_iter=50, random_state=0).fit(U, R)
    coefs = [c.copy() for c in ff.coefs_]
    pipeline = make_pipeline(FrozenEstimator(ff), LogisticRegression()).fit(U, labels)
    assert all(np.array_equal(a, b) for a, b in zip(coefs, ff.coefs_))  # not refitted
    assert_array_equal(pipeline[0].transform(U), ff.predict(U))
    assert pipeline.score(U, labels) > 0.8


def test_transform_is_two_dimensional_for_one_target(labelled):
    U, R = labelled[:2]
    ff = FeedforwardApproximator(hidden_layer_size=5, max_iter=20, random_state=0).fit(U, R[:, 0])
    assert ff.predict(U).shape == (len(U),) and ff.transform(U).shape == (len(U), 1)


def test_blas_threads_chosen_by_problem_size():
    assert _blas_threads((4000, 8), 100, 88) == 1
    assert _blas_threads((200_000, 50), 500, 300) is None
    # varpro's Gram matrix of the hidden layer is the largest product of its passes.
    assert _blas_threads((40_000, 8), 480, 86, "lbfgs") == 1
    assert _blas_threads((40_000, 8), 480, 86, "varpro") is None
    # predict (no solver) is numpy's pool alone: more threads pay from a lower bound.
    assert _blas_threads((400_000, 8), 100, 88) is None
    assert _blas_threads((400_000, 8), 100, 88, "lbfgs") == 1


def test_the_round_that_spends_the_budget_trains_to_the_end(wta_network, labelled, monkeypatch):
    # Warm rounds are capped so that a round of new rows stays cheap; once no rows are
    # left to draw, the last round trains on all of them with the whole max_iter.
    monkeypatch.setattr("rnnapprox._distillation._WARM_ROUND_ITERATIONS", 3)
    ff = target_mode(wta_network, max_teacher_rows=700, max_iter=40, n_iter_no_change=1000)
    with pytest.warns(ConvergenceWarning, match="held-out score"):
        ff.fit(labelled[0])
    record = ff.distillation_
    assert record["n_teacher_rows"] == 700 and record["n_rounds"] == 2
    assert ff.n_iter_ == 40


def test_variable_projection_in_teacher_rounds(tanh_network):
    # Signed rates: "auto" trains by variable projection, also in the warm rounds of new
    # rows and after the width grows (the output layer is re-solved for the new units).
    U = np.random.default_rng(3).normal(0.0, 0.5, size=(400, 5))
    ff = FeedforwardApproximator(
        "auto", teacher=RecurrentFixedPointTransformer(network=tanh_network),
        target_score=0.99999, max_teacher_rows=1600, max_iter=60, random_state=0,
    )
    with pytest.warns(ConvergenceWarning, match="held-out score"):
        ff.fit(U)
    record = ff.distillation_
    assert ff.solver_ == "varpro"
    assert record["n_rounds"] > 1 and record["n_teacher_rows"] <= 1600
    assert record["n_rows_drawn"] > 0 and record["hidden_layer_sizes"][-1] > ff.n_outputs_
    assert record["validation_scores"][-1] > record["validation_scores"][0] > 0.9
    assert ff.coefs_[1].shape == (ff.hidden_layer_size_, ff.n_outputs_)


def test_verbose_reports_each_round(wta_network, labelled, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ff = target_mode(wta_network, verbose=True).fit(labelled[0])
    out = capsys.readouterr().out
    rounds = [line for line in out.splitlines() if line.startswith("Distillation round")]
    assert len(rounds) == ff.distillation_["n_rounds"] > 1
    last = ff.distillation_
    assert f"held-out score {last['validation_scores'][-1]:.4f}" in rounds[-1]
    assert "the teacher solves" in out


def test_warm_start_refits_a_changed_teacher(wta_network, labelled):
    U = labelled[0]
    teacher = RecurrentFixedPointTransformer(
        network=wta_network, random_state=np.random.RandomState(0)  # a generator fit may draw from
    )
    ff = FeedforwardApproximator(5, teacher=teacher, warm_start=True, max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ff.fit(U)
        first_teacher = ff.teacher_
        ff.fit(U)  # the same teacher: kept
        assert ff.teacher_ is first_teacher
        ff.set_params(teacher__tol=1e-5)  # same units, other parameters: fitted again
        ff.fit(U)
    assert ff.teacher_ is not first_teacher and ff.teacher_.tol == 1e-5
    kept = ff.teacher_
    smaller = soft_wta(4, units_per_partition=2, n_inhibitory=1, random_state=0)
    ff.set_params(teacher=RecurrentFixedPointTransformer(network=smaller))
    with pytest.raises(ValueError, match="teacher's units.*refit without warm_start"):
        ff.fit(U)  # the new teacher is fitted, and its outputs differ
    # Refused: the approximator still pairs with the teacher it was trained on.
    assert ff.teacher_ is kept
    assert np.isfinite(ff.score(U))


def test_budget_smaller_than_x_is_an_error(wta_network, labelled):
    U = labelled[0]
    with pytest.raises(ValueError, match=r"X has 400 rows, more than max_teacher_rows=300"):
        target_mode(wta_network, max_teacher_rows=300).fit(U)


def test_target_score_needs_a_teacher_and_fit(wta_network, labelled):
    U, R = labelled[:2]
    with pytest.raises(ValueError, match="target_score=0.9 needs a teacher"):
        FeedforwardApproximator(target_score=0.9).fit(U, R)
    ff = target_mode(wta_network, solver="adam")
    with pytest.raises(ValueError, match="partial_fit .* cannot pursue target_score"):
        ff.partial_fit(U)
    with pytest.raises(InvalidParameterError, match="target_score"):
        target_mode(wta_network, target_score=0.0).fit(U)


def test_drawn_rows_weigh_as_an_average_training_row(wta_network, labelled):
    # Without a penalty the loss is the same for any common scale of the weights (4 is
    # exact in floating point): so is the whole distillation, drawn rows included.
    U = labelled[0]
    runs = []
    for weight in (1.0, 4.0):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            ff = target_mode(wta_network, alpha=0.0, max_iter=20).fit(
                U, sample_weight=np.full(len(U), weight)
            )
        runs.append(ff)
    assert runs[0].distillation_["n_rows_drawn"] > 0
    assert runs[0].distillation_["validation_scores"] == runs[1].distillation_["validation_scores"]
    assert_array_equal(runs[0].predict(U), runs[1].predict(U))


def test_drawn_rows_weigh_as_an_average_weighted_row(wta_network, labelled, monkeypatch):
    U = labelled[0]
    weights = np.where(np.arange(len(U)) % 2 == 0, 3.0, 0.0)  # half the rows count, thrice
    trained = []
    train = FeedforwardApproximator._train

    def spy(self, X, Y, sample_weight, **kwargs):
        trained.append(sample_weight.copy())
        return train(self, X, Y, sample_weight, **kwargs)

    monkeypatch.setattr(FeedforwardApproximator, "_train", spy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ff = target_mode(wta_network, max_iter=5).fit(U, sample_weight=weights)
    first, last = trained[0], trained[-1]
    drawn = last[first.size:]
    assert drawn.size == ff.distillation_["n_rows_drawn"] > 0
    assert_allclose(drawn, 3.0)
    # A round draws as many rows as there are weighted training rows, not all of them.
    assert trained[1].size - first.size == np.count_nonzero(first) < first.size


def test_teacher_that_raises_on_nonconvergence_is_obeyed():
    U = np.random.default_rng(0).uniform(-1.0, 1.0, (40, 2))  # positive inputs diverge
    teacher = RecurrentFixedPointTransformer(
        network=RateNetwork(weights=1.5 * np.eye(2)), on_nonconvergence="raise"
    )
    with pytest.raises(NonConvergenceError, match="on_nonconvergence is 'raise'"):
        FeedforwardApproximator(3, teacher=teacher, max_iter=5).fit(U)
    with pytest.warns(ConvergenceWarning, match="left out of training"):
        FeedforwardApproximator(3, teacher=teacher.set_params(on_nonconvergence="warn"),
                                max_iter=5).fit(U)


def test_score_of_a_data_frame_against_the_teacher(wta_network, labelled):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(labelled[0], columns=[f"u{i}" for i in range(labelled[0].shape[1])])
    ff = FeedforwardApproximator(
        5, teacher=RecurrentFixedPointTransformer(network=wta_network), max_iter=5, random_state=0
    ).fit(frame)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "X has feature names" warning from the teacher
        score = ff.score(frame)
    assert score == ff.score(frame, ff.teacher_.transform(labelled[0]))
