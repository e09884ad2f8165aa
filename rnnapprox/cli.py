"""Command-line entry point: fixed points of a built-in soft winner-take-all network.

A first version of the main job: it builds the soft winner-take-all network,
computes its fixed points for random inputs and prints the convergence summary.
"""

import argparse
import time

import numpy as np

from ._recurrent import RecurrentFixedPointTransformer
from .networks import soft_wta


def build_parser():
    parser = argparse.ArgumentParser(
        prog="rnnapprox",
        description="Compute fixed points of a soft winner-take-all rate network for random inputs.",
    )
    parser.add_argument("--n-samples", type=int, default=2000, help="number of random input rows (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of network and inputs (default 0)")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    network = soft_wta(random_state=args.seed)
    n_partitions = network.input_weights.shape[1]
    inputs = np.random.default_rng(args.seed).uniform(0.0, 1.0, size=(args.n_samples, n_partitions))
    transformer = RecurrentFixedPointTransformer(network=network).fit(inputs)
    start = time.perf_counter()
    result = transformer.solve(inputs)
    elapsed = time.perf_counter() - start
    print(f"soft winner-take-all: {network.n_units} units, {args.n_samples} input rows")
    print(result.summary())
    print(f"time: {elapsed:.2f} s including numba compilation on first use")
    return 0
