"""Stability analysis: Jacobians against finite differences and known linear
cases, leading eigenvalues and stable flags, and the finer ``dynamics``
classification of rows that did not converge."""

import numpy as np
import pytest
from conftest import fitted_arrays, gated_arrays, gated_field

from rnnapprox import RecurrentFixedPointTransformer
from rnnapprox.networks import RateNetwork, random_tanh_network


def finite_difference_jacobian(field, state, step=1e-6):
    columns = []
    for k in range(state.size):
        e = np.zeros(state.size)
        e[k] = step
        columns.append((field(state + e) - field(state - e)) / (2 * step))
    return np.array(columns).T


def rate_velocity(arrays, u):
    f = (lambda v: np.maximum(v, 0.0)) if arrays["activation"] == "relu" else np.tanh
    return lambda x: (-x + arrays["W"] @ f(x) + arrays["W_in"] @ u + arrays["b"]) / arrays["tau"]


def leading(eigenvalues):
    k = np.argmax(eigenvalues.real)
    return complex(eigenvalues[k].real, abs(eigenvalues[k].imag))


# --------------------------------------------------------------------------- Jacobians


def test_rate_jacobian_matches_finite_differences(tanh_network, tanh_inputs):
    network = RateNetwork(tanh_network.weights, tanh_network.input_weights,
                          tau=np.linspace(0.5, 2.0, 30), bias=0.2, activation="tanh")
    U = tanh_inputs[:3]
    rnn = RecurrentFixedPointTransformer(network=network).fit(U)
    states = np.random.default_rng(0).normal(size=(3, 30))  # anywhere, not only fixed points
    jacobians = rnn.jacobian(U, states)
    for J, x, u in zip(jacobians, states, U):
        expected = finite_difference_jacobian(rate_velocity(fitted_arrays(rnn), u), x)
        np.testing.assert_allclose(J, expected, atol=1e-8)


def test_gated_jacobian_matches_finite_differences(gated_fitted, gated_inputs):
    p = gated_arrays(gated_fitted)
    U = gated_inputs[:3]
    states = np.random.default_rng(1).normal(size=(3, 60))  # sigma_z' * bracket term is live
    for J, s, u in zip(gated_fitted.jacobian(U, states), states, U):
        expected = finite_difference_jacobian(lambda v, u=u: gated_field(p, v, u)[0], s)
        np.testing.assert_allclose(J, expected, atol=1e-8)


def test_jacobian_shape_checked(gated_fitted):
    match = r"states must have shape \(n_samples, n_state_\) = \(2, 60\)"
    with pytest.raises(ValueError, match=match):
        gated_fitted.jacobian(np.ones((2, 3)), np.ones((2, 20)))


@pytest.mark.parametrize("family", ["tanh", "gated"])
def test_leading_eigenvalue_matches_finite_differences(family, request, gated_solved):
    if family == "gated":
        rnn = request.getfixturevalue("gated_fitted")
        U = request.getfixturevalue("gated_inputs")
        result = gated_solved
        p = gated_arrays(rnn)

        def field_of(u):
            return lambda v: gated_field(p, v, u)[0]
    else:
        U = request.getfixturevalue("tanh_inputs")[:10]
        rnn = RecurrentFixedPointTransformer(network=request.getfixturevalue("tanh_network")).fit(U)
        result = rnn.solve(U, stability=True)

        def field_of(u):
            return rate_velocity(fitted_arrays(rnn), u)

    assert result.converged.all() and result.leading_eigenvalue.dtype == complex
    for s, u, reported in zip(result.states[:8], U[:8], result.leading_eigenvalue[:8]):
        expected = leading(np.linalg.eigvals(finite_difference_jacobian(field_of(u), s)))
        assert abs(reported - expected) < 1e-6
    np.testing.assert_array_equal(result.stable, result.leading_eigenvalue.real < 0)
    assert result.stable.all()  # Euler reached them: attractors
    assert np.all(np.isnan(result.lyapunov_exponent))


def test_relu_all_active_region_is_linear():
    rng = np.random.default_rng(0)
    W = 0.4 * rng.random((8, 8)) / 8 - 0.2 / 8
    network = RateNetwork(W, tau=2.0, activation="relu")
    U = 1.0 + rng.random((4, 8))  # x* = (I - W)^-1 u > 0: every unit active
    rnn = RecurrentFixedPointTransformer(network=network, tol=1e-10).fit(U)
    result = rnn.solve(U, stability=True)
    assert result.converged.all() and np.all(result.states > 0)
    expected = leading(np.linalg.eigvals((W - np.eye(8)) / 2.0))
    np.testing.assert_allclose(result.leading_eigenvalue, expected, atol=1e-12)
    assert result.stable.all()


def test_tanh_small_amplitude_is_linear():
    network = random_tanh_network(25, gain=0.9, random_state=3)
    U = 1e-5 * np.random.default_rng(0).normal(size=(3, 25))
    result = RecurrentFixedPointTransformer(network=network).fit(U).solve(U, stability=True)
    expected = leading(np.linalg.eigvals(network.weights - np.eye(25)))
    np.testing.assert_allclose(result.leading_eigenvalue, expected, atol=1e-8)


def test_unstable_fixed_point_is_flagged():
    # Silent state of a chaotic tanh network: a fixed point (residual 0 at x0 = 0), unstable.
    network = random_tanh_network(50, gain=2.0, random_state=0)
    U = np.zeros((2, 50))
    result = RecurrentFixedPointTransformer(network=network).fit(U).solve(U, stability=True)
    assert result.converged.all() and np.all(result.n_steps == 0)
    assert not result.stable.any()
    expected = leading(np.linalg.eigvals(network.weights - np.eye(50)))
    np.testing.assert_allclose(result.leading_eigenvalue, expected, atol=1e-10)
    assert expected.real > 0.5


# --------------------------------------------------------------------------- dynamics


@pytest.fixture(scope="module")
def limit_cycle():
    theta = 1.0
    W = 2.0 * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    U = np.zeros((1, 2))
    rnn = RecurrentFixedPointTransformer(
        network=RateNetwork(W, activation="tanh"), x0=[0.1, 0.0], max_steps=3000
    ).fit(U)
    return rnn, U


def test_limit_cycle_is_sustained_then_oscillating(limit_cycle):
    rnn, U = limit_cycle
    plain = rnn.solve(U)
    assert plain.status[0] == "max_steps" and plain.dynamics[0] == "sustained"
    assert 1.0 <= plain.contraction[0] < 2.0  # max over a cycle / min over a cycle
    assert "leading_eigenvalue" not in plain
    result = rnn.solve(U, stability=True)
    assert result.status[0] == "max_steps" and result.dynamics[0] == "oscillating"
    assert abs(result.lyapunov_exponent[0]) < 0.005
    assert np.isnan(result.leading_eigenvalue[0]) and not result.stable[0]
    assert "1 oscillating" in result.summary()


def test_slow_rows_are_told_apart():
    network = RateNetwork(0.99 * np.eye(3), activation="relu")  # decay rate 0.01
    U = np.ones((2, 3))
    result = RecurrentFixedPointTransformer(network=network, max_steps=4000).fit(U).solve(
        U, stability=True
    )
    np.testing.assert_array_equal(result.status, ["max_steps", "max_steps"])
    np.testing.assert_array_equal(result.dynamics, ["slow", "slow"])
    assert np.all(result.contraction < 0.5)
    np.testing.assert_allclose(result.lyapunov_exponent, -0.01, rtol=0.05)


def test_chaotic_rate_rows():
    # (At g = 2, N = 100 networks often end on limit cycles: finite-size effects.)
    network = random_tanh_network(100, gain=4.0, random_state=1)
    U = np.random.default_rng(0).normal(scale=0.1, size=(3, 100))
    result = RecurrentFixedPointTransformer(network=network, max_steps=2000).fit(U).solve(
        U, stability=True
    )
    np.testing.assert_array_equal(result.status, ["max_steps"] * 3)
    np.testing.assert_array_equal(result.dynamics, ["chaotic"] * 3)
    assert np.all(result.lyapunov_exponent > 0.05)
    assert np.all(result.contraction > 0.5)


def test_diverged_and_converged_dynamics(exploding_network):
    network, U = exploding_network
    result = RecurrentFixedPointTransformer(network=network).fit(U).solve(U, stability=True)
    np.testing.assert_array_equal(result.status, ["diverged", "converged", "diverged"])
    np.testing.assert_array_equal(result.dynamics, ["diverged", "fixed_point", "diverged"])
    assert np.isnan(result.contraction).all() and np.isnan(result.lyapunov_exponent).all()
    np.testing.assert_array_equal(result.stable, [False, True, False])
    # The silent row: relu' = 0 everywhere, J = -I.
    assert result.leading_eigenvalue[1] == -1.0


@pytest.fixture(scope="module")
def exploding_network():
    network = RateNetwork(weights=1.5 * np.eye(4) + 0.1, activation="relu")
    U = np.array([[1.0, 0.5, 0.2, 0.1], [-1.0, -1.0, -1.0, -1.0], [0.3, 0.0, 0.0, 0.0]])
    return network, U


