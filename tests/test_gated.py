"""Gated networks: the numba kernel against plain numpy, the transformer's
dispatch and options, validation, and the input-driven transition to chaos."""

import pickle
import warnings

import numba
import numpy as np
import pytest
from conftest import gated_arrays, gated_euler_reference, gated_field
from scipy.optimize import root
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from rnnapprox import NonConvergenceError, RecurrentFixedPointTransformer
from rnnapprox.networks import GatedNetwork, RateNetwork, random_gated_network

# --------------------------------------------------------------------------- numerics


def test_gated_kernel_matches_plain_numpy(gated_fitted, gated_inputs, gated_solved):
    p = gated_arrays(gated_fitted)
    U = gated_inputs[:12]
    ref_states, ref_residuals, ref_steps = gated_euler_reference(p, U, 0.1, 1e-6, 10_000)
    result = gated_solved
    assert result.converged.all()
    np.testing.assert_allclose(result.states[:12], ref_states, atol=1e-9)
    assert np.all(np.abs(result.n_steps[:12] - ref_steps) <= 1)
    assert np.all(result.residual <= 1e-6)


def test_gated_reported_residual_is_true_residual(gated_fitted, gated_inputs, gated_solved):
    p = gated_arrays(gated_fitted)
    true = [np.max(np.abs(gated_field(p, s, u)[1]))
            for s, u in zip(gated_solved.states, gated_inputs)]
    np.testing.assert_allclose(gated_solved.residual, true, rtol=1e-9, atol=1e-15)


def test_gated_max_steps_rows_match_reference(gated_network, gated_inputs):
    # Rows stopped by max_steps end in the same state as the reference's.
    U = gated_inputs[:5]
    rnn = RecurrentFixedPointTransformer(network=gated_network, max_steps=37).fit(U)
    result = rnn.solve(U)
    ref_states, ref_residuals, _ = gated_euler_reference(gated_arrays(rnn), U, 0.1, 1e-6, 37)
    assert set(result.status) == {"max_steps"} and np.all(result.n_steps == 37)
    np.testing.assert_allclose(result.states, ref_states, atol=1e-10)
    np.testing.assert_allclose(result.residual, ref_residuals, rtol=1e-8)


def test_gated_refilled_blocks_match_reference(
    gated_fitted, gated_inputs, gated_solved, monkeypatch
):
    # Small blocks and a max_steps that stops some rows but not others: slots are
    # refilled and compacted while their neighbours are mid-step.
    import rnnapprox._chunked as module

    monkeypatch.setattr(module, "BLOCK_ROWS", 3)
    max_steps = int(np.median(gated_solved.n_steps))
    rnn = clone(gated_fitted).set_params(max_steps=max_steps, n_jobs=1).fit(gated_inputs)
    result = rnn.solve(gated_inputs)
    assert 0 < result.converged.sum() < len(gated_inputs)
    ref_states, ref_residuals, ref_steps = gated_euler_reference(
        gated_arrays(rnn), gated_inputs, 0.1, 1e-6, max_steps
    )
    np.testing.assert_allclose(result.states, ref_states, atol=1e-9)
    np.testing.assert_allclose(result.residual, ref_residuals, rtol=1e-6, atol=1e-12)
    np.testing.assert_array_equal(result.n_steps, ref_steps)


def test_gated_fixed_point_polishes(gated_fitted, gated_inputs, gated_solved):
    """Converged states lie within ||J^-1|| tol of the root of the scaled field."""
    p = gated_arrays(gated_fitted)
    for s, u in zip(gated_solved.states[:6], gated_inputs[:6]):
        sol = root(lambda v, u=u: gated_field(p, v, u)[1], s, method="hybr", tol=1e-13)
        assert np.max(np.abs(gated_field(p, sol.x, u)[1])) < 1e-10
        assert np.max(np.abs(sol.x - s)) < 1e-4


def test_gated_outputs_and_state(gated_fitted, gated_inputs, gated_solved):
    n = gated_fitted.n_units_
    assert gated_solved.states.shape == (len(gated_inputs), 3 * n)
    np.testing.assert_array_equal(gated_solved.outputs, np.tanh(gated_solved.states[:, :n]))
    np.testing.assert_array_equal(gated_fitted.transform(gated_inputs), gated_solved.outputs)
    assert gated_fitted.family_ == "gated" and gated_fitted.n_state_ == 3 * n
    state_rnn = clone(gated_fitted).set_params(output="state").fit(gated_inputs)
    np.testing.assert_array_equal(state_rnn.transform(gated_inputs), gated_solved.states)
    assert len(state_rnn.get_feature_names_out()) == 3 * n
    assert len(gated_fitted.get_feature_names_out()) == n


def test_gated_x0_short_and_full(gated_network, gated_inputs):
    U = gated_inputs[:3]
    n = gated_network.n_units
    h0 = np.full(n, 0.2)
    short = RecurrentFixedPointTransformer(network=gated_network, x0=h0).fit(U)
    full = RecurrentFixedPointTransformer(
        network=gated_network, x0=np.concatenate([h0, np.zeros(2 * n)])
    ).fit(U)
    np.testing.assert_array_equal(short.x0_, full.x0_)
    np.testing.assert_array_equal(short.solve(U).states, full.solve(U).states)
    with pytest.raises(ValueError, match=r"x0 must be a finite array of shape \(20,\) or \(60,\)"):
        RecurrentFixedPointTransformer(network=gated_network, x0=np.zeros(7)).fit(U)


def test_gated_threads_chunks_dtype(gated_fitted, gated_inputs, monkeypatch):
    import rnnapprox._chunked as module

    reference = gated_fitted.transform(gated_inputs)
    before = numba.get_num_threads()
    single = clone(gated_fitted).set_params(n_jobs=1).fit(gated_inputs)
    np.testing.assert_allclose(single.transform(gated_inputs), reference, atol=1e-12)
    assert numba.get_num_threads() == before
    monkeypatch.setattr(module, "CHUNK_ROWS", 7)
    np.testing.assert_allclose(gated_fitted.transform(gated_inputs), reference, atol=1e-12)
    out32 = gated_fitted.transform(gated_inputs.astype(np.float32))
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, reference, atol=1e-5)
    U = np.asfortranarray(gated_inputs.copy())
    U.setflags(write=False)
    np.testing.assert_allclose(gated_fitted.transform(U), reference, atol=1e-12)


def test_gated_fitted_attributes_are_plain(gated_fitted):
    for name, value in vars(gated_fitted).items():
        if name.endswith("_") and not name.startswith("_"):
            assert isinstance(value, (np.ndarray, str, int, float)), name
            assert not isinstance(value, (GatedNetwork, numba.core.dispatcher.Dispatcher))
    restored = pickle.loads(pickle.dumps(gated_fitted))
    U = np.ones((2, 3))
    np.testing.assert_array_equal(restored.transform(U), gated_fitted.transform(U))


def test_refit_rate_network_removes_gated_attributes(gated_fitted, gated_inputs):
    rnn = clone(gated_fitted).fit(gated_inputs)
    assert hasattr(rnn, "z_weights_")
    rnn.set_params(network=RateNetwork(0.1 * np.eye(3))).fit(gated_inputs)
    assert rnn.family_ == "rate" and not hasattr(rnn, "z_weights_")
    assert rnn.transform(gated_inputs).shape == (len(gated_inputs), 3)


def test_gated_tau_in_grid_params(gated_fitted):
    params = clone(gated_fitted).get_params()
    assert "network__tau_z" in params and "network__alpha_r" in params


def test_gated_dt_warning_uses_gate_time_constants():
    net = random_gated_network(4, tau_r=0.05, random_state=0)
    with pytest.warns(UserWarning, match="smallest time constant tau=0.05"):
        RecurrentFixedPointTransformer(network=net).fit(np.ones((2, 4)))


# --------------------------------------------------------------------------- networks


def test_random_gated_network_draws():
    net = random_gated_network(300, gain=2.0, gain_r=0.5, n_inputs=4, beta_r=1.0, random_state=0)
    np.testing.assert_allclose(net.weights.var() * 300, 4.0, rtol=0.05)
    np.testing.assert_allclose(net.z_weights.var() * 300, 4.0, rtol=0.05)
    np.testing.assert_allclose(net.r_weights.var() * 300, 0.25, rtol=0.05)
    assert net.input_weights.shape == (300, 4) and net.beta_r == 1.0
    again = random_gated_network(300, gain=2.0, gain_r=0.5, n_inputs=4, random_state=0)
    np.testing.assert_array_equal(net.r_weights, again.r_weights)
    with pytest.raises(ValueError, match="gain_z must be"):
        random_gated_network(5, gain_z=-1.0)
    with pytest.raises(ValueError, match="n_units must be"):
        random_gated_network(0)


def test_gated_params_and_repr():
    J = np.eye(2)
    net = GatedNetwork(J, J, J)
    assert set(net.get_params()) == {
        "weights", "z_weights", "r_weights", "input_weights", "bias", "alpha_z", "beta_z",
        "alpha_r", "beta_r", "tau_z", "tau_r",
    }
    assert net.set_params(alpha_r=5.0) is net and net.alpha_r == 5.0
    assert "z_weights=<array 2x2>" in repr(net)


@pytest.mark.parametrize(
    "kwargs, n_features, match",
    [
        ({"weights": np.ones((2, 3))}, 2, "weights must be a square matrix"),
        ({"z_weights": np.eye(3)}, 2, r"z_weights must have shape \(2, 2\)"),
        ({"r_weights": np.full((2, 2), np.nan)}, 2, "r_weights contains NaN"),
        ({"r_weights": np.ones(2)}, 2, "r_weights must have 2 dimensions"),
        ({"input_weights": np.ones((2, 5))}, 3, "input_weights must have shape"),
        ({"alpha_z": [1.0, 2.0, 3.0]}, 2, "alpha_z has 3 entries"),
        ({"beta_r": np.inf}, 2, "beta_r contains NaN or infinity"),
        ({"tau_z": 0.0}, 2, "tau_z must be strictly positive"),
        ({"tau_r": [1.0, -1.0]}, 2, "tau_r must be strictly positive"),
        ({"bias": "a"}, 2, "bias must be a real numeric array"),
    ],
)
def test_gated_validation_errors(kwargs, n_features, match):
    params = {"weights": np.eye(2), "z_weights": np.eye(2), "r_weights": np.eye(2), **kwargs}
    with pytest.raises((ValueError, TypeError), match=match):
        GatedNetwork(**params).validated_arrays(n_features)
    with pytest.raises((ValueError, TypeError), match=match):
        RecurrentFixedPointTransformer(network=GatedNetwork(**params)).fit(np.ones((3, n_features)))


def test_gated_validated_arrays_are_copies():
    J = np.eye(2)
    arrays = GatedNetwork(J, J, J, alpha_z=3.0).validated_arrays(2)
    arrays["z_weights"][0, 0] = 7.0
    assert J[0, 0] == 1.0
    np.testing.assert_array_equal(arrays["alpha_z"], [3.0, 3.0])
    np.testing.assert_array_equal(arrays["input_weights"], np.eye(2))
    assert arrays["family"] == "gated" and arrays["activation"] == "tanh"


# --------------------------------------------------------------------------- transition


def test_quiet_without_input(gated_transition):
    _, _, result = gated_transition
    # The first two rows have no input: back to the silent state, which is stable.
    assert result.converged[:2].all() and result.stable[:2].all()
    np.testing.assert_allclose(result.states[:2], 0.0, atol=1e-5)
    assert np.all(result.leading_eigenvalue[:2].real < -0.1)


def test_weak_input_drives_chaos(gated_transition):
    rnn, U, result = gated_transition
    driven = slice(2, None)
    assert not result.converged[driven].any()
    assert set(result.status[driven]) == {"max_steps"}
    assert np.all(result.n_steps[driven] == 3000) and np.all(result.residual[driven] > 1e-3)
    assert np.all(np.isnan(result.leading_eigenvalue[driven])) and not result.stable[driven].any()
    # Sustained and irregular: most driven rows have a positive Lyapunov exponent.
    assert np.all(result.contraction[driven] > 0.5)
    assert np.mean(result.dynamics[driven] == "chaotic") >= 0.75
    assert np.all(result.lyapunov_exponent[driven][result.dynamics[driven] == "chaotic"] > 0)
    assert "chaotic" in result.summary()
    message = r"4 of 6 rows did not reach a fixed point .*4 bounded, not settling"
    with pytest.warns(ConvergenceWarning, match=message):
        rnn.transform(U)
    with pytest.raises(NonConvergenceError, match=r"rows 2, 3, 4, 5"):
        clone(rnn).set_params(on_nonconvergence="raise").fit(U).transform(U)


def test_transition_without_stability_reports_sustained(gated_transition):
    rnn, U, _ = gated_transition
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = rnn.solve(U[2:4])
    assert set(result.dynamics) <= {"sustained", "slow"} and "sustained" in set(result.dynamics)
    assert "leading_eigenvalue" not in result
