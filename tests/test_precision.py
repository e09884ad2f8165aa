"""precision="mixed": float32 for the transient, float64 to finish; checked against float64 Euler."""

import numpy as np
import pytest
from conftest import REFERENCE_ACTIVATIONS

from rnnapprox import RecurrentFixedPointTransformer
from rnnapprox._methods._precision import switch_tolerance
from rnnapprox.networks import RateNetwork, random_ei_network, random_gated_network, soft_wta


def _networks():
    wta = soft_wta(n_partitions=4, units_per_partition=6, n_inhibitory=3, random_state=0)
    ei = random_ei_network(60, 4, spectral_radius=0.9, random_state=0)
    rng = np.random.default_rng(0)
    return [
        ("wta", wta, rng.uniform(0.0, 1.0, size=(150, 4))),
        ("ei", ei, rng.uniform(0.0, 1.0, size=(150, 4))),
        ("tanh", RateNetwork(rng.standard_normal((30, 30)) * 0.9 / np.sqrt(30), activation="tanh"),
         rng.normal(size=(150, 30))),
    ]


@pytest.mark.parametrize("method", ["euler", "anderson"])
@pytest.mark.parametrize("name, network, X", _networks(), ids=lambda v: v if isinstance(v, str) else "")
def test_mixed_precision_lands_on_the_float64_answer(name, network, X, method):
    reference = RecurrentFixedPointTransformer(network=network, random_state=0).fit(X).solve(X)
    rnn = RecurrentFixedPointTransformer(network=network, method=method, precision="mixed",
                                         random_state=0).fit(X)
    mixed = rnn.solve(X)
    np.testing.assert_array_equal(mixed.status, reference.status)
    done = mixed.converged
    assert done.any()
    # The residual is float64's, recomputed here independently of the package.
    f = REFERENCE_ACTIVATIONS[rnn.activation_][0]
    x = mixed.states[done]
    residual = np.abs(-x + f(x) @ rnn.weights_.T + X[done] @ rnn.input_weights_.T + rnn.bias_).max(axis=1)
    assert np.all(residual <= rnn.tol)
    np.testing.assert_allclose(residual, mixed.residual[done], rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(mixed.outputs[done], reference.outputs[done], atol=2e-5)
    if method == "euler":
        # The same trajectory up to float32 rounding: step counts within a few.
        assert np.all(np.abs(mixed.n_steps[done] - reference.n_steps[done]) <= 3)


def test_rows_that_do_not_settle_are_those_of_float64():
    """Diverging and max_steps rows are integrated again in float64: same states and steps."""
    exploding = RateNetwork(weights=np.array([[1.5, 0.0], [0.0, 0.5]]))
    X = np.array([[1.0, 1.0], [-1.0, 1.0], [1.0, -1.0]])
    for params in ({}, {"max_steps": 5}):
        reference = RecurrentFixedPointTransformer(network=exploding, **params).fit(X).solve(X)
        mixed = RecurrentFixedPointTransformer(network=exploding, precision="mixed", **params).fit(X).solve(X)
        np.testing.assert_array_equal(mixed.status, reference.status)
        failed = ~reference.converged
        assert failed.any()
        np.testing.assert_array_equal(mixed.states[failed], reference.states[failed])
        np.testing.assert_array_equal(mixed.n_steps[failed], reference.n_steps[failed])


def test_inputs_too_large_for_float32_stay_in_float64():
    network = soft_wta(n_partitions=3, units_per_partition=4, n_inhibitory=2, random_state=0)
    X = np.full((4, 3), 1e6)
    rnn = RecurrentFixedPointTransformer(network=network, precision="mixed").fit(X)
    assert switch_tolerance(rnn._family(), X @ rnn.input_weights_.T, rnn.tol) is None
    reference = RecurrentFixedPointTransformer(network=network).fit(X).solve(X)
    mixed = rnn.solve(X)
    for key in ("states", "n_steps", "status"):
        np.testing.assert_array_equal(mixed[key], reference[key])


def test_mixed_precision_needs_a_rate_network_and_a_float32_method():
    X = np.zeros((2, 2))
    with pytest.raises(ValueError, match="precision='mixed' needs a rate network"):
        RecurrentFixedPointTransformer(network=random_gated_network(4, n_inputs=2, random_state=0),
                                       precision="mixed").fit(X)
    with pytest.raises(ValueError, match="precision='mixed' needs a rate network"):
        RecurrentFixedPointTransformer(network=RateNetwork(np.eye(2) * 0.5), method="active_set",
                                       precision="mixed").fit(X)
