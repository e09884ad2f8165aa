"""What the benchmarks share: timing, the BLAS in use, and the peers' fixed-point loops."""

import time

import numpy as np
from threadpoolctl import threadpool_info


def best_times(functions, repeats):
    """Smallest wall time of each function over ``repeats`` interleaved rounds.

    Interleaving exposes every function to the same background load; the minimum
    is the run least disturbed by it.
    """
    times = np.full(len(functions), np.inf)
    for _ in range(repeats):
        for i, function in enumerate(functions):
            start = time.perf_counter()
            function()
            times[i] = min(times[i], time.perf_counter() - start)
    return times


def best_time(function, repeats):
    """Smallest wall time of ``repeats`` calls of ``function()`` (the least disturbed run)."""
    return best_times([function], repeats)[0]


def blas_description():
    """Which BLAS libraries and kernels are loaded, with their thread counts (threadpoolctl)."""
    return ", ".join(sorted({
        f"{i['internal_api']} {i.get('version')} {i.get('architecture')} ({i['num_threads']} threads)"
        for i in threadpool_info() if i["user_api"] == "blas"
    }))


def numpy_euler(drive, weights, rate_scale, tol, max_steps):
    """Batched numpy Euler for relu networks with the package's stopping rule; converged rows dropped."""
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


def jax_euler():
    """The obvious JAX loop: jitted ``lax.while_loop`` over all rows, float64, converged rows masked.

    Returns ``run(drive, weights, rate_scale, tol, max_steps) -> (states, steps)`` or
    None when JAX is not installed (``pip install jax``: a benchmark-only dependency).
    """
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)

    @jax.jit
    def solve(drive, weights_t, rate_scale, tol, max_steps):
        def cond(carry):
            _, done, _, step = carry
            return (step <= max_steps) & ~jnp.all(done)

        def body(carry):
            x, done, steps, step = carry
            g = jnp.maximum(x, 0.0) @ weights_t + drive - x
            done = done | (jnp.max(jnp.abs(g), axis=1) <= tol) | (step == max_steps)
            x = jnp.where(done[:, None], x, x + rate_scale * g)
            steps = jnp.where(done, steps, steps + 1)
            return x, done, steps, step + 1

        start = (jnp.zeros_like(drive), jnp.zeros(drive.shape[0], dtype=bool),
                 jnp.zeros(drive.shape[0], dtype=jnp.int64), 0)
        x, _, steps, _ = jax.lax.while_loop(cond, body, start)
        return x, steps

    def run(drive, weights, rate_scale, tol, max_steps):
        x, steps = solve(jnp.asarray(drive), jnp.asarray(weights.T), jnp.asarray(rate_scale), tol,
                         max_steps)
        return np.asarray(x.block_until_ready()), np.asarray(steps)

    return run


def jax_gemm_rate(n_rows, n_units, repeats=5):
    """JAX's (XLA's) best float64 matrix-product rate (flop/s) for (n_rows x N) @ (N x N), or None."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    rng = np.random.default_rng(0)
    a = jnp.asarray(rng.standard_normal((n_rows, n_units)))
    b = jnp.asarray(rng.standard_normal((n_units, n_units)))
    product = jax.jit(lambda a, b: a @ b)
    product(a, b).block_until_ready()
    inner = max(1, int(2e9 / (2 * n_rows * n_units**2)))

    def run():
        for _ in range(inner):
            product(a, b).block_until_ready()

    return inner * 2 * n_rows * n_units**2 / best_time(run, repeats)
