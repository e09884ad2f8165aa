"""Bridges to other frameworks, each checked against the other framework itself.

ONNX: onnxruntime's predictions of the exported graph against ``predict``.
"""

import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from rnnapprox import FeedforwardApproximator

FRAMEWORKS = ("torch", "rockpool", "onnx", "onnxruntime", "skl2onnx")


def test_import_does_not_load_frameworks():
    code = (
        "import sys, rnnapprox, rnnapprox.interop\n"
        f"loaded = sorted(m for m in {FRAMEWORKS!r} if m in sys.modules)\n"
        "print(','.join(loaded))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


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
