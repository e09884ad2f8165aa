"""Bridges to other frameworks, each checked against the other framework itself.

ONNX: onnxruntime's predictions of the exported graph against ``predict``.
"""

import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from rnnapprox import FeedforwardApproximator
from rnnapprox.interop import Readout, fixed_point_stability

FRAMEWORKS = ("torch", "rockpool", "onnx", "onnxruntime", "skl2onnx")


def test_import_does_not_load_frameworks():
    code = (
        "import sys, rnnapprox, rnnapprox.interop\n"
        f"loaded = sorted(m for m in {FRAMEWORKS!r} if m in sys.modules)\n"
        "print(','.join(loaded))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@parametrize_with_checks([Readout(), Readout(units=slice(None, None, -1), bias=0.5)])
def test_readout_is_an_estimator(estimator, check):
    check(estimator)


def test_readout_errors_and_pipeline():
    R = np.arange(12.0).reshape(3, 4)
    with pytest.raises(ValueError, match="index the 4 columns"):
        Readout(units=[4]).fit(R)
    with pytest.raises(ValueError, match="1-D array of integers"):
        Readout(units=[0.5]).fit(R)
    with pytest.raises(ValueError, match="selects no column"):
        Readout(units=slice(4, None)).fit(R)
    with pytest.raises(ValueError, match="n_selected=2"):
        Readout(units=[0, 1], weights=np.ones((3, 1))).fit(R)
    np.testing.assert_array_equal(Readout(units=[-1]).fit_transform(R), R[:, [3]])


def test_fixed_point_stability_needs_a_rate_network():
    from rnnapprox.networks import random_gated_network

    with pytest.raises(TypeError, match="takes a RateNetwork"):
        fixed_point_stability(random_gated_network(4, random_state=0), np.zeros((1, 4)))


# -- ONNX ------------------------------------------------------------------------------------


def _fit_quietly(model, U, Y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(U, Y)


def _onnx_predict(model, U, dtype=np.float32):
    onnxruntime = pytest.importorskip("onnxruntime")
    from rnnapprox.interop import to_onnx

    onx = to_onnx(model, dtype=dtype)
    session = onnxruntime.InferenceSession(
        onx.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    return session.run(None, {"X": U.astype(dtype)})[0]


@pytest.fixture(scope="module")
def regression_data():
    """Inputs exactly representable in float32, so both sides see the same rows."""
    rng = np.random.RandomState(0)
    U = rng.uniform(-2.0, 2.0, size=(200, 3)).astype(np.float32).astype(np.float64)
    Y = 3.0 * np.tanh(U @ rng.normal(size=(3, 4))) + 1.0
    return U, Y


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("output_activation", ["identity", "relu", "tanh"])
def test_onnx_matches_predict(regression_data, activation, output_activation):
    pytest.importorskip("skl2onnx")
    U, Y = regression_data
    if output_activation == "relu":
        Y = np.maximum(Y - 1.0, 0.0)
    ff = FeedforwardApproximator(
        hidden_layer_size=12,
        activation=activation,
        output_activation=output_activation,
        max_iter=40,
        random_state=0,
    )
    _fit_quietly(ff, U, Y)
    expected = ff.predict(U)
    assert ff.out_activation_ == output_activation
    got = _onnx_predict(ff, U)
    assert got.dtype == np.float32 and got.shape == expected.shape
    # float32 precision relative to the output's magnitude
    np.testing.assert_allclose(got, expected, rtol=0, atol=2e-6 * np.abs(expected).max())
    if output_activation == "relu":
        assert np.all(got[expected == 0] == 0)  # silent units stay exactly silent
    got64 = _onnx_predict(ff, U, dtype=np.float64)
    np.testing.assert_allclose(got64, expected, rtol=1e-12, atol=1e-12)


def test_onnx_multi_output_pipeline_with_skl2onnx(regression_data):
    """A registered approximator makes skl2onnx.to_onnx convert a pipeline, output a matrix."""
    onnxruntime = pytest.importorskip("onnxruntime")
    skl2onnx = pytest.importorskip("skl2onnx")
    from skl2onnx.common.data_types import FloatTensorType

    from rnnapprox.interop import register_skl2onnx

    U, Y = regression_data
    # features on different scales, rounded to float32 like the model's input
    U = (U * [1.0, 10.0, 0.1] + [0.0, 5.0, -1.0]).astype(np.float32).astype(np.float64)
    pipe = make_pipeline(
        StandardScaler(),
        FeedforwardApproximator(hidden_layer_size=10, activation="tanh", max_iter=40, random_state=0),
    )
    _fit_quietly(pipe, U, Y)
    register_skl2onnx()
    onx = skl2onnx.to_onnx(pipe, initial_types=[("input", FloatTensorType([None, 3]))])
    session = onnxruntime.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": U.astype(np.float32)})[0]
    expected = pipe.predict(U)
    assert got.shape == expected.shape == (200, 4)
    np.testing.assert_allclose(got, expected, rtol=0, atol=2e-6 * np.abs(expected).max())
    np.testing.assert_allclose(_onnx_predict(pipe, U), expected, rtol=0, atol=2e-6 * np.abs(expected).max())


def test_onnx_single_output_is_one_column(regression_data):
    pytest.importorskip("skl2onnx")
    U, Y = regression_data
    ff = _fit_quietly(FeedforwardApproximator(hidden_layer_size=5, max_iter=20, random_state=0), U, Y[:, 0])
    got = _onnx_predict(ff, U)
    assert got.shape == (200, 1)
    np.testing.assert_allclose(got[:, 0], ff.predict(U), rtol=0, atol=2e-6 * np.abs(Y[:, 0]).max())


def test_onnx_errors():
    pytest.importorskip("skl2onnx")
    from rnnapprox.interop import to_onnx

    with pytest.raises(ValueError, match="fit it before"):
        to_onnx(FeedforwardApproximator())
    ff = _fit_quietly(FeedforwardApproximator(hidden_layer_size=3, max_iter=5), np.eye(3), np.eye(3))
    with pytest.raises(ValueError, match="float32 or numpy.float64"):
        to_onnx(ff, dtype=np.int64)
    from rnnapprox import RecurrentFixedPointTransformer

    pipe = _fit_quietly(make_pipeline(RecurrentFixedPointTransformer(), clone(ff)), np.eye(3), np.eye(3))
    with pytest.raises(ValueError, match="export the FeedforwardApproximator"):
        to_onnx(pipe)


# -- Rockpool --------------------------------------------------------------------------------


def _sigmoid_supported():
    from rnnapprox.networks import RateNetwork

    try:
        RateNetwork(weights=np.zeros((1, 1)), activation="sigmoid").validated_arrays(1)
    except ValueError:
        return False
    return True


def _rockpool_steady_state(module, U, n_steps):
    """Rockpool's own evolve on constant inputs, from its zero state; the last step and the change."""
    module = module.reset_state()
    out, _, _ = module(np.repeat(U[:, np.newaxis, :], n_steps, axis=1))
    return out[:, -1], np.abs(out[:, -1] - out[:, -2]).max()


def _random_rate(rng, n, activation, gain=0.6, **kwargs):
    from rockpool.nn.modules import Rate

    w_rec = gain * rng.normal(size=(n, n)) / np.sqrt(n)
    return Rate(
        n,
        has_rec=True,
        w_rec=w_rec,
        activation_func=activation,
        bias=rng.uniform(-0.3, 0.3, n),
        threshold=rng.uniform(-0.2, 0.2, n),
        tau=rng.uniform(10e-3, 30e-3, n),  # dt=1 ms; Rockpool clips tau at 10 dt
        **kwargs,
    )


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
def test_rockpool_sequential_matches_evolve(activation):
    pytest.importorskip("rockpool")
    if activation == "sigmoid" and not _sigmoid_supported():
        pytest.skip("RateNetwork(activation='sigmoid') is not on this branch yet")
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import Linear

    from rnnapprox.interop import from_rockpool

    rng = np.random.RandomState(1)
    module = Sequential(
        Linear((3, 5), weight=rng.normal(size=(3, 5)), bias=rng.normal(size=5) * 0.2),
        _random_rate(rng, 5, activation),
    )
    U = rng.uniform(-1.0, 1.0, size=(6, 3))
    expected, change = _rockpool_steady_state(module, U, 2000)
    assert change < 1e-12  # Rockpool reached its steady state
    imported = from_rockpool(module)
    assert imported.network.activation == activation
    got = imported.pipeline(tol=1e-11).fit(U).transform(U)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
    assert np.abs(got).max() > 0.1  # not trivially silent


def test_rockpool_sigmoid_mapping_fixed_point_equation():
    """Rockpool's sigmoid steady state solves the imported logistic network's fixed-point equation.

    Independent of the transformer: z = logit(r) for Rockpool's rates r must give a zero residual
    -z + W logistic(z) + W_in u + b.
    """
    pytest.importorskip("rockpool")
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import Linear

    from rnnapprox.interop import from_rockpool

    rng = np.random.RandomState(4)
    module = Sequential(Linear((3, 5), weight=rng.normal(size=(3, 5))), _random_rate(rng, 5, "sigmoid"))
    U = rng.uniform(-1.0, 1.0, size=(6, 3))
    rates, change = _rockpool_steady_state(module, U, 2000)
    assert change < 1e-12
    network = from_rockpool(module).network
    assert network.activation == "sigmoid"
    z = np.log(rates / (1.0 - rates))
    logistic = 1.0 / (1.0 + np.exp(-z))
    residual = -z + logistic @ network.weights.T + U @ network.input_weights.T + network.bias
    assert np.abs(residual).max() < 1e-9


def test_rockpool_stacked_with_readout_matches_evolve():
    pytest.importorskip("rockpool")
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import Linear

    from rnnapprox.interop import from_rockpool

    rng = np.random.RandomState(2)
    module = Sequential(
        Linear((2, 4), weight=rng.normal(size=(2, 4))),
        _random_rate(rng, 4, "tanh"),
        Linear((4, 3), weight=rng.normal(size=(4, 3))),
        _random_rate(rng, 3, "tanh"),
        Linear((3, 2), weight=rng.normal(size=(3, 2)), bias=np.array([0.5, -0.5])),
    )
    U = rng.uniform(-1.0, 1.0, size=(5, 2))
    expected, change = _rockpool_steady_state(module, U, 2000)
    assert change < 1e-12
    network, readout, x0 = from_rockpool(module)
    assert network.weights.shape == (7, 7)
    assert np.all(network.weights[:4, 4:] == 0)  # block lower-triangular
    got = from_rockpool(module).pipeline(tol=1e-11).fit(U).transform(U)
    assert got.shape == (5, 2)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)


def test_rockpool_consecutive_linear_modules_are_multiplied():
    pytest.importorskip("rockpool")
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import Linear

    from rnnapprox.interop import from_rockpool

    rng = np.random.RandomState(5)
    module = Sequential(
        Linear((2, 3), weight=rng.normal(size=(2, 3)), bias=rng.normal(size=3)),
        Linear((3, 4), weight=rng.normal(size=(3, 4)), bias=rng.normal(size=4)),
        _random_rate(rng, 4, "relu"),
    )
    U = rng.uniform(-1.0, 1.0, size=(5, 2))
    expected, change = _rockpool_steady_state(module, U, 2000)
    assert change < 1e-12
    imported = from_rockpool(module)
    assert imported.network.input_weights.shape == (4, 2)
    np.testing.assert_allclose(imported.pipeline(tol=1e-11).fit(U).transform(U), expected, rtol=0, atol=1e-9)


def test_rockpool_bare_rate_identity_input_and_noise_warning():
    pytest.importorskip("rockpool")
    from rnnapprox.interop import from_rockpool

    rng = np.random.RandomState(3)
    module = _random_rate(rng, 4, "relu")
    U = rng.uniform(0.0, 1.0, size=(5, 4))
    expected, change = _rockpool_steady_state(module, U, 2000)
    assert change < 1e-12
    network, readout, x0 = from_rockpool(module)
    np.testing.assert_array_equal(network.input_weights, np.eye(4))
    got = from_rockpool(module).pipeline(tol=1e-11).fit(U).transform(U)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)

    noisy = _random_rate(rng, 4, "relu", noise_std=0.1)
    with pytest.warns(UserWarning, match="noise_std=0.1"):
        from_rockpool(noisy)


def test_rockpool_errors():
    pytest.importorskip("rockpool")
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import Instant, Linear, Rate, RateTorch

    from rnnapprox.interop import from_rockpool

    with pytest.raises(ValueError, match="activation_func"):
        from_rockpool(Rate(2, activation_func=lambda x, t: x))
    mixed = Sequential(Linear((2, 2)), Rate(2, activation_func="relu"), Rate(2, activation_func="tanh"))
    with pytest.raises(ValueError, match="share one activation"):
        from_rockpool(mixed)
    with pytest.raises(TypeError, match="at least one Rate"):
        from_rockpool(Sequential(Linear((1, 2))))
    with pytest.raises(TypeError, match="numpy Rate module or a Sequential"):
        from_rockpool(Linear((1, 2)))
    with pytest.raises(TypeError, match="numpy Linear and Rate"):
        from_rockpool(Sequential(Linear((2, 2)), Rate(2), Instant(2)))
    with pytest.raises(TypeError, match="numpy Linear and Rate"):
        from_rockpool(RateTorch(2))


# -- PyTorch ---------------------------------------------------------------------------------


def _contractive_rnn(torch, n_inputs, hidden, layers, nonlinearity, bias, batch_first, seed):
    """An nn.RNN (float64) whose recurrent weights have spectral norm 0.7: both maps contract."""
    torch.manual_seed(seed)
    rnn = torch.nn.RNN(
        n_inputs, hidden, num_layers=layers, nonlinearity=nonlinearity, bias=bias, batch_first=batch_first
    ).double()
    with torch.no_grad():
        for k in range(layers):
            w = getattr(rnn, f"weight_hh_l{k}")
            w.mul_(0.7 / torch.linalg.matrix_norm(w, ord=2))
            getattr(rnn, f"weight_ih_l{k}").mul_(2.0)
    return rnn


def _torch_fixed_point(torch, rnn, U, n_steps):
    """The module iterated on constant inputs from h_0 = 0: last layer's h and the last change."""
    x = torch.from_numpy(U)[None].repeat(n_steps, 1, 1)  # (time, batch, features)
    if rnn.batch_first:
        x = x.transpose(0, 1)
    with torch.no_grad():
        out, h_n = rnn(x)
    out = out.numpy() if not rnn.batch_first else out.transpose(0, 1).numpy()
    np.testing.assert_array_equal(out[-1], h_n[-1].numpy())
    return out[-1], np.abs(out[-1] - out[-2]).max()


@pytest.mark.parametrize(
    "nonlinearity, layers, bias, batch_first",
    [("tanh", 1, True, False), ("relu", 1, True, True), ("tanh", 3, False, True), ("relu", 2, False, False),
     ("tanh", 2, True, False)],
)
def test_torch_rnn_matches_iterated_module(nonlinearity, layers, bias, batch_first):
    torch = pytest.importorskip("torch")
    from rnnapprox.interop import fixed_point_stability, from_torch

    rnn = _contractive_rnn(torch, 3, 5, layers, nonlinearity, bias, batch_first, seed=layers)
    U = np.random.RandomState(0).uniform(-1.0, 1.0, size=(8, 3))
    expected, change = _torch_fixed_point(torch, rnn, U, 400)
    assert change < 1e-13  # torch's own map converged
    imported = from_torch(rnn)
    assert imported.network.weights.shape == (5 * layers, 5 * layers)
    pipe = imported.pipeline(tol=1e-12).fit(U)
    got = pipe.transform(U)
    assert got.shape == (8, 5)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10)
    assert np.abs(expected).max() > 0.1
    stability = fixed_point_stability(imported.network, pipe["fixed_point"].solve(U))
    assert stability.continuous_stable.all() and stability.discrete_stable.all()
    assert not stability.rnn_unstable.any()


def test_torch_rnn_cell():
    torch = pytest.importorskip("torch")
    from rnnapprox.interop import from_torch

    torch.manual_seed(0)
    cell = torch.nn.RNNCell(2, 3).double()
    with torch.no_grad():
        cell.weight_hh.mul_(0.5 / torch.linalg.matrix_norm(cell.weight_hh, ord=2))
    U = np.random.RandomState(1).uniform(-1.0, 1.0, size=(4, 2))
    h = torch.zeros(4, 3, dtype=torch.float64)
    with torch.no_grad():
        for _ in range(200):
            h = cell(torch.from_numpy(U), h)
    got = from_torch(cell).pipeline(tol=1e-12).fit(U).transform(U)
    np.testing.assert_allclose(got, h.numpy(), rtol=0, atol=1e-10)


def test_torch_stability_flags_rows_that_oscillate_in_torch():
    """W_hh = -3: the rate network settles near zero drive, the RNN map oscillates there."""
    torch = pytest.importorskip("torch")
    from rnnapprox.interop import fixed_point_stability, from_torch

    rnn = torch.nn.RNN(1, 1, bias=False).double()
    with torch.no_grad():
        rnn.weight_hh_l0.fill_(-3.0)
        rnn.weight_ih_l0.fill_(1.0)
    U = np.array([[0.1], [8.0]])
    final, _ = _torch_fixed_point(torch, rnn, U, 400)
    previous, _ = _torch_fixed_point(torch, rnn, U, 399)
    assert abs(final[0, 0] - previous[0, 0]) > 0.5  # row 0 oscillates in torch
    assert abs(final[1, 0] - previous[1, 0]) < 1e-12  # row 1 settles in torch

    imported = from_torch(rnn)
    pipe = imported.pipeline(tol=1e-12).fit(U)
    result = pipe["fixed_point"].solve(U)
    assert result.converged.all()  # both rows settle in the rate dynamics
    stability = fixed_point_stability(imported.network, result)
    np.testing.assert_array_equal(stability.continuous_stable, [True, True])
    np.testing.assert_array_equal(stability.discrete_stable, [False, True])
    np.testing.assert_array_equal(stability.rnn_unstable, [True, False])
    assert stability.spectral_radius[0] > 1 > stability.spectral_radius[1]
    np.testing.assert_allclose(pipe.transform(U)[1], final[1], atol=1e-10)  # the settled row agrees
    # an unconverged row is reported stable for neither
    result.converged[:] = [False, True]
    stability = fixed_point_stability(imported.network, result)
    assert not stability.continuous_stable[0] and np.isnan(stability.spectral_radius[0])


def test_torch_errors():
    torch = pytest.importorskip("torch")
    from rnnapprox.interop import from_torch

    with pytest.raises(NotImplementedError, match="num_layers=2 is not supported"):
        from_torch(torch.nn.GRU(2, 3, num_layers=2))
    with pytest.raises(ValueError, match="[Bb]idirectional"):
        from_torch(torch.nn.GRU(2, 3, bidirectional=True))
    with pytest.raises(TypeError, match="LSTM"):
        from_torch(torch.nn.LSTM(2, 3))
    with pytest.raises(ValueError, match="[Bb]idirectional"):
        from_torch(torch.nn.RNN(2, 3, bidirectional=True))
    with pytest.raises(TypeError, match="supports torch.nn.RNN"):
        from_torch(torch.nn.Linear(2, 3))


def test_torch_import_leaves_module_unchanged():
    torch = pytest.importorskip("torch")
    from rnnapprox.interop import from_torch

    rnn = torch.nn.RNN(2, 3, num_layers=2)
    before = {k: v.clone() for k, v in rnn.state_dict().items()}
    network = from_torch(rnn).network
    network.weights[:] = 0.0  # the imported arrays are copies
    for key, value in rnn.state_dict().items():
        assert torch.equal(value, before[key])
    assert rnn.weight_hh_l0.dtype == torch.float32


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("cell", [False, True])
def test_torch_gru_matches_the_module_and_flags_stability(bias, cell):
    """A one-layer nn.GRU (or GRUCell) run to its own fixed point agrees with the transformer."""
    torch = pytest.importorskip("torch")
    from rnnapprox.interop import fixed_point_stability, from_torch

    torch.manual_seed(1)
    module = (torch.nn.GRUCell(3, 6, bias=bias) if cell else torch.nn.GRU(3, 6, bias=bias)).double()
    U = np.random.default_rng(2).uniform(-1.0, 1.0, size=(12, 3))
    imported = from_torch(module)
    pipe = imported.pipeline(tol=1e-12, max_steps=100_000).fit(U)
    result = pipe.named_steps["fixed_point"].solve(U)
    assert result.converged.all()
    with torch.no_grad():
        inputs = torch.from_numpy(U)
        h = torch.zeros(len(U), 6, dtype=torch.float64)
        for _ in range(3000):
            h_next = module(inputs, h) if cell else module(inputs[None], h[None])[1][0]
            if torch.max(torch.abs(h_next - h)) < 1e-14:
                break
            h = h_next
    np.testing.assert_allclose(pipe.transform(U), h.numpy(), atol=1e-9)
    stability = fixed_point_stability(imported.network, result, X=U)
    # torch's own iteration settled, so its map is stable there, and so is the flow.
    assert stability.discrete_stable.all() and stability.continuous_stable.all()
    assert np.all(stability.spectral_radius < 1)
    with pytest.raises(ValueError, match="pass the rows' inputs as X"):
        fixed_point_stability(imported.network, result)


def test_fixed_point_stability_agrees_with_solve_on_complex_pairs():
    from rnnapprox import RecurrentFixedPointTransformer
    from rnnapprox.networks import RateNetwork

    # A rotation-like coupling gives conjugate pairs: both report the member with imag >= 0.
    net = RateNetwork(weights=[[-0.5, -2.0], [2.0, -0.5]], activation="tanh")
    U = np.array([[0.1, 0.0], [0.0, -0.2]])
    result = RecurrentFixedPointTransformer(network=net, tol=1e-10).fit(U).solve(U, stability=True)
    stability = fixed_point_stability(net, result)
    assert np.all(result.leading_eigenvalue.imag > 0)
    np.testing.assert_allclose(stability.leading_eigenvalue, result.leading_eigenvalue)
