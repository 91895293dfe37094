"""The read-out's rate schedules, against SoftHebb's scheduler and a direct formula."""

from __future__ import annotations

import math

import pytest
import torch

from hebbkit.config.recipe import ReadoutConfig
from hebbkit.engine.progress import QuietProgress
from hebbkit.engine.training import cosine_factor, readout_phase, step_milestones


def softhebb_milestones(epochs: int) -> list[int]:
    """SoftHebb's CustomStepLR, written out: the epochs after which the rate halves."""
    if epochs < 20:
        return []
    if epochs < 50:
        return [int(epochs * 0.5), int(epochs * 0.75)]
    return [int(epochs * f) for f in (0.2, 0.35, 0.5, 0.6, 0.7, 0.8, 0.9)]


@pytest.mark.parametrize("epochs", [1, 10, 19, 20, 30, 49, 50, 63, 100, 200])
def test_step_milestones_are_softhebbs(epochs: int) -> None:
    assert step_milestones(epochs, "step") == softhebb_milestones(epochs)
    assert step_milestones(epochs, "constant") == []
    assert step_milestones(epochs, "cosine") == []


def test_fifty_epochs_halve_after_epoch_17_not_18() -> None:
    assert step_milestones(50, "step") == [10, 17, 25, 30, 35, 40, 45]


def test_cosine_factor_runs_from_one_to_zero() -> None:
    assert cosine_factor(0, 100) == 1.0
    assert cosine_factor(50, 100) == pytest.approx(0.5)
    assert cosine_factor(100, 100) == pytest.approx(0.0, abs=1e-12)
    assert cosine_factor(25, 100) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    values = [cosine_factor(step, 37) for step in range(38)]
    assert values == sorted(values, reverse=True)


def _readout(schedule: str, epochs: int = 4) -> list[dict]:
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(96, 12, generator=generator)
    labels = torch.randint(0, 3, (96,), generator=generator)
    rows: list[dict] = []
    config = ReadoutConfig(epochs=epochs, batch_size=32, lr=0.01, schedule=schedule)
    readout_phase(
        (features, labels), {}, 3, config, 0, torch.device("cpu"), QuietProgress(), rows.append
    )
    return rows


def test_cosine_rate_decays_per_step_to_zero() -> None:
    rows = _readout("cosine")
    rates = [row["lr"] for row in rows]  # the rate each epoch started with
    steps = 3  # 96 images, batch 32
    assert rates == pytest.approx([0.01 * cosine_factor(e * steps, 4 * steps) for e in range(4)])


def test_constant_and_short_step_schedules_keep_the_rate() -> None:
    for schedule in ("constant", "step"):
        assert [row["lr"] for row in _readout(schedule)] == [0.01] * 4
