"""ReLU(x)^p, the power at the end of the triangle and RePU activations: torch's ``pow`` against
the ``exp2(p · log2(·))`` path the activations take on CPUs for fractional powers.

For each layer of a recipe whose activation has a fractional ``power``, on one batch of the
layer's own maps (the triangle's input ``u − mean over channels of u``, from random images
through the recipe's network as initialised): milliseconds per batch of both ways, the
speed-up, GB/s (one read and one write of the maps, a lower bound), and the error against a
float64 ``pow`` of the same values: largest relative error, in float32 ulps, over the results
above float32's smallest normal number, and whether every rectified zero stays exactly zero.

    python benchmarks/relu_power.py [--recipe recipes/mnist_softhebb.toml] [--batch 32]
        [--repeats 10] [--threads N]
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import torch
from hebbkit_softhebb.activations import relu_power_
from layer_bench import layer_arguments, recipe_network
from machine_limits import best_seconds

from hebbkit.config.recipe import load_recipe
from hebbkit.plugins import get_registry

ULP_AT_ONE = torch.finfo(torch.float32).eps


def worst_ulps(result: torch.Tensor, reference: torch.Tensor) -> float:
    """The largest error of ``result`` in ulps of float32 at the float64 ``reference`` value
    (results at or below the smallest normal float32 left out: their ulp is fixed)."""
    normal = reference > torch.finfo(torch.float32).tiny
    reference = reference[normal]
    ulp = ULP_AT_ONE * torch.exp2(torch.floor(torch.log2(reference)))
    return ((result[normal].double() - reference).abs() / ulp).max().item()


def time_both(maps: torch.Tensor, power: float, repeats: int) -> tuple[float, float]:
    """Seconds of torch's ``pow`` and of ``relu_power_`` on ``maps``, each the best of
    ``repeats`` less the copy that restores the maps before every call."""
    cpu = torch.device("cpu")
    work = maps.clone()
    copy = best_seconds(lambda: work.copy_(maps), cpu, repeats)
    with_pow = best_seconds(lambda: work.copy_(maps).relu_().pow_(power), cpu, repeats)
    fast = best_seconds(lambda: relu_power_(work.copy_(maps), power), cpu, repeats)
    return with_pow - copy, fast - copy


def main() -> None:
    args = layer_arguments(__doc__.splitlines()[0], "recipes/mnist_softhebb.toml").parse_args()
    network, x = recipe_network(args)
    recipe = load_recipe(args.recipe, [], get_registry())
    rows = []
    with torch.no_grad():
        for index, (layer, config) in enumerate(zip(network.layers, recipe.layers, strict=True)):
            u = layer.preactivation(x)
            x = layer(x)
            power = getattr(config.activation, "power", None)
            if power is None or float(power).is_integer():
                continue
            maps = u - u.mean(dim=1, keepdim=True)
            reference = maps.double().relu().pow(power)
            pow_result = maps.clone().relu_().pow_(power)
            fast_result = relu_power_(maps.clone(), power)
            zeros_kept = bool((fast_result[reference == 0] == 0).all())
            pow_seconds, fast_seconds = time_both(maps, power, args.repeats)
            rows.append(
                (
                    index,
                    power,
                    maps,
                    pow_seconds,
                    fast_seconds,
                    worst_ulps(pow_result, reference),
                    worst_ulps(fast_result, reference),
                    zeros_kept,
                )
            )
    print(f"threads: {torch.get_num_threads()}, batch {args.batch}, recipe {args.recipe}")
    print(
        "| layer | power | maps per batch | zeros | torch pow ms (GB/s) | exp2·log2 ms (GB/s) "
        "| speed-up | worst ulps pow / exp2·log2 | zeros stay zero |"
    )
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for index, power, maps, pow_s, fast_s, pow_ulps, fast_ulps, zeros_kept in rows:
        moved = 2 * maps.numel() * maps.element_size()
        print(
            f"| {index + 1} | {power} | {'×'.join(map(str, maps.shape))} "
            f"| {(maps <= 0).float().mean().item():.0%} "
            f"| {1e3 * pow_s:.1f} ({moved / pow_s / 1e9:.1f}) "
            f"| {1e3 * fast_s:.1f} ({moved / fast_s / 1e9:.1f}) | {pow_s / fast_s:.2f}× "
            f"| {pow_ulps:.1f} / {fast_ulps:.1f} | {'yes' if zeros_kept else 'NO'} |"
        )
    print("(each time is the best of the repeats, less the copy that restores the maps)")
    print(f"\nrerun: {shlex.join([Path(sys.executable).name, *sys.argv])}")


if __name__ == "__main__":
    main()
