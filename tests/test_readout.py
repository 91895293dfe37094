"""The read-out: rate schedules against SoftHebb's scheduler and a direct formula; the
written-out step against autograd; dropout masks; reproducibility."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hebbkit.config.recipe import ReadoutConfig
from hebbkit.engine.progress import QuietProgress
from hebbkit.engine.readout import (
    BitDropout,
    ReadoutStep,
    accuracy,
    cosine_factor,
    feature_blocks,
    from_blocks,
    mask_bits,
    readout_phase,
    step_milestones,
    to_blocks,
)


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


# --- the written-out read-out step -----------------------------------------------------------


@pytest.mark.parametrize(("p", "bits"), [(0.5, 1), (0.25, 2), (0.75, 2), (0.125, 4), (0.2, 16)])
def test_mask_bits_are_the_fewest_that_give_p_exactly(p: float, bits: int) -> None:
    assert mask_bits(p) == bits


@pytest.mark.parametrize("p", [0.5, 0.25, 0.2])
def test_bit_dropout_keeps_one_minus_p_reproducibly(p: float) -> None:
    def draw() -> torch.Tensor:
        return BitDropout(p, 7, torch.device("cpu"), torch.int16).mask(200_003)

    mask = draw()
    assert mask.shape == (200_003,) and set(mask.unique().tolist()) <= {-1, 0}
    kept = (mask == -1).double().mean().item()
    assert abs(kept - (1 - p)) < 4 * math.sqrt(p * (1 - p) / mask.numel())
    assert torch.equal(mask, draw())
    assert not torch.equal(mask, BitDropout(p, 8, torch.device("cpu"), torch.int16).mask(200_003))


@pytest.mark.parametrize("int_dtype", [torch.int16, torch.int32])
@pytest.mark.parametrize("p", [0.5, 0.25, 0.75, 0.125, 0.0625, 0.5 + 1 / 256])
def test_bit_dropout_masks_are_the_drawn_bits_read_one_by_one(
    p: float, int_dtype: torch.dtype
) -> None:
    """The table lookup against a loop over the same random bytes, symbol by symbol."""
    count, bits = 1_003, mask_bits(p)
    mask = BitDropout(p, 5, torch.device("cpu"), int_dtype).mask(count)
    words = torch.randint(
        -(2**63),
        2**63 - 1,
        (math.ceil(count * bits / 64),),
        dtype=torch.int64,
        generator=torch.Generator().manual_seed(5),
    )
    expected = []
    for byte in words.view(torch.uint8).tolist():
        for slot in range(8 // bits):
            symbol = (byte >> (bits * slot)) & (2**bits - 1)
            expected.append(-1 if symbol >= round(p * 2**bits) else 0)
    assert mask.dtype == int_dtype
    assert mask.tolist() == expected[:count]


@pytest.mark.parametrize(
    ("width", "blocks"), [(1023, 1), (1024, 1), (2048, 2), (3072, 3), (28_800, 25), (4099, 1)]
)
def test_feature_blocks_are_the_most_divisors_of_min_block_or_more(width, blocks) -> None:
    assert feature_blocks(width) == blocks
    assert width % blocks == 0 and width // blocks >= min(width, 1024)


def test_blocks_round_trip_and_hold_each_block_contiguous() -> None:
    weight = torch.arange(4 * 24.0).view(4, 24)
    blocked = to_blocks(weight, 3)
    assert blocked.shape == (3, 4, 8) and blocked.is_contiguous()
    for block in range(3):
        assert torch.equal(blocked[block], weight[:, 8 * block : 8 * block + 8])
    assert torch.equal(from_blocks(blocked), weight)


@pytest.mark.parametrize("blocks", [None, 3, 8])
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
@pytest.mark.parametrize("p", [0.5, 0.2, 0.0])
def test_readout_step_is_autograds_gradient(
    dtype: torch.dtype, p: float, blocks: int | None
) -> None:
    """The step's gradient and loss equal autograd's on dropout(x) → linear → cross-entropy,
    whatever blocks the products are split into."""
    g = torch.Generator().manual_seed(0)
    features = torch.randn(40, 24, generator=g).to(dtype)
    labels = torch.randint(0, 4, (40,), generator=g)
    index = torch.randperm(40, generator=g)[:13]
    linear = nn.Linear(24, 4)
    reference = copy.deepcopy(linear)
    int_dtype = torch.int16 if dtype == torch.float16 else torch.int32
    dropout = BitDropout(p, 3, torch.device("cpu"), int_dtype) if p else None
    step = ReadoutStep(features, labels, linear, dropout, batch_size=16, blocks=blocks)
    step(index)
    x = features[index].float()
    if p:
        keep = BitDropout(p, 3, torch.device("cpu"), int_dtype).mask(x.numel()).view(x.shape)
        x = x * (keep == -1) / (1 - p)
    loss = F.cross_entropy(reference(x), labels[index])
    loss.backward()
    torch.testing.assert_close(step.weight_grad(), reference.weight.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(linear.bias.grad, reference.bias.grad, rtol=1e-5, atol=1e-6)
    loss_sum, correct = step.take_epoch_sums()
    assert loss_sum == pytest.approx(loss.item() * 13, rel=1e-5)
    logits = reference(x)
    assert correct == int((logits.argmax(1) == labels[index]).sum())


def test_readout_is_reproducible_and_learns() -> None:
    def results(rows: list[dict]) -> list[dict]:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]

    rows = _readout("step", epochs=3)
    assert results(rows) == results(_readout("step", epochs=3))
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]


def test_readout_step_rejects_blocks_that_do_not_divide_the_width() -> None:
    features, labels = torch.zeros(4, 10), torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match="3 blocks do not divide 10 features"):
        ReadoutStep(features, labels, nn.Linear(10, 2), None, batch_size=2, blocks=3)


def test_split_products_train_the_linear_as_one_product_does() -> None:
    """Ten Adam steps with the products split into blocks and unsplit: the same weights up
    to float rounding, and the Linear holds the trained weight after write_back()."""
    g = torch.Generator().manual_seed(1)
    features = torch.randn(64, 3072, generator=g).to(torch.float16)
    labels = torch.randint(0, 10, (64,), generator=g)
    trained = []
    for blocks in (1, None):
        torch.manual_seed(0)
        linear = nn.Linear(3072, 10)
        dropout = BitDropout(0.5, 4, torch.device("cpu"), torch.int16)
        step = ReadoutStep(features, labels, linear, dropout, batch_size=32, blocks=blocks)
        optimizer = torch.optim.Adam(step.parameters(), lr=1e-3)
        for start in range(0, 320, 32):
            step(torch.arange(start, start + 32) % 64)
            optimizer.step()
        step.write_back()
        torch.testing.assert_close(linear.weight, from_blocks(step.weight), rtol=0, atol=0)
        trained.append((step.blocks, linear.weight.detach().clone(), linear.bias.detach().clone()))
    (one, weight_one, bias_one), (split, weight_split, bias_split) = trained
    assert (one, split) == (1, 3)
    torch.testing.assert_close(weight_split, weight_one, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(bias_split, bias_one, rtol=1e-4, atol=1e-5)
    torch.manual_seed(0)
    initial = nn.Linear(3072, 10).weight.detach()
    assert (weight_one - initial).abs().max() > 5e-3  # ten steps of rate 1e-3 moved it


@pytest.mark.parametrize("batch", [None, 1, 7, 40, 1000])
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
def test_accuracy_counts_right_labels_in_any_batch(batch: int | None, dtype) -> None:
    """Batched through one float32 buffer (the last batch shorter): the share a direct loop
    over the rows counts."""
    g = torch.Generator().manual_seed(2)
    features = torch.randn(41, 9, generator=g).to(dtype)
    labels = torch.randint(0, 3, (41,), generator=g)
    model = nn.Sequential(nn.Dropout(0.5), nn.Linear(9, 3))
    with torch.no_grad():
        right = sum(int(model[1](features[i].float()).argmax() == labels[i]) for i in range(41))
    assert 0 < right < 41
    assert accuracy(model, features, labels, batch) == right / 41
    assert not model.training  # dropout off while evaluating


def test_accuracy_of_no_rows_is_zero() -> None:
    model = nn.Sequential(nn.Dropout(0.5), nn.Linear(9, 3))
    assert accuracy(model, torch.zeros(0, 9), torch.zeros(0, dtype=torch.long)) == 0.0
