"""The unsupervised phase of a run: Hebbian learning, then the frozen network's features.

The read-out (:mod:`hebbkit.engine.readout`) trains on these features computed once
(cached), not by re-running the network every epoch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import torch

from hebbkit.config.recipe import HebbianConfig
from hebbkit.data import to_float
from hebbkit.engine.diagnostics import layer_statistics, winner_statistics
from hebbkit.engine.front import FrontCache
from hebbkit.engine.network import HebbianLayer, HebbianNetwork
from hebbkit.engine.progress import ProgressReporter
from hebbkit.engine.seeds import derive_seed
from hebbkit.errors import TrainingDiverged

Record = Callable[[dict[str, Any]], None]

FLOAT16_LIMIT = 65000.0


def _check_finite(layer: HebbianLayer, index: int) -> None:
    if not torch.isfinite(layer.weight).all():
        raise TrainingDiverged(
            f"Hebbian layer {index} diverged: its weights hold NaN or Inf. Lower its "
            "plasticity.lr or check the recipe's init and competition settings."
        )


def hebbian_phase(
    network: HebbianNetwork,
    images: torch.Tensor,
    config: HebbianConfig,
    seed: int,
    device: torch.device,
    progress: ProgressReporter,
    record: Record,
    winners: list[dict[str, Any]] | None = None,
    front: FrontCache | None = None,
) -> list[dict[str, float]]:
    """Train the Hebbian layers; returns per-layer seconds and images per second.

    With ``front`` (greedy mode), each layer from the second on takes its inputs from it
    (:class:`~hebbkit.engine.front.FrontCache`), which then holds the last layer's inputs.

    At ``config.diagnostics`` evenly spaced points of every layer-epoch, a ``hebbian_trace``
    row records distinct filters, norms, rates and winner statistics of the layers learning;
    per-neuron win counts go to ``winners`` (one row per neuron and point).
    """
    layers = list(network.layers)
    count = images.shape[0]
    batches = math.ceil(count / config.batch_size)
    total_steps = max(1, batches * config.epochs)
    points = sorted(
        {round(batches * (k + 1) / config.diagnostics) for k in range(config.diagnostics)}
        if config.diagnostics
        else set()
    )
    timings = [{"seconds": 0.0, "images": 0} for _ in layers]
    network.eval()
    groups = (
        [[i] for i in range(len(layers))] if config.mode == "greedy" else [list(range(len(layers)))]
    )
    for group in groups:
        first = group[0]
        for i in group:
            layers[i].train()
            layers[i].win_counts = torch.zeros(
                layers[i].weight.shape[0], dtype=torch.long, device=device
            )
            if config.diagnostics:
                _trace(layers[i], i, 0, 0, 0, 0.0, record, winners)
        label = f"Hebbian layer {first}" if len(group) == 1 else "Hebbian layers (all at once)"
        keeps = front is not None and first in front.shapes and config.mode == "greedy"
        for epoch in range(config.epochs):
            generator = torch.Generator().manual_seed(
                derive_seed(seed, "hebbian-order", first, epoch)
            )
            order = torch.randperm(count, generator=generator)
            started = time.perf_counter()
            with progress.phase(f"{label}, epoch {epoch + 1}/{config.epochs}", count) as advance:
                for step in range(batches):
                    index = order[step * config.batch_size : (step + 1) * config.batch_size]
                    fraction = (epoch * batches + step) / total_steps

                    def batch(index: torch.Tensor = index) -> torch.Tensor:
                        return to_float(images[index], device)

                    with torch.no_grad():
                        if keeps:
                            x = front.inputs(network, first, index, batch)
                        else:
                            x = network(batch(), upto=first)
                        for position, i in enumerate(group):
                            last = position == len(group) - 1
                            x = layers[i].learn(x, fraction, want_output=not last)
                    advance(index.numel())
                    if step + 1 in points:
                        done = (epoch * batches + step + 1) / total_steps
                        seen = epoch * count + min(count, (step + 1) * config.batch_size)
                        for i in group:
                            _trace(layers[i], i, epoch + 1, step + 1, seen, done, record, winners)
            seconds = time.perf_counter() - started
            if keeps:
                front.layer = first  # the epoch's order covered every image
            for i in group:
                _check_finite(layers[i], i)
                timings[i]["seconds"] += seconds
                timings[i]["images"] += count
                record(
                    {
                        "phase": "hebbian",
                        "layer": i,
                        "epoch": epoch + 1,
                        "seconds": seconds,
                        "images_per_second": count / seconds if seconds else float("nan"),
                        **layer_statistics(layers[i], (epoch + 1) / config.epochs),
                    }
                )
        for i in group:
            layers[i].eval()
            layers[i].win_counts = None
    return [
        {
            "seconds": t["seconds"],
            "images_per_second": t["images"] / t["seconds"] if t["seconds"] else float("nan"),
        }
        for t in timings
    ]


def _trace(
    layer: HebbianLayer,
    index: int,
    epoch: int,
    step: int,
    seen: int,
    progress: float,
    record: Record,
    winners: list[dict[str, Any]] | None,
) -> None:
    """Record a diagnostics point and restart the layer's win counts."""
    counts = layer.win_counts
    assert counts is not None
    row = {
        "phase": "hebbian_trace",
        "layer": index,
        "epoch": epoch,
        "step": step,
        "images_seen": seen,
        "progress": progress,
        **layer_statistics(layer, progress),
    }
    if step > 0:
        row.update(winner_statistics(counts))
        if winners is not None:
            winners.extend(
                {
                    "layer": index,
                    "epoch": epoch,
                    "step": step,
                    "images_seen": seen,
                    "neuron": neuron,
                    "wins": wins,
                }
                for neuron, wins in enumerate(counts.tolist())
            )
    record(row)
    counts.zero_()


def feature_dtype(choice: str, count: int, width: int) -> torch.dtype:
    if choice != "auto":
        return getattr(torch, choice)
    return torch.float32 if count * width * 4 <= 2 * 1024**3 else torch.float16


@torch.no_grad()
def extract_features(
    network: HebbianNetwork,
    images: torch.Tensor,
    dtype: torch.dtype,
    device: torch.device,
    progress: ProgressReporter,
    description: str,
    batch_size: int = 32,
    out: torch.Tensor | None = None,
    front: FrontCache | None = None,
) -> torch.Tensor:
    """Flattened outputs of the frozen network for every image, cached in ``dtype``: in
    ``out`` when given (``(images, features)`` of that dtype, allocated ahead, e.g. to fault
    its pages in while the Hebbian phase runs: :mod:`hebbkit.engine.prefault`). With a
    filled ``front`` (:class:`~hebbkit.engine.front.FrontCache`) whose first rows are these
    images, only the blocks from its layer on run.

    Small batches keep each layer's maps in cache: on 2 CPU cores batch 32 extracts the
    2-layer model's features about 40% faster than batch 500.
    """
    network.eval()
    count = images.shape[0]
    if out is not None and (out.dtype != dtype or out.shape[0] != count):
        raise ValueError(
            f"extract_features: out is {tuple(out.shape)} {out.dtype}, "
            f"wanted {count} rows of {dtype}."
        )
    if front is not None and (front.layer is None or front.storage.shape[0] < count):
        raise ValueError(f"extract_features: the front cache is not filled for {count} images.")
    cache: torch.Tensor | None = out
    with progress.phase(description, count) as advance:
        for start in range(0, count, batch_size):
            if front is not None:
                stop = min(start + batch_size, count)  # the front may hold more images
                maps = network(front.read(front.layer, slice(start, stop)), start=front.layer)
            else:
                maps = network(to_float(images[start : start + batch_size], device))
            # maps: channels-last (B, C, H, W)
            # one pass for both checks, per batch (no cache-sized temporary); NaN propagates
            largest = maps.abs().amax().item()
            if not math.isfinite(largest):
                raise TrainingDiverged("The frozen network produced NaN or Inf features.")
            if cache is None:
                cache = torch.empty(count, maps[0].numel(), dtype=dtype, device=device)
            elif cache.shape[1:] != (maps[0].numel(),):
                raise ValueError(
                    f"extract_features: out has rows of {tuple(cache.shape[1:])}, the network "
                    f"gives {maps[0].numel()} features."
                )
            if cache.dtype == torch.float16 and largest > FLOAT16_LIMIT:
                cache = cache.to(torch.bfloat16)  # keep the range, lose a little precision
            # flattened in (C, H, W) order: the copy reorders and converts in one pass
            cache[start : start + maps.shape[0]].view(maps.shape).copy_(maps)
            advance(maps.shape[0])
    assert cache is not None
    return cache
