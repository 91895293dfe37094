"""The layers' inputs kept through the Hebbian phase (``hebbkit.engine.front.FrontCache``)
against computing them again, on real MNIST images.

The recipe's network (as initialised, at ``--precision``) runs the front of every layer's
epoch for ``--images`` training images (batches in a shuffled order) as a run does: with the
cache (layer 2's epoch computes layer 1 and writes the rows, layer 3's reads them, runs layer
2 alone and writes them back), and without it (each epoch runs every block in front of its
layer). Then the training images' features both ways. Each timed for ``--rounds``
alternating rounds, best of each printed; the cached and computed inputs and features must
be the same bits.

    python benchmarks/front_cache.py [--recipe recipes/mnist_softhebb.toml] [--images 6000]
        [--rounds 3] [--precision bf16-auto] [--data-root data] [--threads N]
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import torch

from hebbkit.config.recipe import load_recipe
from hebbkit.data import to_float
from hebbkit.engine.allocator import keep_freed_memory
from hebbkit.engine.front import FrontCache
from hebbkit.engine.network import HebbianNetwork
from hebbkit.engine.progress import QuietProgress
from hebbkit.engine.splits import load_splits
from hebbkit.engine.training import extract_features
from hebbkit.plugins import get_registry

CPU = torch.device("cpu")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="recipes/mnist_softhebb.toml")
    parser.add_argument("--images", type=int, default=6000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--precision", default="bf16-auto", choices=["fp32", "bf16", "bf16-auto"])
    parser.add_argument("--data-root", default="data")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    keep_freed_memory()  # as a run does
    registry = get_registry()
    recipe = load_recipe(args.recipe, [f"data.train_subset={args.images}"], registry)
    splits = load_splits(recipe.data, registry, Path(args.data_root), download=False)
    images = splits.train.images
    network = HebbianNetwork.from_recipe(recipe, images.shape[1], registry).eval()
    network.set_precision(args.precision)
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    batches = [order[start : start + args.batch] for start in range(0, len(images), args.batch)]
    last = len(network.layers) - 1

    def epoch_fronts(front: FrontCache | None) -> tuple[list[float], FrontCache | None]:
        """Seconds of each layer's epoch front (layers 2 to last), and the filled cache."""
        seconds = []
        for layer in range(1, last + 1):
            began = time.perf_counter()
            for index in batches:

                def batch(index: torch.Tensor = index) -> torch.Tensor:
                    return to_float(images[index], CPU)

                if front is None:
                    network(batch(), upto=layer)
                else:
                    front.inputs(network, layer, index, batch)
            seconds.append(time.perf_counter() - began)
            if front is not None:
                front.layer = layer
        return seconds, front

    def features(front: FrontCache | None) -> tuple[float, torch.Tensor]:
        began = time.perf_counter()
        values = extract_features(
            network, images, torch.float32, CPU, QuietProgress(), "features", front=front
        )
        return time.perf_counter() - began, values

    fronts: dict[str, list[list[float]]] = {"computed": [], "cached": []}
    extracted: dict[str, list[float]] = {"computed": [], "cached": []}
    with torch.no_grad():
        for _ in range(args.rounds):
            seconds, _ = epoch_fronts(None)
            fronts["computed"].append(seconds)
            cache = FrontCache.allocate(network, tuple(images.shape[1:]), len(images), CPU)
            cache.storage.fill_(0)  # fault its pages in first, as a run does in the background
            seconds, front = epoch_fronts(cache)
            fronts["cached"].append(seconds)
            for index in batches:
                computed = network(to_float(images[index], CPU), upto=last)
                if not torch.equal(front.read(last, index), computed):
                    sys.exit("the cached inputs differ from the computed ones")
            seconds, a = features(None)
            extracted["computed"].append(seconds)
            seconds, b = features(front)
            extracted["cached"].append(seconds)
            if not torch.equal(a, b):
                sys.exit("the features read from the front cache differ from the computed ones")
    size = front.bytes
    print(
        f"{args.recipe}, {args.precision}, {len(images)} MNIST training images, batch "
        f"{args.batch}, {torch.get_num_threads()} threads, best of {args.rounds} alternating rounds"
    )
    print(
        f"front cache: rows of {size / len(images) / 1e3:.1f} kB per image, {size / 1e9:.3f} GB; "
        "same bits as computed: yes"
    )
    print("| work over the images | computed s | from the cache s | speed-up |")
    print("| --- | ---: | ---: | ---: |")
    for layer in range(1, last + 1):
        computed = min(r[layer - 1] for r in fronts["computed"])
        cached = min(r[layer - 1] for r in fronts["cached"])
        print(
            f"| layer {layer + 1}'s epoch: its inputs | {computed:.2f} | {cached:.2f} | "
            f"{computed / cached:.2f}× |"
        )
    computed, cached = min(extracted["computed"]), min(extracted["cached"])
    print(f"| features pass | {computed:.2f} | {cached:.2f} | {computed / cached:.2f}× |")
    print(f"\nrerun: python benchmarks/front_cache.py {shlex.join(sys.argv[1:])}".rstrip())


if __name__ == "__main__":
    main()
