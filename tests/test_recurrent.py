import pickle
import warnings

import numba
import numpy as np
import pytest
from conftest import REFERENCE_ACTIVATIONS, euler_reference, fitted_arrays
from scipy.optimize import root
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from rnnapprox import NonConvergenceError, RecurrentFixedPointTransformer
from rnnapprox.networks import RateNetwork, random_tanh_network

# --------------------------------------------------------------------------- numerics


@pytest.mark.parametrize("family", ["wta", "tanh", "sigmoid"])
def test_matches_plain_numpy_euler(family, request):
    network = request.getfixturevalue(f"{family}_network")
    U = request.getfixturevalue(f"{family}_inputs")
    rnn = RecurrentFixedPointTransformer(network=network, dt=0.1, tol=1e-6).fit(U)
    result = rnn.solve(U)
    ref_states, ref_residuals, ref_steps = euler_reference(fitted_arrays(rnn), U, 0.1, 1e-6, 10_000)
    assert result.converged.all()
    # Same trajectory up to summation order in the matrix product.
    np.testing.assert_allclose(result.states, ref_states, atol=1e-9)
    assert np.all(np.abs(result.n_steps - ref_steps) <= 1)
    assert np.all(result.residual <= 1e-6)


def _residual(arrays, x, u):
    f = REFERENCE_ACTIVATIONS[arrays["activation"]][0]
    return -x + arrays["W"] @ f(x) + arrays["W_in"] @ u + arrays["b"]


@pytest.mark.parametrize("family", ["wta", "tanh", "sigmoid"])
def test_converged_rows_match_scipy_root(family, request):
    """Each converged state lies within ||J^-1|| tol of the polished fixed point."""
    network = request.getfixturevalue(f"{family}_network")
    U = request.getfixturevalue(f"{family}_inputs")[:15]
    tol = 1e-6
    rnn = RecurrentFixedPointTransformer(network=network, tol=tol).fit(U)
    result = rnn.solve(U)
    arrays = fitted_arrays(rnn)
    fprime = REFERENCE_ACTIVATIONS[arrays["activation"]][1]
    for x, u in zip(result.states, U):
        sol = root(lambda z, u=u: _residual(arrays, z, u), x, method="hybr", tol=1e-13)
        assert np.max(np.abs(_residual(arrays, sol.x, u))) < 1e-10
        jacobian = -np.eye(len(x)) + arrays["W"] * fprime(sol.x)[np.newaxis, :]
        bound = np.linalg.norm(np.linalg.inv(jacobian), ord=np.inf) * tol
        assert np.max(np.abs(x - sol.x)) <= 1.01 * bound
        # The fixed point is an attractor (Euler reached it), so J is stable.
        assert np.linalg.eigvals(jacobian).real.max() < 0


def test_reported_residual_is_true_residual(wta_fitted, wta_inputs):
    result = wta_fitted.solve(wta_inputs)
    arrays = fitted_arrays(wta_fitted)
    true = [np.max(np.abs(_residual(arrays, x, u))) for x, u in zip(result.states, wta_inputs)]
    np.testing.assert_allclose(result.residual, true, rtol=1e-9, atol=1e-15)


def test_outputs_are_rates_and_states(wta_fitted, wta_inputs):
    result = wta_fitted.solve(wta_inputs)
    np.testing.assert_array_equal(result.outputs, np.maximum(result.states, 0))
    np.testing.assert_array_equal(wta_fitted.transform(wta_inputs), result.outputs)
    state_rnn = clone(wta_fitted).set_params(output="state").fit(wta_inputs)
    np.testing.assert_array_equal(state_rnn.transform(wta_inputs), result.states)


def test_soft_wta_selects_one_winner(wta_fitted, wta_inputs):
    R = wta_fitted.transform(wta_inputs)
    partition_rates = R[:, :24].reshape(len(R), 4, 6).mean(axis=2)
    winners = partition_rates.argmax(axis=1)
    assert np.all((partition_rates > 1e-9).sum(axis=1) == 1)  # exactly one active partition
    assert np.mean(winners == wta_inputs.argmax(axis=1)) > 0.9


# --------------------------------------------------------------------------- non-convergence


@pytest.fixture(scope="module")
def chaotic():
    network = random_tanh_network(100, gain=2.0, random_state=0)
    U = np.random.default_rng(0).normal(scale=0.1, size=(6, 100))
    return network, U


def test_chaotic_rows_never_claimed_converged(chaotic):
    network, U = chaotic
    rnn = RecurrentFixedPointTransformer(network=network, max_steps=2000).fit(U)
    result = rnn.solve(U)
    assert not result.converged.any()
    assert set(result.status) == {"max_steps"}
    assert np.all(result.n_steps == 2000) and np.all(result.residual > 1e-6)
    with pytest.warns(ConvergenceWarning, match=r"6 of 6 rows did not reach a fixed point"):
        out = rnn.transform(U)
    assert np.isfinite(out).all()


@pytest.fixture(scope="module")
def exploding():
    network = RateNetwork(weights=1.5 * np.eye(4) + 0.1, activation="relu")
    U = np.array([[1.0, 0.5, 0.2, 0.1], [-1.0, -1.0, -1.0, -1.0], [0.3, 0.0, 0.0, 0.0]])
    return network, U


def test_exploding_rows_detected_early(exploding):
    network, U = exploding
    rnn = RecurrentFixedPointTransformer(network=network, max_steps=10_000).fit(U)
    result = rnn.solve(U)
    np.testing.assert_array_equal(result.status, ["diverged", "converged", "diverged"])
    assert result.n_steps[[0, 2]].max() < 1000  # long before max_steps
    np.testing.assert_allclose(result.states[1], -1.0, atol=1e-5)  # silent row: x* = u


@pytest.mark.parametrize("policy", ["warn", "nan", "raise"])
def test_nonconvergence_policies(exploding, policy):
    network, U = exploding
    rnn = RecurrentFixedPointTransformer(network=network, on_nonconvergence=policy).fit(U)
    if policy == "raise":
        with pytest.raises(NonConvergenceError, match=r"2 of 3 rows .*rows 0, 2\).*2 diverged"):
            rnn.transform(U)
        return
    with pytest.warns(ConvergenceWarning, match=r"rows 0, 2"):
        out = rnn.transform(U)
    assert not np.isinf(out).any()
    if policy == "nan":
        assert np.isnan(out[[0, 2]]).all() and np.isfinite(out[1]).all()
    else:
        assert np.isfinite(out).all()


def test_solve_does_not_warn(exploding):
    network, U = exploding
    rnn = RecurrentFixedPointTransformer(network=network).fit(U)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rnn.solve(U)


def test_overflowing_state_is_nan_not_inf():
    # One update jumps far past float32's range: the row is diverged and, cast to
    # the input's float32, its output is NaN rather than inf.
    network = RateNetwork(weights=np.array([[1e200]]), activation="relu")
    U = np.ones((1, 1), dtype=np.float32)
    rnn = RecurrentFixedPointTransformer(network=network, on_nonconvergence="warn").fit(U)
    with pytest.warns(ConvergenceWarning):
        out = rnn.transform(U)
    assert out.dtype == np.float32 and np.isnan(out).all()
    assert rnn.solve(U).status[0] == "diverged"


def test_summary_text(wta_fitted, wta_inputs, exploding):
    assert wta_fitted.solve(wta_inputs).summary().startswith("60 of 60 rows converged")
    network, U = exploding
    text = RecurrentFixedPointTransformer(network=network).fit(U).solve(U).summary()
    assert text.startswith("1 of 3 rows converged, 2 diverged, 0 reached max_steps")


def test_status_counts(exploding):
    network, U = exploding
    result = RecurrentFixedPointTransformer(network=network).fit(U).solve(U)
    assert result.status_counts() == {"converged": 1, "diverged": 2, "max_steps": 0}


# --------------------------------------------------------------------------- arrays and threads


def test_float32_preserved_and_close(wta_fitted, wta_inputs):
    out64 = wta_fitted.transform(wta_inputs)
    out32 = wta_fitted.transform(wta_inputs.astype(np.float32))
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, out64, rtol=1e-5, atol=1e-5)


def test_readonly_fortran_input_untouched(wta_fitted, wta_inputs):
    U = np.asfortranarray(wta_inputs.copy())
    U.setflags(write=False)
    before = U.copy()
    np.testing.assert_allclose(wta_fitted.transform(U), wta_fitted.transform(wta_inputs), atol=1e-12)
    np.testing.assert_array_equal(U, before)


def test_network_arrays_not_modified(wta_network, wta_inputs):
    W = wta_network.weights.copy()
    rnn = RecurrentFixedPointTransformer(network=wta_network).fit(wta_inputs)
    rnn.weights_[0, 0] += 1.0  # fitted arrays are copies
    np.testing.assert_array_equal(wta_network.weights, W)


def test_row_order_and_threads_do_not_matter(wta_fitted, wta_inputs):
    reference = wta_fitted.transform(wta_inputs)
    order = np.random.default_rng(0).permutation(len(wta_inputs))
    np.testing.assert_allclose(wta_fitted.transform(wta_inputs[order]), reference[order], atol=1e-12)
    before = numba.get_num_threads()
    single = clone(wta_fitted).set_params(n_jobs=1).fit(wta_inputs)
    np.testing.assert_allclose(single.transform(wta_inputs), reference, atol=1e-12)
    assert numba.get_num_threads() == before


def test_chunks_give_same_result(wta_fitted, wta_inputs, monkeypatch):
    import rnnapprox._chunked as module

    reference = wta_fitted.transform(wta_inputs)
    monkeypatch.setattr(module, "CHUNK_ROWS", 7)
    np.testing.assert_allclose(wta_fitted.transform(wta_inputs), reference, atol=1e-12)


def test_verbose_reports_progress(wta_network, wta_inputs, capsys, monkeypatch):
    import rnnapprox._chunked as module

    monkeypatch.setattr(module, "CHUNK_ROWS", 25)
    RecurrentFixedPointTransformer(network=wta_network, verbose=1).fit_transform(wta_inputs)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and "60/60 rows, 60 converged" in lines[-1]


def test_x0_changes_the_attractor():
    # Bistable unit: x' = -x + 2 tanh(x) + 0.1 has stable fixed points near +1.95 and -1.87.
    network = RateNetwork(weights=np.array([[2.0]]), bias=0.1, activation="tanh")
    U = np.zeros((1, 1))
    high = RecurrentFixedPointTransformer(network=network, output="state").fit(U).transform(U)
    low = RecurrentFixedPointTransformer(network=network, output="state", x0=[-1.0]).fit(U)
    for x, sign in [(high, 1), (low.transform(U), -1)]:
        assert np.sign(x[0, 0]) == sign
        np.testing.assert_allclose(-x + 2 * np.tanh(x) + 0.1, 0, atol=1e-6)


# --------------------------------------------------------------------------- validation


def test_default_network_and_projection_are_seeded():
    U = np.random.default_rng(0).normal(size=(10, 3))
    a = RecurrentFixedPointTransformer(random_state=0).fit(U)
    b = RecurrentFixedPointTransformer(random_state=0).fit(U)
    np.testing.assert_array_equal(a.weights_, b.weights_)
    assert a.n_units_ == 3 and np.isfinite(a.transform(U)).all()
    net = RateNetwork(weights=0.1 * np.eye(6))
    proj = RecurrentFixedPointTransformer(network=net, random_state=0).fit(U)
    assert proj.input_weights_.shape == (6, 3)
    np.testing.assert_array_equal(
        proj.input_weights_, RecurrentFixedPointTransformer(network=net, random_state=0).fit(U).input_weights_
    )


@pytest.mark.parametrize(
    "params, match",
    [
        ({"network": RateNetwork(np.ones((2, 3)))}, "square"),
        ({"network": RateNetwork(np.full((3, 3), np.inf))}, "NaN or infinity"),
        ({"network": RateNetwork(np.eye(3), tau=-1.0)}, "strictly positive"),
        ({"dt": 0.0}, "'dt' parameter"),
        ({"dt": -1.0}, "'dt' parameter"),
        ({"max_steps": 0}, "'max_steps' parameter"),
        ({"on_nonconvergence": "ignore"}, "'on_nonconvergence' parameter"),
        ({"x0": [1.0, 2.0]}, "x0 must be a finite array of shape"),
        ({"x0": [np.nan, 0.0, 0.0]}, "x0 must be a finite array"),
        ({"network": "not a network"}, "'network' parameter"),
    ],
)
def test_invalid_parameters(params, match):
    with pytest.raises((ValueError, TypeError), match=match):
        RecurrentFixedPointTransformer(**params).fit(np.ones((4, 3)))


def test_large_dt_warns():
    with pytest.warns(UserWarning, match="dt=2 exceeds the smallest time constant"):
        RecurrentFixedPointTransformer(dt=2).fit(np.ones((4, 3)))


def test_wrong_feature_count_and_nan(wta_fitted):
    with pytest.raises(ValueError, match="features"):
        wta_fitted.transform(np.ones((2, 5)))
    with pytest.raises(ValueError, match="NaN"):
        wta_fitted.transform(np.array([[np.nan, 0, 0, 0]]))


# --------------------------------------------------------------------------- scikit-learn integration


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


def test_pipeline_and_grid_search(iris):
    X, y = iris
    network = RateNetwork(weights=0.2 * np.ones((4, 4)) - 0.4 * np.eye(4), activation="tanh")
    pipe = make_pipeline(
        StandardScaler(),
        RecurrentFixedPointTransformer(network=network),
        LogisticRegression(max_iter=500),
    )
    assert pipe.fit(X, y).score(X, y) > 0.8
    search = GridSearchCV(
        pipe,
        {"recurrentfixedpointtransformer__network__tau": [0.5, 1.0],
         "recurrentfixedpointtransformer__dt": [0.05, 0.1]},
        cv=3,
    )
    search.fit(X, y)
    assert search.best_score_ > 0.8
    assert set(search.cv_results_["param_recurrentfixedpointtransformer__network__tau"]) == {0.5, 1.0}
    assert network.tau == 1.0  # the user's network is cloned, never modified


def test_pickle_and_clone_round_trip(wta_fitted, wta_inputs):
    restored = pickle.loads(pickle.dumps(wta_fitted))
    np.testing.assert_array_equal(restored.transform(wta_inputs), wta_fitted.transform(wta_inputs))
    cloned = clone(wta_fitted)
    assert cloned.network is not wta_fitted.network
    np.testing.assert_array_equal(cloned.network.weights, wta_fitted.network.weights)
    assert not hasattr(cloned, "weights_")


def test_feature_names_and_pandas_output(wta_fitted, wta_inputs):
    pd = pytest.importorskip("pandas")
    names = wta_fitted.get_feature_names_out()
    assert names[0] == "recurrentfixedpointtransformer0" and len(names) == 27
    frame = clone(wta_fitted).set_output(transform="pandas").fit(wta_inputs).transform(wta_inputs)
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == list(names)
