"""The two phases of a run: unsupervised Hebbian learning, then the supervised read-out.

The read-out trains on features of the frozen network computed once (cached), not by
re-running the network every epoch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hebbkit.config.recipe import HebbianConfig, ReadoutConfig
from hebbkit.data import to_float
from hebbkit.engine.diagnostics import layer_statistics, winner_statistics
from hebbkit.engine.network import HebbianLayer, HebbianNetwork
from hebbkit.engine.progress import ProgressReporter
from hebbkit.engine.seeds import derive_seed
from hebbkit.errors import TrainingDiverged

Record = Callable[[dict[str, Any]], None]

#: Fractions of the read-out epochs at which the rate halves (algorithms.md §3).
STEP_FRACTIONS_MEDIUM = (0.5, 0.75)
STEP_FRACTIONS_LONG = (0.2, 0.35, 0.5, 0.6, 0.7, 0.8, 0.9)
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
) -> list[dict[str, float]]:
    """Train the Hebbian layers; returns per-layer seconds and images per second.

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
        for epoch in range(config.epochs):
            generator = torch.Generator().manual_seed(
                derive_seed(seed, "hebbian-order", first, epoch)
            )
            order = torch.randperm(count, generator=generator)
            started = time.perf_counter()
            with progress.phase(f"{label}, epoch {epoch + 1}/{config.epochs}", count) as advance:
                for step in range(batches):
                    index = order[step * config.batch_size : (step + 1) * config.batch_size]
                    x = to_float(images[index], device)
                    fraction = (epoch * batches + step) / total_steps
                    with torch.no_grad():
                        x = network(x, upto=first)
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
) -> torch.Tensor:
    """Flattened outputs of the frozen network for every image, cached in ``dtype``.

    Small batches keep each layer's maps in cache: on 2 CPU cores batch 32 extracts the
    2-layer model's features about 40% faster than batch 500.
    """
    network.eval()
    count = images.shape[0]
    cache: torch.Tensor | None = None
    with progress.phase(description, count) as advance:
        for start in range(0, count, batch_size):
            x = to_float(images[start : start + batch_size], device)
            features = network(x).flatten(1)
            if not torch.isfinite(features).all():  # per batch: no cache-sized temporary
                raise TrainingDiverged("The frozen network produced NaN or Inf features.")
            if cache is None:
                cache = torch.empty(count, features.shape[1], dtype=dtype, device=device)
            if cache.dtype == torch.float16 and features.abs().max() > FLOAT16_LIMIT:
                cache = cache.to(torch.bfloat16)  # keep the range, lose a little precision
            cache[start : start + features.shape[0]] = features
            advance(features.shape[0])
    assert cache is not None
    return cache


def step_milestones(epochs: int, schedule: str) -> list[int]:
    """Epochs after which the ``step`` schedule halves the rate: none below 20 epochs, at 50%
    and 75% below 50, else at 20/35/50/60/70/80/90% — truncated, as SoftHebb's own
    scheduler does (50 epochs: 10, 17, 25, 30, 35, 40, 45)."""
    if schedule != "step" or epochs < 20:
        return []
    fractions = STEP_FRACTIONS_MEDIUM if epochs < 50 else STEP_FRACTIONS_LONG
    return sorted({int(f * epochs) for f in fractions})


def cosine_factor(step: int, total: int) -> float:
    """The ``cosine`` schedule's share of the base rate after ``step`` of ``total`` steps:
    from 1 down to 0 along half a cosine, so the last epochs barely move the weights."""
    return 0.5 * (1.0 + math.cos(math.pi * min(step, total) / max(1, total)))


def rate_schedule(
    optimizer: torch.optim.Optimizer, config: ReadoutConfig, steps_per_epoch: int
) -> tuple[torch.optim.lr_scheduler.LRScheduler, bool]:
    """The read-out's rate schedule, and whether it steps per batch (else per epoch)."""
    if config.schedule == "cosine":
        total = config.epochs * steps_per_epoch
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: cosine_factor(step, total)
        )
        return scheduler, True
    milestones = step_milestones(config.epochs, config.schedule)
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=0.5), False


@torch.no_grad()
def accuracy(
    model: nn.Module, features: torch.Tensor, labels: torch.Tensor, batch: int = 4096
) -> float:
    model.eval()
    correct = 0
    for start in range(0, features.shape[0], batch):
        logits = model(features[start : start + batch].float())
        correct += (logits.argmax(1) == labels[start : start + batch]).sum().item()
    return correct / max(1, features.shape[0])


class SeededDropout(nn.Module):
    """Inverted dropout drawing its mask from its own generator, 16 random bits per element.

    The mask is the read-out's largest cost: one 64-bit draw split into four 16-bit
    uniforms is about 2.5× faster on CPUs than a float draw per element (``rand``) and 10×
    faster than ``bernoulli_``; p is applied to within 1/65536. Its own generator keeps the
    run reproducible whatever else consumes the global random stream.
    """

    def __init__(self, p: float, seed: int, device: torch.device) -> None:
        super().__init__()
        self.p = p
        # keep where a uniform int16 draw is >= threshold: P(drop) = round(p·65536) / 65536
        dropped = round(p * 65536)
        self.threshold = dropped - 32768
        self.scale = 65536 / (65536 - dropped) if dropped < 65536 else 0.0
        self.generator = torch.Generator(device=device).manual_seed(seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        count = x.numel()
        words = torch.randint(
            -(2**63),
            2**63 - 1,
            ((count + 3) // 4,),
            dtype=torch.int64,
            generator=self.generator,
            device=x.device,
        )
        keep = words.view(torch.int16)[:count].view(x.shape) >= self.threshold
        return x * keep * self.scale


def adam(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """Adam, fused into one kernel where this torch build supports it."""
    try:
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)


def readout_model(
    features: int, n_classes: int, dropout: float, seed: int, device: torch.device
) -> nn.Module:
    """Dropout → Linear: the read-out a run trains (and ``hebbkit eval`` loads back)."""
    mask = SeededDropout(dropout, derive_seed(seed, "readout-dropout"), device)
    return nn.Sequential(mask, nn.Linear(features, n_classes)).to(device)


@dataclass
class ReadoutResult:
    model: nn.Module
    metrics: dict[str, float]


def readout_phase(
    train: tuple[torch.Tensor, torch.Tensor],
    evaluations: dict[str, tuple[torch.Tensor, torch.Tensor]],
    n_classes: int,
    config: ReadoutConfig,
    seed: int,
    device: torch.device,
    progress: ProgressReporter,
    record: Record,
) -> ReadoutResult:
    """Dropout → Linear on cached features, Adam with the recipe's rate schedule."""
    features, labels = train
    labels = labels.to(device)
    evaluations = {name: (x, y.to(device)) for name, (x, y) in evaluations.items()}
    torch.manual_seed(derive_seed(seed, "readout-init"))
    model = readout_model(features.shape[1], n_classes, config.dropout, seed, device)
    optimizer = adam(model, config.lr, config.weight_decay)
    generator = torch.Generator().manual_seed(derive_seed(seed, "readout-order"))
    count = features.shape[0]
    scheduler, per_step = rate_schedule(optimizer, config, math.ceil(count / config.batch_size))
    metrics: dict[str, float] = {}
    for epoch in range(config.epochs):
        model.train()
        order = torch.randperm(count, generator=generator).to(device)
        rate = optimizer.param_groups[0]["lr"]
        started = time.perf_counter()
        loss_sum, correct = 0.0, 0
        with progress.phase(f"Read-out, epoch {epoch + 1}/{config.epochs}", count) as advance:
            for start in range(0, count, config.batch_size):
                index = order[start : start + config.batch_size]
                x = features[index].float()
                target = labels[index]
                logits = model(x)
                loss = F.cross_entropy(logits, target)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if per_step:
                    scheduler.step()
                loss_sum += loss.item() * index.numel()
                correct += (logits.argmax(1) == target).sum().item()
                advance(index.numel())
        if not per_step:
            scheduler.step()
        if not math.isfinite(loss_sum):
            raise TrainingDiverged(f"The read-out loss became NaN/Inf in epoch {epoch + 1}.")
        metrics = {
            "train_loss": loss_sum / count,
            "train_running_accuracy": correct / count,
            **{f"{name}_accuracy": accuracy(model, x, y) for name, (x, y) in evaluations.items()},
        }
        record(
            {
                "phase": "readout",
                "epoch": epoch + 1,
                "seconds": time.perf_counter() - started,
                "lr": rate,
                **metrics,
            }
        )
    return ReadoutResult(model=model, metrics=metrics)
