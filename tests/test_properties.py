"""Property-based tests (hypothesis) of the fixed points and the approximator (issue 7).

Random *contracting* rate networks: with ``||W||_inf = rho < 1``, ``f`` 1-Lipschitz
(relu, tanh) and ``dt <= min(tau)``, one Euler step is a contraction in the
infinity norm with factor ``1 - (dt / max(tau)) (1 - rho)``, so every row must
converge to the unique fixed point, and any two states with residual ``<= tol``
lie within ``tol / (1 - rho)`` of it: answers computed in different batches,
orders, chunkings or thread counts may differ by at most ``2 tol / (1 - rho)``.
"""

from unittest import mock

import numpy as np
import pytest

pytest.importorskip("hypothesis")

from conftest import gated_field  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402
from numpy.testing import assert_allclose, assert_array_equal  # noqa: E402

import rnnapprox._chunked as recurrent_module  # noqa: E402
from rnnapprox import FeedforwardApproximator, RecurrentFixedPointTransformer  # noqa: E402
from rnnapprox.networks import GatedNetwork, RateNetwork  # noqa: E402

FEW = settings(max_examples=15, deadline=None, database=None,
               suppress_health_check=[HealthCheck.too_slow])
TOL = 1e-6
MAX_STEPS = 20_000  # the slowest drawn contraction needs about 6,500 steps
EPS32 = float(np.finfo(np.float32).eps)


@st.composite
def contracting_rate_problems(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    n_units = draw(st.integers(1, 8))
    n_features = draw(st.integers(1, 4))
    n_rows = draw(st.integers(1, 40))
    activation = draw(st.sampled_from(["relu", "tanh"]))
    rho = draw(st.floats(0.0, 0.9))
    per_unit_tau = draw(st.booleans())
    dt_fraction = draw(st.floats(0.1, 1.0))
    input_scale = draw(st.floats(0.01, 3.0))
    rng = np.random.default_rng(seed)
    weights = rng.standard_normal((n_units, n_units))
    weights *= rho / np.abs(weights).sum(axis=1).max()
    tau = rng.uniform(0.5, 2.0, size=n_units) if per_unit_tau else float(rng.uniform(0.5, 2.0))
    network = RateNetwork(
        weights=weights,
        input_weights=rng.standard_normal((n_units, n_features)),
        bias=rng.normal(scale=0.5, size=n_units),
        tau=tau,
        activation=activation,
    )
    X = input_scale * rng.standard_normal((n_rows, n_features))
    dt = dt_fraction * float(np.min(tau))
    return network, X, dt, rho


def _fit(network, X, dt, **params):
    return RecurrentFixedPointTransformer(
        network=network, dt=dt, tol=TOL, max_steps=MAX_STEPS, **params
    ).fit(X)


def _true_residual(rnn, X, states):
    f = (lambda v: np.maximum(v, 0.0)) if rnn.activation_ == "relu" else np.tanh
    field = -states + f(states) @ rnn.weights_.T + X @ rnn.input_weights_.T + rnn.bias_
    return np.abs(field).max(axis=1)


@FEW
@given(contracting_rate_problems())
def test_rate_fixed_points_satisfy_the_equation(problem):
    network, X, dt, _ = problem
    rnn = _fit(network, X, dt)
    result = rnn.solve(X)
    assert result.converged.all(), result.summary()  # a contraction always converges
    true = _true_residual(rnn, X, result.states)
    assert np.all(true <= TOL * (1 + 1e-9) + 1e-13), true.max()
    assert_allclose(result.residual, true, rtol=1e-8, atol=1e-13)
    assert np.all(result.n_steps < MAX_STEPS)
    assert_array_equal(result.outputs, rnn.transform(X))


@FEW
@given(contracting_rate_problems(), st.data())
def test_answers_do_not_depend_on_batches_order_chunks_or_threads(problem, data):
    network, X, dt, rho = problem
    bound = 2 * TOL / (1 - rho)
    rnn = _fit(network, X, dt)
    reference = rnn.transform(X)
    assert_array_equal(rnn.transform(X), reference)  # deterministic

    cuts = sorted(data.draw(st.lists(st.integers(1, max(1, len(X) - 1)), max_size=4)))
    batches = np.split(X, cuts)
    assert_allclose(np.vstack([rnn.transform(b) for b in batches if len(b)]), reference,
                    rtol=0, atol=bound)

    order = data.draw(st.permutations(range(len(X))))
    assert_allclose(rnn.transform(X[list(order)]), reference[list(order)], rtol=0, atol=bound)

    chunk = data.draw(st.integers(1, 16))
    with mock.patch.object(recurrent_module, "CHUNK_ROWS", chunk):
        assert_allclose(rnn.transform(X), reference, rtol=0, atol=bound)

    for n_jobs in (1, 2):
        other = _fit(network, X, dt, n_jobs=n_jobs)
        assert_allclose(other.transform(X), reference, rtol=0, atol=bound)


@FEW
@given(contracting_rate_problems())
def test_float32_differs_only_by_float32_rounding(problem):
    network, X, dt, rho = problem
    rnn = _fit(network, X, dt)
    X32 = X.astype(np.float32)
    out32 = rnn.transform(X32)
    assert out32.dtype == np.float32
    # Same float64 arithmetic on the float32 inputs, then one rounding to float32.
    rounded = rnn.transform(X32.astype(np.float64))
    bound = 2 * TOL / (1 - rho)
    assert_allclose(out32, rounded.astype(np.float32), rtol=EPS32, atol=bound)
    # Against float64 inputs: the input rounding, propagated through (I - W D)^-1.
    input_error = np.abs(rnn.input_weights_).sum(axis=1).max() * EPS32 * np.abs(X).max()
    atol = bound + (input_error / (1 - rho))
    assert_allclose(out32, rnn.transform(X), rtol=2 * EPS32, atol=atol)


@st.composite
def small_gated_problems(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    n_units = draw(st.integers(1, 5))
    n_features = draw(st.integers(1, 3))
    gain = draw(st.floats(0.0, 0.9))
    rng = np.random.default_rng(seed)

    def matrix():
        m = rng.standard_normal((n_units, n_units))
        return m * (gain / np.abs(m).sum(axis=1).max())

    network = GatedNetwork(
        matrix(), matrix(), matrix(),
        input_weights=rng.standard_normal((n_units, n_features)),
        bias=rng.normal(scale=0.3, size=n_units),
        alpha_z=draw(st.floats(0.5, 3.0)), beta_z=draw(st.floats(-1.0, 1.0)),
        alpha_r=draw(st.floats(0.5, 3.0)), beta_r=draw(st.floats(-1.0, 1.0)),
        tau_z=draw(st.floats(0.5, 2.0)), tau_r=draw(st.floats(0.5, 2.0)),
    )
    X = rng.normal(size=(draw(st.integers(1, 12)), n_features))
    return network, X


@FEW
@given(small_gated_problems())
def test_gated_converged_rows_satisfy_the_equation(problem):
    network, X = problem
    rnn = RecurrentFixedPointTransformer(network=network, tol=TOL, max_steps=5000).fit(X)
    result = rnn.solve(X)
    p = {"J_h": rnn.weights_, "J_z": rnn.z_weights_, "J_r": rnn.r_weights_,
         "W_in": rnn.input_weights_, "b": rnn.bias_, "alpha_z": rnn.alpha_z_,
         "beta_z": rnn.beta_z_, "alpha_r": rnn.alpha_r_, "beta_r": rnn.beta_r_,
         "tau_z": rnn.tau_z_, "tau_r": rnn.tau_r_}
    for state, u, converged, reported in zip(
        result.states, X, result.converged, result.residual, strict=True
    ):
        true = np.abs(gated_field(p, state, u)[1]).max()
        if converged:
            assert true <= TOL * (1 + 1e-9) + 1e-13, true
        else:
            assert true > TOL * (1 - 1e-9) - 1e-13, true
        assert reported == pytest.approx(true, rel=1e-8, abs=1e-13)
    assert_array_equal(result.outputs[result.converged],
                       np.tanh(result.states[result.converged, : rnn.n_units_]))


# --------------------------------------------------------------------------- approximator

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)


@st.composite
def regression_problems(draw):
    n_rows = draw(st.integers(2, 40))
    n_features = draw(st.integers(1, 4))
    X = draw(hnp.arrays(np.float64, (n_rows, n_features), elements=finite))
    target_shape = draw(st.sampled_from([(n_rows,), (n_rows, 1), (n_rows, 3)]))
    Y = draw(hnp.arrays(np.float64, target_shape, elements=finite))
    params = {
        "hidden_layer_size": draw(st.integers(1, 6)),
        "activation": draw(st.sampled_from(["relu", "tanh"])),
        "output_activation": draw(st.sampled_from(["auto", "identity", "relu", "tanh"])),
        "solver": draw(st.sampled_from(["lbfgs", "adam"])),
        "alpha": draw(st.sampled_from([0.0, 1e-5, 1.0])),
        "max_iter": draw(st.integers(1, 15)),
        "random_state": draw(st.integers(0, 2**31 - 1)),
    }
    if params["output_activation"] == "relu":
        Y = np.abs(Y)  # a relu output refuses negative targets (a test of its own)
    X_new = draw(hnp.arrays(np.float64, (3, n_features),
                            elements=st.floats(-1e4, 1e4, allow_nan=False)))
    return X, Y, params, X_new


@FEW
@given(regression_problems())
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_approximator_is_finite_and_deterministic(problem):
    X, Y, params, X_new = problem
    first = FeedforwardApproximator(**params).fit(X, Y)
    second = FeedforwardApproximator(**params).fit(X, Y)
    for rows in (X, X_new):
        prediction = first.predict(rows)
        assert prediction.shape == (len(rows),) + Y.shape[1:]
        assert np.isfinite(prediction).all()
        assert_array_equal(second.predict(rows), prediction)
    for a, b in zip(first.coefs_ + first.intercepts_, second.coefs_ + second.intercepts_,
                    strict=True):
        assert_array_equal(a, b)


@FEW
@given(contracting_rate_problems())
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_distillation_is_finite_and_deterministic(problem):
    network, X, dt, _ = problem
    teacher = RecurrentFixedPointTransformer(network=network, dt=dt, max_steps=MAX_STEPS)
    fits = [FeedforwardApproximator(hidden_layer_size=4, max_iter=10, teacher=teacher,
                                    random_state=0).fit(X) for _ in range(2)]
    assert fits[0].n_teacher_rows_ == len(X)
    prediction = fits[0].predict(X)
    assert np.isfinite(prediction).all()
    assert_array_equal(fits[1].predict(X), prediction)
