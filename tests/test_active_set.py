"""method="active_set": certified active-set jumps land exactly where Euler's trajectory goes."""

import numpy as np
import pytest
from conftest import euler_and

from rnnapprox import RecurrentFixedPointTransformer
from rnnapprox._kernels.active_set import power_row_bounds, region_fixed_points
from rnnapprox._methods.active_set import POWER_DECAY, ActiveSetCertifier, max_analysed_active
from rnnapprox.networks import (
    RateNetwork,
    random_ei_network,
    random_gated_network,
    soft_wta,
    winning_partition,
)

TOL = 1e-6

# The certificate on networks small enough to be quick; the cost model's hand-over
# of small networks to Euler is tested on its own at the end.
pytestmark = pytest.mark.usefixtures("analyse_every_region")


def _pair(network, X, **params):
    return euler_and("active_set", network, X, **params)


def _assert_same(euler, jumped, atol=1e-5):
    np.testing.assert_array_equal(jumped.status, euler.status)
    done = euler.converged
    assert np.all(jumped.residual[done] <= TOL)
    np.testing.assert_allclose(jumped.outputs[done], euler.outputs[done], atol=atol, rtol=0)
    # A certified row ends on the exact fixed point of its region, after fewer Euler steps.
    certified = jumped.n_steps < euler.n_steps
    assert np.all(jumped.residual[certified] < 1e-10)
    # Rows never certified followed Euler's trajectory step for step.
    same = ~certified
    np.testing.assert_array_equal(jumped.n_steps[same], euler.n_steps[same])
    np.testing.assert_allclose(jumped.states[same], euler.states[same], atol=1e-12, rtol=0)
    return certified


def _euler_map(weights, rate_scale, active):
    jacobian = weights * active[np.newaxis, :]
    return np.eye(len(weights)) + rate_scale[:, np.newaxis] * (jacobian - np.eye(len(weights)))


def test_wta_rows_match_euler_and_most_are_certified():
    network = soft_wta(n_partitions=4, units_per_partition=8, n_inhibitory=4, random_state=0)
    X = np.random.default_rng(0).uniform(0.0, 1.0, size=(300, 4))
    euler, jumped = _pair(network, X)
    assert euler.converged.all()
    certified = _assert_same(euler, jumped)
    assert certified.mean() > 0.9
    assert jumped.n_steps.mean() < 0.5 * euler.n_steps.mean()


def test_wta_near_tied_inputs_keep_euler_winner():
    # Several winners are stable here: only the certificate says which one Euler picks.
    network = soft_wta(n_partitions=3, units_per_partition=8, n_inhibitory=4, random_state=1)
    rng = np.random.default_rng(1)
    X = rng.uniform(0.5, 1.0, size=(200, 1)) + rng.uniform(-1e-3, 1e-3, size=(200, 3))
    euler, jumped = _pair(network, X, max_steps=20_000)
    _assert_same(euler, jumped)
    def winners(result):
        return winning_partition(result.outputs, n_partitions=3, units_per_partition=8)

    np.testing.assert_array_equal(winners(jumped), winners(euler))


@pytest.mark.parametrize("x0", [0.0, 0.5, -0.5])
def test_other_starts_keep_euler_attractor(x0):
    network = soft_wta(n_partitions=3, units_per_partition=6, n_inhibitory=3, random_state=2)
    X = np.random.default_rng(2).uniform(0.0, 1.0, size=(120, 3))
    start = np.full(network.n_units, x0)
    start[::2] *= -1.0
    euler, jumped = _pair(network, X, x0=start)
    _assert_same(euler, jumped)


def test_rows_euler_would_not_finish_are_not_certified():
    # With max_steps below the slowest rows' need, Euler stops them at max_steps; a
    # certified jump would claim convergence, so the step bound must refuse it.
    network = soft_wta(n_partitions=4, units_per_partition=8, n_inhibitory=4, random_state=0)
    X = np.random.default_rng(3).uniform(0.0, 1.0, size=(200, 4))
    euler, jumped = _pair(network, X, max_steps=400)
    assert 0 < (euler.status == "max_steps").sum() < len(X)
    _assert_same(euler, jumped)
    at_max = euler.status == "max_steps"
    # The residual windows survive the stops to fetch candidates (up to GEMM rounding).
    np.testing.assert_allclose(jumped.contraction[at_max], euler.contraction[at_max], rtol=1e-9)


@pytest.mark.parametrize("spectral_radius", [0.6, 1.3])
def test_random_ei_networks_match_euler(spectral_radius):
    network = random_ei_network(40, 10, n_inputs=3, spectral_radius=spectral_radius,
                                connection_probability=0.3, random_state=4)
    X = np.random.default_rng(4).uniform(-1.0, 1.0, size=(150, 3))
    euler, jumped = _pair(network, X, max_steps=4000)
    _assert_same(euler, jumped)


def test_exploding_rows_keep_euler_status():
    network = RateNetwork(weights=1.5 * np.eye(3), input_weights=np.eye(3))
    X = np.abs(np.random.default_rng(5).standard_normal((10, 3))) + 0.1
    euler, jumped = _pair(network, X)
    assert (euler.status == "diverged").all()
    _assert_same(euler, jumped)


def test_tanh_and_gated_networks_are_refused():
    tanh = RateNetwork(weights=0.5 * np.eye(4), activation="tanh")
    with pytest.raises(ValueError, match="needs a relu network"):
        RecurrentFixedPointTransformer(network=tanh, method="active_set").fit(np.zeros((2, 4)))
    gated = random_gated_network(6, n_inputs=2, random_state=0)
    with pytest.raises(ValueError, match="rate networks only"):
        RecurrentFixedPointTransformer(network=gated, method="active_set").fit(np.zeros((2, 2)))


def test_power_row_bounds_dominate_the_exact_powers():
    network = soft_wta(n_partitions=3, units_per_partition=6, n_inhibitory=3, random_state=0)
    X = np.random.default_rng(7).uniform(0.0, 1.0, size=(5, 3))
    result = RecurrentFixedPointTransformer(network=network).fit(X).solve(X)
    weights = network.weights
    rate_scale = np.full(len(weights), 0.1)
    for state in result.states:
        active = state > 0
        bound = np.empty(len(weights))
        period = power_row_bounds(weights, rate_scale, active, POWER_DECAY, 512, 1e6, bound)
        assert period > 0
        euler_map = _euler_map(weights, rate_scale, active)
        powers = [np.linalg.matrix_power(euler_map, r) for r in range(period + 1)]
        row_norms = np.array([np.abs(p).sum(axis=1) for p in powers])
        assert np.all(row_norms <= bound + 1e-12)
        assert np.abs(powers[-1]).sum(axis=1).max() <= POWER_DECAY
        # Beyond J the bound still holds (the split j = qJ + r of the Notes).
        far = np.abs(np.linalg.matrix_power(euler_map, 7 * period + 3)).sum(axis=1)
        assert np.all(far <= bound + 1e-12)


def test_power_row_bounds_give_up_on_unstable_regions():
    weights = np.array([[1.5, 0.0], [0.3, 0.0]])
    bound = np.empty(2)
    active = np.array([True, False])
    assert power_row_bounds(weights, np.full(2, 0.1), active, POWER_DECAY, 512, 1e6, bound) == 0
    certifier = ActiveSetCertifier(weights, np.full(2, 0.1))
    assert certifier.region_certificate(active) is None


def test_region_fixed_points_match_a_dense_solve():
    rng = np.random.default_rng(8)
    n = 12
    weights = 0.3 * rng.standard_normal((n, n)) / np.sqrt(n)
    drive = rng.standard_normal((50, n))
    # Start from the true fixed points (found by Euler) and from random sign patterns.
    rnn = RecurrentFixedPointTransformer(
        network=RateNetwork(weights=weights, input_weights=np.eye(n)), tol=1e-12
    ).fit(drive)
    fixed = rnn.solve(drive).states
    states = np.vstack([fixed, rng.standard_normal((50, n))])
    drives = np.vstack([drive, drive])
    points, found = np.empty_like(states), np.empty(len(states), dtype=bool)
    region_fixed_points(states, drives, weights, 1e-9, points, found)
    assert found[:50].all()
    np.testing.assert_allclose(points[:50], fixed, atol=1e-9)
    for state, d, point, ok in zip(states, drives, points, found):
        active = state > 0
        x_active = np.linalg.solve(np.eye(active.sum()) - weights[np.ix_(active, active)],
                                   d[active])
        expected = weights[:, active] @ x_active + d
        expected[active] = x_active
        consistent = np.all((expected > 0) == active)
        assert ok == consistent
        if ok:
            np.testing.assert_allclose(point, expected, atol=1e-10)


def test_singular_regions_are_not_candidates():
    # On active set {0, 1} the system I - W_AA is singular (a line of fixed points).
    weights = np.array([[0.5, 0.5], [0.5, 0.5]])
    states = np.array([[1.0, 1.0]])
    points, found = np.empty((1, 2)), np.empty(1, dtype=bool)
    region_fixed_points(states, np.array([[0.0, 0.0]]), weights, 1e-9, points, found)
    assert not found[0]


def test_certificate_respects_the_divergence_bound():
    # x* = 2.5 lies beyond divergence_threshold * (1 + |d|) = 2: Euler reports divergence.
    network = RateNetwork(weights=[[0.6]], input_weights=np.eye(1))
    X = np.array([[1.0]])
    euler, jumped = _pair(network, X, divergence_threshold=1.0)
    assert euler.status[0] == "diverged"
    _assert_same(euler, jumped)


@pytest.mark.parametrize("tol", [0.0, 4e-16])
def test_tolerance_at_float_resolution_reports_true_residuals(tol):
    network = soft_wta(n_partitions=3, units_per_partition=6, n_inhibitory=3, random_state=0)
    X = np.random.default_rng(9).uniform(0.0, 1.0, size=(40, 3))
    euler, jumped = _pair(network, X, tol=tol, max_steps=3000)
    assert np.all(jumped.residual[jumped.converged] <= tol)
    if tol == 0.0:
        assert not jumped.converged.any() and not euler.converged.any()


@pytest.mark.parametrize("tol, jumps", [(1e-14, False), (1e-10, True)])
def test_no_certified_jumps_near_float_resolution(tol, jumps):
    # Below NEWTON_RESOLUTION_ULPS * eps * scale (about 4e-14 here) the proof, made in
    # exact arithmetic, is not trusted: every row follows Euler step for step.
    network = soft_wta(n_partitions=3, units_per_partition=6, n_inhibitory=3, random_state=0)
    X = np.random.default_rng(9).uniform(0.0, 1.0, size=(40, 3))
    euler, jumped = _pair(network, X, tol=tol)
    assert euler.converged.all()
    np.testing.assert_array_equal(jumped.status, euler.status)
    jumped = jumped.n_steps < euler.n_steps - 2
    assert jumped.any() == jumps


def test_rows_that_never_settle_keep_euler_status():
    # A strongly coupled relu network whose rows keep switching active sets.
    rng = np.random.default_rng(10)
    n = 60
    weights = 3.0 * rng.standard_normal((n, n)) / np.sqrt(n) - 10.0 / n
    network = RateNetwork(weights=weights, input_weights=np.ones((n, 1)), bias=1.0)
    X = rng.uniform(0.0, 1.0, size=(20, 1))
    euler, jumped = _pair(network, X, max_steps=3000)
    assert (euler.status == "max_steps").all()
    np.testing.assert_array_equal(jumped.status, euler.status)


def test_unit_exactly_at_zero_is_handled_by_euler():
    # An isolated unit with zero drive sits at exactly 0: no certificate, Euler's answer.
    base = soft_wta(n_partitions=3, units_per_partition=6, n_inhibitory=3, random_state=0)
    n = base.n_units
    weights = np.zeros((n + 1, n + 1))
    weights[:n, :n] = base.weights
    input_weights = np.vstack([base.input_weights, np.zeros((1, 3))])
    network = RateNetwork(weights=weights, input_weights=input_weights)
    X = np.random.default_rng(11).uniform(0.0, 1.0, size=(30, 3))
    euler, jumped = _pair(network, X)
    _assert_same(euler, jumped)


def test_newton_is_a_deprecated_alias_of_active_set():
    network = soft_wta(n_partitions=3, units_per_partition=6, n_inhibitory=3, random_state=0)
    X = np.random.default_rng(5).uniform(0.0, 1.0, size=(40, 3))
    with pytest.warns(FutureWarning, match="renamed method='active_set'"):
        old = RecurrentFixedPointTransformer(network=network, method="newton").fit(X)
    new = RecurrentFixedPointTransformer(network=network, method="active_set").fit(X)
    a, b = old.solve(X), new.solve(X)
    for key in ("states", "n_steps", "status", "residual"):
        np.testing.assert_array_equal(a[key], b[key])


@pytest.mark.parametrize("network, n_features", [
    (soft_wta(n_partitions=4, units_per_partition=8, n_inhibitory=4, random_state=0), 4),
    (random_ei_network(40, 10, n_inputs=3, random_state=0), 3),
], ids=["wta36", "ei50"])
def test_small_networks_are_integrated_by_euler(network, n_features, monkeypatch):
    monkeypatch.undo()  # the package's own cost model
    assert max_analysed_active(network.n_units) == 0
    X = np.random.default_rng(0).uniform(0.0, 1.0, size=(100, n_features))
    euler, jumped = _pair(network, X)
    for key in ("states", "residual", "n_steps", "status"):
        np.testing.assert_array_equal(getattr(jumped, key), getattr(euler, key), err_msg=key)


def test_networks_large_enough_analyse_their_regions():
    assert max_analysed_active(100) > 10
    assert max_analysed_active(1000) > max_analysed_active(100)


def test_regions_are_analysed_once_per_transform_across_chunks(monkeypatch):
    # Rows are integrated in chunks; the certifier's cache of analysed regions must
    # serve them all, or every chunk pays for the same eigenproblems again.
    import rnnapprox._chunked as chunked

    analysed = []
    original = ActiveSetCertifier._analyse

    def counting(self, *args, **kwargs):
        analysed.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ActiveSetCertifier, "_analyse", counting)
    net = soft_wta(3, 6, 3, random_state=0)
    X = np.random.default_rng(0).uniform(0.0, 1.0, (300, 3))
    rnn = RecurrentFixedPointTransformer(network=net, method="active_set").fit(X)
    whole = rnn.solve(X)
    n_whole = len(analysed)
    analysed.clear()
    monkeypatch.setattr(chunked, "CHUNK_ROWS", 50)
    chunked_result = rnn.solve(X)
    assert n_whole > 0 and len(analysed) == n_whole
    np.testing.assert_array_equal(chunked_result.n_steps, whole.n_steps)
