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
