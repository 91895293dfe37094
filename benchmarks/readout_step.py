"""Where a read-out step's time goes: the engine's ``ReadoutStep`` + Adam on cached features of
a recipe's width, per operator (torch's profiler), against this machine's limits.

The features are random half-precision rows of the width the recipe's frozen network gives
(``mnist_zero``: 28 800); a step's bytes are counted from what it must read and write (the
gathered rows, their float32 copy read by both products, the weights, gradients and Adam's
moments), so the printed GB/s says how far the step is from memory speed. Last, the dropout
mask of one step alone, and its table lookup against the same lookup over 2-byte rows.

    python benchmarks/readout_step.py [--recipe recipes/mnist_zero.toml] [--rows 20000]
        [--steps 400] [--threads N]
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time

import torch
from machine_limits import best_seconds, describe, machine_limits
from torch.profiler import ProfilerActivity, profile

from hebbkit.config.recipe import load_recipe
from hebbkit.engine.network import HebbianNetwork
from hebbkit.engine.readout import INT_VIEW, BitDropout, ReadoutStep, adam, readout_model
from hebbkit.plugins import get_registry


def feature_width(recipe_path: str) -> tuple[int, int, float]:
    """Features per image of the recipe's frozen network, read-out batch, dropout."""
    registry = get_registry()
    recipe = load_recipe(recipe_path, [], registry)
    network = HebbianNetwork.from_recipe(recipe, 1, registry)
    with torch.no_grad():
        width = network(torch.zeros(1, 1, 28, 28)).flatten(1).shape[1]
    return width, recipe.readout.batch_size, recipe.readout.dropout


def mask_lookup(dropout: BitDropout, count: int) -> str:
    """The dropout mask of one step: its byte-to-mask table lookup with the table's rows as
    one wide element each (the engine's) against rows of 2-byte elements."""
    cpu = torch.device("cpu")
    symbols = torch.randint(0, 256, (count * dropout.bits // 8,), generator=torch.Generator())
    narrow = dropout.table.view(dropout.int_dtype).view(256, -1)
    wide_ms = 1e3 * best_seconds(lambda: dropout.table.index_select(0, symbols), cpu, 50)
    narrow_ms = 1e3 * best_seconds(lambda: narrow.index_select(0, symbols), cpu, 50)
    whole_ms = 1e3 * best_seconds(lambda: dropout.mask(count), cpu, 50)
    return (
        f"dropout mask of a step: {whole_ms:.3f} ms, of which the table lookup "
        f"{wide_ms:.3f} ms with {dropout.table.dtype} rows, against {narrow_ms:.3f} ms "
        f"with rows of {narrow.shape[1]} {dropout.int_dtype} ({narrow_ms / wide_ms:.1f}×)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="recipes/mnist_zero.toml")
    parser.add_argument("--rows", type=int, default=20_000, help="cached feature rows")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cpu = torch.device("cpu")
    width, batch, dropout = feature_width(args.recipe)
    generator = torch.Generator().manual_seed(0)
    features = torch.rand(args.rows, width, generator=generator).to(torch.float16)
    labels = torch.randint(0, 10, (args.rows,), generator=generator)
    model = readout_model(width, 10, dropout, cpu)
    bits = BitDropout(dropout, 1, cpu, INT_VIEW[2]) if dropout > 0 else None
    step = ReadoutStep(features, labels, model[1], bits, batch)
    optimizer = adam(model, 1e-3, 0.0)
    order = torch.randperm(args.rows, generator=generator)
    steps = min(args.steps, args.rows // batch)

    def run(count: int) -> None:
        for index in range(count):
            step(order[index * batch : (index + 1) * batch])
            optimizer.step()

    run(50)
    started = time.perf_counter()
    run(steps)
    seconds = (time.perf_counter() - started) / steps
    parameters = 10 * width + 10
    # rows gathered (fp16) + float32 copy written, read by both products; weight, gradient and
    # Adam's two moments read and written by the optimizer
    moved = batch * width * (2 + 4 + 4 + 4) + parameters * 4 * 7
    limits = machine_limits(cpu)
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        run(min(200, steps))
    print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))
    print(f"{args.recipe}: {width} features, batch {batch}, dropout {dropout}")
    print(
        f"{seconds * 1e3:.2f} ms per step ({torch.get_num_threads()} threads), "
        f"{moved / 1e6:.1f} MB moved per step: {moved / seconds / 1e9:.1f} GB/s; "
        f"this machine: {describe(limits)}"
    )
    print(f"a 60 000-image epoch: {seconds * 60_000 / batch:.1f} s")
    if bits is not None and bits.bits < 16:
        print(mask_lookup(bits, batch * width))
    print("rerun: python benchmarks/readout_step.py " + shlex.join(sys.argv[1:]))


if __name__ == "__main__":
    main()
