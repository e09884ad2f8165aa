"""The activation table: one entry per activation, the kernels' f equal to numpy's, no silent fallback."""

import ast
import pathlib
import warnings

import numpy as np
import pytest
from conftest import REFERENCE_ACTIVATIONS

from rnnapprox import RecurrentFixedPointTransformer
from rnnapprox._activations import ACTIVATIONS, activate, get_activation
from rnnapprox.networks import RateNetwork

GRID = np.concatenate([np.linspace(-8, 8, 161), [-800.0, -40.0, 0.0, 40.0, 800.0]])


def test_table_matches_the_independent_reference():
    assert set(ACTIVATIONS) == set(REFERENCE_ACTIVATIONS)
    for name, entry in ACTIVATIONS.items():
        f, fprime = REFERENCE_ACTIVATIONS[name]
        with np.errstate(over="ignore"):
            np.testing.assert_allclose(entry.rate(GRID), f(GRID), rtol=1e-12, atol=1e-300)
            reference_slope = np.nan_to_num(fprime(GRID))
        np.testing.assert_allclose(entry.slope(GRID), reference_slope, rtol=1e-9, atol=1e-300)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_slope_is_the_derivative(name):
    entry = ACTIVATIONS[name]
    x = np.linspace(-3, 3, 61)
    x = x[np.abs(x) > 1e-3]  # relu has a kink at 0
    h = 1e-6
    numeric = (entry.rate(x + h) - entry.rate(x - h)) / (2 * h)
    np.testing.assert_allclose(entry.slope(x), numeric, atol=1e-8)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_kernel_branch_equals_numpy(name):
    entry = ACTIVATIONS[name]
    kernel = np.array([activate(v, entry.code) for v in GRID])
    assert np.all(np.isfinite(kernel))
    np.testing.assert_allclose(kernel, entry.rate(GRID), rtol=1e-15, atol=0)


def test_codes_are_distinct_and_unknown_names_are_errors():
    codes = [entry.code for entry in ACTIVATIONS.values()]
    assert len(set(codes)) == len(codes)
    assert np.isnan(activate(0.5, max(codes) + 1))
    for bad in ["softplus", "Relu", None, 1]:
        with pytest.raises(ValueError, match="activation must be one of"):
            get_activation(bad)
        with pytest.raises(ValueError, match="activation must be one of"):
            RecurrentFixedPointTransformer(network=RateNetwork(np.eye(2), activation=bad)).fit(
                np.zeros((1, 2))
            )


def test_sigmoid_jacobian_matches_finite_differences(sigmoid_network, sigmoid_inputs):
    U = sigmoid_inputs[:5]
    rnn = RecurrentFixedPointTransformer(network=sigmoid_network).fit(U)
    result = rnn.solve(U, stability=True)
    assert result.converged.all() and result.stable.all()
    W, W_in, b = rnn.weights_, rnn.input_weights_, rnn.bias_

    def field(x, u):
        return -x + W @ (1.0 / (1.0 + np.exp(-x))) + W_in @ u + b

    h = 1e-6
    for x, u, jacobian in zip(result.states, U, rnn.jacobian(U, result.states)):
        numeric = np.column_stack([(field(x + h * e, u) - field(x - h * e, u)) / (2 * h)
                                   for e in np.eye(len(x))])
        np.testing.assert_allclose(jacobian, numeric, atol=1e-7)
    np.testing.assert_allclose(result.outputs, 1.0 / (1.0 + np.exp(-result.states)), rtol=1e-12)


@pytest.mark.parametrize("method", ["euler", "anderson"])
def test_sigmoid_methods_agree(sigmoid_network, sigmoid_inputs, method):
    reference = RecurrentFixedPointTransformer(network=sigmoid_network).fit(sigmoid_inputs)
    other = RecurrentFixedPointTransformer(network=sigmoid_network, method=method).fit(sigmoid_inputs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(other.transform(sigmoid_inputs), reference.transform(sigmoid_inputs),
                                   atol=1e-5)


def test_networks_module_imports_no_estimator():
    """Networks are data: rnnapprox.networks imports nothing that integrates or fits."""
    source = pathlib.Path(__file__).parents[1] / "rnnapprox" / "networks.py"
    imported = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.ImportFrom):
            imported.add(("." * node.level) + (node.module or ""))
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    package_imports = {name for name in imported if name.startswith(".") or name.startswith("rnnapprox")}
    assert package_imports == {"._activations"}, package_imports
