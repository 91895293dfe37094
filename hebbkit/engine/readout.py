"""The supervised read-out: dropout -> linear on the cached features of the frozen network,
cross-entropy, Adam, the recipe's rate schedule.

A step moves little arithmetic (batch 32 × 28 800 features × 10 classes for ``mnist_zero``)
and, in a plain PyTorch loop, a lot of per-step overhead: autograd, an element-wise dropout
mask from 16 random bits per feature, a float copy of the batch, a host sync per step for the
running loss. Here the step is written out: the gradient of the mean cross-entropy,
``(softmax − one_hot) / B``, is formed directly; the dropout mask comes from as few random
bits as the rate needs (one per feature at p = 0.5) and a table lookup, and is applied to the
cached half-precision rows with a bitwise AND before one conversion to float32 into a
preallocated buffer; the ``1/(1 − p)`` scale is applied to the ``B × classes`` products instead
of the ``B × features`` inputs; both products run as a batch over blocks of the feature axis
(``feature_blocks``), the weight kept block by block for them; loss and accuracy accumulate
on the device. Same maths, same protocol (batch order, initialisation, Adam, schedule);
reproducible for a seed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from hebbkit.config.recipe import ReadoutConfig
from hebbkit.engine.progress import ProgressReporter
from hebbkit.engine.seeds import derive_seed
from hebbkit.errors import TrainingDiverged

Record = Callable[[dict[str, Any]], None]

#: Fractions of the read-out epochs at which the rate halves (algorithms.md §3).
STEP_FRACTIONS_MEDIUM = (0.5, 0.75)
STEP_FRACTIONS_LONG = (0.2, 0.35, 0.5, 0.6, 0.7, 0.8, 0.9)
#: Float32 bytes per evaluation batch: the converted rows stay in cache for the product.
EVAL_BYTES = 8 * 2**20
#: Integer views of the cached features (float16 / bfloat16, float32) for the bitwise AND.
INT_VIEW = {2: torch.int16, 4: torch.int32}
#: Widest first: the dtypes a row of the dropout's byte-to-mask table is viewed as.
WIDE_ROWS = (torch.complex128, torch.int64, torch.int32, torch.int16)
#: Fewest features per block of the read-out's split products (``feature_blocks``).
MIN_BLOCK = 1024


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
    model: nn.Module, features: torch.Tensor, labels: torch.Tensor, batch: int | None = None
) -> float:
    """Share of ``features`` rows the model labels right, converted to float32 a cache-sized
    batch at a time into one buffer (a fresh 100 MB conversion per batch of 1 024 wide rows
    took three times as long: ``python benchmarks/readout_step.py`` times both)."""
    model.eval()
    count = features.shape[0]
    row_bytes = 4 * max(1, features[0].numel()) if count else 4
    batch = batch or max(1, EVAL_BYTES // row_bytes)
    buffer = torch.empty(
        min(batch, count), *features.shape[1:], dtype=torch.float32, device=features.device
    )
    correct = torch.zeros((), dtype=torch.long, device=labels.device)
    for start in range(0, count, batch):
        part = features[start : start + batch]
        x = buffer[: part.shape[0]]
        x.copy_(part)
        correct += (model(x).argmax(1) == labels[start : start + batch]).sum()
    return correct.item() / max(1, count)


def mask_bits(p: float) -> int:
    """Random bits per feature that give P(drop) = p exactly (1 at p = 0.5, 2 at 0.25 …), or
    16 when p is no multiple of 1/256 (then p is met to within 1/65536)."""
    for bits in (1, 2, 4, 8):
        if (p * 2**bits).is_integer():
            return bits
    return 16


class BitDropout:
    """Dropout masks as integer bit masks (all ones: keep, zero: drop) for a bitwise AND.

    Draws ``mask_bits(p)`` random bits per feature from its own generator, 64 at a time,
    and expands them with a table lookup per byte. Its own generator keeps the run
    reproducible whatever else consumes the global random stream.
    """

    def __init__(self, p: float, seed: int, device: torch.device, int_dtype: torch.dtype) -> None:
        self.p = p
        self.bits = mask_bits(p)
        self.scale = 1.0 / (1.0 - p)
        self.int_dtype = int_dtype
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self.device = device
        if self.bits < 16:
            per_byte = 8 // self.bits
            values = torch.arange(256).unsqueeze(1) >> (self.bits * torch.arange(per_byte))
            values = values & (2**self.bits - 1)
            keep = values >= round(p * 2**self.bits)
            table = torch.where(keep, -1, 0).to(int_dtype)
            # one wide element per table row: a gather of 16-byte rows is about twice as fast
            # as one of 8 two-byte elements (benchmarks/readout_step.py)
            row_bytes = per_byte * table.element_size()
            wide = next(t for t in WIDE_ROWS if row_bytes % t.itemsize == 0)
            self.table = table.view(wide).view(256, -1).squeeze(1).to(device)
        else:
            self.threshold = round(p * 65536) - 32768  # keep where an int16 draw >= threshold

    def mask(self, count: int) -> torch.Tensor:
        """A flat mask for ``count`` features."""
        words = torch.randint(
            -(2**63),
            2**63 - 1,
            (math.ceil(count * self.bits / 64),),
            dtype=torch.int64,
            generator=self.generator,
            device=self.device,
        )
        if self.bits == 16:
            keep = words.view(torch.int16)[:count] >= self.threshold
            return torch.where(keep, -1, 0).to(self.int_dtype)
        symbols = words.view(torch.uint8).long()
        return self.table.index_select(0, symbols).view(self.int_dtype).view(-1)[:count]


def feature_blocks(width: int) -> int:
    """Blocks the feature axis is split into for a read-out step's two products: the most
    that divide ``width`` with at least ``MIN_BLOCK`` features each (1 when none do).

    A product of 10 classes × 32 rows over 28 800 features is one long reduction that a CPU
    GEMM spreads poorly over its threads; as a batch of 25 products over 1 152 features each
    (partial logits summed) it keeps every core busy: about 0.2 instead of 0.3 ms per product
    on 2 cores (``python benchmarks/readout_step.py`` times the step both ways).
    """
    most = width // MIN_BLOCK
    return max((k for k in range(1, most + 1) if width % k == 0), default=1)


def to_blocks(weight: torch.Tensor, blocks: int) -> torch.Tensor:
    """``(classes, width)`` → ``(blocks, classes, width / blocks)``, contiguous."""
    classes, width = weight.shape
    return weight.reshape(classes, blocks, width // blocks).transpose(0, 1).contiguous()


def from_blocks(blocked: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`to_blocks`."""
    blocks, classes, part = blocked.shape
    return blocked.transpose(0, 1).reshape(classes, blocks * part)


def readout_model(features: int, n_classes: int, dropout: float, device: torch.device) -> nn.Module:
    """Dropout → Linear: the read-out a run trains (and ``hebbkit eval`` loads back)."""
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(features, n_classes)).to(device)


@dataclass
class ReadoutResult:
    model: nn.Module
    metrics: dict[str, float]


class ReadoutStep:
    """One read-out step on cached features, with its buffers allocated once.

    The step trains its own copy of the linear weight, stored block by block
    (:func:`to_blocks`, ``blocks`` defaults to :func:`feature_blocks`): an optimizer takes
    :meth:`parameters`, and :meth:`write_back` copies the weight into the ``Linear``.
    """

    def __init__(
        self,
        features: torch.Tensor,
        labels: torch.Tensor,
        linear: nn.Linear,
        dropout: BitDropout | None,
        batch_size: int,
        blocks: int | None = None,
    ) -> None:
        self.features, self.labels, self.linear, self.dropout = features, labels, linear, dropout
        width = features.shape[1]
        device = features.device
        self.blocks = feature_blocks(width) if blocks is None else blocks
        if width % self.blocks:
            raise ValueError(f"{self.blocks} blocks do not divide {width} features.")
        self.rows = torch.empty(batch_size, width, dtype=features.dtype, device=device)
        self.x = torch.empty(batch_size, width, dtype=torch.float32, device=device)
        self.scale = dropout.scale if dropout is not None else 1.0
        self.weight = nn.Parameter(to_blocks(linear.weight.detach(), self.blocks))
        self.weight.grad = torch.zeros_like(self.weight)
        linear.bias.grad = torch.zeros_like(linear.bias)
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.correct = torch.zeros((), dtype=torch.long, device=device)

    @torch.no_grad()
    def __call__(self, index: torch.Tensor) -> None:
        """Forward and gradient for the rows ``index`` (grads written into the parameters)."""
        size = index.numel()
        rows, x = self.rows[:size], self.x[:size]
        torch.index_select(self.features, 0, index, out=rows)
        if self.dropout is not None:
            bits = rows.view(self.dropout.int_dtype).view(-1)
            bits.bitwise_and_(self.dropout.mask(bits.numel()))
        x.copy_(rows)
        bias = self.linear.bias
        parts = x.view(size, self.blocks, -1).transpose(0, 1)  # (blocks, B, width / blocks)
        # Wᵀ-major products (blocks, classes, B): faster than x @ Wᵀ for a few classes on CPUs
        logits = torch.bmm(self.weight, parts.transpose(1, 2)).sum(0).T
        logits.mul_(self.scale).add_(bias)
        target = self.labels[index].unsqueeze(1)
        log_p = torch.log_softmax(logits, dim=1)
        self.loss_sum -= log_p.gather(1, target).sum()
        self.correct += (logits.argmax(1, keepdim=True) == target).sum()
        # d(mean cross-entropy)/d(logits) = (softmax − one_hot) / B
        grad = log_p.exp_()
        grad.scatter_(1, target, grad.gather(1, target) - 1.0).div_(size)
        torch.sum(grad, 0, out=bias.grad)
        signal = grad.T.expand(self.blocks, -1, -1)
        torch.bmm(signal, parts, out=self.weight.grad).mul_(self.scale)

    def parameters(self) -> list[torch.Tensor]:
        """What the optimizer updates: the blocked weight and the ``Linear``'s bias."""
        return [self.weight, self.linear.bias]

    def weight_grad(self) -> torch.Tensor:
        """The last step's weight gradient as ``(classes, width)``."""
        return from_blocks(self.weight.grad)

    @torch.no_grad()
    def write_back(self) -> None:
        """Copy the trained weight into the ``Linear`` (before evaluating or saving it)."""
        self.linear.weight.copy_(from_blocks(self.weight))

    def take_epoch_sums(self) -> tuple[float, int]:
        """Summed loss and correct predictions since the last call (one host sync)."""
        loss, correct = self.loss_sum.item(), int(self.correct.item())
        self.loss_sum.zero_()
        self.correct.zero_()
        return loss, correct


def adam(
    parameters: Iterable[torch.Tensor], lr: float, weight_decay: float
) -> torch.optim.Optimizer:
    """Adam, fused into one kernel where this torch build supports it."""
    parameters = list(parameters)
    try:
        return torch.optim.Adam(parameters, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(parameters, lr=lr, weight_decay=weight_decay)


@torch.no_grad()
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
    features, labels = features.to(device), labels.to(device)
    evaluations = {name: (x, y.to(device)) for name, (x, y) in evaluations.items()}
    torch.manual_seed(derive_seed(seed, "readout-init"))
    model = readout_model(features.shape[1], n_classes, config.dropout, device)
    linear = model[1]
    dropout = (
        BitDropout(
            config.dropout,
            derive_seed(seed, "readout-dropout"),
            device,
            INT_VIEW[features.element_size()],
        )
        if config.dropout > 0
        else None
    )
    step = ReadoutStep(features, labels, linear, dropout, config.batch_size)
    optimizer = adam(step.parameters(), config.lr, config.weight_decay)
    generator = torch.Generator().manual_seed(derive_seed(seed, "readout-order"))
    count = features.shape[0]
    scheduler, per_step = rate_schedule(optimizer, config, math.ceil(count / config.batch_size))
    metrics: dict[str, float] = {}
    for epoch in range(config.epochs):
        order = torch.randperm(count, generator=generator).to(device)
        rate = optimizer.param_groups[0]["lr"]
        started = time.perf_counter()
        with progress.phase(f"Read-out, epoch {epoch + 1}/{config.epochs}", count) as advance:
            for start in range(0, count, config.batch_size):
                index = order[start : start + config.batch_size]
                step(index)
                optimizer.step()
                if per_step:
                    scheduler.step()
                advance(index.numel())
        if not per_step:
            scheduler.step()
        step.write_back()
        loss_sum, correct = step.take_epoch_sums()
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
