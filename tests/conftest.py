"""Shared fixtures: networks and solved data reused across tests, so each numba
kernel compiles once per session and the suite stays fast."""

import numpy as np
import pytest

from rnnapprox import RecurrentFixedPointTransformer
from rnnapprox.networks import random_tanh_network, soft_wta


def euler_reference(network_arrays, U, dt, tol, max_steps, x0=None):
    """Plain-numpy forward Euler, one row at a time: the independent reference.

    Returns states, residuals and step counts with the package's stopping rule
    (stop at the first state whose residual is <= tol).
    """
    W, W_in, b, tau, act = (network_arrays[k] for k in ("W", "W_in", "b", "tau", "activation"))
    f = (lambda v: np.maximum(v, 0.0)) if act == "relu" else np.tanh
    states, residuals, steps = [], [], []
    for u in U:
        x = np.zeros(W.shape[0]) if x0 is None else x0.copy()
        d = W_in @ u + b
        for k in range(max_steps + 1):
            g = -x + W @ f(x) + d
            r = np.max(np.abs(g))
            if r <= tol or k == max_steps:
                break
            x = x + (dt / tau) * g
        states.append(x)
        residuals.append(r)
        steps.append(k)
    return np.array(states), np.array(residuals), np.array(steps)


def fitted_arrays(transformer):
    return {
        "W": transformer.weights_,
        "W_in": transformer.input_weights_,
        "b": transformer.bias_,
        "tau": transformer.tau_,
        "activation": transformer.activation_,
    }


@pytest.fixture(scope="session")
def wta_network():
    return soft_wta(n_partitions=4, units_per_partition=6, n_inhibitory=3, random_state=0)


@pytest.fixture(scope="session")
def wta_inputs():
    return np.random.default_rng(1).uniform(0.0, 1.0, size=(60, 4))


@pytest.fixture(scope="session")
def wta_fitted(wta_network, wta_inputs):
    return RecurrentFixedPointTransformer(network=wta_network).fit(wta_inputs)


@pytest.fixture(scope="session")
def tanh_network():
    return random_tanh_network(30, gain=0.8, n_inputs=5, random_state=0)


@pytest.fixture(scope="session")
def tanh_inputs():
    return np.random.default_rng(2).normal(size=(40, 5))
