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
from _common import best_time, best_times, blas_description, jax_euler, jax_gemm_rate, numpy_euler
from scipy.integrate import solve_ivp
from scipy.optimize import root
from threadpoolctl import threadpool_limits

from rnnapprox import RecurrentFixedPointTransformer
from rnnapprox.networks import soft_wta


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
    print(f"BLAS: {blas_description()}")
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


#: The two benchmark sizes of the JAX comparison: (label, soft_wta arguments, rows).
PEER_SIZES = [
    ("N=110", dict(n_partitions=6, units_per_partition=17, n_inhibitory=8), 5000),
    ("N=500", dict(n_partitions=20, units_per_partition=24, n_inhibitory=20), 2000),
]
#: (method, precision) of the package compared with the peers.
CONTENDERS = [("euler", "float64"), ("euler", "mixed"), ("anderson", "float64"), ("anderson", "mixed"),
              ("active_set", "float64")]


def peers_benchmark(repeats, sizes=PEER_SIZES):
    """Every method of the package against the obvious JAX loop and numpy, in this one process."""
    run_jax = jax_euler()
    print(f"\nfixed points against the peers (soft winner-take-all, dt 0.1, tol 1e-6; warm, best of "
          f"{repeats}; BLAS: {blas_description()})")
    if run_jax is None:
        print("JAX is not installed (pip install jax): its rows are left out")
    for label, params, n_rows in sizes:
        _peer_table(label, params, n_rows, repeats, run_jax)


def _peer_table(label, params, n_rows, repeats, run_jax):
    network = soft_wta(random_state=0, **params)
    n_units = network.n_units
    U = np.random.default_rng(0).uniform(0.0, 1.0, size=(n_rows, params["n_partitions"]))
    reference = RecurrentFixedPointTransformer(network=network).fit(U)
    euler = reference.solve(U)
    drive = U @ reference.input_weights_.T + reference.bias_
    scale = reference.dt / reference.tau_
    rows = []
    for method, precision in CONTENDERS:
        rnn = RecurrentFixedPointTransformer(network=network, method=method, precision=precision).fit(U)
        result = rnn.solve(U)
        seconds = best_time(lambda rnn=rnn: rnn.solve(U), repeats)
        rows.append((f"rnnapprox {method}, {precision}", seconds, result.outputs, result.n_steps.mean(),
                     np.array_equal(result.status, euler.status)))
    seconds = best_time(lambda: numpy_euler(drive, reference.weights_, scale, 1e-6, 10_000), 1)
    states, steps = numpy_euler(drive, reference.weights_, scale, 1e-6, 10_000)
    rows.append(("numpy batched Euler, float64", seconds, np.maximum(states, 0), steps.mean(), None))
    jax_seconds = None
    if run_jax is not None:
        run_jax(drive, reference.weights_, scale, 1e-6, 10_000)  # compile
        jax_seconds = best_time(lambda: run_jax(drive, reference.weights_, scale, 1e-6, 10_000), repeats)
        states, steps = run_jax(drive, reference.weights_, scale, 1e-6, 10_000)
        rows.append(("JAX jitted lax.while_loop Euler, float64, masked", jax_seconds,
                     np.maximum(states, 0), steps.mean(), None))
    flops = (euler.n_steps.sum() + n_rows) * 2.0 * n_units**2
    rates = {"numpy": gemm_rate(min(n_rows, 4096), n_units, repeats=3)}
    if run_jax is not None:
        rates["JAX"] = jax_gemm_rate(min(n_rows, 4096), n_units, repeats=3)
    best_library = max(rates, key=rates.get)
    limit = flops / rates[best_library]
    rows.append((f"flop limit of euler's steps at {best_library}'s GEMM rate "
                 f"({rates[best_library] / 1e9:.0f} GFLOP/s)", limit, None, None, None))
    peer = jax_seconds if jax_seconds is not None else rows[0][1]
    peer_name = "JAX" if jax_seconds is not None else "euler"
    print(f"\n{label}: {n_units} units, {n_rows} rows, {int(euler.converged.sum())} converged; "
          "GEMM rates " + ", ".join(f"{k} {v / 1e9:.0f} GFLOP/s" for k, v in rates.items()))
    print(f"{'contender':<62} {'seconds':>8} {peer_name + ' / it':>10} {'mean steps':>11} "
          f"{'max |out - euler|':>18} {'status = euler':>15}")
    for name, seconds, outputs, mean_steps, same in rows:
        deviation = "" if outputs is None else f"{np.abs(outputs - euler.outputs).max():.1e}"
        print(f"{name:<62} {seconds:>8.3f} {peer / seconds:>10.2f} "
              f"{'' if mean_steps is None else f'{mean_steps:.1f}':>11} {deviation:>18} "
              f"{'' if same is None else str(same):>15}")


def method_scan(repeats):
    """Each method and precision over euler on soft WTA and random E/I networks, N = 50 ... 1000."""
    from rnnapprox.networks import random_ei_network

    cases = []
    for partitions, rows in ((2, 3000), (6, 3000), (18, 1000), (37, 500), (61, 300)):
        network = soft_wta(n_partitions=partitions, units_per_partition=16,
                           n_inhibitory=max(2, partitions // 2), random_state=0)
        cases.append((f"soft WTA N={network.n_units}", network, partitions, rows))
    for n_exc, rows in ((40, 3000), (90, 3000), (250, 1000), (500, 500), (830, 300)):
        network = random_ei_network(n_exc, 10, spectral_radius=1.1, random_state=0)
        cases.append((f"random E/I N={network.n_units}", network, 10, rows))
    print(f"\ntime over euler's (warm, best of {repeats} interleaved rounds; < 1 is faster) and steps "
          f"per row; BLAS: {blas_description()}")
    names = [f"{m} {p}" for m, p in CONTENDERS[1:]]
    print(f"{'network':<22} {'rows':>5} {'euler s':>8} " + " ".join(f"{n:>20}" for n in names))
    for label, network, n_features, n_rows in cases:
        U = np.random.default_rng(0).uniform(0.0, 1.0, size=(n_rows, n_features))
        solvers = [RecurrentFixedPointTransformer(network=network, method=method, precision=precision,
                                                  random_state=0).fit(U) for method, precision in CONTENDERS]
        steps = [rnn.solve(U).n_steps.mean() for rnn in solvers]  # (also compiles)
        seconds = best_times([lambda rnn=rnn, U=U: rnn.solve(U) for rnn in solvers], repeats)
        euler = seconds[0]
        cells = " ".join(f"{t / euler:>9.2f} ({s:>6.0f})" for t, s in zip(seconds[1:], steps[1:]))
        print(f"{label:<22} {n_rows:>5} {euler:>8.3f} {cells}", flush=True)


STARTUP_SCRIPT = """
import time
start = time.perf_counter()
import numpy as np
from rnnapprox import RecurrentFixedPointTransformer
from rnnapprox.networks import soft_wta
imported = time.perf_counter()
network = soft_wta(n_partitions=6, units_per_partition=17, n_inhibitory=8, random_state=0)
U = np.random.default_rng(0).uniform(0.0, 1.0, size=(1000, 6))
rnn = RecurrentFixedPointTransformer(network=network).fit(U)
begin = time.perf_counter()
rnn.transform(U)
print(imported - start, time.perf_counter() - begin)
"""


def startup_benchmark():
    """A new process's import and first transform: cold (empty numba cache) and warm."""
    import os
    import subprocess
    import sys
    import tempfile

    print("\nnew process, 1,000 rows of the N=110 network (numba cache in a fresh directory)")
    print(f"{'run':<40} {'import s':>9} {'first transform s':>18}")
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        for label in ("cold: compiles, fills the cache", "warm: loads from the cache", "warm again"):
            out = subprocess.run([sys.executable, "-c", STARTUP_SCRIPT], env=env, capture_output=True,
                                 text=True, check=True).stdout.split()
            print(f"{label:<40} {float(out[0]):>9.2f} {float(out[1]):>18.2f}")


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
    parser.add_argument("--peers", action="store_true",
                        help="every method and precision against JAX and numpy at N=110 and N=500")
    parser.add_argument("--peers-only", action="store_true", help="only the peers table")
    parser.add_argument("--method-scan", action="store_true",
                        help="each method over euler on soft WTA and E/I networks, N = 50 ... 1000")
    parser.add_argument("--startup", action="store_true",
                        help="a new process's first transform, cold and with a warm numba cache")
    parser.add_argument("--all", action="store_true",
                        help="everything in one run: --scaling --methods --peers --startup --approximator")
    args = parser.parse_args()
    if args.all:
        args.scaling = args.methods = args.peers = args.method_scan = args.startup = True
        args.approximator = True
    n_rows = 1000 if args.quick else 5000
    repeats = 2 if args.quick else 5
    if args.methods_only:
        methods_benchmark(n_rows, repeats=3)
        return
    if args.peers_only:
        peers_benchmark(repeats=3)
        return
    if args.method_scan and not (args.scaling or args.methods or args.peers or args.all):
        method_scan(repeats=3)
        return
    main_benchmark(n_partitions=6, n_rows=n_rows, n_sample=5 if args.quick else 20, repeats=repeats)
    if args.scaling:
        scaling_benchmark([3, 6, 12, 25, 60], n_rows=1000 if args.quick else 2000, repeats=2)
        rows_benchmark([10, 100, 1000, 10_000] + ([] if args.quick else [50_000]), repeats=2)
    if args.methods:
        methods_benchmark(n_rows, repeats=3)
    if args.peers:
        peers_benchmark(repeats=3)
    if args.method_scan:
        method_scan(repeats=3)
    if args.startup:
        startup_benchmark()
    if args.approximator:
        import bench_feedforward  # the sibling script; run as python benchmarks/...

        print()
        with threadpool_limits(limits=1, user_api="blas"):
            bench_feedforward.run(argparse.Namespace(quick=args.quick, threads=1))


if __name__ == "__main__":
    main()
