"""Distilling gated and trained feedback networks: held-out R^2 and the transition.

Run ``python benchmarks/bench_families.py`` (``--quick`` for fewer rows). For
each teacher, ``FeedforwardApproximator(teacher=RecurrentFixedPointTransformer(
network=...), random_state=0).fit(U_train)`` learns the input -> fixed-point
map from the teacher's converged rows; the table gives the fraction of
training rows the teacher left out (not converged), the variance-weighted
R^2 of the approximator against the teacher's fixed points on held-out rows
(converged held-out rows only), and the dynamics of the non-converged rows
(``solve(X, stability=True)``).

Teachers:

- gated, stable: ``random_gated_network(50, gain=1.5, gain_z=1)`` with the
  default gates, 3 inputs of strength up to 1;
- gated, near the transition: ``gain=3, alpha_r=10, beta_r=4`` (silent state
  stable without input), input strengths 0 to 0.15, where weak inputs push it
  into chaos (``examples/plot_gated_transition.py``);
- feedback, stable: ``random_feedback_network(100, gain=0.8,
  input_correlation=0.8, input_scale=0.2)`` trained for ``z = 0.5`` at
  ``u = 1`` (stable, reached), inputs ``u`` in [-3, 3];
- feedback, near the transition: the same draw with ``gain=1.6`` (the bulk
  alone is chaotic), trained for ``z = 0.5``, inputs ``u`` in [-3, 3]: weak
  inputs leave it oscillating or chaotic.
"""

import argparse
import sys
import time
import warnings
from collections import Counter

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import r2_score

from rnnapprox import FeedforwardApproximator, RecurrentFixedPointTransformer
from rnnapprox.feedback import check_feedback_target, train_feedback_readout
from rnnapprox.networks import random_feedback_network, random_gated_network


def gated_inputs(rng, n_rows, n_inputs, low, high):
    directions = rng.standard_normal((n_rows, n_inputs))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    return directions * rng.uniform(low, high, size=(n_rows, 1)) * np.sqrt(n_inputs)


def teachers(n_train, n_test):
    rng = np.random.default_rng(0)
    n = n_train + n_test
    stable = random_gated_network(50, gain=1.5, gain_z=1.0, n_inputs=3, random_state=0)
    yield "gated, stable", stable, gated_inputs(rng, n, 3, 0.0, 1.0), ""
    edge = random_gated_network(
        50, gain=3.0, gain_z=1.0, alpha_r=10.0, beta_r=4.0, n_inputs=3, random_state=0
    )
    yield "gated, near transition", edge, gated_inputs(rng, n, 3, 0.0, 0.15), ""
    U = rng.uniform(-3.0, 3.0, size=(n, 1))
    for label, gain, target in [("feedback, stable", 0.8, 0.5),
                                ("feedback, near transition", 1.6, 0.5)]:
        network = random_feedback_network(100, gain=gain, input_correlation=0.8,
                                          input_scale=0.2, random_state=0)
        training = train_feedback_readout(network, target)
        report = check_feedback_target(training)
        note = (f"target z={target}: reached={report.reached}, stable={report.stable}, "
                f"Re lambda={report.leading_eigenvalue.real:+.3f}")
        yield label, training.network, U, note


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500 training rows instead of 2000")
    args = parser.parse_args()
    n_train, n_test = (500, 200) if args.quick else (2000, 500)
    rows = []
    notes = []
    for label, network, U, note in teachers(n_train, n_test):
        U_train, U_test = U[:n_train], U[n_train:]
        teacher = RecurrentFixedPointTransformer(network=network, max_steps=5000)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = FeedforwardApproximator(teacher=teacher, random_state=0).fit(U_train)
        fit_time = time.perf_counter() - start
        dropped = 1.0 - model.n_teacher_rows_ / n_train
        result = model.teacher_.solve(U_test, stability=True)
        kept = result.converged
        r2 = r2_score(result.outputs[kept], model.predict(U_test[kept]),
                      multioutput="variance_weighted") if kept.sum() > 1 else float("nan")
        failed = Counter(result.dynamics[~kept])
        rows.append((label, n_train, dropped, 1.0 - kept.mean(), r2,
                     int(np.sum(kept & ~result.stable)),
                     ", ".join(f"{v} {k}" for k, v in sorted(failed.items())) or "-",
                     fit_time))
        if note:
            notes.append(f"{label}: {note}")
        print(f"[{label}: {time.perf_counter() - start:.0f} s]", file=sys.stderr, flush=True)
    header = (f"{'teacher':28s} {'train':>6s} {'dropped':>8s} {'test NC':>8s} {'R^2':>7s} "
              f"{'unstable':>8s}  {'fit s':>6s}  non-converged test rows")
    print(header)
    print("-" * len(header))
    for label, n, dropped, test_nc, r2, unstable, failed, fit_time in rows:
        print(f"{label:28s} {n:6d} {dropped:8.1%} {test_nc:8.1%} {r2:7.4f} {unstable:8d}  "
              f"{fit_time:6.1f}  {failed}")
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()
