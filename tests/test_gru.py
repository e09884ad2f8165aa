"""GRU networks: the numba kernel against plain numpy, the GRU cell's own iteration,
scipy's root finder and (where installed) torch.nn.GRU; the Jacobian, stability,
validation and scikit-learn use."""

import pickle
import warnings

import numba
import numpy as np
import pytest
from scipy.optimize import root
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator

from rnnapprox import FeedforwardApproximator, RecurrentFixedPointTransformer
from rnnapprox.networks import GRUNetwork, RateNetwork, random_gru_network

# --------------------------------------------------------------------------- plain-numpy reference


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def gru_gates(p, h, u):
    """``r, z, n`` of the GRU cell at ``h`` under input ``u``, written out from PyTorch's equations."""
    n_units = h.shape[0]
    W_ir, W_iz, W_in = np.split(p["W_i"], 3)
    W_hr, W_hz, W_hn = np.split(p["W_h"], 3)
    b_ir, b_iz, b_in = np.split(p["b_i"], 3)
    b_hr, b_hz, b_hn = np.split(p["b_h"], 3)
    assert W_hr.shape == (n_units, n_units)
    r = sigmoid(W_ir @ u + b_ir + W_hr @ h + b_hr)
    z = sigmoid(W_iz @ u + b_iz + W_hz @ h + b_hz)
    n = np.tanh(W_in @ u + b_in + r * (W_hn @ h + b_hn))
    return r, z, n


def gru_velocity(p, h, u):
    _, z, n = gru_gates(p, h, u)
    return (1.0 - z) * (n - h)


def gru_euler_reference(p, U, dt, tol, max_steps, x0=None):
    """Forward Euler of ``dh/dt = (1 - z)(n - h)``, one row at a time, with the package's stopping rule."""
    n_units = p["W_h"].shape[1]
    states, residuals, steps = [], [], []
    for u in U:
        h = np.zeros(n_units) if x0 is None else x0.copy()
        for k in range(max_steps + 1):
            _, z, n = gru_gates(p, h, u)
            residual = np.max(np.abs(n - h))
            if residual <= tol or k == max_steps:
                break
            h = h + dt * (1.0 - z) * (n - h)
        states.append(h)
        residuals.append(residual)
        steps.append(k)
    return np.array(states), np.array(residuals), np.array(steps)


def gru_cell_iteration(p, U, tol, max_steps):
    """Iterate the GRU map ``h <- (1 - z) n + z h`` from 0 (what torch does with a constant input)."""
    n_units = p["W_h"].shape[1]
    states, steps = [], []
    for u in U:
        h = np.zeros(n_units)
        for k in range(max_steps + 1):
            _, z, n = gru_gates(p, h, u)
            if np.max(np.abs(n - h)) <= tol or k == max_steps:
                break
            h = (1.0 - z) * n + z * h
        states.append(h)
        steps.append(k)
    return np.array(states), np.array(steps)


def fitted_gru_arrays(transformer):
    t = transformer
    return {"W_h": t.weights_, "W_i": t.input_weights_, "b_i": t.bias_, "b_h": t.hidden_bias_}


# --------------------------------------------------------------------------- fixtures

N_UNITS, N_FEATURES = 12, 4


@pytest.fixture(scope="session")
def gru_network():
    rng = np.random.default_rng(10)
    return GRUNetwork(
        hidden_weights=rng.normal(scale=1.2 / np.sqrt(N_UNITS), size=(3 * N_UNITS, N_UNITS)),
        input_weights=rng.normal(scale=1.0 / np.sqrt(N_FEATURES), size=(3 * N_UNITS, N_FEATURES)),
        hidden_bias=rng.normal(scale=0.3, size=3 * N_UNITS),
        input_bias=rng.normal(scale=0.3, size=3 * N_UNITS),
    )


@pytest.fixture(scope="session")
def gru_inputs():
    return np.random.default_rng(11).normal(size=(30, N_FEATURES))


@pytest.fixture(scope="session")
def gru_fitted(gru_network, gru_inputs):
    return RecurrentFixedPointTransformer(network=gru_network, dt=0.5, tol=1e-9).fit(gru_inputs)


@pytest.fixture(scope="session")
def gru_solved(gru_fitted, gru_inputs):
    return gru_fitted.solve(gru_inputs, stability=True)


# --------------------------------------------------------------------------- numerics


def test_gru_kernel_matches_plain_numpy_euler(gru_fitted, gru_inputs, gru_solved):
    p = fitted_gru_arrays(gru_fitted)
    ref_states, ref_residuals, ref_steps = gru_euler_reference(p, gru_inputs, 0.5, 1e-9, 10_000)
    assert gru_solved.converged.all()
    np.testing.assert_allclose(gru_solved.states, ref_states, atol=1e-12)
    assert np.all(np.abs(gru_solved.n_steps - ref_steps) <= 1)
    np.testing.assert_allclose(gru_solved.residual, ref_residuals, rtol=1e-6, atol=1e-15)
    assert np.all(gru_solved.residual <= 1e-9)
    # The response is the state h itself.
    np.testing.assert_array_equal(gru_solved.outputs, gru_solved.states)
    np.testing.assert_array_equal(gru_fitted.transform(gru_inputs), gru_solved.states)


def test_gru_reported_residual_is_true_residual(gru_fitted, gru_inputs, gru_solved):
    p = fitted_gru_arrays(gru_fitted)
    true = [np.max(np.abs(n - h)) for h, u in zip(gru_solved.states, gru_inputs)
            for _, _, n in [gru_gates(p, h, u)]]
    np.testing.assert_allclose(gru_solved.residual, true, rtol=1e-9, atol=1e-15)


def test_gru_refilled_blocks_match_reference(gru_fitted, gru_inputs, gru_solved, monkeypatch):
    # Small blocks and a max_steps that stops some rows but not others: slots
    # (state n_units wide, drive 3 n_units wide) are refilled and compacted
    # while their neighbours are mid-step.
    import rnnapprox._chunked as module

    monkeypatch.setattr(module, "BLOCK_ROWS", 3)
    max_steps = int(np.median(gru_solved.n_steps))
    rnn = clone(gru_fitted).set_params(max_steps=max_steps, n_jobs=1).fit(gru_inputs)
    result = rnn.solve(gru_inputs)
    assert 0 < result.converged.sum() < len(gru_inputs)
    ref_states, ref_residuals, _ = gru_euler_reference(fitted_gru_arrays(rnn), gru_inputs, 0.5, 1e-9,
                                                       max_steps)
    np.testing.assert_allclose(result.states, ref_states, atol=1e-12)


def test_gru_dt_one_is_the_gru_cell_iteration(gru_fitted, gru_inputs, gru_solved):
    # h + 1 * (1 - z)(n - h) = (1 - z) n + z h: with dt=1 the Euler trajectory is
    # the discrete GRU map's, step for step.
    p = fitted_gru_arrays(gru_fitted)
    cell_states, cell_steps = gru_cell_iteration(p, gru_inputs, 1e-9, 10_000)
    assert np.all(cell_steps < 10_000)
    rnn = clone(gru_fitted).set_params(dt=1.0).fit(gru_inputs)
    result = rnn.solve(gru_inputs)
    assert result.converged.all()
    np.testing.assert_allclose(result.states, cell_states, atol=1e-12)
    assert np.all(np.abs(result.n_steps - cell_steps) <= 1)
    # Any dt lands on the fixed point the cell's iteration converges to.
    np.testing.assert_allclose(gru_solved.states, cell_states, atol=1e-8)


def test_gru_matches_scipy_root(gru_fitted, gru_inputs, gru_solved):
    p = fitted_gru_arrays(gru_fitted)
    for h_star, u in zip(gru_solved.states[:10], gru_inputs[:10]):
        sol = root(lambda h, u=u: gru_gates(p, h, u)[2] - h, np.zeros(N_UNITS), tol=1e-13)
        assert sol.success
        np.testing.assert_allclose(h_star, sol.x, atol=1e-8)


def test_gru_frozen_unit_is_not_settled():
    # An update gate near 1 freezes h (dh/dt ~ 1e-17) far from n = tanh(1): the
    # residual leaves out the rate 1 - z, so the row is not reported converged.
    net = GRUNetwork([[0.0], [0.0], [0.0]], input_weights=[[0.0], [0.0], [1.0]],
                     hidden_bias=[0.0, 40.0, 0.0])
    rnn = RecurrentFixedPointTransformer(network=net, max_steps=50, on_nonconvergence="nan").fit([[1.0]])
    result = rnn.solve([[1.0]])
    assert result.status[0] == "max_steps"
    np.testing.assert_allclose(result.residual[0], np.tanh(1.0), rtol=1e-12)
    with pytest.warns(ConvergenceWarning, match="1 of 1 rows|row"):
        assert np.isnan(rnn.transform([[1.0]])).all()


# --------------------------------------------------------------------------- Jacobian and stability


def numerical_jacobian(p, h, u, eps=1e-6):
    columns = []
    for j in range(h.size):
        step = np.zeros(h.size)
        step[j] = eps
        columns.append((gru_velocity(p, h + step, u) - gru_velocity(p, h - step, u)) / (2 * eps))
    return np.array(columns).T


def test_gru_jacobian_matches_finite_differences(gru_fitted, gru_inputs, gru_solved):
    p = fitted_gru_arrays(gru_fitted)
    rng = np.random.default_rng(12)
    # Away from fixed points (the update gate's term is then non-zero) and at them.
    states = np.vstack([rng.uniform(-0.9, 0.9, size=(5, N_UNITS)), gru_solved.states[:5]])
    U = np.vstack([gru_inputs[:5], gru_inputs[:5]])
    jacobians = gru_fitted.jacobian(U, states)
    assert jacobians.shape == (10, N_UNITS, N_UNITS)
    for jacobian, h, u in zip(jacobians, states, U):
        np.testing.assert_allclose(jacobian, numerical_jacobian(p, h, u), atol=1e-8)


def test_gru_stability(gru_fitted, gru_inputs, gru_solved):
    p = fitted_gru_arrays(gru_fitted)
    for k in range(5):
        eigenvalues = np.linalg.eigvals(numerical_jacobian(p, gru_solved.states[k], gru_inputs[k]))
        np.testing.assert_allclose(gru_solved.leading_eigenvalue[k].real, eigenvalues.real.max(),
                                   atol=1e-7)
    assert gru_solved.stable.all() and np.all(gru_solved.leading_eigenvalue.real < 0)


def test_gru_unstable_fixed_point_is_flagged():
    # One unit with W_hn = 3: h = 0 is a fixed point with J = (1 - z)(r W_hn - 1) =
    # 0.5 (1.5 - 1) = 0.25 > 0; started there, it is reported converged and unstable.
    # From h = 0.1 the unit settles on a stable fixed point instead.
    net = GRUNetwork([[0.0], [0.0], [3.0]], input_weights=np.zeros((3, 1)))
    U = np.zeros((1, 1))
    at_zero = RecurrentFixedPointTransformer(network=net).fit(U).solve(U, stability=True)
    assert at_zero.converged[0] and at_zero.n_steps[0] == 0
    np.testing.assert_allclose(at_zero.leading_eigenvalue[0], 0.25, atol=1e-12)
    assert not at_zero.stable[0]
    away = RecurrentFixedPointTransformer(network=net, x0=[0.1], tol=1e-10).fit(U).solve(U, stability=True)
    h = away.states[0, 0]
    assert away.converged[0] and away.stable[0] and h > 0.5
    # r = z = 1/2 everywhere: h* = tanh(1.5 h*), J = 0.5 (1.5 (1 - h*^2) - 1).
    np.testing.assert_allclose(h, np.tanh(1.5 * h), atol=1e-9)
    np.testing.assert_allclose(away.leading_eigenvalue[0], 0.5 * (1.5 * (1 - h**2) - 1), atol=1e-9)


def test_gru_stable_for_the_flow_but_not_for_the_cell():
    # One unit, W_hn = -8, r = z = 1/2: h* = 0 with J = 0.5 (0.5 (-8) - 1) = -2.5, stable
    # for the flow; the cell's map h <- 0.5 tanh(-4 h) + 0.5 h has slope 1 + J = -1.5
    # there, so the module's own iteration (dt=1) never settles.
    net = GRUNetwork([[0.0], [0.0], [-8.0]], input_weights=np.zeros((3, 1)))
    U = np.zeros((1, 1))
    flow = RecurrentFixedPointTransformer(network=net, x0=[0.1]).fit(U)
    result = flow.solve(U, stability=True)
    assert result.converged[0] and result.stable[0]
    np.testing.assert_allclose(result.leading_eigenvalue[0], -2.5, atol=1e-9)
    jacobian = flow.jacobian(U, result.states)[0]
    assert np.abs(np.linalg.eigvals(np.eye(1) + jacobian)).max() > 1.0
    cell = RecurrentFixedPointTransformer(network=net, x0=[0.1], dt=1.0, max_steps=200).fit(U)
    assert cell.solve(U).status[0] == "max_steps"


# --------------------------------------------------------------------------- estimator use


def test_gru_in_pipeline_and_grid_search(gru_network, gru_inputs):
    pipe = make_pipeline(StandardScaler(), RecurrentFixedPointTransformer(network=gru_network, dt=0.5))
    H = pipe.fit_transform(gru_inputs)
    assert H.shape == (len(gru_inputs), N_UNITS) and np.all(np.abs(H) < 1)
    params = clone(pipe).get_params()
    assert "recurrentfixedpointtransformer__network__hidden_bias" in params
    distil = make_pipeline(StandardScaler(), FeedforwardApproximator(hidden_layer_size=16, max_iter=50,
                                                                     random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search = GridSearchCV(distil, {"feedforwardapproximator__hidden_layer_size": [8, 16]}, cv=2)
        search.fit(gru_inputs, H)
    assert search.best_estimator_.predict(gru_inputs).shape == H.shape


def test_gru_passes_check_estimator():
    # input_weights=None: a (3 n_units, n_features) projection drawn at fit, so any data fits.
    check_estimator(RecurrentFixedPointTransformer(network=random_gru_network(5, gain=0.5, random_state=0)))


def test_gru_fitted_attributes_are_plain_and_refit(gru_fitted, gru_inputs):
    assert gru_fitted.family_ == "gru" and gru_fitted.n_state_ == gru_fitted.n_units_ == N_UNITS
    assert gru_fitted.weights_.shape == (3 * N_UNITS, N_UNITS)
    assert gru_fitted.input_weights_.shape == (3 * N_UNITS, N_FEATURES)
    assert gru_fitted.bias_.shape == gru_fitted.hidden_bias_.shape == (3 * N_UNITS,)
    for name, value in vars(gru_fitted).items():
        if name.endswith("_") and not name.startswith("_"):
            assert isinstance(value, (np.ndarray, str, int, float)), name
            assert not isinstance(value, (GRUNetwork, numba.core.dispatcher.Dispatcher))
    restored = pickle.loads(pickle.dumps(gru_fitted))
    np.testing.assert_array_equal(restored.transform(gru_inputs[:3]), gru_fitted.transform(gru_inputs[:3]))
    rnn = clone(gru_fitted).fit(gru_inputs)
    rnn.set_params(network=RateNetwork(0.1 * np.eye(N_FEATURES))).fit(gru_inputs)
    assert rnn.family_ == "rate" and not hasattr(rnn, "hidden_bias_")


@pytest.mark.parametrize("method", ["anderson", "active_set"])
def test_gru_rejects_rate_only_methods(gru_network, gru_inputs, method):
    with pytest.raises(ValueError, match="gru networks are integrated with method='euler'"):
        RecurrentFixedPointTransformer(network=gru_network, method=method).fit(gru_inputs)


# --------------------------------------------------------------------------- network objects


def test_gru_input_weights_none():
    W_h = 0.1 * np.ones((6, 2))
    arrays = GRUNetwork(W_h).validated_arrays(2)
    np.testing.assert_array_equal(arrays["input_weights"], np.vstack([np.eye(2)] * 3))
    assert arrays["family"] == "gru"
    assert GRUNetwork(W_h).validated_arrays(5)["input_weights"] is None
    U = np.ones((3, 5))
    first = RecurrentFixedPointTransformer(network=GRUNetwork(W_h), random_state=0).fit(U)
    again = RecurrentFixedPointTransformer(network=GRUNetwork(W_h), random_state=0).fit(U)
    assert first.input_weights_.shape == (6, 5)
    np.testing.assert_array_equal(first.input_weights_, again.input_weights_)


def test_gru_validated_arrays_are_copies_and_params():
    W_h, W_i = np.zeros((6, 2)), np.ones((6, 3))
    net = GRUNetwork(W_h, W_i, hidden_bias=0.5)
    arrays = net.validated_arrays(3)
    arrays["weights"][0, 0] = 7.0
    arrays["input_weights"][0, 0] = 7.0
    assert W_h[0, 0] == 0.0 and W_i[0, 0] == 1.0
    np.testing.assert_array_equal(arrays["hidden_bias"], np.full(6, 0.5))
    np.testing.assert_array_equal(arrays["bias"], np.zeros(6))
    assert set(net.get_params()) == {"hidden_weights", "input_weights", "hidden_bias", "input_bias"}
    assert net.n_units == 2 and "hidden_weights=<array 6x2>" in repr(net)


@pytest.mark.parametrize(
    "kwargs, n_features, match",
    [
        ({"hidden_weights": np.ones((4, 4))}, 2, r"hidden_weights must have shape \(3 \* n_units, n_units\)"),
        ({"hidden_weights": np.ones((2, 6))}, 2, "hidden_weights looks transposed.*Pass hidden_weights.T"),
        ({"hidden_weights": np.ones(6)}, 2, "hidden_weights must have 2 dimensions"),
        ({"hidden_weights": np.ones((0, 0))}, 2, "hidden_weights must have at least one unit"),
        ({"hidden_weights": np.full((6, 2), np.nan)}, 2, "hidden_weights contains NaN"),
        ({"input_weights": np.ones((3, 6))}, 3, "input_weights looks transposed"),
        ({"input_weights": np.ones((6, 3))}, 4, r"input_weights must have shape \(3 \* n_units, "
                                                r"n_features\) = \(6, 4\)"),
        ({"input_weights": np.ones((2, 3))}, 3, r"= \(6, 3\)"),
        ({"hidden_bias": np.ones(2)}, 2, "hidden_bias has 2 entries; the network has 6"),
        ({"input_bias": np.inf}, 2, "input_bias contains NaN or infinity"),
        ({"input_bias": 1j}, 2, "input_bias must be real"),
    ],
)
def test_gru_validation_errors(kwargs, n_features, match):
    params = {"hidden_weights": np.zeros((6, 2)), **kwargs}
    with pytest.raises((ValueError, TypeError), match=match):
        GRUNetwork(**params).validated_arrays(n_features)
    with pytest.raises((ValueError, TypeError), match=match):
        RecurrentFixedPointTransformer(network=GRUNetwork(**params)).fit(np.ones((3, n_features)))


def test_random_gru_network_draws():
    net = random_gru_network(300, gain=1.5, n_inputs=4, random_state=0)
    assert net.hidden_weights.shape == (900, 300) and net.input_weights.shape == (900, 4)
    np.testing.assert_allclose(net.hidden_weights.var() * 300, 2.25, rtol=0.05)
    again = random_gru_network(300, gain=1.5, n_inputs=4, random_state=0)
    np.testing.assert_array_equal(net.hidden_weights, again.hidden_weights)
    assert random_gru_network(3).input_weights is None
    with pytest.raises(ValueError, match="gain must be"):
        random_gru_network(5, gain=-1.0)
    with pytest.raises(ValueError, match="n_units must be"):
        random_gru_network(0)


# --------------------------------------------------------------------------- torch


def test_gru_matches_torch_module(gru_inputs):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    module = torch.nn.GRU(N_FEATURES, N_UNITS, batch_first=True).double()
    net = GRUNetwork(
        module.weight_hh_l0.detach().numpy(), module.weight_ih_l0.detach().numpy(),
        hidden_bias=module.bias_hh_l0.detach().numpy(), input_bias=module.bias_ih_l0.detach().numpy(),
    )
    U = gru_inputs[:8]
    # The module iterated on each constant input from h = 0, one time step at a time.
    x = torch.from_numpy(U[:, np.newaxis, :])
    h = torch.zeros(1, len(U), N_UNITS, dtype=torch.float64)
    with torch.no_grad():
        for _ in range(5000):
            _, h_next = module(x, h)
            change = (h_next - h).abs().max().item()
            h = h_next
            if change < 1e-14:
                break
    assert change < 1e-14
    torch_states = h[0].numpy()
    for dt in (1.0, 0.5):
        result = RecurrentFixedPointTransformer(network=net, dt=dt, tol=1e-12).fit(U).solve(U)
        assert result.converged.all()
        np.testing.assert_allclose(result.states, torch_states, atol=1e-10)
