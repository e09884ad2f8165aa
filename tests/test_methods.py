"""method="anderson" lands where method="euler" (the definition of the answer) lands.

Tests shared with method="active_set" are parametrized here; the rest of newton's are in
test_newton.py.
"""

import numpy as np
import pytest
from conftest import euler_and

from rnnapprox import RecurrentFixedPointTransformer
from rnnapprox.networks import (
    RateNetwork,
    random_gated_network,
    random_tanh_network,
    soft_wta,
    winning_partition,
)

TOL = 1e-6


def _pair(network, X, **params):
    return euler_and("anderson", network, X, **params)


def _assert_same(euler, anderson, atol=1e-5):
    np.testing.assert_array_equal(anderson.status, euler.status)
    np.testing.assert_array_equal(anderson.converged, euler.converged)
    done = euler.converged
    assert np.all(anderson.residual[done] <= TOL)
    np.testing.assert_allclose(anderson.outputs[done], euler.outputs[done], atol=atol, rtol=0)


def test_relu_wta_rows_match_euler_with_fewer_steps():
    network = soft_wta(n_partitions=4, units_per_partition=8, n_inhibitory=4, random_state=0)
    X = np.random.default_rng(0).uniform(0.0, 1.0, size=(300, 4))
    euler, anderson = _pair(network, X)
    assert euler.converged.all()
    _assert_same(euler, anderson)
    assert np.median(anderson.n_steps) < 0.5 * np.median(euler.n_steps)


def test_wta_near_tied_inputs_keep_euler_winner():
    network = soft_wta(n_partitions=3, units_per_partition=8, n_inhibitory=4, random_state=1)
    rng = np.random.default_rng(1)
    base = rng.uniform(0.5, 1.0, size=(200, 1))
    X = base + rng.uniform(-1e-3, 1e-3, size=(200, 3))
    euler, anderson = _pair(network, X, max_steps=20_000)
    _assert_same(euler, anderson)
    def winners(result):
        return winning_partition(result.outputs, n_partitions=3, units_per_partition=8)

    np.testing.assert_array_equal(winners(anderson), winners(euler))


@pytest.mark.parametrize("gain", [0.5, 1.5])
def test_tanh_rows_match_euler(gain):
    network = random_tanh_network(40, gain=gain, n_inputs=3, random_state=0)
    X = np.random.default_rng(2).uniform(-1.0, 1.0, size=(100, 3))
    euler, anderson = _pair(network, X)
    _assert_same(euler, anderson)


@pytest.mark.parametrize("x0", [0.05, -0.05])
def test_bistable_unit_keeps_euler_attractor(x0):
    # x = 2 tanh(x) + d has two stable states and a saddle between them.
    network = RateNetwork(weights=[[2.0]], input_weights=[[1.0]], activation="tanh")
    X = np.linspace(-0.3, 0.3, 41)[:, np.newaxis]
    euler, anderson = _pair(network, X, x0=[x0])
    _assert_same(euler, anderson)


def test_rows_that_never_converge_keep_euler_status():
    chaotic = random_tanh_network(100, gain=2.0, n_inputs=2, random_state=0)
    X = np.random.default_rng(3).uniform(-0.1, 0.1, size=(8, 2))
    euler, anderson = _pair(chaotic, X, max_steps=2000)
    assert not euler.converged.any()
    _assert_same(euler, anderson)
    exploding = RateNetwork(weights=1.5 * np.eye(3), input_weights=np.eye(3))
    X = np.abs(np.random.default_rng(4).standard_normal((10, 3))) + 0.1
    euler, anderson = _pair(exploding, X)
    assert (euler.status == "diverged").all()
    _assert_same(euler, anderson)


@pytest.mark.parametrize("method", ["anderson", "active_set"])
@pytest.mark.usefixtures("analyse_every_region")
def test_float32_and_n_jobs(method):
    network = soft_wta(n_partitions=3, units_per_partition=8, n_inhibitory=4, random_state=0)
    X = np.random.default_rng(5).uniform(0.0, 1.0, size=(150, 3))
    euler = RecurrentFixedPointTransformer(network=network).fit(X).transform(X.astype(np.float32))
    results = []
    for n_jobs in (1, 2):
        rnn = RecurrentFixedPointTransformer(network=network, method=method, n_jobs=n_jobs)
        out = rnn.fit(X).transform(X.astype(np.float32))
        assert out.dtype == np.float32
        results.append(out)
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_allclose(results[0], euler, atol=1e-5, rtol=0)


def test_gated_networks_are_euler_only():
    network = random_gated_network(10, n_inputs=2, random_state=0)
    rnn = RecurrentFixedPointTransformer(network=network, method="anderson")
    with pytest.raises(ValueError, match="rate networks only"):
        rnn.fit(np.zeros((3, 2)))


def test_anderson_declines_where_verifying_costs_more_than_it_saves():
    """A tanh network with ||W||_2 >= 1: verifying a found point is a dense eigenproblem of the
    whole state, worth more than the at most 2,000 Euler steps a row may take, so no row is
    accelerated and Anderson's answer is Euler's, up to the rounding of block products (which
    rows share a block can differ)."""
    network = random_tanh_network(60, gain=0.9, n_inputs=4, random_state=0)
    assert np.linalg.norm(network.weights, 2) >= 1.0
    X = np.random.default_rng(0).normal(size=(40, 4))
    euler = RecurrentFixedPointTransformer(network=network, max_steps=2000,
                                           random_state=0).fit(X).solve(X)
    anderson = RecurrentFixedPointTransformer(network=network, method="anderson", max_steps=2000,
                                              random_state=0).fit(X).solve(X)
    assert euler.converged.all()
    np.testing.assert_array_equal(anderson.n_steps, euler.n_steps)
    np.testing.assert_array_equal(anderson.status, euler.status)
    np.testing.assert_allclose(anderson.states, euler.states, rtol=0, atol=1e-12)


def test_rows_euler_would_not_finish_in_max_steps_end_there_too():
    # Anderson finds this point in 64 steps; Euler needs about 1,800: with max_steps=640
    # the row must end as Euler ends it.
    network = soft_wta(2, 1, 1, self_excitation=1.67, inhibition=2.0, random_state=136)
    X = np.array([[0.86, 0.28], [0.43, 0.63]])
    for precision in ("float64", "mixed"):
        euler, anderson = _pair(network, X, dt=0.05, max_steps=640, precision=precision)
        assert (euler.status == "max_steps").all()
        np.testing.assert_array_equal(anderson.status, euler.status)
        np.testing.assert_array_equal(anderson.n_steps, euler.n_steps)


def test_mixed_precision_resumes_at_euler_steps_not_anderson_iterations():
    # max_steps is Euler's need: the float32 phase's Anderson iterations must not use it up.
    network = soft_wta(4, 18, 9, self_excitation=1.3865279007166595, inhibition=2.482098621225907,
                       random_state=348)
    rng = np.random.default_rng(349)
    X = rng.uniform(0, 0.01, (11, 4))
    X[:, 1] = X[:, 0] - 10.0 ** rng.uniform(-9, -3, 11)
    rng = np.random.default_rng(355)
    rng.random()
    x0 = rng.standard_normal(81) * float(rng.choice([0.1, 1.0, 5.0]))
    params = dict(x0=x0, dt=0.1, divergence_threshold=3.0, n_jobs=1, max_steps=456)
    euler, anderson = _pair(network, X[:1], precision="mixed", **params)
    assert euler.converged.all()
    np.testing.assert_array_equal(anderson.status, euler.status)


def test_a_rows_result_does_not_depend_on_the_rows_before_it():
    # 150 identical rows share 64-row blocks and reuse slots: each must take the same steps.
    network = soft_wta(5, 16, 8, random_state=0)
    u = np.array([[1.0, 0.2, 0.1, 0.3, 0.5]])
    x0 = RecurrentFixedPointTransformer(network=network, max_steps=40, on_nonconvergence="nan").fit(u)
    x0 = x0.solve(u).states[0]
    X = np.repeat(u, 150, axis=0)
    alone = RecurrentFixedPointTransformer(network=network, x0=x0, method="anderson").fit(u).solve(u)
    many = RecurrentFixedPointTransformer(network=network, x0=x0, method="anderson", n_jobs=1).fit(X).solve(X)
    np.testing.assert_array_equal(many.n_steps, np.full(150, alone.n_steps[0]))
