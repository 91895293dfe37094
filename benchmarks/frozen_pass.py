"""Where the frozen network's forward pass spends its time, per layer of a recipe.

The features pass (every image through the learned network) and the front of a run's
Hebbian step (the batch through the frozen layers before the learning one) are this pass.
For each layer it times, on one batch: the products (``u = W·x`` as the layer computes it),
the activation (in place over ``u`` where it offers that, as the forward pass runs it) and
the pooling, then the whole layer's forward; prints milliseconds per batch, each part's
share of the layer, the products' GFLOP/s and the elementwise parts' GB/s (one read and one
write of ``u``, a lower bound), beside this machine's limits measured in the same run
(``machine_limits.py``).

    python benchmarks/frozen_pass.py [--recipe recipes/mnist_zero.toml] [--batch 32]
        [--repeats 10] [--threads N]
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import torch
from layer_bench import layer_arguments, recipe_network
from machine_limits import best_of, best_seconds, describe, machine_limits

from hebbkit.engine.network import HebbianLayer


def activation_seconds(layer: HebbianLayer, u: torch.Tensor, repeats: int) -> float:
    """The activation as the forward pass runs it: in place over ``u`` where the activation
    offers it (timed on a copy, less the copy's own time), else into a fresh output."""
    cpu = torch.device("cpu")
    in_place = getattr(layer.activation, "in_place", None)
    if in_place is None:
        return best_seconds(lambda: layer.activation(u), cpu, repeats)
    work = u.clone()
    copy = best_seconds(lambda: work.copy_(u), cpu, repeats)
    return best_seconds(lambda: in_place(work.copy_(u)), cpu, repeats) - copy


def main() -> None:
    args = layer_arguments(__doc__.splitlines()[0], "recipes/mnist_zero.toml").parse_args()
    network, x = recipe_network(args)
    cpu = torch.device("cpu")
    limits = machine_limits(cpu)
    rows = []
    with torch.no_grad():
        for index, layer in enumerate(network.layers):
            u = layer.preactivation(x)
            y = layer.activation(u)
            products = best_seconds(
                lambda layer=layer, x=x: layer.preactivation(x), cpu, args.repeats
            )
            activation = activation_seconds(layer, u, args.repeats)
            pooling = best_seconds(lambda layer=layer, y=y: layer.pool(y), cpu, args.repeats)
            whole = best_seconds(lambda layer=layer, x=x: layer(x), cpu, args.repeats)
            flops = 2 * u.numel() * layer.fan_in
            rows.append((index, layer, u, flops, products, activation, pooling, whole))
            x = layer(x)
    limits = best_of(limits, machine_limits(cpu))
    print(f"threads: {torch.get_num_threads()}, batch {args.batch}, recipe {args.recipe}")
    print(f"limits (best of before and after): {describe(limits)}")
    print(
        "| layer | u per batch | products ms (GFLOP/s) | activation ms (GB/s) "
        "| pooling ms | layer forward ms | activation share |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for index, layer, u, flops, products, activation, pooling, whole in rows:
        shape = "×".join(map(str, layer.weight.shape[1:]))
        moved = 2 * u.numel() * u.element_size()
        print(
            f"| {index + 1} ({layer.weight.shape[0]} × {shape}) | {'×'.join(map(str, u.shape))} "
            f"| {1e3 * products:.1f} ({flops / products / 1e9:.0f}) "
            f"| {1e3 * activation:.1f} ({moved / activation / 1e9:.1f}) "
            f"| {1e3 * pooling:.1f} | {1e3 * whole:.1f} "
            f"| {100 * activation / whole:.0f}% |"
        )
    print(f"\nrerun: {shlex.join([Path(sys.executable).name, *sys.argv])}")


if __name__ == "__main__":
    main()
