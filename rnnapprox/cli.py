"""The main job: distil a recurrent network into a feedforward approximator.

``rnnapprox`` (or ``python -m rnnapprox``) samples inputs, computes the
recurrent network's fixed points (with progress), fits a
:class:`~rnnapprox.FeedforwardApproximator` on part of them, reports how well
it approximates the held-out rest and how long each answers per row, then
saves the fitted approximator and a summary figure.
"""

import argparse
import os
import sys
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import r2_score

from ._feedforward import FeedforwardApproximator
from ._recurrent import RecurrentFixedPointTransformer
from .networks import RateNetwork, soft_wta

#: Names accepted for each array in an ``.npz`` network file.
NPZ_KEYS = {
    "weights": ("weights", "W"),
    "input_weights": ("input_weights", "W_in"),
    "bias": ("bias", "b"),
}


class CommandLineError(Exception):
    """A problem with the user's files or options, reported without a traceback."""


def _read_array(path, what):
    """Read an array from ``.npy``, ``.npz`` (first array) or ``.csv``."""
    if not os.path.isfile(path):
        raise CommandLineError(f"{what} file {path!r} does not exist.")
    extension = os.path.splitext(path)[1].lower()
    try:
        if extension == ".npy":
            return np.load(path, allow_pickle=False)
        if extension == ".csv":
            return np.loadtxt(path, delimiter=",", ndmin=2)
        if extension == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                return {key: archive[key] for key in archive.files}
    except Exception as exc:  # numpy raises many types for unreadable files
        raise CommandLineError(f"could not read {what} file {path!r}: {exc}") from exc
    raise CommandLineError(f"{what} file {path!r} must end in .npy, .npz or .csv.")


def load_network(path, activation, tau):
    """Build a :class:`RateNetwork` from a weights file, checking it thoroughly.

    ``.npy`` and ``.csv`` files hold the square matrix ``W``; an ``.npz``
    file holds ``weights`` (or ``W``) and optionally ``input_weights``
    (``W_in``) and ``bias`` (``b``).
    """
    content = _read_array(path, "weights")
    arrays = {}
    if isinstance(content, dict):
        for name, keys in NPZ_KEYS.items():
            found = [key for key in keys if key in content]
            if found:
                arrays[name] = content[found[0]]
        if "weights" not in arrays:
            raise CommandLineError(
                f"{path!r} holds {sorted(content)}; it needs an array named 'weights' or 'W'."
            )
    else:
        arrays["weights"] = content
    network = RateNetwork(activation=activation, tau=tau, **arrays)
    n_features = network.n_units if arrays.get("input_weights") is None else np.shape(
        arrays["input_weights"]
    )[-1]
    try:
        network.validated_arrays(n_features)
    except (TypeError, ValueError, IndexError) as exc:
        raise CommandLineError(f"invalid network in {path!r}: {exc}") from exc
    return network, n_features


def load_inputs(path, n_features):
    """Read input rows and check their shape and values."""
    inputs = _read_array(path, "inputs")
    if isinstance(inputs, dict):
        inputs = next(iter(inputs.values()))
    inputs = np.asarray(inputs, dtype=np.float64)
    if inputs.ndim == 1:
        inputs = inputs.reshape(-1, 1) if n_features == 1 else inputs.reshape(1, -1)
    if inputs.ndim != 2 or inputs.shape[1] != n_features:
        raise CommandLineError(
            f"inputs in {path!r} have shape {inputs.shape}; the network takes {n_features} features."
        )
    if not np.all(np.isfinite(inputs)):
        raise CommandLineError(f"inputs in {path!r} contain NaN or infinity.")
    if len(inputs) < 10:
        raise CommandLineError(f"inputs in {path!r} have {len(inputs)} rows; at least 10 are needed.")
    return inputs


def build_parser():
    parser = argparse.ArgumentParser(
        prog="rnnapprox",
        description=(
            "Distil a recurrent rate network into a two-layer feedforward approximator "
            "(Muir 2018): compute the network's fixed points for many inputs, fit the "
            "approximator on most of them, and report how well and how fast it answers "
            "on the rest. With no options the network is a built-in soft winner-take-all "
            "circuit of 5 partitions x 16 excitatory units and 8 inhibitory units."
        ),
    )
    network = parser.add_argument_group("network")
    network.add_argument(
        "--weights", metavar="FILE",
        help="the network: .npy or .csv with the square matrix W, or .npz with 'weights' "
        "(or 'W') and optionally 'input_weights' ('W_in', shape n_units x n_features) and "
        "'bias' ('b'). Default: the built-in soft winner-take-all network.",
    )
    network.add_argument("--activation", choices=["relu", "tanh"], default="relu",
                         help="transfer function of a --weights network (default relu)")
    network.add_argument("--tau", type=float, default=1.0,
                         help="time constant of a --weights network (default 1.0)")
    data = parser.add_argument_group("inputs and fixed points")
    data.add_argument(
        "--inputs", metavar="FILE",
        help="input rows (.npy, .npz or .csv, shape n_samples x n_features). Default: "
        "--n-samples rows drawn uniformly in [0, 1] per feature.",
    )
    data.add_argument("--n-samples", type=int, default=5000,
                      help="number of sampled input rows when --inputs is not given (default 5000)")
    data.add_argument("--test-fraction", type=float, default=0.2,
                      help="fraction of rows held out to test the approximator (default 0.2)")
    data.add_argument("--dt", type=float, default=0.1, help="Euler step (default 0.1)")
    data.add_argument("--tol", type=float, default=1e-6,
                      help="fixed-point residual tolerance (default 1e-6)")
    data.add_argument("--max-steps", type=int, default=10_000,
                      help="maximum Euler steps per row (default 10000)")
    data.add_argument("--method", choices=["euler", "anderson", "newton"], default="euler",
                      help="fixed-point method: euler (the definition), anderson (accelerated), "
                      "newton (relu only: certified jumps to Euler's fixed point) (default euler)")
    model = parser.add_argument_group("approximator")
    model.add_argument("--hidden", type=int, default=100,
                       help="hidden units of the approximator (default 100)")
    model.add_argument("--seed", type=int, default=0,
                       help="seed of the built-in network, the inputs and the fit (default 0)")
    output = parser.add_argument_group("outputs")
    output.add_argument("--out", default="rnnapprox_model.joblib", metavar="FILE",
                        help="where to save the fitted approximator with joblib "
                        "(default rnnapprox_model.joblib; 'none' to skip)")
    output.add_argument("--figure", default="rnnapprox_summary.png", metavar="FILE",
                        help="where to save the summary figure (default rnnapprox_summary.png; "
                        "'none' to skip; needs matplotlib)")
    output.add_argument("--quiet", action="store_true", help="print only the report")
    return parser


def _solve_with_progress(transformer, inputs, quiet):
    """``transformer.solve`` in slices, printing a progress line per slice."""
    n_rows = len(inputs)
    step = max(1, -(-n_rows // 10))
    parts = []
    for start in range(0, n_rows, step):
        parts.append(transformer.solve(inputs[start:start + step]))
        if not quiet:
            done = min(start + step, n_rows)
            converged = sum(int(part.converged.sum()) for part in parts)
            print(f"\r  fixed points: {done}/{n_rows} rows, {converged} converged", end="",
                  file=sys.stderr, flush=True)
    if not quiet:
        print(file=sys.stderr)
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


def _time_per_row(function, inputs, repeats=3):
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        function(inputs)
        best = min(best, time.perf_counter() - start)
    return best / len(inputs)


def _winning_partition(rates, n_partitions, units_per_partition):
    excitatory = rates[:, : n_partitions * units_per_partition]
    return excitatory.reshape(len(rates), n_partitions, units_per_partition).mean(axis=2).argmax(1)


def _save_figure(path, result, test_rows, targets, predictions, recurrent_per_row, ff_per_row):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    steps = result["n_steps"][result["converged"]]
    axes[0].hist(steps, bins=40, color="tab:blue")
    axes[0].set(xlabel="Euler steps to converge", ylabel="rows",
                title=f"recurrent: {result['converged'].sum()} of {len(result['converged'])} rows settle")
    axes[1].plot(targets.ravel(), predictions.ravel(), ".", ms=1, alpha=0.3)
    top = max(targets.max(), predictions.max())
    axes[1].plot([0, top], [0, top], "k--", lw=0.8)
    r2 = r2_score(targets, predictions, multioutput="variance_weighted")
    axes[1].set(xlabel="recurrent fixed-point rate", ylabel="feedforward prediction",
                title=f"held-out rows (R$^2$ = {r2:.3f})")
    axes[2].bar(["recurrent", "feedforward"], [recurrent_per_row * 1e6, ff_per_row * 1e6],
                color=["tab:blue", "tab:orange"])
    axes[2].set(ylabel="time per row (µs)", yscale="log", title="cost of one answer")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run(args):
    rng = np.random.default_rng(args.seed)
    if args.weights is None:
        shape = (5, 16, 8)
        network = soft_wta(*shape, random_state=args.seed)
        n_features = shape[0]
        name = "built-in soft winner-take-all (5 partitions x 16 excitatory + 8 inhibitory units)"
    else:
        network, n_features = load_network(args.weights, args.activation, args.tau)
        shape = None
        name = f"{args.weights} ({network.n_units} units, {args.activation})"
    if args.inputs is not None:
        inputs = load_inputs(args.inputs, n_features)
    else:
        if args.n_samples < 10:
            raise CommandLineError(f"--n-samples must be at least 10; got {args.n_samples}.")
        inputs = rng.uniform(0.0, 1.0, size=(args.n_samples, n_features))
    if not 0 < args.test_fraction < 1:
        raise CommandLineError(f"--test-fraction must be in (0, 1); got {args.test_fraction}.")

    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr))
    say(f"network: {name}; {len(inputs)} input rows")
    try:
        teacher = RecurrentFixedPointTransformer(
            network=network, dt=args.dt, tol=args.tol, max_steps=args.max_steps,
            random_state=args.seed, method=args.method,
        ).fit(inputs)
    except (TypeError, ValueError) as exc:
        raise CommandLineError(str(exc)) from exc
    result = _solve_with_progress(teacher, inputs, args.quiet)
    converged = result["converged"]
    if converged.sum() < 10:
        raise CommandLineError(
            f"only {converged.sum()} of {len(inputs)} rows reached a fixed point; nothing to "
            "distil. Check the network's stability, or raise --max-steps."
        )
    usable = np.flatnonzero(converged)
    rng.shuffle(usable)
    n_test = max(1, int(round(args.test_fraction * len(usable))))
    test_rows, train_rows = usable[:n_test], usable[n_test:]
    targets = result["outputs"]

    say(f"fitting the approximator ({args.hidden} hidden units) on {len(train_rows)} rows")
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        approximator = FeedforwardApproximator(hidden_layer_size=args.hidden, random_state=args.seed)
        approximator.fit(inputs[train_rows], targets[train_rows])
    fit_seconds = time.perf_counter() - start
    predictions = approximator.predict(inputs[test_rows])
    r2 = r2_score(targets[test_rows], predictions, multioutput="variance_weighted")

    timing_rows = inputs[test_rows]
    recurrent_per_row = _time_per_row(teacher.transform, timing_rows)
    ff_per_row = _time_per_row(approximator.predict, timing_rows)

    steps = result["n_steps"][converged]
    statuses = ", ".join(
        f"{int(np.sum(result['status'] == status))} {status}" for status in np.unique(result["status"])
    )
    print("rnnapprox report")
    print(f"  network             {name}")
    print(f"  rows converged      {converged.sum()} of {len(inputs)} ({statuses})")
    print(f"  Euler steps         min {steps.min()}, median {int(np.median(steps))}, "
          f"90th percentile {int(np.percentile(steps, 90))}, max {steps.max()}")
    print(f"  held-out R^2        {r2:.4f} (variance-weighted, {len(test_rows)} rows; "
          f"fit on {len(train_rows)} rows in {fit_seconds:.1f} s)")
    if shape is not None:
        agreement = np.mean(
            _winning_partition(targets[test_rows], shape[0], shape[1])
            == _winning_partition(predictions, shape[0], shape[1])
        )
        print(f"  winner agreement    {agreement:.1%} of held-out rows pick the same partition")
    print(f"  time per row        recurrent {recurrent_per_row * 1e6:.1f} us, feedforward "
          f"{ff_per_row * 1e6:.2f} us ({recurrent_per_row / ff_per_row:.0f}x faster)")
    if args.out.lower() != "none":
        import joblib

        joblib.dump(approximator, args.out)
        print(f"  approximator saved  {args.out}")
    if args.figure.lower() != "none":
        try:
            _save_figure(args.figure, result, test_rows, targets[test_rows], predictions,
                         recurrent_per_row, ff_per_row)
            print(f"  figure saved        {args.figure}")
        except ImportError:
            print("  figure skipped      matplotlib is not installed (pip install matplotlib)")
    return {"r2": r2, "converged": int(converged.sum()), "approximator": approximator}


def main(argv=None):
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        run(args)
    except CommandLineError as exc:
        print(f"rnnapprox: error: {exc}", file=sys.stderr)
        return 2
    return 0
