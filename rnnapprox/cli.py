"""The main job: distil a recurrent network into a feedforward approximator.

``rnnapprox`` (or ``python -m rnnapprox``) samples inputs, holds part of them
out, distils the recurrent network into a :class:`~rnnapprox.FeedforwardApproximator`
through its ``teacher=`` path (the teacher computes the fixed points of the
training rows, with progress), reports how well the approximator reproduces
the held-out fixed points and how long each answers per row, then saves the
fitted approximator and a summary figure.

Every problem with the user's options or files ends in a one-line message on
standard error and exit code 2, never a traceback.
"""

import argparse
import copy
import math
import os
import sys
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import r2_score

from . import __version__
from ._activations import ACTIVATIONS
from ._feedforward import FeedforwardApproximator
from ._recurrent import FixedPointResult, RecurrentFixedPointTransformer
from .networks import RateNetwork, soft_wta, winning_partition

#: Names accepted for each array in an ``.npz`` network file.
NPZ_KEYS = {
    "weights": ("weights", "W"),
    "input_weights": ("input_weights", "W_in"),
    "bias": ("bias", "b"),
}

#: The built-in network: soft winner-take-all with 5 partitions x 16 excitatory units and 8 inhibitory units.
BUILT_IN = (5, 16, 8)

#: Fewest converged training rows worth distilling.
MIN_TRAIN_ROWS = 10


class CommandLineError(Exception):
    """A problem with the user's files or options, reported without a traceback."""


def _one_line(text):
    return " ".join(str(text).split())


# --------------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are :class:`CommandLineError` (one line, exit code 2)."""

    def error(self, message):
        raise CommandLineError(f"{message} (see rnnapprox --help)")


def _number(kind, low, low_open, description):
    """An argparse type: a finite ``kind`` at least (or above, if ``low_open``) ``low``."""

    def convert(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {description}; got {text!r}") from None
        if not math.isfinite(value) or value < low or (low_open and value == low):
            raise argparse.ArgumentTypeError(f"must be {description}; got {text!r}")
        return value

    convert.__name__ = description  # argparse names the type in some messages
    return convert


_positive_int = _number(int, 1, False, "a positive integer")
_non_negative_int = _number(int, 0, False, "a non-negative integer")
_positive_float = _number(float, 0.0, True, "a positive finite number")
_non_negative_float = _number(float, 0.0, False, "a non-negative finite number")


def _width(text):
    """An argparse type: a positive integer or ``auto``."""
    if text == "auto":
        return text
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"must be a positive integer or 'auto'; got {text!r}") from None


_width.__name__ = "a positive integer or 'auto'"


def _score(text):
    """An argparse type: a number in (0, 1]."""
    value = _positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1]; got {text!r}")
    return value


def build_parser():
    """The command line's :class:`argparse.ArgumentParser`."""
    parser = _Parser(
        prog="rnnapprox",
        description=(
            "Distil a recurrent rate network into a two-layer feedforward approximator "
            "(Muir 2018): hold out part of the input rows, let the network (the teacher) "
            "compute the fixed points of the rest and fit the approximator on them, then "
            "report how well and how fast it answers on the held-out rows. With no options "
            "the network is a built-in soft winner-take-all circuit of 5 partitions x 16 "
            "excitatory units and 8 inhibitory units."
        ),
    )
    parser.add_argument("--version", action="version", version=f"rnnapprox {__version__}")
    network = parser.add_argument_group("network")
    network.add_argument(
        "--weights", metavar="FILE",
        help="the network: .npy or .csv with the square matrix W, or .npz with 'weights' "
        "(or 'W') and optionally 'input_weights' ('W_in', shape n_units x n_features) and "
        "'bias' ('b'). Default: the built-in soft winner-take-all network.",
    )
    network.add_argument("--activation", choices=list(ACTIVATIONS), default=None,
                         help="transfer function of a --weights network (default relu)")
    network.add_argument("--tau", type=_positive_float, default=None,
                         help="time constant of a --weights network (default 1.0)")
    data = parser.add_argument_group("inputs and fixed points")
    data.add_argument(
        "--inputs", metavar="FILE",
        help="input rows (.npy, .npz or .csv, a 2-D array of shape n_samples x n_features). "
        "Default: --n-samples rows drawn uniformly in [0, 1] per feature.",
    )
    data.add_argument("--n-samples", type=_positive_int, default=None,
                      help="number of sampled input rows when --inputs is not given (default 5000)")
    data.add_argument("--test-fraction", type=_positive_float, default=0.2,
                      help="fraction of rows held out to test the approximator (default 0.2)")
    data.add_argument("--dt", type=_positive_float, default=0.1, help="Euler step (default 0.1)")
    data.add_argument("--tol", type=_non_negative_float, default=1e-6,
                      help="fixed-point residual tolerance (default 1e-6)")
    data.add_argument("--max-steps", type=_positive_int, default=10_000,
                      help="maximum Euler steps per row (default 10000)")
    data.add_argument("--method", choices=["euler", "anderson", "active_set"], default="euler",
                      help="fixed-point method: euler (the definition), anderson (accelerated), "
                      "active_set (relu only: certified jumps to Euler's fixed point) (default euler)")
    model = parser.add_argument_group("approximator")
    model.add_argument("--hidden", type=_width, default=100,
                       help="hidden units of the approximator, or 'auto': one per unit of the "
                       "network, and with --target-score the width may grow (default 100)")
    model.add_argument("--max-iter", type=_positive_int, default=None,
                       help="most L-BFGS iterations of the fit (default "
                       f"{FeedforwardApproximator().max_iter}, the approximator's)")
    model.add_argument("--target-score", type=_score, default=None,
                       help="held-out variance-weighted R^2 to reach: the teacher solves new "
                       "inputs drawn where the approximator errs most until it is reached or "
                       "--max-teacher-rows are spent (default: train once on the given rows)")
    model.add_argument("--max-teacher-rows", type=_positive_int, default=None,
                       help="with --target-score, the most rows the teacher solves, the training "
                       "rows included (default "
                       f"{FeedforwardApproximator().max_teacher_rows}, the approximator's)")
    model.add_argument("--seed", type=_non_negative_int, default=0,
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


def _check_options(args):
    """Option combinations argparse cannot check; fills in the defaults that depend on them."""
    if args.weights is None:
        for option, value in [("--activation", args.activation), ("--tau", args.tau)]:
            if value is not None:
                raise CommandLineError(
                    f"{option} applies to a --weights network; the built-in circuit is relu with tau 1. "
                    "Give --weights FILE, or drop the option."
                )
    args.activation = args.activation or "relu"
    args.tau = 1.0 if args.tau is None else args.tau
    if args.inputs is not None and args.n_samples is not None:
        raise CommandLineError(
            "--n-samples applies to sampled inputs; with --inputs every row of the file is used."
        )
    if args.inputs is None:
        args.n_samples = 5000 if args.n_samples is None else args.n_samples
        if args.n_samples < MIN_TRAIN_ROWS + 1:
            raise CommandLineError(
                f"--n-samples must be at least {MIN_TRAIN_ROWS + 1}; got {args.n_samples}."
            )
    if args.max_teacher_rows is not None and args.target_score is None:
        raise CommandLineError(
            "--max-teacher-rows is the budget of --target-score's sampling; give --target-score "
            "too, or drop it."
        )
    if not args.test_fraction < 1:
        raise CommandLineError(f"--test-fraction must be below 1; got {args.test_fraction}.")
    for option in ("out", "figure"):
        path = getattr(args, option)
        if path.lower() == "none":
            setattr(args, option, None)
            continue
        folder = os.path.dirname(os.path.abspath(path))
        if os.path.isdir(path):
            raise CommandLineError(f"--{option} {path!r} is a directory; give a file name.")
        if not os.path.isdir(folder):
            raise CommandLineError(f"--{option} {path!r}: the folder {folder!r} does not exist.")
        if not os.access(folder, os.W_OK):
            raise CommandLineError(f"--{option} {path!r}: the folder {folder!r} is not writable.")
    if args.figure is not None:
        extension = os.path.splitext(args.figure)[1].lower().lstrip(".")
        supported = _figure_formats()
        if supported is not None and extension not in supported:
            what = f".{extension} files" if extension else "files without an extension"
            raise CommandLineError(
                f"--figure {args.figure!r}: matplotlib cannot write {what}; "
                f"use one of .{', .'.join(sorted(supported))}."
            )


def _figure_formats():
    """File extensions matplotlib can write, or None without matplotlib."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return None
    return set(Figure().canvas.get_supported_filetypes())


# --------------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------------


def _read_array(path, what):
    """Read an array from ``.npy``, ``.npz`` (a dict of arrays) or ``.csv``."""
    if os.path.isdir(path):
        raise CommandLineError(f"{what} file {path!r} is a directory, not a file.")
    if not os.path.exists(path):
        raise CommandLineError(f"{what} file {path!r} does not exist.")
    extension = os.path.splitext(path)[1].lower()
    if extension not in (".npy", ".npz", ".csv"):
        raise CommandLineError(f"{what} file {path!r} must end in .npy, .npz or .csv.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # numpy's "input contained no data": checked below
            if extension == ".npy":
                content = np.load(path, allow_pickle=False)
            elif extension == ".csv":
                content = np.loadtxt(path, delimiter=",", ndmin=2)
            else:
                with np.load(path, allow_pickle=False) as archive:
                    content = {key: archive[key] for key in archive.files}
    except Exception as exc:  # numpy raises many types for unreadable files
        reason = _one_line(exc).split("; use `usecols`")[0]
        raise CommandLineError(f"could not read {what} file {path!r}: {reason}") from exc
    arrays = content.values() if isinstance(content, dict) else [content]
    if not arrays or all(np.size(array) == 0 for array in arrays):
        raise CommandLineError(f"{what} file {path!r} is empty.")
    for array in arrays:
        if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
            raise CommandLineError(f"{what} file {path!r} holds {array.dtype} data, not numbers.")
    return content


def load_network(path, activation, tau):
    """Build a :class:`RateNetwork` from a weights file, checking it thoroughly.

    ``.npy`` and ``.csv`` files hold the square matrix ``W``; an ``.npz``
    file holds ``weights`` (or ``W``) and optionally ``input_weights``
    (``W_in``) and ``bias`` (``b``). Returns the network and its number of
    input features.
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
    weights = np.asarray(arrays["weights"])
    input_weights = arrays.get("input_weights")
    if input_weights is None:
        n_features = weights.shape[0] if weights.ndim == 2 else 0
    elif np.ndim(input_weights) != 2:
        raise CommandLineError(
            f"invalid network in {path!r}: input_weights must be 2-D (n_units x n_features); "
            f"got shape {np.shape(input_weights)}."
        )
    else:
        n_features = np.shape(input_weights)[1]
    try:
        network.validated_arrays(n_features)
    except (TypeError, ValueError, IndexError) as exc:
        raise CommandLineError(f"invalid network in {path!r}: {_one_line(exc)}") from exc
    return network, n_features


def load_inputs(path, n_features):
    """Read input rows and check their shape and values."""
    inputs = _read_array(path, "inputs")
    if isinstance(inputs, dict):
        if len(inputs) != 1:
            raise CommandLineError(
                f"inputs file {path!r} holds {len(inputs)} arrays ({', '.join(sorted(inputs))}); "
                "it must hold exactly one."
            )
        inputs = next(iter(inputs.values()))
    inputs = np.asarray(inputs, dtype=np.float64)
    expected = f"expected a 2-D array with {n_features} columns (n_features), one row per input"
    if inputs.ndim != 2:
        hint = ""
        if inputs.ndim == 1 and inputs.size % n_features == 0:
            hint = f" (for example, save X.reshape(-1, {n_features}))"
        raise CommandLineError(
            f"inputs in {path!r} are {inputs.ndim}-D (shape {inputs.shape}); {expected}{hint}."
        )
    if inputs.shape[1] != n_features:
        raise CommandLineError(
            f"inputs in {path!r} have {inputs.shape[1]} columns; the network takes {n_features} "
            f"features, so {expected}."
        )
    bad = np.flatnonzero(~np.isfinite(inputs).all(axis=1))
    if bad.size:
        raise CommandLineError(
            f"inputs in {path!r} contain NaN or infinity in {bad.size} rows (first: row {bad[0]})."
        )
    if len(inputs) < MIN_TRAIN_ROWS + 1:
        raise CommandLineError(
            f"inputs in {path!r} have {len(inputs)} rows; at least {MIN_TRAIN_ROWS + 1} are needed."
        )
    return inputs


# --------------------------------------------------------------------------------------------------
# Progress and timing
# --------------------------------------------------------------------------------------------------


class Progress:
    """Rows done, rate and time left of a long computation.

    On a terminal the line is redrawn in place (``\\r``) a few times a
    second; in a file or a pipe a plain line is written every ``interval``
    seconds, and a last line when the work is done.

    Parameters
    ----------
    total : int
        Rows to do.
    label : str
        What is being done.
    stream : file object
        Where to write (``sys.stderr`` by default).
    interactive : bool, default=None
        Redraw in place; ``None`` asks ``stream.isatty()``.
    interval : float, default=None
        Seconds between lines: 0.2 on a terminal, 5 otherwise.
    clock : callable, default=time.monotonic

    Examples
    --------
    >>> import sys
    >>> from rnnapprox.cli import Progress
    >>> ticks = iter([0.0, 1.0, 2.0, 3.0])  # a clock for the example: one second per call
    >>> progress = Progress(200, "work", stream=sys.stdout, interactive=False, interval=0.0,
    ...                     clock=lambda: next(ticks))
    >>> progress.update(100)  # the first update sets where the rate is measured from
    >>> progress.update(200)
      work: 200/200 rows (100%), 100 rows/s, 0 s left
    >>> progress.close()
      work: 200 rows in 3.0 s, 67 rows/s
    """

    def __init__(self, total, label, stream=None, interactive=None, interval=None, clock=time.monotonic):
        self.total, self.label = total, label
        self.stream = sys.stderr if stream is None else stream
        if interactive is None:
            isatty = getattr(self.stream, "isatty", None)
            interactive = bool(isatty and isatty())
        self.interactive = interactive
        self.interval = (0.2 if interactive else 5.0) if interval is None else interval
        self.clock = clock
        self.start = self.last = clock()
        self.done = 0
        self.width = 0
        self.baseline = None

    def _write(self, text, end):
        if self.interactive:
            padding = " " * max(0, self.width - len(text))
            self.width = len(text)
            self.stream.write("\r" + text + padding + end)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def update(self, done):
        """Record ``done`` rows finished; write a line when one is due.

        The rate is measured from the first update on, so that start-up
        costs before it (numba compiling on first use) do not distort the
        time left; no line is written before a rate is known.
        """
        self.done = done
        now = self.clock()
        if self.baseline is None:
            self.baseline = (now, done)
            return
        if now - self.last < self.interval:
            return
        self.last = now
        since, done_then = now - self.baseline[0], done - self.baseline[1]
        rate = done_then / since if since > 0 else math.inf
        left = (self.total - done) / rate if rate > 0 else math.inf
        self._write(
            f"  {self.label}: {done}/{self.total} rows ({done / self.total:.0%}), "
            f"{rate:,.0f} rows/s, {_duration(left)} left",
            end="",
        )

    def close(self, note=""):
        """Write the final line: rows, time taken and rate, then ``note``."""
        elapsed = self.clock() - self.start
        rate = f", {self.total / elapsed:,.0f} rows/s" if elapsed > 0 else ""
        self._write(f"  {self.label}: {self.total} rows in {elapsed:.1f} s{rate}{note}", end="\n")


def _duration(seconds):
    if not math.isfinite(seconds):
        return "unknown time"
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"


class _FixedPointLog:
    """Collects the teacher's results and reports progress while it solves.

    ``label`` and ``note`` describe the next solve; ``later``, if set, the
    solves after it (the rows that distillation draws).
    """

    def __init__(self, quiet):
        self.quiet = quiet
        self.label = "fixed points"
        self.note = ""
        self.later = None
        self.results = []


def _concatenate_results(parts):
    """One :class:`FixedPointResult` of the rows of ``parts``, in order."""
    return FixedPointResult(**{key: np.concatenate([part[key] for part in parts]) for key in parts[0]})


class _ReportingTransformer(RecurrentFixedPointTransformer):
    """The transformer, solving in slices so the command line can show progress.

    Used only as the teacher during a run (``log`` is set by :func:`run`);
    rows are independent, so slicing gives the rows' own results. Before
    saving, the fitted teacher becomes a plain
    :class:`RecurrentFixedPointTransformer` again (:func:`_plain_teacher`).
    """

    log = None
    slice_seconds = 0.25

    def solve(self, X, stability=False):
        log = type(self).log
        if log is None:
            return super().solve(X, stability=stability)
        X = np.asarray(X)
        progress = None if log.quiet else Progress(len(X), log.label)
        parts, start, size = [], 0, 64
        while start < len(X):
            began = time.perf_counter()
            parts.append(super().solve(X[start:start + size], stability=stability))
            seconds = time.perf_counter() - began
            start += size
            if progress is not None:
                progress.update(min(start, len(X)))
            # Slices of about slice_seconds: at most twice the last one, so a quiet moment on a
            # busy machine does not make one slice (and the wait for the next line) very long.
            size = int(np.clip(size * self.slice_seconds / max(seconds, 1e-6), 64, min(2 * size, 4096)))
        result = _concatenate_results(parts)
        if progress is not None:
            progress.close(log.note)
        log.results.append(result)
        if log.later is not None:
            (log.label, log.note), log.later = log.later, None
        return result


def _plain_teacher(approximator):
    """Make the approximator's teacher objects plain transformers (same parameters and fitted state)."""
    for name in ("teacher", "teacher_"):
        teacher = getattr(approximator, name, None)
        if isinstance(teacher, _ReportingTransformer):
            teacher.__class__ = RecurrentFixedPointTransformer  # it adds behaviour, no state


def time_per_row(function, rows, *, repeats=5, min_seconds=0.2, max_rows=20_000, clock=time.perf_counter):
    """Seconds per row of ``function(batch)``: the fastest of several runs of one large batch.

    A first call warms caches and compiled code, a second estimates the
    cost per row; the batch is then ``rows`` repeated until one call takes
    about ``min_seconds`` (at least ``len(rows)`` and at most ``max_rows``
    rows), and the result is the minimum over ``repeats`` timed calls divided
    by the batch size. Other programs on the machine only ever slow a run
    down, so the minimum of several runs long enough to average out
    per-call overhead is a stable figure; with ``clock=time.process_time``
    (CPU time of this process, as the command line uses it) it is also
    nearly blind to other programs' load.

    Parameters
    ----------
    function : callable
        Called with a batch of rows.
    rows : array-like of shape (n_rows, ...)
        Rows to time, repeated to fill the batch.
    repeats : int, default=5
        Timed calls; the fastest counts.
    min_seconds : float, default=0.2
        Target duration of one call.
    max_rows : int, default=20_000
        Largest batch.
    clock : callable, default=time.perf_counter
        Seconds, as a float; ``time.process_time`` measures CPU time.

    Returns
    -------
    seconds_per_row : float
    n_rows : int
        Rows in the timed batch.

    Examples
    --------
    >>> import numpy as np
    >>> from rnnapprox.cli import time_per_row
    >>> seconds, n_rows = time_per_row(np.cumsum, np.ones((100, 3)), min_seconds=0.001)
    >>> bool(seconds > 0), n_rows >= 100
    (True, True)
    """
    rows = np.asarray(rows)
    if len(rows) == 0:
        raise ValueError("time_per_row needs at least one row.")
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1; got {repeats}.")
    function(rows)  # warm-up: caches, compiled code, thread pools
    began = clock()
    function(rows)
    estimate = max(clock() - began, 1e-9) / len(rows)
    wanted = math.ceil(min_seconds / estimate - 1e-6)  # no extra row from rounding
    n_rows = int(np.clip(wanted, len(rows), max(max_rows, len(rows))))
    batch = rows[np.arange(n_rows) % len(rows)]
    best = math.inf
    for _ in range(repeats):
        began = clock()
        function(batch)
        best = min(best, clock() - began)
    return best / n_rows, n_rows


# --------------------------------------------------------------------------------------------------
# The job
# --------------------------------------------------------------------------------------------------


def _nonconvergence_advice(result, args):
    """Why rows did not converge and what to change, from the teacher's result."""
    counts = result.status_counts()
    dynamics = result.get("dynamics", np.array([]))
    advice = []
    if counts["diverged"]:
        advice.append(
            "diverging rows mean the network is unstable for these inputs: scale down its weights "
            "or the inputs"
        )
    if counts["max_steps"]:
        if args.tol == 0:
            advice.append("--tol 0 asks for an exact fixed point, which float rounding rarely gives: "
                          "use a positive --tol such as 1e-6")
        else:
            n_slow = int(np.sum(dynamics == "slow"))
            n_precision = int(np.sum(dynamics == "precision"))
            n_moving = counts["max_steps"] - n_slow - n_precision
            if n_slow:
                advice.append(f"{n_slow} were still settling: raise --max-steps (now {args.max_steps})")
            if n_precision:
                advice.append(f"{n_precision} are limited by float64 rounding: raise --tol "
                              f"(now {args.tol:g}) or scale the inputs down")
            if n_moving:
                advice.append(f"{n_moving} keep moving without settling (oscillation or chaos): the network "
                              f"has no stable fixed point for them; raise --max-steps (now {args.max_steps}) "
                              f"or --tol (now {args.tol:g}) only if they are slow")
    return (f"{counts['diverged']} diverged, {counts['max_steps']} stopped at --max-steps "
            f"{args.max_steps} with the residual above --tol {args.tol:g}; " + "; ".join(advice))


def _fit_note(caught, approximator):
    """A warning of the fit as one line of the report, naming the command line's options."""
    text = _one_line(caught.message)
    if text.startswith("The teacher did not reach a fixed point"):
        return None  # the report counts those rows
    if text.startswith("Distillation stopped"):
        for name, option in [("target_score", "--target-score"), ("max_teacher_rows", "--max-teacher-rows"),
                             ("hidden_layer_size", "--hidden"), ("max_iter", "--max-iter")]:
            text = text.replace(name, option)
        return text
    if text.startswith("L-BFGS reached max_iter"):
        return (f"the fit stopped after --max-iter {approximator.max_iter} L-BFGS iterations, before "
                f"converging; a larger --max-iter may fit better")
    if not issubclass(caught.category, ConvergenceWarning):
        text = f"{caught.category.__name__}: {text}"
    return text


def _build_network(args):
    if args.weights is None:
        network = soft_wta(*BUILT_IN, random_state=args.seed)
        p, k, i = BUILT_IN
        return network, p, (f"built-in soft winner-take-all ({p} partitions x {k} excitatory + "
                            f"{i} inhibitory units)")
    network, n_features = load_network(args.weights, args.activation, args.tau)
    return network, n_features, f"{args.weights} ({network.n_units} units, {args.activation})"


def run(args):
    """Run the job for parsed ``args``; returns the report's numbers as a dict."""
    _check_options(args)
    network, n_features, name = _build_network(args)
    rng = np.random.default_rng(args.seed)
    if args.inputs is not None:
        inputs = load_inputs(args.inputs, n_features)
    else:
        inputs = rng.uniform(0.0, 1.0, size=(args.n_samples, n_features))
    order = rng.permutation(len(inputs))
    n_test = int(round(args.test_fraction * len(inputs)))
    test_rows, train_rows = np.sort(order[:n_test]), np.sort(order[n_test:])
    if n_test < 2 or len(train_rows) < MIN_TRAIN_ROWS:
        raise CommandLineError(
            f"--test-fraction {args.test_fraction:g} of {len(inputs)} rows leaves {n_test} held-out and "
            f"{len(train_rows)} training rows; at least 2 and {MIN_TRAIN_ROWS} are needed."
        )

    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    say(f"network: {name}; {len(inputs)} input rows ({len(train_rows)} to fit, {n_test} held out)")
    teacher = _ReportingTransformer(
        network=network, dt=args.dt, tol=args.tol, max_steps=args.max_steps,
        random_state=args.seed, method=args.method,
    )
    try:  # the teacher's own checks of its options, before any long computation
        RecurrentFixedPointTransformer(**teacher.get_params(deep=False)).fit(inputs[train_rows[:1]])
    except (TypeError, ValueError) as exc:
        raise CommandLineError(_one_line(exc)) from exc
    approximator = FeedforwardApproximator(hidden_layer_size=args.hidden, teacher=teacher,
                                           target_score=args.target_score, random_state=args.seed)
    for option in ("max_iter", "max_teacher_rows"):
        if getattr(args, option) is not None:
            approximator.set_params(**{option: getattr(args, option)})
    budget = approximator.max_teacher_rows
    if args.target_score is not None and budget <= len(train_rows):
        given = "" if args.max_teacher_rows is not None else " (the default)"
        raise CommandLineError(
            f"--max-teacher-rows {budget}{given} leaves no rows to draw: it counts the "
            f"{len(train_rows)} training rows too; give more than {len(train_rows)}."
        )

    log = _FixedPointLog(args.quiet)
    log.label = "fixed points (training rows)"
    width = "one hidden unit per network unit" if args.hidden == "auto" else f"{args.hidden} hidden units"
    log.note = f"; fitting the approximator ({width})"
    if args.target_score is not None:
        log.later = ("fixed points (drawn rows)", "; training on them")
    _ReportingTransformer.log = log
    try:
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                approximator.fit(inputs[train_rows])
                fitted = approximator.n_teacher_rows_ >= MIN_TRAIN_ROWS
            except ValueError as exc:
                if not log.results:  # failed before the teacher solved: the options
                    raise CommandLineError(_one_line(exc)) from exc
                if sum(int(r.converged.sum()) for r in log.results) >= MIN_TRAIN_ROWS:
                    raise  # not a convergence problem: a bug, shown in full
                fitted = False
        fit_seconds = time.perf_counter() - start
        if not log.results:  # the approximator got its targets without teacher_.solve: ask it
            log.label, log.note = "fixed points (training rows, for the report)", ""
            approximator.teacher_.solve(inputs[train_rows])
        train_result = log.results[0]  # the training rows; later solves are drawn rows
        if not fitted:
            n_ok = int(train_result.converged.sum())
            raise CommandLineError(
                f"only {n_ok} of {len(train_result.converged)} training rows reached a fixed point (at least "
                f"{MIN_TRAIN_ROWS} are needed); nothing to distil: "
                + _nonconvergence_advice(train_result, args) + "."
            )
        log.label, log.note = "fixed points (held-out rows)", ""
        test_result = approximator.teacher_.solve(inputs[test_rows])
    finally:
        _ReportingTransformer.log = None
    _plain_teacher(approximator)

    notes = sorted({_fit_note(w, approximator) for w in caught} - {None})
    converged_test = test_rows[test_result.converged]
    targets = test_result.outputs[test_result.converged]
    predictions = approximator.predict(inputs[converged_test])
    if len(targets) >= 2:
        r2_weighted = r2_score(targets, predictions, multioutput="variance_weighted")
        r2_uniform = r2_score(targets, predictions, multioutput="uniform_average")
    else:
        r2_weighted = r2_uniform = math.nan

    timing_rows = inputs[test_rows]
    recurrent_per_row, ff_per_row, timed_rows = _time_both(approximator, timing_rows)

    all_result = _concatenate_results([train_result, test_result])
    counts = all_result.status_counts()
    steps = all_result.n_steps[all_result.converged]
    print("rnnapprox report")
    print(f"  network             {name}")
    line = f"  fixed points        {counts['converged']} of {len(all_result.converged)} rows converged"
    if counts["converged"] < len(all_result.converged):
        line += (f"; {counts['diverged']} diverged and {counts['max_steps']} stopped at --max-steps "
                 f"{args.max_steps} (left out of fit and test)")
    print(line)
    print(f"  steps to converge   min {steps.min()}, median {int(np.median(steps))}, "
          f"90th percentile {int(np.percentile(steps, 90))}, max {steps.max()} ({args.method})")
    record = approximator.distillation_
    last = "" if args.target_score is None else " in the last round"
    print(f"  approximator        {approximator.hidden_layer_size_} hidden units, solver "
          f"{approximator.solver_}, {approximator.n_iter_} iterations{last}")
    if args.target_score is None:
        print(f"                      fit on {approximator.n_teacher_rows_} rows in {fit_seconds:.1f} s "
              "(fixed points included)")
    else:
        reached = "reached" if record["target_reached"] else "not reached"
        drawn_failed = record["n_failed"] - int((~train_result.converged).sum())
        rounds = f"{record['n_rounds']} round{'s' if record['n_rounds'] > 1 else ''}"
        print(f"                      fit on {record['n_training_rows'][-1]} rows ("
              f"{record['n_rows_drawn']} drawn, of which {drawn_failed} without a fixed point were "
              f"left out) in {fit_seconds:.1f} s (fixed points included)")
        print(f"  sampling            {rounds}; held-out score "
              f"{record['validation_scores'][-1]:.4f}, target {args.target_score} {reached}")
    n_units = targets.shape[1]
    if math.isnan(r2_weighted):
        print(f"  held-out R^2        not computed: {len(targets)} held-out rows converged, 2 are needed")
    else:
        print(f"  held-out R^2        {r2_weighted:.4f} variance-weighted: units that vary more count more "
              f"(what score() reports)")
        print(f"                      {r2_uniform:.4f} uniform: the plain mean over the {n_units} units, "
              f"each counting equally ({len(targets)} held-out rows)")
    agreement = math.nan
    if args.weights is None and len(targets):
        agreement = float(np.mean(winning_partition(targets, *BUILT_IN[:2])
                                  == winning_partition(predictions, *BUILT_IN[:2])))
        print(f"  winner agreement    {agreement:.1%} of held-out rows pick the same partition")
    speedup = recurrent_per_row / ff_per_row
    print(f"  time per row        recurrent {recurrent_per_row * 1e6:.1f} us, feedforward "
          f"{ff_per_row * 1e6:.2f} us: {speedup:.0f}x faster")
    print(f"                      (CPU time, one thread each, fastest of 5 runs of "
          f"{timed_rows['recurrent']} rows (recurrent) and {timed_rows['feedforward']} (feedforward))")
    for note in notes:
        print(f"  note                {note}")
    if args.out is not None:
        import joblib

        try:
            joblib.dump(approximator, args.out)
        except OSError as exc:
            raise CommandLineError(f"could not save the approximator to {args.out!r}: {exc}") from exc
        print(f"  approximator saved  {args.out}")
    if args.figure is not None:
        try:
            _save_figure(args.figure, all_result, targets, predictions, r2_weighted,
                         recurrent_per_row, ff_per_row)
            print(f"  figure saved        {args.figure}")
        except ImportError:
            print("  figure skipped      matplotlib is not installed (pip install matplotlib)")
        except OSError as exc:
            raise CommandLineError(f"could not save the figure to {args.figure!r}: {exc}") from exc
    return {
        "r2_variance_weighted": r2_weighted, "r2_uniform": r2_uniform, "converged": counts["converged"],
        "winner_agreement": agreement, "speedup": speedup, "approximator": approximator,
    }


def _time_both(approximator, rows):
    """Per-row times of the recurrent teacher and the approximator, one thread each."""
    from threadpoolctl import threadpool_limits

    teacher = copy.deepcopy(approximator.teacher_).set_params(n_jobs=1)
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # rows that do not converge still cost time
        # CPU time of this process, not wall time: other programs on a busy machine delay a run
        # but do not add to its CPU time (issue 15: wall-clock ratios swung from 154x to 5x).
        cpu = time.process_time
        recurrent, n_recurrent = time_per_row(teacher.transform, rows, max_rows=5_000, clock=cpu)
        feedforward, n_feedforward = time_per_row(approximator.predict, rows, clock=cpu)
    return recurrent, feedforward, {"recurrent": n_recurrent, "feedforward": n_feedforward}


def _save_figure(path, result, targets, predictions, r2, recurrent_per_row, ff_per_row):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    steps = result.n_steps[result.converged]
    axes[0].hist(steps, bins=40, color="tab:blue")
    axes[0].set(xlabel="steps to converge", ylabel="rows",
                title=f"recurrent: {result.converged.sum()} of {len(result.converged)} rows settle")
    if targets.size:
        axes[1].plot(targets.ravel(), predictions.ravel(), ".", ms=1, alpha=0.3)
        low = min(targets.min(), predictions.min())
        top = max(targets.max(), predictions.max())
        axes[1].plot([low, top], [low, top], "k--", lw=0.8)
    axes[1].set(xlabel="recurrent fixed-point rate", ylabel="feedforward prediction",
                title=f"held-out rows (R$^2$ = {r2:.3f}, variance-weighted)")
    times = [recurrent_per_row * 1e6, ff_per_row * 1e6]
    bars = axes[2].bar(["recurrent", "feedforward"], times, color=["tab:blue", "tab:orange"])
    axes[2].bar_label(bars, labels=[f"{t:.3g} µs" for t in times], padding=2)
    axes[2].set(ylabel="CPU time per row, one thread (µs)", yscale="log",
                title=f"cost of one answer: {recurrent_per_row / ff_per_row:.0f}x faster")
    axes[2].set_ylim(min(times) / 3, max(times) * 4)  # room for the labels
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    """Run the command line; returns the process exit code.

    0 on success (and for ``--help`` and ``--version``), 2 for a problem
    with the options or files (a one-line message on standard error), 130
    when interrupted.
    """
    try:
        args = build_parser().parse_args(argv)
        run(args)
    except CommandLineError as exc:
        print(f"rnnapprox: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else 0
    except MemoryError:
        print("rnnapprox: error: not enough memory; use fewer rows (--n-samples, --inputs) or a smaller "
              "network", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nrnnapprox: interrupted", file=sys.stderr)
        return 130
    return 0
