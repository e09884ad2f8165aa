"""
=====================================================================
From a PyTorch RNN to an ONNX feedforward model
=====================================================================

A ``torch.nn.RNN`` fed a constant input settles, if it settles, into a fixed
point :math:`h^* = f(W_{hh} h^* + W_{ih} u + b)`. :func:`~rnnapprox.interop.from_torch`
turns it into a rate network with the same fixed points (stacked layers make
one block lower-triangular network), the transformer computes them with
per-row diagnostics, :func:`~rnnapprox.interop.fixed_point_stability` checks
that torch would reach them too, a
:class:`~rnnapprox.FeedforwardApproximator` distils the input -> fixed-point
map, and :func:`~rnnapprox.interop.to_onnx` exports it as a standard model
file that onnxruntime (or any ONNX runtime) runs without Python.

The RNN here has chosen weights: two tanh layers of 24 units, each
recurrent matrix of spectral norm 0.9, so that both the torch map and the
rate dynamics settle.
"""

# %%
# A two-layer torch RNN, imported
# -------------------------------
import time

import matplotlib.pyplot as plt
import numpy as np
import onnxruntime
import torch
from threadpoolctl import threadpool_info

from rnnapprox import FeedforwardApproximator
from rnnapprox.interop import fixed_point_stability, from_torch, to_onnx

torch.manual_seed(0)
torch.set_num_threads(1)
rnn = torch.nn.RNN(input_size=3, hidden_size=24, num_layers=2, nonlinearity="tanh").double()
with torch.no_grad():
    for k in range(2):
        w = getattr(rnn, f"weight_hh_l{k}")
        w.copy_(0.9 * w / torch.linalg.matrix_norm(w, ord=2))
        getattr(rnn, f"weight_ih_l{k}").mul_(3.0)

imported = from_torch(rnn)
print(imported.network.weights.shape, "recurrent weights,", imported.readout.units, "read out")

rng = np.random.default_rng(0)
U = rng.uniform(-1.0, 1.0, size=(3000, 3))
pipe = imported.pipeline(tol=1e-8).fit(U)
result = pipe["fixed_point"].solve(U)
print(result.summary())
H = pipe["readout"].transform(result.outputs)  # the last layer's fixed-point rates

# %%
# Torch's own answer, and stability on both sides
# -----------------------------------------------
# Iterating the torch module on the same constant inputs from ``h_0 = 0``
# until no unit moves by more than ``1e-8`` gives the same answer. A fixed
# point stable for the continuous rate dynamics may still be unstable for the
# discrete map torch iterates; none is here.


def torch_fixed_point(rnn, U, tol=1e-8, chunk=10, max_chunks=100):
    """The RNN run on constant inputs until its output stops moving."""
    x = torch.from_numpy(U)[None].repeat(chunk, 1, 1)
    h = None
    with torch.no_grad():
        for _ in range(max_chunks):
            out, h = rnn(x, h)
            if (out[-1] - out[-2]).abs().max() <= tol:
                break
    return out[-1].numpy()


H_torch = torch_fixed_point(rnn, U)
print(f"largest |transformer - torch| over {len(U)} rows: {np.abs(H - H_torch).max():.1e}")
stability = fixed_point_stability(imported.network, result)
print(f"stable for the rate dynamics: {stability.continuous_stable.sum()} rows; for the torch map: "
      f"{stability.discrete_stable.sum()} rows; settle here but not in torch: "
      f"{stability.rnn_unstable.sum()} rows")

# %%
# Distil, export, run with onnxruntime
# ------------------------------------
U_train, U_test = U[:2000], U[2000:]
H_train, H_test = H[:2000], H[2000:]
ff = FeedforwardApproximator(hidden_layer_size=64, max_iter=400, tol=1e-4, random_state=0)
ff.fit(U_train, H_train)
print(f"held-out R^2 of the approximator: {ff.score(U_test, H_test):.4f}")

onx = to_onnx(ff)  # float32 graph: MatMul, Add, Tanh
options = onnxruntime.SessionOptions()
options.intra_op_num_threads = 1
session = onnxruntime.InferenceSession(onx.SerializeToString(), options, providers=["CPUExecutionProvider"])
U_test32 = U_test.astype(np.float32)
H_onnx = session.run(None, {"X": U_test32})[0]
print(f"largest |onnxruntime - predict|: {np.abs(H_onnx - ff.predict(U_test)).max():.1e} "
      f"(float32), size of the model file: {len(onx.SerializeToString()) / 1024:.1f} kB")

# %%
# Time per row
# ------------
# One batch of the 1,000 held-out rows, best of five, one thread each: the
# recurrent answer by the transformer (numba Euler) and by the torch module
# iterated to its fixed point, against one onnxruntime call. For this
# contracting RNN torch's own map is the faster recurrent answer: one of its
# steps is a full update, where forward Euler with ``dt=0.1`` needs about ten
# for the same progress (the transformer's value is the per-row diagnostics,
# and settling where the torch map would oscillate). Both are beaten by the
# distilled network's one pass.


def best_time(function, repeat=5):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


fixed_point = pipe["fixed_point"]
timings = {
    "transformer (Euler)": best_time(lambda: fixed_point.transform(U_test)),
    "torch RNN iterated": best_time(lambda: torch_fixed_point(rnn, U_test)),
    "onnxruntime": best_time(lambda: session.run(None, {"X": U_test32})),
}
blas = sorted({f"{i['internal_api']} ({i['num_threads']} threads)" for i in threadpool_info()
               if i["user_api"] == "blas"})
print("BLAS:", ", ".join(blas))
per_row = {name: t / len(U_test) * 1e6 for name, t in timings.items()}
for name, microseconds in per_row.items():
    print(f"{name:>22}: {microseconds:8.2f} us per row, "
          f"{microseconds / per_row['onnxruntime']:7.1f} x onnxruntime")

fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 4))
ax0.scatter(H_test[:, :4].ravel(), H_onnx[:, :4].ravel(), s=3, alpha=0.5)
ax0.plot([-1, 1], [-1, 1], color="k", lw=0.8)
ax0.set(xlabel="fixed-point rate (recurrent)", ylabel="onnxruntime prediction",
        title="last layer, four units, held-out rows")
ax1.barh(list(per_row), list(per_row.values()))
ax1.set(xscale="log", xlabel="microseconds per row", title="time per row")
fig.tight_layout()
plt.show()
