"""Export of fitted approximators (and pipelines holding them) to ONNX through skl2onnx."""

import numpy as np

__all__ = ["to_onnx", "register_skl2onnx"]

_ALIAS = "RnnapproxFeedforwardApproximator"
_FITTED = ("coefs_", "intercepts_", "input_mean_", "input_scale_", "target_scale_", "target_offset_")


def _graph_arrays(model):
    """The arrays and activations of the approximator's prediction.

    Returns ``(w1, b1, activation, w2, b2, out_activation, scale, offset)`` in
    float64: ``hidden = activation(X @ w1 + b1)``, ``z = hidden @ w2 + b2``;
    the prediction is ``tanh(z) * scale + offset`` for a tanh output (then
    ``scale`` and ``offset`` are not None) and ``out_activation(z)`` otherwise
    (the standardisations folded into ``w1, b1, w2, b2`` by
    ``FeedforwardApproximator._folded_layers``, which ``predict`` uses too).
    """
    missing = [name for name in _FITTED + ("out_activation_",) if not hasattr(model, name)]
    if missing:
        raise ValueError(
            f"This {type(model).__name__} is not fitted (no {', '.join(missing)}); call fit before "
            "exporting it to ONNX."
        )
    if model.activation not in ("relu", "tanh"):
        raise ValueError(
            f"Cannot export hidden activation {model.activation!r} to ONNX; supported: 'relu', 'tanh'."
        )
    if model.out_activation_ not in ("identity", "relu", "tanh"):
        raise ValueError(
            f"Cannot export output activation {model.out_activation_!r} to ONNX; supported: "
            "'identity', 'relu', 'tanh'."
        )
    first, first_bias, second, second_bias, scale, offset = (
        None if a is None else np.asarray(a, dtype=np.float64) for a in model._folded_layers()
    )
    return (first, first_bias, model.activation, second, second_bias, model.out_activation_,
            scale, offset)


def _shape_calculator(operator):
    """skl2onnx shape calculator: (N, n_features) in, (N, n_outputs) out, same element type."""
    from skl2onnx.common.utils import check_input_and_output_numbers

    check_input_and_output_numbers(operator, input_count_range=1, output_count_range=1)
    model = operator.raw_operator
    n_rows = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = operator.inputs[0].type.__class__([n_rows, model.n_outputs_])


def _converter(scope, operator, container):
    """skl2onnx converter: MatMul, Add, Relu/Tanh, MatMul, Add, [Relu/Tanh, Mul, Add]."""
    from skl2onnx.common.data_types import guess_numpy_type, guess_proto_type

    model = operator.raw_operator
    w1, b1, activation, w2, b2, out_activation, scale, offset = _graph_arrays(model)
    proto_type = guess_proto_type(operator.inputs[0].type)
    dtype = guess_numpy_type(operator.inputs[0].type)
    onnx_ops = {"relu": "Relu", "tanh": "Tanh"}

    def constant(name, value):
        value = np.asarray(value, dtype=dtype)
        unique = scope.get_unique_variable_name(name)
        container.add_initializer(unique, proto_type, list(value.shape), value.ravel().tolist())
        return unique

    def node(op_type, inputs, output=None):
        output = output or scope.get_unique_variable_name(op_type.lower())
        container.add_node(op_type, inputs, output, name=scope.get_unique_operator_name(op_type))
        return output

    hidden = node("MatMul", [operator.inputs[0].full_name, constant("W1", w1)])
    hidden = node("Add", [hidden, constant("b1", b1)])
    hidden = node(onnx_ops[activation], [hidden])
    output = node("MatMul", [hidden, constant("W2", w2)])
    result = operator.outputs[0].full_name
    if out_activation == "tanh":
        output = node("Add", [output, constant("b2", b2)])
        output = node("Tanh", [output])
        output = node("Mul", [output, constant("target_scale", scale)])
        node("Add", [output, constant("target_offset", offset)], result)
    elif out_activation == "relu":
        output = node("Add", [output, constant("b2", b2)])
        node("Relu", [output], result)
    else:
        node("Add", [output, constant("b2", b2)], result)


def register_skl2onnx():
    """Register :class:`~rnnapprox.FeedforwardApproximator` with skl2onnx.

    After this call, :func:`skl2onnx.to_onnx` converts the approximator and any
    :class:`~sklearn.pipeline.Pipeline` containing it (for example after a
    :class:`~sklearn.preprocessing.StandardScaler`). :func:`to_onnx` calls it
    for you; call it yourself only to use skl2onnx directly. Calling it again
    is harmless.

    Returns
    -------
    alias : str
        The name under which the converter is registered.

    Examples
    --------
    >>> from rnnapprox.interop import register_skl2onnx
    >>> register_skl2onnx()
    'RnnapproxFeedforwardApproximator'
    """
    try:
        from skl2onnx import update_registered_converter
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Exporting to ONNX needs skl2onnx, onnx and onnxruntime: "
            "pip install 'rnnapprox[onnx]'."
        ) from error
    from rnnapprox import FeedforwardApproximator

    update_registered_converter(FeedforwardApproximator, _ALIAS, _shape_calculator, _converter)
    return _ALIAS


def to_onnx(model, *, dtype=np.float32, input_name="X", target_opset=None):
    """Convert a fitted approximator, or a pipeline holding one, to an ONNX model.

    Parameters
    ----------
    model : FeedforwardApproximator or Pipeline
        A fitted :class:`~rnnapprox.FeedforwardApproximator`, or a fitted
        estimator that skl2onnx converts and that contains one (a
        :class:`~sklearn.pipeline.Pipeline` with a
        :class:`~sklearn.preprocessing.StandardScaler` first, say).
    dtype : {numpy.float32, numpy.float64}, default=numpy.float32
        Element type of the model's input, weights and output. ``float32``
        is what ONNX runtimes run fastest everywhere; ``float64`` reproduces
        ``predict`` to double precision.
    input_name : str, default="X"
        Name of the graph's input, of shape ``(None, n_features_in_)``.
    target_opset : int, default=None
        ONNX opset; ``None`` lets skl2onnx choose its newest supported one.

    Returns
    -------
    onx : onnx.ModelProto
        The model. Its output ``"variable"`` has shape ``(n_rows,
        n_outputs_)``: multi-output predictions stay a matrix (and a model
        fitted on a 1-D target gives one column).

    Raises
    ------
    ValueError
        When ``model`` is not fitted, has no ``n_features_in_``, ``dtype``
        is neither float32 nor float64, or ``model`` is (or its steps
        include) a :class:`~rnnapprox.RecurrentFixedPointTransformer`.

    See Also
    --------
    register_skl2onnx : Register the approximator's converter with skl2onnx.

    Notes
    -----
    The graph computes what :meth:`FeedforwardApproximator.predict` computes,
    from the fitted attributes ``coefs_``, ``intercepts_``, ``input_mean_``,
    ``input_scale_``, ``target_scale_``, ``target_offset_``, ``activation``
    and ``out_activation_``: ``h = f(X W_1' + b_1')`` with the input
    standardisation folded into ``W_1', b_1'``, then ``g(h W_2' + b_2')`` with
    the target scaling folded into ``W_2', b_2'`` for identity and relu
    outputs, and ``tanh(h W_2 + b_2) * target_scale_ + target_offset_`` for
    a tanh output. The operators are ``MatMul``, ``Add``, ``Relu``, ``Tanh``
    and ``Mul``. Folding is done in float64 before the weights are cast to
    ``dtype``.

    Examples
    --------
    >>> import numpy as np
    >>> from rnnapprox import FeedforwardApproximator
    >>> from rnnapprox.interop import to_onnx
    >>> rng = np.random.RandomState(0)
    >>> U = rng.uniform(size=(100, 2))
    >>> ff = FeedforwardApproximator(hidden_layer_size=8, tol=1e-3, random_state=0)
    >>> ff = ff.fit(U, np.maximum(U - 0.5, 0.0))
    >>> onx = to_onnx(ff)
    >>> import onnxruntime
    >>> session = onnxruntime.InferenceSession(onx.SerializeToString())
    >>> pred = session.run(None, {"X": U.astype(np.float32)})[0]
    >>> bool(np.allclose(pred, ff.predict(U), atol=1e-5))
    True
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be numpy.float32 or numpy.float64; got {dtype}.")
    n_features = getattr(model, "n_features_in_", None)
    if n_features is None:
        raise ValueError(
            f"{type(model).__name__} has no n_features_in_: fit it before exporting it to ONNX."
        )
    register_skl2onnx()
    from skl2onnx import to_onnx as skl2onnx_to_onnx
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    from rnnapprox import RecurrentFixedPointTransformer

    steps = [step for _, step in getattr(model, "steps", [])] or [model]
    if any(isinstance(step, RecurrentFixedPointTransformer) for step in steps):
        raise ValueError(
            "A RecurrentFixedPointTransformer integrates until its network settles, which no ONNX graph "
            "does: export the FeedforwardApproximator distilled from it instead."
        )
    tensor_type = FloatTensorType if dtype == np.float32 else DoubleTensorType
    return skl2onnx_to_onnx(
        model,
        initial_types=[(input_name, tensor_type([None, int(n_features)]))],
        target_opset=target_opset,
    )
