"""Speed of one Hebbian learning step per layer of a recipe, by product path and precision.

For every layer, fp32 and bf16, times the two matrix products of a step (u = W·x and Σ y·x)
computed from the channels-last patch matrix (PatchProducts: a strided copy, two GEMMs) and
with the convolution kernels (ConvProducts: forward and weight gradient), then a whole
``HebbianLayer.learn`` step with the path the layer picks (``use_patches``), and the pass of
the batch through the frozen layers in front that a run's step adds (same precision). Prints
images per second, GFLOP/s and the share of this machine's GEMM limit for the dtype, measured
in the same run (``machine_limits.py``), and the command to rerun. The best of ``--repeats``
timings is kept (the least disturbed by other load on a shared machine).

    python benchmarks/hebbian_step.py [--recipe recipes/mnist_softhebb.toml] [--batch 32]
        [--repeats 10] [--threads N] [--precision fp32 bf16]

``--precision fp32`` skips bf16 where the CPU only emulates it (minutes per wide layer).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import torch
from layer_bench import layer_arguments, recipe_network
from machine_limits import best_of, best_seconds, describe, machine_limits

from hebbkit.engine.products import ConvProducts, PatchProducts, use_patches, weight_rows

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}


def main() -> None:
    parser = layer_arguments(__doc__.splitlines()[0], "recipes/mnist_softhebb.toml")
    parser.add_argument(
        "--precision", nargs="+", choices=list(PRECISIONS), default=list(PRECISIONS)
    )
    args = parser.parse_args()
    network, images = recipe_network(args)
    cpu = torch.device("cpu")
    limits = machine_limits(cpu)
    x = images
    inputs = []
    with torch.no_grad():
        for layer in network.layers:
            inputs.append(x)
            x = layer(x)
    rows = []
    for index, (layer, layer_input) in enumerate(zip(network.layers, inputs, strict=True)):
        for precision in args.precision:
            dtype = PRECISIONS[precision]
            layer.compute_dtype = dtype
            with torch.no_grad():
                layer.train()
                padded = layer.padded_input(layer_input)
                weight = layer.weight.to(dtype)

                def via_patches(padded=padded, weight=weight, layer=layer):
                    products = PatchProducts(padded, weight_rows(weight), layer.geometry)
                    return products.correlate(layer.compete(products.u))

                def via_conv(padded=padded, weight=weight, layer=layer):
                    products = ConvProducts(padded, weight, layer.geometry)
                    return products.correlate(layer.compete(products.u))

                patches = best_seconds(via_patches, cpu, args.repeats)
                conv = best_seconds(via_conv, cpu, args.repeats)
                saved = layer.weight.clone()
                learn = best_seconds(
                    lambda layer=layer, x=layer_input: layer.learn(x, 0.0, False), cpu, args.repeats
                )
                layer.weight.copy_(saved)
                layer.eval()
                for before in network.layers[:index]:
                    before.compute_dtype = dtype
                # a run's step also passes the batch through the frozen layers in front
                frozen = best_seconds(
                    lambda index=index: network(images, upto=index), cpu, args.repeats
                )
                chosen = "patches" if use_patches(padded, layer.fan_in, layer.geometry) else "conv"
                positions = PatchProducts(padded, weight_rows(weight), layer.geometry).u.shape[0]
            flops = 2 * 2 * positions * layer.weight.shape[0] * layer.fan_in
            rows.append((index, layer, precision, flops, patches, conv, learn, chosen, frozen))
    limits = best_of(limits, machine_limits(cpu))
    print(f"threads: {torch.get_num_threads()}, batch {args.batch}, recipe {args.recipe}")
    print(f"limits (best of before and after): {describe(limits)}")
    print(
        "| layer | precision | GFLOP/batch (u + Σy·x) | patch GEMMs img/s | conv kernels img/s "
        "| learn() path | learn() img/s | learn() GFLOP/s | % of GEMM limit "
        "| frozen layers ms/batch | run step img/s |"
    )
    print("| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for index, layer, precision, flops, patches, conv, learn, chosen, frozen in rows:
        shape = "×".join(map(str, layer.weight.shape[1:]))
        rate = flops / learn / 1e9
        share = 100 * rate / limits[f"gemm_{precision}"]
        print(
            f"| {index + 1} ({layer.weight.shape[0]} × {shape}) | {precision} | {flops / 1e9:.2f} "
            f"| {args.batch / patches:.0f} | {args.batch / conv:.0f} | {chosen} "
            f"| {args.batch / learn:.0f} | {rate:.0f} | {share:.0f}% "
            f"| {1e3 * frozen:.1f} | {args.batch / (frozen + learn):.0f} |"
        )
    print(f"\nrerun: {shlex.join([Path(sys.executable).name, *sys.argv])}")


if __name__ == "__main__":
    main()
