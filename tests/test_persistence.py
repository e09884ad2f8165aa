"""Persistence: fitted estimators through pickle, joblib and skops (issue 7).

A loaded estimator must answer exactly as the saved one; the fitted state holds
only arrays and scalars (no numba dispatcher, no random generator), so
``skops.io.get_untrusted_types`` lists only this package's own classes.
"""

import numbers
import pickle
import pickletools
import warnings

import joblib
import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from rnnapprox import FeedforwardApproximator, RecurrentFixedPointTransformer
from rnnapprox.feedback import train_feedback_readout
from rnnapprox.networks import random_feedback_network, random_gated_network

sio = pytest.importorskip("skops.io")

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

OUR_MODULE = "rnnapprox"


# --------------------------------------------------------------------------- fitted estimators


@pytest.fixture
def fitted(all_fitted, request):
    """The module's estimators; a test of one that could not be built (no pandas) skips."""
    name = request.node.callspec.params.get("name") if hasattr(request.node, "callspec") else None
    if name is not None and name not in all_fitted:
        pytest.skip(f"{name}: needs pandas")
    return all_fitted


@pytest.fixture(scope="module")
def all_fitted(wta_network, wta_inputs, wta_fitted, tanh_inputs):
    """name -> (fitted estimator, X, methods whose outputs must survive the round trip)."""
    rng = np.random.default_rng(0)
    estimators = {}
    estimators["rate network"] = (wta_fitted, wta_inputs, ["transform", "solve"])
    default = RecurrentFixedPointTransformer(random_state=0, output="state").fit(tanh_inputs)
    estimators["default network (drawn at fit)"] = (default, tanh_inputs, ["transform"])
    gated = random_gated_network(6, gain=1.0, n_inputs=2, alpha_r=2.0, tau_z=2.0, random_state=0)
    U_gated = rng.normal(scale=0.5, size=(8, 2))
    estimators["gated network"] = (
        RecurrentFixedPointTransformer(network=gated).fit(U_gated), U_gated, ["transform", "solve"]
    )
    feedback = train_feedback_readout(random_feedback_network(20, random_state=0), target=0.3)
    U_feedback = np.linspace(0.5, 1.5, 5)[:, np.newaxis]
    estimators["feedback network"] = (
        RecurrentFixedPointTransformer(network=feedback.network).fit(U_feedback), U_feedback,
        ["transform"],
    )
    R = wta_fitted.transform(wta_inputs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimators["approximator (lbfgs)"] = (
            FeedforwardApproximator(hidden_layer_size=6, max_iter=30, random_state=0).fit(
                wta_inputs, R),
            wta_inputs, ["predict"],
        )
        estimators["approximator (adam, early stopping)"] = (
            FeedforwardApproximator(hidden_layer_size=6, solver="adam", max_iter=5,
                                    early_stopping=True, random_state=0).fit(wta_inputs, R),
            wta_inputs, ["predict"],
        )
        estimators["approximator (1-D target)"] = (
            FeedforwardApproximator(hidden_layer_size=3, max_iter=10, random_state=0).fit(
                wta_inputs, R[:, 0]),
            wta_inputs, ["predict"],
        )
        distilled = FeedforwardApproximator(
            hidden_layer_size=6, max_iter=30, random_state=0,
            teacher=RecurrentFixedPointTransformer(network=wta_network),
        ).fit(wta_inputs)
        estimators["approximator distilled from a teacher"] = (
            distilled, wta_inputs, ["predict", "teacher_.transform"],
        )
        pipeline = make_pipeline(
            StandardScaler(), RecurrentFixedPointTransformer(random_state=0),
            FeedforwardApproximator(hidden_layer_size=4, max_iter=10, random_state=0),
        ).fit(wta_inputs, R)
        estimators["pipeline"] = (pipeline, wta_inputs, ["predict"])
    try:
        import pandas as pd
    except ImportError:
        return estimators
    frame = pd.DataFrame(wta_inputs, columns=[f"input {i}" for i in range(4)])
    named = RecurrentFixedPointTransformer(network=wta_network).fit(frame)
    estimators["fitted on named columns"] = (named, frame, ["transform"])
    return estimators


NAMES = [
    "rate network", "default network (drawn at fit)", "gated network", "feedback network",
    "approximator (lbfgs)", "approximator (adam, early stopping)", "approximator (1-D target)",
    "approximator distilled from a teacher", "pipeline", "fitted on named columns",
]


def _outputs(estimator, X, methods):
    """Every output to compare: arrays, and every field of solve's result."""
    outputs = {}
    for method in methods:
        target = estimator
        for part in method.split(".")[:-1]:
            target = getattr(target, part)
        result = getattr(target, method.split(".")[-1])(X)
        if isinstance(result, dict):
            outputs.update({f"{method}.{key}": value for key, value in result.items()})
        else:
            outputs[method] = result
    return outputs


def _assert_same_outputs(loaded, original, X, methods):
    assert type(loaded) is type(original)
    expected = _outputs(original, X, methods)
    got = _outputs(loaded, X, methods)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert_array_equal(got[key], value, err_msg=key)
        assert np.asarray(got[key]).dtype == np.asarray(value).dtype, key


# --------------------------------------------------------------------------- round trips


def _round_trip(estimator, how, tmp_path):
    if how == "pickle":
        return pickle.loads(pickle.dumps(estimator))
    path = tmp_path / f"model.{how}"
    if how == "joblib":
        joblib.dump(estimator, path)
        return joblib.load(path)
    sio.dump(estimator, path)
    untrusted = sio.get_untrusted_types(file=path)
    return sio.load(path, trusted=untrusted)


@pytest.mark.parametrize("how", ["pickle", "joblib", "skops"])
@pytest.mark.parametrize("name", NAMES)
def test_round_trip_gives_identical_outputs(name, how, fitted, tmp_path):
    estimator, X, methods = fitted[name]
    loaded = _round_trip(estimator, how, tmp_path)
    _assert_same_outputs(loaded, estimator, X, methods)
    # The loaded estimator is a full estimator: it clones and refits.
    assert sorted(clone(loaded).get_params()) == sorted(estimator.get_params())


@pytest.mark.parametrize("name", NAMES)
def test_skops_untrusted_types_are_only_ours(name, fitted):
    estimator, _, _ = fitted[name]
    untrusted = sio.get_untrusted_types(data=sio.dumps(estimator))
    assert untrusted, "the package's own classes must be reported for review"
    foreign = [t for t in untrusted if not t.startswith(OUR_MODULE + ".")]
    assert not foreign, f"skops would ask users to trust {foreign}"


def test_skops_refuses_untrusted_load(fitted):
    estimator, _, _ = fitted["rate network"]
    with pytest.raises(Exception, match="[Uu]ntrusted"):
        sio.loads(sio.dumps(estimator))


def test_skops_trusted_types_documented_list(fitted):
    """The list in doc/reliability.rst covers every type of every estimator above."""
    documented = {
        "rnnapprox._recurrent.RecurrentFixedPointTransformer",
        "rnnapprox._feedforward.FeedforwardApproximator",
        "rnnapprox.networks.RateNetwork",
        "rnnapprox.networks.GatedNetwork",
        "rnnapprox.networks.FeedbackNetwork",
    }
    for estimator, _, _ in fitted.values():
        assert set(sio.get_untrusted_types(data=sio.dumps(estimator))) <= documented


def test_refit_after_loading(fitted, wta_inputs, tmp_path):
    estimator, X, _ = fitted["approximator (lbfgs)"]
    loaded = _round_trip(estimator, "skops", tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        refit = loaded.fit(X, estimator.predict(X))
    assert np.isfinite(refit.predict(X)).all()
    rnn, U, _ = fitted["rate network"]
    loaded_rnn = _round_trip(rnn, "skops", tmp_path)
    assert_array_equal(loaded_rnn.fit(U).transform(U), rnn.transform(U))


# --------------------------------------------------------------------------- what the state holds

SCALARS = (numbers.Number, str, bytes, bool, type(None), np.generic)


def _check_plain(value, path):
    """Arrays, scalars, lists/tuples/dicts of them, and this package's own objects."""
    if isinstance(value, np.ndarray):
        assert value.dtype != object or all(isinstance(v, str) for v in value.ravel()), path
        return
    if isinstance(value, SCALARS):
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_plain(item, f"{path}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            assert isinstance(key, str), f"{path} has key {key!r}"
            _check_plain(item, f"{path}[{key!r}]")
        return
    module = type(value).__module__
    if module.startswith(OUR_MODULE + ".") or (
        isinstance(value, BaseEstimator) and module.startswith("sklearn.")
    ):
        for name, item in vars(value).items():
            _check_plain(item, f"{path}.{name}")
        return
    raise AssertionError(f"{path} holds a {module}.{type(value).__qualname__}")


@pytest.mark.parametrize("name", NAMES)
def test_fitted_state_holds_only_arrays_and_scalars(name, fitted):
    estimator, _, _ = fitted[name]
    _check_plain(estimator, name)


def _pickled_globals(obj):
    """(module, name) of every class or function a pickle would import."""
    found, strings = set(), []
    for opcode, argument, _ in pickletools.genops(pickle.dumps(obj, protocol=2)):
        if opcode.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
            strings.append(argument)
        elif opcode.name == "STACK_GLOBAL":
            found.add((strings[-2], strings[-1]))
        elif opcode.name == "GLOBAL":
            found.add(tuple(argument.split(" ", 1)))
    return found


@pytest.mark.parametrize("name", NAMES)
def test_pickle_holds_no_compiled_code_or_generator(name, fitted):
    estimator, _, _ = fitted[name]
    allowed = ("numpy", "builtins", "copyreg", "_codecs", OUR_MODULE, "sklearn.")
    for module, qualname in _pickled_globals(estimator):
        assert module.startswith(allowed), f"pickle imports {module}.{qualname}"
        assert not module.startswith("numba"), f"pickle imports {module}.{qualname}"
        assert not module.startswith("numpy.random"), f"pickle imports {module}.{qualname}"


def test_fitted_transformer_does_not_keep_the_seed_object():
    """random_state given as a RandomState is a parameter; nothing fitted refers to it."""
    rng = np.random.RandomState(0)
    X = np.random.default_rng(0).normal(size=(5, 3))
    rnn = RecurrentFixedPointTransformer(random_state=rng).fit(X)
    fitted_state = {k: v for k, v in vars(rnn).items() if k not in rnn.get_params()}
    _check_plain(fitted_state, "fitted state")
    modules = {module for module, _ in _pickled_globals(fitted_state)}
    assert not any(module.startswith("numpy.random") for module in modules), modules
