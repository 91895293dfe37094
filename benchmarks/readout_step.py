"""Where a read-out step's time goes: the engine's ``ReadoutStep`` + Adam on cached features of
a recipe's width, per operator (torch's profiler), against this machine's limits.

The features are random half-precision rows of the width the recipe's frozen network gives
(``mnist_zero``: 28 800); a step's bytes are counted from what it must read and write (the
gathered rows, their float32 copy read by both products, the weights, gradients and Adam's
moments), so the printed GB/s says how far the step is from memory speed. The step runs with
its products split into blocks of the feature axis (the engine's ``feature_blocks``) and as
one product each, alternating (``--rounds``), the best round of each kept. Last, the dropout
mask of one step alone, and its table lookup against the same lookup over 2-byte rows; and
``accuracy()`` on 10 000 cached rows against a fresh float32 copy per batch of 1 024 rows.

    python benchmarks/readout_step.py [--recipe recipes/mnist_zero.toml] [--rows 20000]
        [--steps 400] [--rounds 3] [--threads N]
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Callable

import torch
from machine_limits import best_seconds, describe, machine_limits
from torch.profiler import ProfilerActivity, profile

from hebbkit.config.recipe import load_recipe
from hebbkit.engine.network import HebbianNetwork
from hebbkit.engine.readout import (
    EVAL_BYTES,
    INT_VIEW,
    BitDropout,
    ReadoutStep,
    accuracy,
    adam,
    feature_blocks,
    readout_model,
)
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


def evaluation_times(features: torch.Tensor, labels: torch.Tensor, rows: int) -> str:
    """``accuracy()`` on ``rows`` cached rows against a fresh float32 copy per 1 024 rows."""
    model = readout_model(features.shape[1], 10, 0.0, torch.device("cpu")).eval()
    features, labels = features[:rows], labels[:rows]

    @torch.no_grad()
    def fresh_copies() -> None:
        for start in range(0, rows, 1024):
            model(features[start : start + 1024].float()).argmax(1)

    engine = min(seconds_of(lambda: accuracy(model, features, labels)) for _ in range(3))
    fresh = min(seconds_of(fresh_copies) for _ in range(3))
    return (
        f"evaluation of {rows} rows: {engine * 1e3:.0f} ms (float32 buffer of "
        f"{max(1, EVAL_BYTES // (4 * features.shape[1]))} rows), against {fresh * 1e3:.0f} ms "
        f"with a fresh float32 copy per 1 024 rows ({fresh / engine:.1f}×)"
    )


def seconds_of(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def seconds_per_step(
    features: torch.Tensor, labels: torch.Tensor, dropout: float, batch: int, blocks: int
) -> Callable[[int], float]:
    """A runner of ``count`` steps (+ Adam) with the products in ``blocks``: seconds per step."""
    cpu = torch.device("cpu")
    model = readout_model(features.shape[1], 10, dropout, cpu)
    bits = BitDropout(dropout, 1, cpu, INT_VIEW[2]) if dropout > 0 else None
    step = ReadoutStep(features, labels, model[1], bits, batch, blocks=blocks)
    optimizer = adam(step.parameters(), 1e-3, 0.0)
    order = torch.randperm(features.shape[0], generator=torch.Generator().manual_seed(0))

    def run(count: int) -> float:
        started = time.perf_counter()
        for index in range(count):
            step(order[index * batch : (index + 1) * batch])
            optimizer.step()
        return (time.perf_counter() - started) / max(1, count)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="recipes/mnist_zero.toml")
    parser.add_argument("--rows", type=int, default=20_000, help="cached feature rows")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3, help="alternating timings of each")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cpu = torch.device("cpu")
    width, batch, dropout = feature_width(args.recipe)
    generator = torch.Generator().manual_seed(0)
    features = torch.rand(args.rows, width, generator=generator).to(torch.float16)
    labels = torch.randint(0, 10, (args.rows,), generator=generator)
    steps = min(args.steps, args.rows // batch)
    blocks = feature_blocks(width)
    runners = {
        blocks: seconds_per_step(features, labels, dropout, batch, blocks),
        1: seconds_per_step(features, labels, dropout, batch, 1),
    }
    best = dict.fromkeys(runners, float("inf"))
    for runner in runners.values():
        runner(50)
    for _ in range(args.rounds):
        for count, runner in runners.items():
            best[count] = min(best[count], runner(steps))
    seconds = best[blocks]
    parameters = 10 * width + 10
    # rows gathered (fp16) + float32 copy written, read by both products; weight, gradient and
    # Adam's two moments read and written by the optimizer
    moved = batch * width * (2 + 4 + 4 + 4) + parameters * 4 * 7
    limits = machine_limits(cpu)
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        runners[blocks](min(200, steps))
    print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))
    print(f"{args.recipe}: {width} features, batch {batch}, dropout {dropout}")
    print(
        f"{seconds * 1e3:.2f} ms per step ({torch.get_num_threads()} threads), "
        f"{moved / 1e6:.1f} MB moved per step: {moved / seconds / 1e9:.1f} GB/s; "
        f"this machine: {describe(limits)}"
    )
    if blocks > 1:
        print(
            f"products in {blocks} blocks of {width // blocks} features: {seconds * 1e3:.2f} ms "
            f"per step, as one product each: {best[1] * 1e3:.2f} ms ({best[1] / seconds:.2f}×; "
            f"best of {args.rounds} alternating rounds of {steps} steps)"
        )
    print(f"a 60 000-image epoch: {seconds * 60_000 / batch:.1f} s")
    print(evaluation_times(features, labels, min(10_000, args.rows)))
    if dropout > 0:
        bits = BitDropout(dropout, 1, cpu, INT_VIEW[2])
        if bits.bits < 16:
            print(mask_lookup(bits, batch * width))
    print("rerun: python benchmarks/readout_step.py " + shlex.join(sys.argv[1:]))


if __name__ == "__main__":
    main()
