"""Shared fixtures: networks and solved data reused across tests, so each numba
kernel compiles once per session and the suite stays fast."""

import numpy as np
import pytest

from rnnapprox import RecurrentFixedPointTransformer
from rnnapprox.networks import random_tanh_network, soft_wta

#: The activations written out independently of the package: f and f'. A name
#: missing here is a KeyError, never a silent stand-in.
REFERENCE_ACTIVATIONS = {
    "relu": (lambda v: np.maximum(v, 0.0), lambda v: (v > 0).astype(float)),
    "tanh": (np.tanh, lambda v: 1.0 - np.tanh(v) ** 2),
    "sigmoid": (lambda v: 1.0 / (1.0 + np.exp(-v)),
                lambda v: 1.0 / (np.exp(-v / 2) + np.exp(v / 2)) ** 2),
}


def euler_reference(network_arrays, U, dt, tol, max_steps, x0=None):
    """Plain-numpy forward Euler, one row at a time: the independent reference.

    Returns states, residuals and step counts with the package's stopping rule
    (stop at the first state whose residual is <= tol).
    """
    W, W_in, b, tau, act = (network_arrays[k] for k in ("W", "W_in", "b", "tau", "activation"))
    f = REFERENCE_ACTIVATIONS[act][0]
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


@pytest.fixture
def analyse_every_region(monkeypatch):
    """Let method="active_set" analyse regions of the small networks tests use.

    Its cost model hands networks of 61 units or fewer to plain Euler (a region's
    analysis has a fixed cost no Euler step of so small a network repays);
    tests of the certificate itself set that fixed cost to zero.
    ``test_active_set.test_small_networks_are_integrated_by_euler`` checks the
    hand-over.
    """
    from rnnapprox._methods import active_set

    monkeypatch.setattr(active_set, "ANALYSIS_FIXED_FLOPS", 0.0)


def euler_and(method, network, X, **params):
    """The rows of ``X`` solved by ``method="euler"`` and by ``method``, the same parameters
    otherwise (``tol=1e-6`` unless given)."""
    params.setdefault("tol", 1e-6)
    return tuple(RecurrentFixedPointTransformer(network=network, method=m, **params).fit(X).solve(X)
                 for m in ("euler", method))


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


@pytest.fixture(scope="session")
def sigmoid_network():
    # Logistic units (slope at most 1/4) with strong coupling and a negative bias.
    return random_tanh_network(30, gain=2.5, n_inputs=5, random_state=3).set_params(
        activation="sigmoid", bias=-0.5
    )


@pytest.fixture(scope="session")
def sigmoid_inputs():
    return np.random.default_rng(4).normal(scale=2.0, size=(40, 5))


# --------------------------------------------------------------------------- gated networks


def sigmoid_gate(v, alpha, beta):
    return 1.0 / (1.0 + np.exp(-alpha * v + beta))


def gated_field(p, s, u):
    """Plain-numpy gated vector field (dh/dt, dz/dt, dr/dt) and the residual bracket.

    ``p`` holds J_h, J_z, J_r, W_in, b, alpha_z, beta_z, alpha_r, beta_r,
    tau_z, tau_r as in ``gated_arrays``.
    """
    n = p["J_h"].shape[0]
    h, z, r = s[:n], s[n : 2 * n], s[2 * n :]
    a = np.tanh(h)
    gated_rates = sigmoid_gate(r, p["alpha_r"], p["beta_r"]) * a
    bracket = -h + p["J_h"] @ gated_rates + p["W_in"] @ u + p["b"]
    fz = -z + p["J_z"] @ a
    fr = -r + p["J_r"] @ a
    velocity = np.concatenate([
        sigmoid_gate(z, p["alpha_z"], p["beta_z"]) * bracket, fz / p["tau_z"], fr / p["tau_r"]
    ])
    return velocity, np.concatenate([bracket, fz, fr])


def gated_euler_reference(p, U, dt, tol, max_steps, x0=None):
    """Forward Euler on (h, z, r), one row at a time, with the package's stopping rule."""
    n = p["J_h"].shape[0]
    states, residuals, steps = [], [], []
    for u in U:
        s = np.zeros(3 * n) if x0 is None else x0.copy()
        for k in range(max_steps + 1):
            velocity, scaled = gated_field(p, s, u)
            residual = np.max(np.abs(scaled))
            if residual <= tol or k == max_steps:
                break
            s = s + dt * velocity
        states.append(s)
        residuals.append(residual)
        steps.append(k)
    return np.array(states), np.array(residuals), np.array(steps)


def gated_arrays(transformer):
    t = transformer
    return {
        "J_h": t.weights_, "J_z": t.z_weights_, "J_r": t.r_weights_, "W_in": t.input_weights_,
        "b": t.bias_, "alpha_z": t.alpha_z_, "beta_z": t.beta_z_, "alpha_r": t.alpha_r_,
        "beta_r": t.beta_r_, "tau_z": t.tau_z_, "tau_r": t.tau_r_,
    }


@pytest.fixture(scope="session")
def gated_network():
    from rnnapprox.networks import random_gated_network

    # Moderate gain, non-trivial gates and time constants: every row converges.
    return random_gated_network(
        20, gain=1.5, gain_z=1.0, n_inputs=3, alpha_z=2.0, beta_z=-0.5, alpha_r=3.0,
        beta_r=0.5, tau_z=2.0, tau_r=0.5, random_state=0,
    ).set_params(bias=0.1)


@pytest.fixture(scope="session")
def gated_inputs():
    return np.random.default_rng(3).normal(scale=0.7, size=(30, 3))


@pytest.fixture(scope="session")
def gated_fitted(gated_network, gated_inputs):
    return RecurrentFixedPointTransformer(network=gated_network).fit(gated_inputs)


@pytest.fixture(scope="session")
def gated_solved(gated_fitted, gated_inputs):
    return gated_fitted.solve(gated_inputs, stability=True)


@pytest.fixture(scope="session")
def gated_transition():
    """Strong coupling, closed output gates: quiet without input, chaotic with weak input."""
    from rnnapprox.networks import random_gated_network

    network = random_gated_network(
        60, gain=3.0, gain_z=1.0, alpha_r=10.0, beta_r=4.0, random_state=1
    )
    directions = np.random.default_rng(0).standard_normal((4, 60))
    U = np.concatenate([np.zeros((2, 60)), 0.25 * directions])
    x0 = np.concatenate([0.1 * np.random.default_rng(1).standard_normal(60), np.zeros(120)])
    rnn = RecurrentFixedPointTransformer(network=network, max_steps=3000, x0=x0).fit(U)
    return rnn, U, rnn.solve(U, stability=True)
