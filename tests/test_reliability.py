"""Reliability: bad inputs, faults, threads, processes and read-only installs (issue 7).

Every row of the table in ``doc/reliability.rst`` has a test here: each bad
input gets a clear error or a warning naming its cause, never a silent wrong
answer, an inf, a crash, a hang or a modified caller's array.
"""

import copy
import os
import pickle
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numba
import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import InvalidParameterError
from threadpoolctl import threadpool_info

import rnnapprox
from rnnapprox import FeedforwardApproximator, NonConvergenceError, RecurrentFixedPointTransformer
from rnnapprox.networks import GatedNetwork, RateNetwork, random_tanh_network, soft_wta

PACKAGE_DIR = Path(rnnapprox.__file__).resolve().parent
FLOAT32_MAX = float(np.finfo(np.float32).max)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def ff_fitted(wta_fitted, wta_inputs):
    """A small approximator of the soft winner-take-all map (4 features -> 27 outputs)."""
    targets = wta_fitted.transform(wta_inputs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return FeedforwardApproximator(hidden_layer_size=8, max_iter=40, random_state=0).fit(
            wta_inputs, targets
        )


@pytest.fixture(scope="module")
def exploding():
    """Self-excitation 1.5 > 1: positive inputs blow up, negative ones settle at x* = u."""
    network = RateNetwork(weights=1.5 * np.eye(3) + 0.1, activation="relu")
    U = np.array([[1.0, 0.5, 0.2], [-1.0, -1.0, -1.0], [0.3, 0.0, 0.0]])
    return network, U


def _no_inf(array):
    return not np.isinf(np.asarray(array, dtype=float)).any()


# --------------------------------------------------------------------------- bad X everywhere

NAN_ROW = [[np.nan, 0.5, 0.5, 0.5]]
BAD_X = [
    ("nan", np.array(NAN_ROW), ValueError, "contains NaN"),
    ("inf", np.array([[np.inf, 0.5, 0.5, 0.5]]), ValueError, "contains infinity"),
    ("-inf", np.array([[0.5, -np.inf, 0.5, 0.5]]), ValueError, "contains infinity"),
    ("complex", np.array([[1 + 1j, 0.5, 0.5, 0.5]]), ValueError, "Complex data not supported"),
    ("strings", np.array([["a", "b", "c", "d"]]), ValueError, "could not convert string to float"),
    ("None entry", np.array([[0.5, None, 0.5, 0.5]], dtype=object), ValueError, "contains NaN"),
    ("0 rows", np.empty((0, 4)), ValueError, r"0 sample\(s\)"),
    ("0 features", np.empty((3, 0)), ValueError, r"0 feature\(s\)"),
    ("1-D", np.full(4, 0.5), ValueError, "Expected 2D array, got 1D array"),
    ("3-D", np.full((2, 4, 1), 0.5), ValueError, "dim 3"),
    ("scalar", 0.5, ValueError, "Expected 2D array, got scalar"),
]

ENTRY_POINTS = ["transformer.fit", "transform", "solve", "jacobian", "approximator.fit", "predict"]


def _call(entry, X, wta_network, wta_fitted, ff_fitted):
    if entry == "transformer.fit":
        return RecurrentFixedPointTransformer(network=wta_network).fit(X)
    if entry == "transform":
        return wta_fitted.transform(X)
    if entry == "solve":
        return wta_fitted.solve(X)
    if entry == "jacobian":
        return wta_fitted.jacobian(X, np.zeros((max(np.shape(X)[:1] or (1,)), 27)))
    if entry == "approximator.fit":
        n_rows = np.shape(X)[0] if np.ndim(X) else 1
        approximator = FeedforwardApproximator(hidden_layer_size=2, max_iter=2)
        return approximator.fit(X, np.zeros((n_rows, 2)))
    return ff_fitted.predict(X)


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("name, X, error, match", BAD_X, ids=[row[0] for row in BAD_X])
def test_bad_input_rows_are_rejected(name, X, error, match, entry, wta_network, wta_fitted,
                                     ff_fitted):
    with pytest.raises(error, match=match):
        _call(entry, X, wta_network, wta_fitted, ff_fitted)


@pytest.mark.parametrize("entry", ["transform", "solve", "jacobian", "predict"])
def test_wrong_number_of_features(entry, wta_network, wta_fitted, ff_fitted):
    X = np.full((2, 5), 0.5)
    with pytest.raises(ValueError, match=r"X has 5 features, but \w+ is expecting 4 features"):
        _call(entry, X, wta_network, wta_fitted, ff_fitted)


def test_wrong_number_of_features_at_fit_names_input_weights(wta_network):
    with pytest.raises(ValueError, match=r"input_weights must have shape .* \(27, 5\)"):
        RecurrentFixedPointTransformer(network=wta_network).fit(np.ones((2, 5)))


# --------------------------------------------------------------------------- bad parameters

E3 = 0.5 * np.eye(3)
BAD_PARAMETERS = [
    ("W not square", dict(network=RateNetwork(np.ones((2, 3)))), ValueError,
     r"weights must be a square matrix; got shape \(2, 3\)"),
    ("W 1-D", dict(network=RateNetwork(np.ones(3))), ValueError, "weights must have 2 dimensions"),
    ("W 0 units", dict(network=RateNetwork(np.ones((0, 0)))), ValueError, r"weights.*(unit|empty)"),
    ("W NaN", dict(network=RateNetwork(np.full((3, 3), np.nan))), ValueError,
     "weights contains NaN or infinity"),
    ("W inf", dict(network=RateNetwork(np.full((3, 3), np.inf))), ValueError,
     "weights contains NaN or infinity"),
    ("W complex", dict(network=RateNetwork(E3 + 0j)), TypeError, "weights must be real"),
    ("W strings", dict(network=RateNetwork([["a"] * 3] * 3)), TypeError,
     "weights must be a real numeric array"),
    ("input_weights NaN", dict(network=RateNetwork(E3, input_weights=np.full((3, 3), np.nan))),
     ValueError, "input_weights contains NaN or infinity"),
    ("input_weights shape", dict(network=RateNetwork(E3, input_weights=np.ones((3, 2)))),
     ValueError, r"input_weights must have shape \(n_units, n_features\) = \(3, 3\)"),
    ("bias inf", dict(network=RateNetwork(E3, bias=np.inf)), ValueError,
     "bias contains NaN or infinity"),
    ("bias shape", dict(network=RateNetwork(E3, bias=np.ones(2))), ValueError,
     "bias has 2 entries; the network has 3 units"),
    ("tau 0", dict(network=RateNetwork(E3, tau=0.0)), ValueError, "tau must be strictly positive"),
    ("tau < 0", dict(network=RateNetwork(E3, tau=-1.0)), ValueError,
     "tau must be strictly positive"),
    ("tau per unit with a 0", dict(network=RateNetwork(E3, tau=[1.0, 0.0, 1.0])), ValueError,
     "tau must be strictly positive"),
    ("tau NaN", dict(network=RateNetwork(E3, tau=np.nan)), ValueError,
     "tau contains NaN or infinity"),
    ("activation", dict(network=RateNetwork(E3, activation="softplus")), ValueError,
     "activation must be one of"),
    ("gated tau_z 0", dict(network=GatedNetwork(E3, E3, E3, tau_z=0.0)), ValueError,
     "tau_z must be strictly positive"),
    ("gated z_weights shape", dict(network=GatedNetwork(E3, np.ones((3, 2)), E3)), ValueError,
     "z_weights must be a square matrix"),
    ("gated alpha_r NaN", dict(network=GatedNetwork(E3, E3, E3, alpha_r=np.nan)), ValueError,
     "alpha_r contains NaN or infinity"),
    ("network not a network", dict(network="W"), InvalidParameterError, "'network' parameter"),
    ("dt 0", dict(dt=0.0), InvalidParameterError, "'dt' parameter"),
    ("dt < 0", dict(dt=-0.1), InvalidParameterError, "'dt' parameter"),
    ("dt NaN", dict(dt=np.nan), InvalidParameterError, "'dt' parameter"),
    ("dt inf", dict(dt=np.inf), InvalidParameterError, "'dt' parameter"),
    ("max_steps 0", dict(max_steps=0), InvalidParameterError, "'max_steps' parameter"),
    ("max_steps 2.5", dict(max_steps=2.5), InvalidParameterError, "'max_steps' parameter"),
    ("tol < 0", dict(tol=-1e-6), InvalidParameterError, "'tol' parameter"),
    ("tol NaN", dict(tol=np.nan), InvalidParameterError, "'tol' parameter"),
    ("divergence_threshold 0", dict(divergence_threshold=0.0), InvalidParameterError,
     "'divergence_threshold' parameter"),
    ("on_nonconvergence", dict(on_nonconvergence="ignore"), InvalidParameterError,
     "'on_nonconvergence' parameter"),
    ("x0 shape", dict(network=RateNetwork(E3), x0=[0.0, 0.0]), ValueError,
     r"x0 must be a finite array of shape \(3,\)"),
    ("x0 NaN", dict(network=RateNetwork(E3), x0=[np.nan, 0.0, 0.0]), ValueError,
     r"x0 .*(finite|NaN)"),
    ("n_jobs 0", dict(n_jobs=0), ValueError, "n_jobs"),
]


@pytest.mark.parametrize("name, params, error, match", BAD_PARAMETERS,
                         ids=[row[0] for row in BAD_PARAMETERS])
def test_bad_parameters_fail_at_fit(name, params, error, match):
    """Parameters are checked at fit, before any integration, with a message naming them."""
    with pytest.raises(error, match=match):
        RecurrentFixedPointTransformer(**params).fit(np.ones((4, 3)))


BAD_APPROXIMATOR_PARAMETERS = [
    ("hidden_layer_size 0", dict(hidden_layer_size=0), "'hidden_layer_size' parameter"),
    ("alpha < 0", dict(alpha=-1.0), "'alpha' parameter"),
    ("max_iter 0", dict(max_iter=0), "'max_iter' parameter"),
    ("learning_rate_init 0", dict(learning_rate_init=0.0), "'learning_rate_init' parameter"),
    ("teacher not an estimator", dict(teacher="rnn"), "'teacher' parameter"),
    ("activation", dict(activation="sigmoid"), "'activation' parameter"),
]


@pytest.mark.parametrize("name, params, match", BAD_APPROXIMATOR_PARAMETERS,
                         ids=[row[0] for row in BAD_APPROXIMATOR_PARAMETERS])
def test_bad_approximator_parameters(name, params, match):
    with pytest.raises(InvalidParameterError, match=match):
        FeedforwardApproximator(**params).fit(np.ones((4, 2)), np.ones((4, 2)))


# --------------------------------------------------------------------------- dt and dynamics


def test_dt_above_smallest_tau_warns_convergence():
    network = RateNetwork(E3, tau=[1.0, 0.05, 1.0])
    with pytest.warns(ConvergenceWarning, match=r"dt=0\.1 exceeds the smallest time constant"):
        RecurrentFixedPointTransformer(network=network, dt=0.1).fit(np.ones((2, 3)))


def test_unstable_euler_step_is_marked_not_hidden():
    """dt = 2.5 tau makes Euler unstable on a stable network: warned at fit, rows diverge early."""
    network = RateNetwork(weights=np.zeros((2, 2)))
    U = np.ones((3, 2))
    with pytest.warns(UserWarning, match="dt=2.5 exceeds the smallest time constant"):
        rnn = RecurrentFixedPointTransformer(network=network, dt=2.5).fit(U)
    result = rnn.solve(U)
    assert set(result.status) == {"diverged"} and result.n_steps.max() < 1000
    with pytest.warns(ConvergenceWarning, match=r"3 of 3 rows .*3 diverged"):
        out = rnn.transform(U)
    assert _no_inf(out)


def test_exploding_network_rows_marked_early(exploding):
    network, U = exploding
    rnn = RecurrentFixedPointTransformer(network=network, max_steps=100_000).fit(U)
    result = rnn.solve(U)
    assert_array_equal(result.status, ["diverged", "converged", "diverged"])
    assert result.n_steps[[0, 2]].max() < 1000  # detected early, not after max_steps
    assert _no_inf(result.outputs) and _no_inf(result.states)
    with pytest.warns(ConvergenceWarning, match=r"2 of 3 rows .*\(rows 0, 2\).*2 diverged"):
        out = rnn.transform(U)
    assert _no_inf(out)


@pytest.mark.parametrize("policy", ["nan", "raise"])
def test_exploding_network_policies(exploding, policy):
    network, U = exploding
    rnn = RecurrentFixedPointTransformer(network=network, on_nonconvergence=policy).fit(U)
    if policy == "raise":
        with pytest.raises(NonConvergenceError, match=r"rows 0, 2"):
            rnn.transform(U)
        return
    with pytest.warns(ConvergenceWarning, match="set to NaN"):
        out = rnn.transform(U)
    assert np.isnan(out[[0, 2]]).all() and np.isfinite(out[1]).all()


def test_chaotic_network_never_claims_convergence():
    network = random_tanh_network(40, gain=2.5, random_state=0)
    U = np.random.default_rng(0).normal(scale=0.1, size=(3, 40))
    rnn = RecurrentFixedPointTransformer(network=network, max_steps=1500).fit(U)
    result = rnn.solve(U)
    assert not result.converged.any() and set(result.status) == {"max_steps"}
    assert np.all(result.residual > rnn.tol)
    with pytest.warns(ConvergenceWarning,
                      match=r"3 of 3 rows .*3 reached max_steps=1500.*oscillation or chaos"):
        out = rnn.transform(U)
    assert np.isfinite(out).all()


@pytest.mark.parametrize("scale", [1e30, 1e308])
def test_huge_inputs_name_the_precision_cause(scale, wta_fitted):
    """|u| = 1e30: float64 cannot resolve a residual of tol=1e-6 on states of 1e30.

    The rows cannot converge; the warning must say so (input scale / precision),
    not blame an unstable or chaotic network, and nothing may be inf.
    """
    X = np.full((2, 4), scale)
    X[1] *= 0.5
    result = wta_fitted.solve(X)
    assert not result.converged.any()
    assert _no_inf(result.outputs)
    with pytest.warns(ConvergenceWarning) as record:
        out = wta_fitted.transform(X)
    assert _no_inf(out)
    message = " ".join(str(w.message) for w in record)
    assert any(word in message for word in ("precision", "resolution", "rescale")), message


def test_float32_overflowing_fixed_point_is_reported():
    """The float64 fixed point x* = 3e39 exists but does not fit the float32 output."""
    network = RateNetwork(weights=np.zeros((1, 1)), input_weights=[[10.0]])
    X = np.array([[3e38], [1.0]], dtype=np.float32)
    rnn = RecurrentFixedPointTransformer(network=network, tol=1e35, output="state").fit(X)
    with pytest.warns(ConvergenceWarning, match=r"float32"):
        out = rnn.transform(X)
    assert out.dtype == np.float32 and _no_inf(out)
    assert np.isnan(out[0]).all() and np.isfinite(out[1]).all()  # only the overflowing row
    with pytest.raises(NonConvergenceError, match=r"float32"):
        rnn.set_params(on_nonconvergence="raise").transform(X)


def test_float32_near_max_input_gives_no_inf(wta_network):
    X = np.full((2, 4), 0.9 * FLOAT32_MAX, dtype=np.float32)
    rnn = RecurrentFixedPointTransformer(network=wta_network).fit(X)
    with pytest.warns(ConvergenceWarning):
        out = rnn.transform(X)
    assert out.dtype == np.float32 and _no_inf(out)


@pytest.mark.parametrize("scale", [1e30, 1e308])
def test_predict_on_huge_inputs(scale, ff_fitted):
    """Finite inputs far outside the training range: finite predictions or a clear error."""
    X = np.full((2, 4), scale)
    X[1, ::2] *= -1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)  # numpy overflow is not an answer
            prediction = ff_fitted.predict(X)
    except (ValueError, RuntimeWarning) as exc:
        assert isinstance(exc, ValueError), f"numpy overflow leaked out: {exc}"
        assert any(word in str(exc) for word in ("overflow", "too large", "range")), str(exc)
        return
    assert np.isfinite(prediction).all()


# --------------------------------------------------------------------------- approximator targets

TARGET_ROWS = [
    ("y NaN", lambda Y: np.where(np.arange(Y.size).reshape(Y.shape) == 3, np.nan, Y),
     ValueError, "Input y contains NaN"),
    ("y inf", lambda Y: np.where(np.arange(Y.size).reshape(Y.shape) == 3, np.inf, Y),
     ValueError, "Input y contains infinity"),
    ("y complex", lambda Y: Y + 1j, ValueError, "Complex data not supported"),
    ("y strings", lambda Y: np.full(Y.shape, "a"), ValueError, "numeric"),
    ("y wrong rows", lambda Y: Y[:5], ValueError, "inconsistent numbers of samples"),
    ("y 3-D", lambda Y: Y[:, :, np.newaxis], ValueError, "dim 3"),
    ("y 0 outputs", lambda Y: Y[:, :0], ValueError, r"0 feature\(s\)"),
]


@pytest.mark.parametrize("name, make_y, error, match", TARGET_ROWS,
                         ids=[row[0] for row in TARGET_ROWS])
def test_bad_targets(name, make_y, error, match):
    rng = np.random.default_rng(0)
    X, Y = rng.uniform(size=(20, 3)), rng.uniform(size=(20, 2))
    with pytest.raises(error, match=match):
        FeedforwardApproximator(hidden_layer_size=3, max_iter=5).fit(X, make_y(Y))


@pytest.mark.parametrize("scale", [1e30, 1e300])
@pytest.mark.parametrize("output_activation", ["auto", "identity"])
def test_huge_targets(scale, output_activation):
    """Targets of 1e300 must not overflow the scaling into NaN predictions silently."""
    rng = np.random.default_rng(0)
    X, Y = rng.uniform(size=(20, 3)), scale * rng.uniform(size=(20, 2))
    ff = FeedforwardApproximator(hidden_layer_size=3, max_iter=10, random_state=0,
                                 output_activation=output_activation)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("error", RuntimeWarning)
            ff.fit(X, Y)
    except (ValueError, RuntimeWarning) as exc:
        assert isinstance(exc, ValueError), f"numpy overflow leaked out: {exc}"
        assert any(word in str(exc) for word in ("overflow", "too large", "rescale")), str(exc)
        return
    prediction = ff.predict(X)
    assert np.isfinite(prediction).all()
    assert np.abs(prediction).max() <= 10 * np.abs(Y).max()  # the targets' order of magnitude


@pytest.mark.parametrize(
    "sample_weight, match",
    [(-np.ones(6), "Negative values"), (np.zeros(6), "at least one non-zero"),
     (np.full(6, np.nan), "contains NaN"), (np.ones(4), "sample_weight")],
    ids=["negative", "all zero", "NaN", "wrong length"],
)
def test_bad_sample_weight(sample_weight, match):
    with pytest.raises(ValueError, match=match):
        FeedforwardApproximator(hidden_layer_size=2, max_iter=2).fit(
            np.ones((6, 2)), np.ones((6, 2)), sample_weight=sample_weight
        )


def test_teacher_whose_every_row_fails(exploding):
    network, _ = exploding
    U = np.abs(np.random.default_rng(0).normal(size=(5, 3))) + 0.1  # every row explodes
    teacher = RecurrentFixedPointTransformer(network)
    ff = FeedforwardApproximator(hidden_layer_size=2, teacher=teacher)
    with pytest.raises(ValueError, match=r"reached a fixed point for none of the 5 rows"):
        ff.fit(U)


# max_iter=5 keeps the test fast; the optimiser's own warning about it is expected.
@pytest.mark.filterwarnings("ignore:L-BFGS reached max_iter:sklearn.exceptions.ConvergenceWarning")
def test_teacher_with_some_failing_rows(exploding):
    network, U = exploding
    U = np.vstack([U, -np.ones((3, 3))])  # rows 0 and 2 explode, the others settle
    ff = FeedforwardApproximator(hidden_layer_size=2, max_iter=5,
                                 teacher=RecurrentFixedPointTransformer(network))
    with pytest.warns(ConvergenceWarning, match=r"for 2 of 6 rows; they were left out"):
        ff.fit(U)
    assert_array_equal(ff.teacher_converged_, [False, True, False, True, True, True])
    assert ff.n_teacher_rows_ == 4 and np.isfinite(ff.predict(U)).all()


# --------------------------------------------------------------------------- caller's arrays


def _frozen(array, dtype=np.float64, order="C"):
    array = np.array(array, dtype=dtype, order=order)
    array.setflags(write=False)
    return array


def test_callers_arrays_never_modified(wta_network, wta_inputs):
    """Read-only inputs everywhere: a write would raise, and values are compared afterwards."""
    rng = np.random.default_rng(0)
    W = _frozen(wta_network.weights)
    W_in = _frozen(wta_network.input_weights, order="F")
    bias, tau = _frozen(np.full(27, 0.01)), _frozen(np.full(27, 1.0))
    x0 = _frozen(np.zeros(27))
    X = _frozen(wta_inputs[:20], order="F")
    X32 = _frozen(wta_inputs[:20], dtype=np.float32)
    weights = _frozen(rng.uniform(0.5, 1.5, size=20))
    arrays = [W, W_in, bias, tau, x0, X, X32, weights]
    before = [a.copy() for a in arrays]

    network = RateNetwork(W, input_weights=W_in, bias=bias, tau=tau, activation="relu")
    rnn = RecurrentFixedPointTransformer(network=network, x0=x0, on_nonconvergence="nan")
    R = rnn.fit_transform(X)
    rnn.transform(X32)
    result = rnn.solve(X, stability=True)
    rnn.jacobian(X, _frozen(result.states))
    Y = _frozen(R)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ff = FeedforwardApproximator(hidden_layer_size=4, max_iter=10, random_state=0)
        ff.fit(X, Y, sample_weight=weights).predict(X32)
        ff.score(X, Y)
        FeedforwardApproximator(hidden_layer_size=4, max_iter=10, teacher=rnn).fit(
            X, sample_weight=weights
        )
        FeedforwardApproximator(hidden_layer_size=4, solver="adam", random_state=0).partial_fit(
            X, Y, sample_weight=weights
        )
    for array, copy_ in zip(arrays + [Y], before + [R], strict=True):
        assert_array_equal(array, copy_)
    assert network.weights is W and network.tau is tau and rnn.x0 is x0


def test_policy_nan_does_not_touch_inputs(exploding):
    network, U = exploding
    U = _frozen(U)
    rnn = RecurrentFixedPointTransformer(network=network, on_nonconvergence="nan").fit(U)
    with pytest.warns(ConvergenceWarning):
        rnn.transform(U)
    assert np.isfinite(U).all()


# --------------------------------------------------------------------------- threads


def test_threads_share_one_fitted_estimator(wta_fitted, wta_inputs, ff_fitted):
    """Concurrent transform / solve / predict on shared estimators equal the serial answers."""
    single = copy.deepcopy(wta_fitted).set_params(n_jobs=1)
    batches = [wta_inputs[k::4] for k in range(4)]
    tasks = [(est, kind, k) for k in range(4) for est, kind in
             [(wta_fitted, "transform"), (single, "transform"), (wta_fitted, "solve"),
              (ff_fitted, "predict")]]

    def run(task):
        est, kind, k = task
        if kind == "solve":
            return est.solve(batches[k]).states
        return getattr(est, kind)(batches[k])

    serial = [run(task) for task in tasks]
    threads_before = numba.get_num_threads()
    blas_before = [info["num_threads"] for info in threadpool_info()]
    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(2):
            parallel = list(pool.map(run, tasks * 2))
            for got, expected in zip(parallel, serial * 2, strict=True):
                assert_array_equal(got, expected)
    assert numba.get_num_threads() == threads_before
    assert [info["num_threads"] for info in threadpool_info()] == blas_before


# --------------------------------------------------------------------------- KeyboardInterrupt


def test_keyboard_interrupt_leaves_estimator_usable(wta_fitted, wta_inputs, monkeypatch, capsys):
    """Ctrl-C between chunks of a long transform: later calls work, thread counts restored."""
    import rnnapprox._chunked as chunked
    import rnnapprox._recurrent as module

    rnn = copy.deepcopy(wta_fitted).set_params(n_jobs=1, verbose=1)
    X = np.tile(wta_inputs, (4, 1))
    reference = {n_jobs: clone(rnn).set_params(n_jobs=n_jobs, verbose=0).fit(X).transform(X)
                 for n_jobs in (1, None)}
    state = copy.deepcopy(vars(rnn))
    threads_before = numba.get_num_threads()
    assert threads_before != 1 or numba.config.NUMBA_NUM_THREADS == 1
    blas_before = [info["num_threads"] for info in threadpool_info()]
    monkeypatch.setattr(chunked, "CHUNK_ROWS", 16)
    calls = []

    def print_then_interrupt(*args, **kwargs):
        calls.append(args)
        if len(calls) == 3:  # the user presses Ctrl-C during the fourth chunk
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(module, "print", print_then_interrupt, raising=False)
    previous_handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            rnn.transform(X)
    finally:
        signal.signal(signal.SIGINT, previous_handler)
    assert 3 <= len(calls) < len(X) // 16  # interrupted part-way, not at the end
    assert numba.get_num_threads() == threads_before
    assert [info["num_threads"] for info in threadpool_info()] == blas_before
    for name, value in state.items():
        if isinstance(value, np.ndarray):
            assert_array_equal(getattr(rnn, name), value)
        else:
            assert getattr(rnn, name) == value or name == "network"
    monkeypatch.undo()
    capsys.readouterr()
    assert_array_equal(rnn.set_params(verbose=0).transform(X), reference[1])
    assert_array_equal(rnn.set_params(n_jobs=None).transform(X), reference[None])


# --------------------------------------------------------------------------- processes
#
# Fresh interpreters compile the numba kernels again (several seconds each), so
# they are started together when this module starts, run while the in-process
# tests do, and are checked by the tests at the end of the module.


def _python(code, env=None, cwd=None, args=()):
    """Start ``python -c code *args`` in a clean numba environment."""
    full_env = {k: v for k, v in os.environ.items()
                if not k.startswith("NUMBA_") and k != "RNNAPPROX_NUMBA_CACHE"}
    full_env.update(env or {})
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *map(str, args)], env=full_env, cwd=cwd,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _finish(process, timeout=300):
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"subprocess hung for {timeout} s\nstdout:\n{out}\nstderr:\n{err[-3000:]}")
    return process.returncode, out, err


THREADS_SCRIPT = """
    import numpy as np
    from concurrent.futures import ThreadPoolExecutor
    from rnnapprox import RecurrentFixedPointTransformer
    from rnnapprox.networks import soft_wta
    net = soft_wta(n_partitions=3, units_per_partition=4, n_inhibitory=2, random_state=0)
    U = np.random.default_rng(0).uniform(size=(600, 3))
    rnn = RecurrentFixedPointTransformer(network=net).fit(U)
    serial = [rnn.transform(U[k::4]) for k in range(4)]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(3):
            outs = list(pool.map(lambda k: rnn.transform(U[k::4]), range(4)))
            assert all(np.array_equal(o, serial[k]) for k, o in enumerate(outs))
    print("THREADS OK")
"""

READ_ONLY_SCRIPT = """
    import pathlib, pickle, sys, numpy as np
    import rnnapprox
    site, saved, out = map(pathlib.Path, sys.argv[1:4])
    assert pathlib.Path(rnnapprox.__file__).resolve().is_relative_to(site), rnnapprox.__file__
    X = np.load(saved / "X.npy")
    for name, method in [("rnn", "transform"), ("ff", "predict")]:
        path = saved / f"{name}.skops"
        if path.exists():
            import skops.io as sio
            est = sio.load(path, trusted=sio.get_untrusted_types(file=path))
        else:
            est = pickle.loads((saved / f"{name}.pickle").read_bytes())
        np.save(out / f"{method}.npy", getattr(est, method)(X))
    print("READ-ONLY OK")
"""


def _read_only_tree(root):
    """A copy of the package where neither Python nor numba can write anything.

    Permissions alone do not stop root, so the places Python and numba would
    write to are also blocked by regular files standing where directories must go.
    """
    site = root / "site"
    shutil.copytree(PACKAGE_DIR, site / "rnnapprox",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.nbi", "*.nbc"))
    for package in [site / "rnnapprox", *(p.parent for p in (site / "rnnapprox").rglob("__init__.py"))]:
        (package / "__pycache__").write_text("blocks bytecode and numba's in-tree cache")
    blocked = root / "blocked"
    blocked.write_text("a file, so nothing can be created below it")
    for path in [site, *site.rglob("*")]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    env = {
        "PYTHONPATH": str(site),
        "NUMBA_CACHE_DIR": str(blocked / "numba"),
        "HOME": str(blocked),
        "XDG_CACHE_HOME": str(blocked / "cache"),
        "PYTHONPYCACHEPREFIX": str(blocked / "pycache"),
    }
    return site, env


@pytest.fixture(scope="module", autouse=True)
def background_runs(tmp_path_factory):
    """Start the fresh-interpreter checks; fitting needs no kernel, so nothing compiles here."""
    try:
        import skops.io as sio
    except ImportError:  # the tests extra installs skops; without it, pickle
        sio = None
    root = tmp_path_factory.mktemp("processes")
    saved = root / "saved"
    saved.mkdir()
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(40, 3))
    network = soft_wta(n_partitions=3, units_per_partition=4, n_inhibitory=2, random_state=0)
    rnn = RecurrentFixedPointTransformer(network=network).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ff = FeedforwardApproximator(hidden_layer_size=5, max_iter=20, random_state=0).fit(
            X, np.maximum(X @ rng.normal(size=(3, 4)), 0.0)
        )
    for name, est in [("rnn", rnn), ("ff", ff)]:
        if sio is not None:
            sio.dump(est, saved / f"{name}.skops")
        else:
            (saved / f"{name}.pickle").write_bytes(pickle.dumps(est))
    np.save(saved / "X.npy", X)
    site, env = _read_only_tree(root)
    listing = sorted(str(p) for p in site.rglob("*"))
    runs = {}
    for name, extra in [("default", {}), ("opt-in cache", {"RNNAPPROX_NUMBA_CACHE": "1"})]:
        out = root / name
        out.mkdir()
        runs[name] = _python(READ_ONLY_SCRIPT, {**env, **extra}, cwd=str(root),
                             args=(site, saved, out))
    # numba's fallback threading layer (no OpenMP, no TBB), as on many macOS installs.
    runs["workqueue"] = _python(THREADS_SCRIPT, {"NUMBA_THREADING_LAYER": "workqueue"})
    yield {"runs": runs, "root": root, "site": site, "listing": listing, "rnn": rnn, "ff": ff,
           "X": X}
    for process in runs.values():
        if process.poll() is None:
            process.kill()
            process.communicate()
    for path in [root, *root.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)


def _child_transform(connection, estimator, X):
    connection.send(estimator.transform(X))
    connection.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork start method: Linux")
def test_fork_after_transform(wta_fitted, wta_inputs):
    """multiprocessing with fork (Linux's default before Python 3.14) after a transform."""
    import multiprocessing

    reference = wta_fitted.transform(wta_inputs)  # this process has run the kernels
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child_transform, args=(sender, wta_fitted, wta_inputs))
    child.start()
    sender.close()
    try:
        answer = receiver.recv() if receiver.poll(120) else None
    except EOFError:
        answer = None
    child.join(30)
    if child.is_alive():
        child.kill()
        child.join()
    assert child.exitcode == 0, f"the forked child died (exit code {child.exitcode})"
    assert_array_equal(answer, reference)


def test_threads_under_workqueue_threading_layer(background_runs):
    """Concurrent transforms must not abort the interpreter whatever layer numba picked."""
    code, out, err = _finish(background_runs["runs"]["workqueue"])
    assert code == 0 and "THREADS OK" in out, f"exit code {code}\n{err[-3000:]}"


@pytest.mark.parametrize("run", ["default", "opt-in cache"])
def test_read_only_install(run, background_runs):
    """Imported from a read-only copy, numba caching off (default) or asked for (opt-in):
    estimators saved here with skops load and answer as here, and nothing is written."""
    info = background_runs
    code, out, err = _finish(info["runs"][run])
    assert code == 0 and "READ-ONLY OK" in out, f"exit code {code}\n{err[-3000:]}"
    assert sorted(str(p) for p in info["site"].rglob("*")) == info["listing"]
    results = info["root"] / run
    assert_array_equal(np.load(results / "transform.npy"), info["rnn"].transform(info["X"]))
    assert_array_equal(np.load(results / "predict.npy"), info["ff"].predict(info["X"]))
