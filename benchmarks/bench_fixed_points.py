"""Fixed points of a soft winner-take-all network: rnnapprox against its peers.

Run ``python benchmarks/bench_fixed_points.py`` (``--quick`` for a short run,
``--scaling`` to add cost per row and per step for N = 50 ... 1000, ``--methods`` to
compare ``method="anderson"`` and ``method="active_set"`` with ``method="euler"``,
``--approximator`` to add the approximator against ``MLPRegressor``, ``--all`` for
all of them in one run). Every
number comes from this one process on this machine:

- ``rnnapprox``: ``RecurrentFixedPointTransformer.solve`` (numba Euler), first
  call (with compilation) and warm (best of ``--repeats``);
- ``numpy Euler``: the same Euler iteration and stopping rule written with
  numpy, all rows at once, converged rows dropped at every step;
- ``flop limit``: the Euler evaluations rnnapprox made times ``2 N^2`` flops,
  divided by numpy's measured matrix-product rate (for the same
  ``(rows x N) @ (N x N)`` shape, and for a 1000 x 1000 product);
- ``solve_ivp``: ``scipy.integrate.solve_ivp`` (RK45) per row on a sample,
  stopped by an event when the residual reaches ``tol``;
- ``root``: ``scipy.optimize.root`` (hybr) per row on a sample, from the same
  ``x0``, with the fraction landing on the Euler attractor;
- ``--scaling``: cost per row and per step for N = 50 ... 1000, and time vs
  number of rows against the numpy loop.
"""

import argparse
import time

import numpy as np
from scipy.integrate import solve_ivp
from scipy.optimize import root
from threadpoolctl import threadpool_info, threadpool_limits

from rnnapprox import RecurrentFixedPointTransformer
from rnnapprox.networks import soft_wta


def best_time(function, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def gemm_rate(n_rows, n_units, repeats=5):
    """numpy's best matrix-product rate (flop/s) for (n_rows x N) @ (N x N)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n_rows, n_units))
    b = rng.standard_normal((n_units, n_units))
    inner = max(1, int(2e9 / (2 * n_rows * n_units**2)))

    def run():
        for _ in range(inner):
            a @ b

    return inner * 2 * n_rows * n_units**2 / best_time(run, repeats)


def numpy_euler(drive, weights, rate_scale, tol, max_steps):
    """Batched numpy Euler with the package's stopping rule; converged rows dropped."""
    x = np.zeros_like(drive)
    active = np.arange(len(drive))
    states = np.empty_like(drive)
    steps = np.zeros(len(drive), dtype=np.int64)
    weights_t = weights.T.copy()
    for step in range(max_steps + 1):
        xa = x[active]
        g = np.maximum(xa, 0.0) @ weights_t + drive[active] - xa
        done = np.abs(g).max(axis=1) <= tol
        if step == max_steps:
            done[:] = True
        finished = active[done]
        states[finished] = xa[done]
        steps[finished] = step
        active = active[~done]
        if active.size == 0:
            break
        x[active] = xa[~done] + rate_scale * g[~done]
    return states, steps


def vector_field(arrays):
    weights, drive, tau = arrays

    def field(_, x):
        return (-x + weights @ np.maximum(x, 0.0) + drive) / tau

    return field


def solve_ivp_rows(weights, drives, tau, tol):
    states = []
    for drive in drives:
        field = vector_field((weights, drive, tau))

        def settled(t, x, field=field):
            return np.max(np.abs(field(t, x) * tau)) - tol

        settled.terminal = True
        settled.direction = -1
        sol = solve_ivp(field, (0.0, 1e4), np.zeros(len(drive)), method="RK45",
                        rtol=1e-8, atol=1e-10, events=settled)
        states.append(sol.y[:, -1])
    return np.array(states)


def root_rows(weights, drives):
    states = []
    for drive in drives:
        sol = root(lambda x, d=drive: -x + weights @ np.maximum(x, 0.0) + d,
                   np.zeros(len(drive)), method="hybr")
        states.append(sol.x)
    return np.array(states)


def main_benchmark(n_partitions, n_rows, n_sample, repeats):
    network = soft_wta(n_partitions=n_partitions, units_per_partition=16, n_inhibitory=8,
                       random_state=0)
    n_units = network.n_units
    U = np.random.default_rng(0).uniform(0.0, 1.0, size=(n_rows, n_partitions))
    dt, tol, max_steps = 0.1, 1e-6, 10_000
    rnn = RecurrentFixedPointTransformer(network=network, dt=dt, tol=tol, max_steps=max_steps)
    rnn.fit(U)

    start = time.perf_counter()
    result = rnn.solve(U[:10])
    first_call = time.perf_counter() - start
    result = rnn.solve(U)
    warm = best_time(lambda: rnn.solve(U), repeats)

    drive = U @ rnn.input_weights_.T + rnn.bias_
    rate_scale = dt / rnn.tau_
    start = time.perf_counter()
    np_states, np_steps = numpy_euler(drive, rnn.weights_, rate_scale, tol, max_steps)
    numpy_time = time.perf_counter() - start

    evaluations = int(result.n_steps.sum() + n_rows)
    flops = evaluations * 2.0 * n_units**2
    rate_same_shape = gemm_rate(min(n_rows, 4096), n_units)
    rate_square = gemm_rate(1000, 1000, repeats=3)

    sample = np.random.default_rng(1).choice(n_rows, size=n_sample, replace=False)
    start = time.perf_counter()
    ivp_states = solve_ivp_rows(rnn.weights_, drive[sample], rnn.tau_, tol)
    ivp_per_row = (time.perf_counter() - start) / n_sample
    start = time.perf_counter()
    root_states = root_rows(rnn.weights_, drive[sample])
    root_per_row = (time.perf_counter() - start) / n_sample
    rates = result.outputs
    root_agree = np.mean(np.abs(np.maximum(root_states, 0) - rates[sample]).max(axis=1) < 1e-4)

    steps = result.n_steps
    print(f"soft winner-take-all: N = {n_units} units, {n_rows} rows, dt {dt}, tol {tol}")
    blas = {f"{i['internal_api']} {i.get('architecture')}" for i in threadpool_info()
            if i["user_api"] == "blas"}
    print(f"BLAS: {', '.join(sorted(blas))}")
    print(f"rows converged: {result.converged.sum()} / {n_rows}; Euler steps per row: min {steps.min()}, "
          f"median {int(np.median(steps))}, max {steps.max()}; total evaluations {evaluations}")
    print(f"agreement: max |rnnapprox - numpy Euler| = {np.abs(result.states - np_states).max():.2e}, "
          f"step counts equal on {np.mean(np_steps == steps):.1%} of rows; "
          "max |rnnapprox - solve_ivp| on sample = "
          f"{np.abs(rates[sample] - np.maximum(ivp_states, 0)).max():.2e}; "
          f"root lands on the Euler attractor for {root_agree:.0%} of sampled rows")
    print()
    rows = [
        ("rnnapprox first call (compile + 10 rows)", first_call, None),
        ("rnnapprox warm", warm, 1.0),
        ("numpy batched Euler", numpy_time, numpy_time / warm),
        (f"flop limit at numpy GEMM rate, same shape ({rate_same_shape / 1e9:.1f} GFLOP/s)",
         flops / rate_same_shape, flops / rate_same_shape / warm),
        (f"flop limit at numpy GEMM rate, 1000^2 ({rate_square / 1e9:.1f} GFLOP/s)",
         flops / rate_square, flops / rate_square / warm),
        (f"solve_ivp RK45 per row x {n_rows} (from {n_sample} rows)", ivp_per_row * n_rows,
         ivp_per_row * n_rows / warm),
        (f"scipy.optimize.root per row x {n_rows} (from {n_sample} rows)", root_per_row * n_rows,
         root_per_row * n_rows / warm),
    ]
    print(f"{'method':<66} {'seconds':>9} {'ratio to rnnapprox warm':>24}")
    for name, seconds, ratio in rows:
        print(f"{name:<66} {seconds:>9.3f} {'' if ratio is None else f'{ratio:.2f}':>24}")
    print(f"\nrnnapprox runs at {flops / warm / 1e9:.1f} GFLOP/s: "
          f"{warm / (flops / rate_same_shape):.2f}x the flop limit (same shape), "
          f"{warm / (flops / rate_square):.2f}x (1000^2)")


def scaling_benchmark(sizes, n_rows, repeats):
    print(f"\ncost per row and per Euler step vs N ({n_rows} rows, soft winner-take-all "
          "with 16 excitatory units per partition)")
    print(f"{'N':>6} {'s/row':>10} {'ns/step/row':>12} {'GFLOP/s':>9} {'x flop limit':>13} "
          f"{'median steps':>13}")
    for n_partitions in sizes:
        network = soft_wta(n_partitions=n_partitions, units_per_partition=16,
                           n_inhibitory=max(2, n_partitions // 2), random_state=0)
        U = np.random.default_rng(0).uniform(0.0, 1.0, size=(n_rows, n_partitions))
        rnn = RecurrentFixedPointTransformer(network=network).fit(U)
        result = rnn.solve(U)
        warm = best_time(lambda rnn=rnn, U=U: rnn.solve(U), repeats)
        n_units = network.n_units
        evaluations = result.n_steps.sum() + n_rows
        flops = evaluations * 2.0 * n_units**2
        limit = flops / gemm_rate(min(n_rows, 2048), n_units, repeats=3)
        print(f"{n_units:>6} {warm / n_rows:>10.2e} {warm / evaluations * 1e9:>12.1f} "
              f"{flops / warm / 1e9:>9.1f} {warm / limit:>13.2f} {int(np.median(result.n_steps)):>13}")


def rows_benchmark(row_counts, repeats):
    """Time vs number of rows: rnnapprox against batched numpy Euler on the same rows."""
    network = soft_wta(n_partitions=6, units_per_partition=16, n_inhibitory=8, random_state=0)
    U_all = np.random.default_rng(0).uniform(0.0, 1.0, size=(max(row_counts), 6))
    rnn = RecurrentFixedPointTransformer(network=network).fit(U_all)
    rnn.solve(U_all[:10])
    drive_all = U_all @ rnn.input_weights_.T + rnn.bias_
    print(f"\ntime vs number of rows (soft winner-take-all, N = {network.n_units})")
    print(f"{'rows':>8} {'rnnapprox s':>12} {'us/row':>8} {'numpy Euler s':>14} {'numpy / rnnapprox':>18}")
    for n_rows in row_counts:
        U = U_all[:n_rows]
        warm = best_time(lambda U=U: rnn.solve(U), repeats)
        start = time.perf_counter()
        numpy_euler(drive_all[:n_rows], rnn.weights_, 0.1 / rnn.tau_, 1e-6, 10_000)
        numpy_time = time.perf_counter() - start
        print(f"{n_rows:>8} {warm:>12.4f} {warm / n_rows * 1e6:>8.1f} {numpy_time:>14.3f} "
              f"{numpy_time / warm:>18.1f}")


def settling_steps(drive, weights, rate_scale, n_steps):
    """Per row, the last Euler step at which the relu active set changed (numpy Euler)."""
    x = np.zeros_like(drive)
    last = np.zeros(len(drive), dtype=np.int64)
    previous = x > 0
    weights_t = weights.T.copy()
    for step in range(1, int(n_steps.max()) + 1):
        running = step <= n_steps
        x[running] += rate_scale * (np.maximum(x[running], 0.0) @ weights_t + drive[running]
                                    - x[running])
        active = x > 0
        last[running & np.any(active != previous, axis=1)] = step
        previous = active
    return last


def methods_benchmark(n_rows, repeats):
    """method="anderson" and "active_set" against method="euler" on the soft winner-take-all benchmark."""
    network = soft_wta(n_partitions=6, units_per_partition=16, n_inhibitory=8, random_state=0)
    U = np.random.default_rng(0).uniform(0.0, 1.0, size=(n_rows, 6))
    results, seconds, first_call = {}, {}, {}
    for method in ("euler", "anderson", "active_set"):
        rnn = RecurrentFixedPointTransformer(network=network, dt=0.1, tol=1e-6, method=method)
        rnn.fit(U)
        start = time.perf_counter()
        rnn.solve(U[:10])
        first_call[method] = time.perf_counter() - start
        results[method] = rnn.solve(U)
        seconds[method] = best_time(lambda rnn=rnn: rnn.solve(U), repeats)
    euler = results["euler"]
    print(f"\nmethods on the soft winner-take-all benchmark ({network.n_units} units, {n_rows} rows, "
          f"tol 1e-6, warm, best of {repeats}; first call = compilation + 10 rows)")
    print(f"{'method':<10} {'seconds':>9} {'ratio':>7} {'first call':>11} {'median steps':>13} "
          f"{'mean steps':>11} {'converged':>10} {'max |out - euler|':>18} {'max residual':>13}")
    for method, result in results.items():
        deviation = np.abs(result.outputs - euler.outputs).max()
        print(f"{method:<10} {seconds[method]:>9.3f} {seconds['euler'] / seconds[method]:>7.2f} "
              f"{first_call[method]:>10.1f}s {int(np.median(result.n_steps)):>13} "
              f"{result.n_steps.mean():>11.1f} {int(result.converged.sum()):>10} "
              f"{deviation:>18.2e} {result.residual.max():>13.1e}")
    for method in ("anderson", "active_set"):
        print(f"{method}: status equal to euler's on {np.mean(results[method].status == euler.status):.1%} "
              "of rows")
    # The bound on any method that follows Euler's trajectory until the active set is final.
    rnn = RecurrentFixedPointTransformer(network=network, dt=0.1, tol=1e-6).fit(U)
    settled = settling_steps(U @ rnn.input_weights_.T + rnn.bias_, rnn.weights_,
                             rnn.dt / rnn.tau_, euler.n_steps)
    print(f"active set final after {np.median(settled):.0f} Euler steps (median), {settled.mean():.1f} "
          f"(mean), {np.percentile(settled, 90):.0f} (90th percentile): a method that follows Euler "
          f"until then takes at least {settled.mean() + 1:.1f} steps per row on average, at most "
          f"{euler.n_steps.mean() / (settled.mean() + 1):.1f}x fewer than euler's {euler.n_steps.mean():.1f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short run: 1,000 rows, fewer repeats")
    parser.add_argument("--scaling", action="store_true",
                        help="add cost vs N for N = 50 ... 1000 and time vs number of rows")
    parser.add_argument("--methods", action="store_true",
                        help="add method='anderson' and method='active_set' against method='euler'")
    parser.add_argument("--methods-only", action="store_true", help="only the methods table")
    parser.add_argument("--approximator", action="store_true",
                        help="add the approximator against MLPRegressor (bench_feedforward.py, "
                        "one BLAS thread)")
    parser.add_argument("--all", action="store_true",
                        help="everything in one run: --scaling --methods --approximator")
    args = parser.parse_args()
    if args.all:
        args.scaling = args.methods = args.approximator = True
    n_rows = 1000 if args.quick else 5000
    repeats = 2 if args.quick else 5
    if args.methods_only:
        methods_benchmark(n_rows, repeats=3)
        return
    main_benchmark(n_partitions=6, n_rows=n_rows, n_sample=5 if args.quick else 20, repeats=repeats)
    if args.scaling:
        scaling_benchmark([3, 6, 12, 25, 60], n_rows=1000 if args.quick else 2000, repeats=2)
        rows_benchmark([10, 100, 1000, 10_000] + ([] if args.quick else [50_000]), repeats=2)
    if args.methods:
        methods_benchmark(n_rows, repeats=3)
    if args.approximator:
        import bench_feedforward  # the sibling script; run as python benchmarks/...

        print()
        with threadpool_limits(limits=1, user_api="blas"):
            bench_feedforward.run(argparse.Namespace(quick=args.quick, threads=1))


if __name__ == "__main__":
    main()
