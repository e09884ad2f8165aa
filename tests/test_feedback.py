"""Trained feedback networks: the W = chi + m n^T / N builder, open-loop
least-squares training of the readout, and the target's stability report."""

import numpy as np
import pytest
from sklearn.base import clone

from rnnapprox import RecurrentFixedPointTransformer
from rnnapprox.feedback import check_feedback_target, train_feedback_readout
from rnnapprox.networks import FeedbackNetwork, RateNetwork, random_feedback_network


@pytest.fixture(scope="module")
def bulk_network():
    return random_feedback_network(100, gain=0.5, input_correlation=0.8, input_scale=0.2,
                                   random_state=0)


@pytest.fixture(scope="module")
def trained(bulk_network):
    return train_feedback_readout(bulk_network, target=0.5)


def test_feedback_network_is_a_rate_network():
    rng = np.random.default_rng(0)
    chi = rng.normal(size=(5, 5))
    m, n, I = rng.normal(size=(3, 5))
    net = FeedbackNetwork(chi, m, readout=n, input_vector=I, tau=2.0)
    assert isinstance(net, RateNetwork) and net.activation == "tanh" and net.n_units == 5
    np.testing.assert_allclose(net.weights, chi + np.outer(m, n) / 5)
    np.testing.assert_array_equal(net.input_weights, I[:, None])
    arrays = net.validated_arrays(1)
    np.testing.assert_allclose(arrays["weights"], chi + np.outer(m, n) / 5)
    np.testing.assert_array_equal(arrays["tau"], 2.0)
    assert set(net.get_params()) == {"bulk", "feedback", "readout", "input_vector", "tau"}
    copy = clone(net)
    np.testing.assert_array_equal(copy.weights, net.weights)
    np.testing.assert_allclose(net.output(np.ones(5)), n.sum() / 5)
    np.testing.assert_array_equal(FeedbackNetwork(chi, m).weights, chi)  # open loop


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"bulk": np.ones((2, 3))}, "bulk must be a square matrix"),
        ({"feedback": np.ones(3)}, r"feedback must have shape \(2,\)"),
        ({"readout": [np.nan, 0.0]}, "readout contains NaN"),
        ({"input_vector": np.ones((2, 1))}, "input_vector must have 1 dimensions"),
    ],
)
def test_feedback_validation(kwargs, match):
    params = {"bulk": np.eye(2), "feedback": np.ones(2), **kwargs}
    with pytest.raises((ValueError, TypeError), match=match):
        FeedbackNetwork(**params).validated_arrays(1)
    with pytest.raises((ValueError, TypeError), match=match):
        RecurrentFixedPointTransformer(network=FeedbackNetwork(**params)).fit(np.ones((2, 1)))


def test_random_feedback_network_statistics():
    net = random_feedback_network(2000, gain=1.3, input_correlation=-0.4, input_scale=0.5,
                                  random_state=0)
    np.testing.assert_allclose(net.bulk.var() * 2000, 1.3**2, rtol=0.02)
    np.testing.assert_allclose(np.corrcoef(net.feedback, net.input_vector)[0, 1], -0.4, atol=0.05)
    np.testing.assert_allclose(net.input_vector.std(), 0.5, rtol=0.05)
    np.testing.assert_array_equal(net.readout, None)
    with pytest.raises(ValueError, match="input_correlation"):
        random_feedback_network(10, input_correlation=1.5)


def test_training_gives_target_at_open_loop_point(bulk_network, trained):
    x_ol = trained.open_loop_state
    chi, m, I = bulk_network.bulk, bulk_network.feedback, bulk_network.input_vector
    # x_ol is the open-loop fixed point with z clamped to the target ...
    np.testing.assert_allclose(-x_ol + chi @ np.tanh(x_ol) + m * 0.5 + I, 0.0, atol=1e-10)
    assert trained.open_loop_reached and trained.open_loop_residual < 1e-10
    # ... the readout reads the target there, and is the minimum-norm one (along tanh(x_ol)) ...
    np.testing.assert_allclose(trained.readout @ np.tanh(x_ol) / 100, 0.5, rtol=1e-12)
    assert abs(np.corrcoef(trained.readout, np.tanh(x_ol))[0, 1] - 1) < 1e-12
    np.testing.assert_array_equal(trained.network.readout, trained.readout)
    # ... so x_ol is a fixed point of the closed loop.
    W = trained.network.weights
    np.testing.assert_allclose(-x_ol + W @ np.tanh(x_ol) + I, 0.0, atol=1e-10)
    np.testing.assert_array_equal(bulk_network.readout, None)  # the input network is untouched


def test_stable_target_is_reached(trained):
    report = check_feedback_target(trained)
    assert report.reached and report.stable and report.status == "converged"
    assert report.leading_eigenvalue.real < 0
    np.testing.assert_allclose(report.output, 0.5, atol=1e-6)
    # The transformer sees the trained network as a rate network with input amplitude u.
    rnn = RecurrentFixedPointTransformer(network=trained.network, tol=1e-10).fit(np.ones((1, 1)))
    np.testing.assert_allclose(rnn.transform(np.ones((1, 1)))[0], np.tanh(trained.open_loop_state),
                               atol=1e-8)


def test_unstable_target_is_reported():
    # Weak input, linear regime: the rank-one outlier is about
    # -1 + A (A + rho s) / (A^2 + 2 A rho s + s^2), positive for A rho < -s
    # (here A = -0.1, rho = 0.8, s = 0.05: about +0.33).
    net = random_feedback_network(100, gain=0.3, input_correlation=0.8, input_scale=0.05,
                                  random_state=0)
    training = train_feedback_readout(net, target=-0.1)
    np.testing.assert_allclose(training.readout @ np.tanh(training.open_loop_state) / 100, -0.1)
    report = check_feedback_target(training)
    assert not report.stable and not report.reached
    assert 0.1 < report.leading_eigenvalue.real < 0.6 and report.leading_eigenvalue.imag == 0
    assert report.distance > 1e-3


def test_stable_target_not_reached_from_rest(bulk_network):
    # Target of the opposite sign to the input: locally stable, but the network at
    # rest falls into the attractor of the input's sign.
    training = train_feedback_readout(bulk_network, target=-1.0)
    report = check_feedback_target(training)
    assert report.stable and not report.reached and report.status == "converged"
    assert report.output > 0
    # Started at the target itself, it stays.
    near = check_feedback_target(training, x0=training.open_loop_state)
    assert near.reached and abs(near.output + 1.0) < 1e-6


def test_train_feedback_errors(bulk_network):
    with pytest.raises(TypeError, match="FeedbackNetwork"):
        train_feedback_readout(RateNetwork(np.eye(2)), target=1.0)
    silent = FeedbackNetwork(np.zeros((3, 3)), np.zeros(3))
    with pytest.raises(ValueError, match="open-loop activity is zero"):
        train_feedback_readout(silent, target=1.0)
    assert np.all(train_feedback_readout(silent, target=0.0).readout == 0)
