"""A Hebbian run step per layer with glibc's default malloc thresholds against the ones a run
sets (``hebbkit.engine.allocator.keep_freed_memory``): milliseconds and page faults per step.

Each variant runs in its own process (malloc settings are process-wide), the variants
alternating for ``--rounds`` rounds so that a drifting machine hits both alike; the median
over rounds is printed. A step is what a run does per batch: the batch through the frozen
layers in front, then ``learn()`` on the layer, at the run's product precision.

    python benchmarks/page_faults.py [--recipe recipes/mnist_softhebb.toml] [--batch 32]
        [--steps 20] [--rounds 3] [--precision fp32|bf16|bf16-auto] [--threads N]
"""

from __future__ import annotations

import json
import resource
import shlex
import statistics
import sys
import time

import torch
from layer_bench import layer_arguments, recipe_network, worker_or_rounds

from hebbkit.engine.allocator import keep_freed_memory

VARIANTS = ("glibc default", "kept")


def worker(args) -> None:
    """One process: every layer's run step, with or without the raised thresholds."""
    if args.worker == "kept" and not keep_freed_memory():
        raise SystemExit("this C library has no mallopt thresholds to raise (not glibc)")
    network, images = recipe_network(args)
    network.set_precision(args.precision)
    results = []
    with torch.no_grad():
        for index, layer in enumerate(network.layers):
            layer.train()

            def step(index=index, layer=layer):
                layer.learn(network(images, upto=index), 0.0, want_output=False)

            for _ in range(3):
                step()
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            started = time.perf_counter()
            for _ in range(args.steps):
                step()
            seconds = time.perf_counter() - started
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
            layer.eval()
            results.append({"ms": 1000 * seconds / args.steps, "faults": faults / args.steps})
    print(json.dumps(results))


def main() -> None:
    parser = layer_arguments(__doc__.splitlines()[0], "recipes/mnist_softhebb.toml")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--precision", default="bf16-auto", choices=["fp32", "bf16", "bf16-auto"])
    args, runs = worker_or_rounds(parser, __file__, VARIANTS, worker)
    if runs is None:
        return
    own = list(sys.argv[1:])
    network, _ = recipe_network(args)
    print(
        f"{torch.get_num_threads()} threads, batch {args.batch}, {args.steps} steps per layer, "
        f"median of {args.rounds} alternating rounds, precision {args.precision}"
    )
    print(
        "| layer | glibc default ms/step | page faults/step | kept ms/step | page faults/step "
        "| speed-up |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for index, layer in enumerate(network.layers):
        default, kept = (
            {key: statistics.median(r[index][key] for r in runs[v]) for key in ("ms", "faults")}
            for v in VARIANTS
        )
        shape = "×".join(map(str, layer.weight.shape[1:]))
        print(
            f"| {index + 1} ({layer.weight.shape[0]} × {shape}) | {default['ms']:.1f} | "
            f"{default['faults']:.0f} | {kept['ms']:.1f} | {kept['faults']:.0f} | "
            f"{default['ms'] / kept['ms']:.2f}× |"
        )
    print(f"\nrerun: python benchmarks/page_faults.py {shlex.join(own)}".rstrip())


if __name__ == "__main__":
    main()
