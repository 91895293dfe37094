"""Speed of one Hebbian learning step per layer of the 3-layer MNIST preset.

Compares the two ways of computing u = conv(x, W) and Σ y·x: the patch matrix (unfold, then
two GEMMs) and the convolution kernels (forward + weight gradient) that HebbianLayer.learn
uses. Prints images per second, GFLOP/s of the two products, and the command to rerun.

    python benchmarks/hebbian_step.py [--recipe recipes/mnist_softhebb.toml] [--batch 32]
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
import torch.nn.functional as F

from hebbkit.config.recipe import load_recipe
from hebbkit.engine.network import HebbianNetwork
from hebbkit.plugins import get_registry


def timed(function, repeats: int) -> float:
    function()
    started = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - started) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="recipes/mnist_softhebb.toml")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    recipe = load_recipe(args.recipe, [], get_registry())
    network = HebbianNetwork.from_recipe(recipe, 1, get_registry())
    x = torch.rand(args.batch, 1, 28, 28)
    inputs = []
    with torch.no_grad():
        network.eval()
        for layer in network.layers:
            inputs.append(x)
            x = layer(x)
    print(f"threads: {torch.get_num_threads()}, batch {args.batch}")
    print(
        "| layer | GFLOP/batch (u + Σy·x) | unfold+GEMM img/s | conv kernels img/s | speed-up "
        "| learn() img/s | learn() GFLOP/s |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for index, (layer, layer_input) in enumerate(zip(network.layers, inputs, strict=True)):
        layer.train()
        with torch.no_grad():
            padded = layer.pad(layer.bn(layer_input))
            weight = layer.weight_matrix()

            def via_patches(padded=padded, weight=weight, layer=layer):
                patches = layer.patches(padded)
                u = patches @ weight.T
                return layer.compete(u).T @ patches

            def via_conv(padded=padded, layer=layer):
                u_map = F.conv2d(padded, layer.weight)
                u = u_map.permute(0, 2, 3, 1).reshape(-1, u_map.shape[1])
                return layer.correlate(padded, layer.compete(u))

            patches_time = timed(via_patches, args.repeats)
            conv_time = timed(via_conv, args.repeats)
            saved = layer.weight.clone()
            learn_time = timed(
                lambda layer=layer, x=layer_input: layer.learn(x, 0.0, False), args.repeats
            )
            layer.weight.copy_(saved)
            positions = layer.patches(padded).shape[0]
        flops = 2 * 2 * positions * weight.shape[0] * weight.shape[1]
        print(
            f"| {index} | {flops / 1e9:.2f} | {args.batch / patches_time:.0f} | "
            f"{args.batch / conv_time:.0f} | {patches_time / conv_time:.2f}× | "
            f"{args.batch / learn_time:.0f} | {flops / learn_time / 1e9:.0f} |"
        )
    print(f"\nrerun: {' '.join([sys.executable.split('/')[-1], *sys.argv])}")


if __name__ == "__main__":
    main()
