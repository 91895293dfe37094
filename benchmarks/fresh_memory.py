"""Fresh memory: what faulting in a run's feature caches costs, and what faulting them in
during the Hebbian phase (``hebbkit.engine.prefault``) saves.

A run allocates its feature caches (the recipe's feature width × the training images, in the
dtype ``readout.feature_dtype = "auto"`` picks, and the same for ``--test-rows`` test images
in theirs) and every page faults in when first written. Two variants, each in its own
process, alternating for ``--rounds`` rounds (median printed):

- ``lazy``: the recipe's first layer learns for ``--steps`` Hebbian steps (batch ``--batch``
  of random images), then the caches are written once (as the features pass does, minus
  its arithmetic), faulting their pages in as it goes;
- ``background``: the same, with the caches allocated before the steps and faulted in by
  ``faulting_in`` while the steps run.

Printed per variant: seconds of the steps, of the write, their sum, and page faults during
the write; the lead line gives the rate at which this machine backs fresh memory (GB/s
of the lazy write).

    python benchmarks/fresh_memory.py [--recipe recipes/mnist_zero.toml] [--rows 60000]
        [--test-rows 10000] [--steps 1000] [--rounds 3] [--batch 32] [--threads N]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import resource
import shlex
import statistics
import sys
import time

import torch
from layer_bench import layer_arguments, recipe_network, worker_or_rounds

from hebbkit.engine.allocator import keep_freed_memory
from hebbkit.engine.prefault import faulting_in
from hebbkit.engine.training import feature_dtype

VARIANTS = ("lazy", "background")


def caches(args: argparse.Namespace, width: int) -> list[torch.Tensor]:
    """The run's caches: training rows and test rows, each in the dtype a run picks."""
    return [
        torch.empty(rows, width, dtype=feature_dtype("auto", rows, width))
        for rows in (args.rows, args.test_rows)
        if rows
    ]


def worker(args: argparse.Namespace) -> None:
    """One process: Hebbian steps, then a write of every cache; prints its figures as JSON."""
    keep_freed_memory()  # as a run does
    network, images = recipe_network(args)
    width = math.prod(network.feature_shape((1, 28, 28)))
    layer = network.layers[0].train()
    with torch.no_grad():
        for _ in range(3):
            layer.learn(images, 0.0, want_output=False)
        started = time.perf_counter()
        tensors = caches(args, width)
        ahead = faulting_in(tensors) if args.worker == "background" else contextlib.nullcontext()
        with ahead:
            for _ in range(args.steps):
                layer.learn(images, 0.0, want_output=False)
            steps = time.perf_counter() - started
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            for tensor in tensors:
                tensor.fill_(1.0)
        write = time.perf_counter() - started - steps
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    gigabytes = sum(t.untyped_storage().nbytes() for t in tensors) / 1e9
    figures = {"steps": steps, "write": write, "total": steps + write}
    print(json.dumps({**figures, "faults": faults, "gb": gigabytes}))


def main() -> None:
    parser = layer_arguments(__doc__.splitlines()[0], "recipes/mnist_zero.toml")
    parser.add_argument("--rows", type=int, default=60000)
    parser.add_argument("--test-rows", type=int, default=10000)
    parser.add_argument("--steps", type=int, default=1000)
    args, runs = worker_or_rounds(parser, __file__, VARIANTS, worker)
    if runs is None:
        return
    own = list(sys.argv[1:])
    median = {
        v: {key: statistics.median(r[key] for r in runs[v]) for key in runs[v][0]} for v in VARIANTS
    }
    lazy, background = median["lazy"], median["background"]
    print(
        f"{args.recipe}: caches of {lazy['gb']:.2f} GB ({args.rows} + {args.test_rows} rows), "
        f"{args.steps} Hebbian steps of layer 1 at batch {args.batch}, "
        f"{torch.get_num_threads()} threads, median of {args.rounds} alternating rounds"
    )
    print(f"fresh memory on this machine: {lazy['gb'] / lazy['write']:.2f} GB/s (the lazy write)")
    print("| variant | steps s | write s | total s | page faults in the write |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, row in median.items():
        print(
            f"| {name} | {row['steps']:.2f} | {row['write']:.2f} | {row['total']:.2f} | "
            f"{row['faults']:.0f} |"
        )
    saved = lazy["total"] - background["total"]
    print(f"saved by faulting in during the steps: {saved:.2f} s")
    print(f"\nrerun: python benchmarks/fresh_memory.py {shlex.join(own)}".rstrip())


if __name__ == "__main__":
    main()
