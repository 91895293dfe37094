"""Per phase of a recipe: seconds, work (FLOPs and bytes moved) and the share of this
machine's GEMM and memory-bandwidth limits, measured in the same process, per precision
(fp32, bf16, bf16-auto, or auto: the default, as this machine resolves it).

Runs the recipe end to end (``run_recipe``, as ``hebbkit run`` does) once per precision and
repeat, alternating the precisions so that a changing machine load hits both alike, and
prints the median of each figure. The limits are measured before the first and after the
last run: a square matrix product per dtype (GFLOP/s) and a large copy (GB/s, bytes read +
written), on the same number of threads as the runs.

Work per phase follows from the network's shapes (``layer_shapes``): FLOPs of the matrix
products (u = W·x and Σ y·x while a layer learns, u alone in the frozen passes, the
read-out's forward and weight-gradient products); bytes as one write and one read of every
tensor a phase materialises (patch matrices, u, y, pooled maps, feature rows, the read-out's
batch, mask and float copy, Adam's four tensors), a lower bound on its memory traffic.

    python benchmarks/speed.py recipes/mnist_zero.toml [--precision fp32 bf16 bf16-auto auto]
        [--repeats 1] [--threads N] [--data-root DIR] [--device cpu|cuda] [-s key=value ...]
        [--json FILE]

The lead's figures come from the full recipes (no -s); ``-s data.train_subset=3000 -s
data.test_subset=1000`` gives a quick look.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from machine_limits import GIGA, best_of, describe, machine_limits

from hebbkit.config.recipe import load_recipe
from hebbkit.engine.network import HebbianNetwork
from hebbkit.engine.precision import compute_dtype
from hebbkit.plugins import get_registry
from hebbkit.runs.provenance import hardware
from hebbkit.runs.run import Machine, run_recipe


@dataclass
class LayerShape:
    positions: int  # output positions per image (H·W before pooling)
    fan_in: int
    channels: int
    pooled: int  # pooled outputs per image (H·W after pooling)


def layer_shapes(network: HebbianNetwork, image_shape: tuple[int, ...]) -> list[LayerShape]:
    shapes = []
    x = torch.zeros(1, *image_shape)
    network.eval()
    with torch.no_grad():
        for layer in network.layers:
            u = layer.preactivation(x)
            x = layer.output(u)
            shapes.append(
                LayerShape(u.shape[2] * u.shape[3], layer.fan_in, u.shape[1], x[0, 0].numel())
            )
    return shapes


def forward_work(shape: LayerShape, size: int) -> tuple[float, float]:
    """FLOPs and bytes of one layer's frozen forward pass on one image (``size``: bytes per
    element of the products' inputs)."""
    flops = 2 * shape.positions * shape.fan_in * shape.channels
    data = 2 * shape.positions * shape.fan_in * size  # patch matrix
    data += 2 * shape.positions * shape.channels * 4  # u, activated in place
    data += 2 * shape.pooled * shape.channels * 4  # pooled maps
    return flops, data


def phase_work(
    shapes: list[LayerShape],
    images: dict[str, int],
    batch: int,
    epochs: dict[str, int],
    classes: int,
    sizes: list[int],
    cache_size: int,
) -> dict[str, tuple[float, float, str]]:
    """(FLOPs, bytes, dtype of the products) of every phase; ``sizes``: the element size of
    each layer's product inputs (bf16-auto mixes them)."""
    work: dict[str, tuple[float, float, str]] = {}
    dtypes = ["bf16" if size == 2 else "fp32" for size in sizes]
    hebbian_images = images["hebbian"] * epochs["hebbian"]
    frozen = [forward_work(s, size) for s, size in zip(shapes, sizes, strict=True)]
    for index, (shape, size) in enumerate(zip(shapes, sizes, strict=True)):
        earlier = frozen[:index]
        flops = 4 * shape.positions * shape.fan_in * shape.channels + sum(f for f, _ in earlier)
        data = 2 * shape.positions * shape.fan_in * size + 4 * shape.positions * shape.channels * 4
        data += sum(d for _, d in earlier)
        work[f"hebbian layer {index}"] = (
            flops * hebbian_images,
            data * hebbian_images,
            dtypes[index],
        )
    width = shapes[-1].pooled * shapes[-1].channels
    count = images["train"] + images["test"] + images["validation"]
    # the limit of the layer with the most FLOPs: it dominates the pass
    heaviest = max(range(len(shapes)), key=lambda i: frozen[i][0])
    work["features"] = (
        count * sum(f for f, _ in frozen),
        count * (sum(d for _, d in frozen) + width * cache_size),
        dtypes[heaviest],
    )
    steps = math.ceil(images["train"] / batch) * epochs["readout"]
    step_flops = 4 * batch * width * classes
    # rows from the cache; mask; float copy written once, read by two products; Adam
    step_bytes = batch * width * (3 * cache_size + 3 * 4) + 8 * width * classes * 4
    evaluated = (images["test"] + images["validation"]) * epochs["readout"]
    work["readout"] = (
        steps * step_flops + evaluated * 2 * width * classes,
        steps * step_bytes + evaluated * width * cache_size,
        "fp32",
    )
    return work


class TimingProgress:
    """A progress reporter that keeps wall and CPU seconds per phase group."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    @staticmethod
    def group(description: str) -> str:
        if description.startswith("Hebbian layer "):
            return "hebbian layer " + description.split()[2].rstrip(",")
        if description.startswith("Features"):
            return "features"
        if description.startswith("Read-out"):
            return "readout"
        return description

    @contextlib.contextmanager
    def phase(self, description: str, total: int) -> Iterator[Any]:
        key = self.group(description)
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield lambda n: None
        finally:
            self.wall[key] = self.wall.get(key, 0.0) + time.perf_counter() - wall
            self.cpu[key] = self.cpu.get(key, 0.0) + time.process_time() - cpu

    def metrics(self, row: Any) -> None:
        pass

    def log(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


def run_once(args: argparse.Namespace, precision: str, out: Path) -> dict[str, Any]:
    registry = get_registry()
    recipe = load_recipe(args.recipe, args.set or [], registry)
    machine = Machine.from_flags(args.data_root, args.device, True, track=[], precision=precision)
    progress = TimingProgress()
    cpu = time.process_time()
    summary = run_recipe(recipe, out, registry, machine, overwrite=True, progress=progress)
    cpu = time.process_time() - cpu
    source = registry.get("dataset", recipe.data.dataset.name).build(recipe.data.dataset)
    image_shape = tuple(source.load(machine.data_root, train=False, download=False).images.shape)
    network = HebbianNetwork.from_recipe(recipe, image_shape[1], registry)
    shapes = layer_shapes(network, image_shape[1:])
    images = {  # a dataset's unlabeled images (STL-10) are left out of the Hebbian work
        "train": summary["train_images"],
        "test": summary["test_images"],
        "validation": summary["validation_images"],
        "hebbian": summary["train_images"],
    }
    cache_size = torch.empty(0, dtype=getattr(torch, summary["feature_dtype"])).element_size()
    work = phase_work(
        shapes,
        images,
        recipe.readout.batch_size,
        {"hebbian": recipe.hebbian.epochs, "readout": recipe.readout.epochs},
        10,
        [
            torch.empty(0, dtype=compute_dtype(machine.precision, s.fan_in)).element_size()
            for s in shapes
        ],
        cache_size,
    )
    phases: dict[str, dict[str, Any]] = {}
    for index, layer in enumerate(summary["hebbian_layers"]):
        key = f"hebbian layer {index}"
        phases[key] = {"seconds": layer["seconds"], "cpu_seconds": progress.cpu.get(key)}
    for key in ("features", "readout"):
        phases[key] = {"seconds": summary["seconds"][key], "cpu_seconds": progress.cpu.get(key)}
    for key, (flops, data, dtype) in work.items():
        phases[key].update({"gflop": flops / GIGA, "gbytes": data / GIGA, "dtype": dtype})
    return {
        # auto as this machine resolved it, e.g. "auto (bf16-auto)"
        "precision": precision
        if precision == machine.precision
        else f"{precision} ({machine.precision})",
        "test_accuracy": summary["test_accuracy"],
        "seconds": summary["seconds"]["total"],
        "cpu_seconds": cpu,
        "phases": phases,
    }


def median(values: list[float | None]) -> float:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else math.nan


def report(runs: list[dict[str, Any]], limits: dict[str, float]) -> None:
    for precision in dict.fromkeys(r["precision"] for r in runs):
        mine = [r for r in runs if r["precision"] == precision]
        print(
            f"\n### {precision}: {len(mine)} run(s); end to end "
            f"{median([r['seconds'] for r in mine]):.1f} s "
            f"(CPU {median([r['cpu_seconds'] for r in mine]):.1f} s), test accuracy "
            + ", ".join(f"{100 * r['test_accuracy']:.2f}%" for r in mine)
        )
        print(
            "| phase | seconds | CPU s | GFLOP | GB moved | GFLOP/s | % of GEMM limit "
            "| GB/s | % of bandwidth |"
        )
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for phase in mine[0]["phases"]:
            values = [r["phases"][phase] for r in mine]
            seconds = median([v["seconds"] for v in values])
            cpu = median([v["cpu_seconds"] for v in values])
            first = values[0]
            rate, traffic = first["gflop"] / seconds, first["gbytes"] / seconds
            limit = limits[f"gemm_{first['dtype']}"]
            print(
                f"| {phase} ({first['dtype']}) | {seconds:.1f} | {cpu:.1f} | {first['gflop']:.0f} "
                f"| {first['gbytes']:.1f} | {rate:.1f} | {100 * rate / limit:.0f}% "
                f"| {traffic:.1f} | {100 * traffic / limits['bandwidth']:.0f}% |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe")
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--device", default=None)
    parser.add_argument("-s", "--set", action="append", help="recipe override, as hebbkit run")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = Machine.from_flags(args.data_root, args.device, True, track=[]).device
    load = os.getloadavg()
    limits = machine_limits(device)
    runs = []
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(args.repeats):
            for precision in args.precision:
                runs.append(run_once(args, precision, Path(scratch) / f"{precision}-{repeat}"))
    limits = best_of(limits, machine_limits(device))
    info = hardware(device)
    print(
        f"{info['processor']}, {info['cpu_count']} CPUs, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, device {device}; load average "
        f"{load[0]:.1f} before, {os.getloadavg()[0]:.1f} after"
    )
    print(f"limits (best of before and after the runs): {describe(limits)}")
    report(runs, limits)
    if args.json:
        args.json.write_text(json.dumps({"limits": limits, "runs": runs}, indent=1))
    print(f"\nrerun: {shlex.join([Path(sys.executable).name, *sys.argv])}")


if __name__ == "__main__":
    main()
