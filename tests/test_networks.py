import numpy as np
import pytest

from rnnapprox.networks import (
    RateNetwork,
    random_ei_network,
    random_tanh_network,
    soft_wta,
    winning_partition,
)


def test_soft_wta_structure():
    net = soft_wta(n_partitions=3, units_per_partition=5, n_inhibitory=4, random_state=0)
    W, W_in = net.weights, net.input_weights
    assert W.shape == (19, 19) and W_in.shape == (19, 3)
    # Dale's law: excitatory columns non-negative, inhibitory columns non-positive.
    assert np.all(W[:, :15] >= 0) and np.all(W[:, 15:] <= 0)
    # No excitation between partitions; input reaches only its own partition.
    assert np.all(W[0:5, 5:15] == 0)
    assert np.all(W_in[0:5, 1:] == 0) and np.all(W_in[0:5, 0] > 0)
    assert np.all(W_in[15:] == 0)
    assert net.activation == "relu"


def test_soft_wta_seeded():
    a = soft_wta(random_state=3).weights
    np.testing.assert_array_equal(a, soft_wta(random_state=3).weights)
    assert not np.array_equal(a, soft_wta(random_state=4).weights)
    np.testing.assert_array_equal(soft_wta(jitter=0.0).weights, soft_wta(jitter=0.0).weights)


@pytest.mark.parametrize("kwargs", [{"n_partitions": 0}, {"units_per_partition": 1.5}, {"jitter": -1}])
def test_soft_wta_rejects_bad_sizes(kwargs):
    with pytest.raises(ValueError):
        soft_wta(**kwargs)


def test_random_ei_network_dale_and_radius():
    net = random_ei_network(40, 10, spectral_radius=0.7, n_inputs=3, random_state=0)
    W = net.weights
    assert np.all(W[:, :40] >= 0) and np.all(W[:, 40:] <= 0)
    assert np.all(np.diag(W) == 0)
    np.testing.assert_allclose(np.max(np.abs(np.linalg.eigvals(W))), 0.7, rtol=1e-10)
    assert net.input_weights.shape == (50, 3)


def test_random_tanh_network_variance():
    net = random_tanh_network(400, gain=1.5, random_state=0)
    np.testing.assert_allclose(net.weights.var() * 400, 1.5**2, rtol=0.05)
    assert net.input_weights is None and net.activation == "tanh"


def test_get_set_params_and_repr():
    net = RateNetwork(np.eye(2), tau=1.0)
    assert set(net.get_params()) == {"weights", "input_weights", "bias", "tau", "activation"}
    assert net.set_params(tau=3.0) is net and net.tau == 3.0
    with pytest.raises(ValueError, match="Invalid parameter 'taus'"):
        net.set_params(taus=1.0)
    assert "weights=<array 2x2>" in repr(net)


@pytest.mark.parametrize(
    "kwargs, n_features, match",
    [
        ({"weights": np.ones((2, 3))}, 2, "square"),
        ({"weights": np.ones(3)}, 3, "2 dimensions"),
        ({"weights": np.array([[np.nan, 0], [0, 0]])}, 2, "NaN or infinity"),
        ({"weights": np.eye(2) * 1j}, 2, "complex|real"),
        ({"weights": np.eye(2), "input_weights": np.ones((3, 2))}, 2, r"input_weights must have shape"),
        ({"weights": np.eye(2), "tau": 0.0}, 2, "strictly positive"),
        ({"weights": np.eye(2), "tau": [1.0, -1.0]}, 2, "strictly positive"),
        ({"weights": np.eye(2), "bias": [1.0, 2.0, 3.0]}, 2, "3 entries"),
        ({"weights": np.eye(2), "activation": "softplus"}, 2, "activation must be one of"),
        ({"weights": [["a", "b"], ["c", "d"]]}, 2, "real numeric"),
    ],
)
def test_validated_arrays_errors(kwargs, n_features, match):
    with pytest.raises((ValueError, TypeError), match=match):
        RateNetwork(**kwargs).validated_arrays(n_features)


def test_validated_arrays_copies():
    W = np.eye(3)
    arrays = RateNetwork(W, tau=[1.0, 2.0, 3.0]).validated_arrays(3)
    arrays["weights"][0, 0] = 5.0
    assert W[0, 0] == 1.0
    np.testing.assert_array_equal(arrays["input_weights"], np.eye(3))
    assert arrays["input_weights"] is not None
    assert RateNetwork(W).validated_arrays(2)["input_weights"] is None


def test_winning_partition_is_largest_mean_excitatory_rate():
    # 3 partitions of 2 units + 2 inhibitory units; the inhibitory columns are ignored even when larger.
    rates = np.array([
        [0.0, 4.0, 1.0, 1.0, 0.0, 0.0, 9.0, 9.0],  # partition 0: mean 2 beats partition 1's mean 1
        [1.0, 1.0, 0.0, 3.0, 0.0, 0.0, 9.0, 9.0],  # partition 1 (mean 1.5) beats partition 0 (mean 1)
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.1, 9.0, 9.0],  # partition 2
        [0.5, 0.5, 0.5, 0.5, 0.0, 0.0, 0.0, 0.0],  # tie: the lowest index, as argmax
    ])
    before = rates.copy()
    np.testing.assert_array_equal(winning_partition(rates, 3, 2), [0, 1, 2, 0])
    np.testing.assert_array_equal(rates, before)
    assert winning_partition(rates[:0], 3, 2).shape == (0,)


def test_winning_partition_on_soft_wta_layout_matches_a_direct_mean():
    rng = np.random.default_rng(0)
    rates = rng.uniform(size=(50, 5 * 16 + 8))
    direct = np.array([[row[16 * p:16 * (p + 1)].mean() for p in range(5)] for row in rates]).argmax(1)
    np.testing.assert_array_equal(winning_partition(rates, 5, 16), direct)


@pytest.mark.parametrize(
    "rates, sizes, match",
    [
        (np.zeros(6), (3, 2), "must be 2-D"),
        (np.zeros((2, 5)), (3, 2), "5 columns, fewer than the 6 excitatory"),
        (np.array([[0.0, np.nan, 0, 0], [0, 0, 0, 0]]), (2, 2), r"infinity in 1 rows \(first: \[0\]\)"),
        (np.zeros((2, 6)), (0, 2), "n_partitions must be a positive integer"),
        (np.zeros((2, 6)), (3, 2.0), "units_per_partition must be a positive integer"),
    ],
)
def test_winning_partition_rejects_bad_arguments(rates, sizes, match):
    with pytest.raises(ValueError, match=match):
        winning_partition(rates, *sizes)
