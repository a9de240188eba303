"""Losses against hand-computed values, ignore handling, and their relations to each other."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from edgeseg.errors import EdgesegError
from edgeseg.train.losses import LOSSES, build_loss

# One image, two classes, two pixels (1x2x1x2). Pixel 0: logits (2, 0), label 0; pixel 1:
# logits (0, 1), label 1. Softmax: p0 = e^2/(e^2+1) = 0.880797 for its label, p1 = e/(e+1) =
# 0.731059 for its label.
LOGITS = torch.tensor([[[[2.0, 0.0]], [[0.0, 1.0]]]])
TARGET = torch.tensor([[[0, 1]]])
P0 = math.exp(2) / (math.exp(2) + 1)
P1 = math.e / (math.e + 1)
CE0, CE1 = -math.log(P0), -math.log(P1)  # 0.126928, 0.313262


def test_cross_entropy_by_hand() -> None:
    loss = build_loss("ce", 2)
    assert loss(LOGITS, TARGET).item() == pytest.approx((CE0 + CE1) / 2, rel=1e-6)  # 0.220095
    weighted = build_loss("ce", 2, class_weights=torch.tensor([1.0, 3.0]))
    # (1 * CE0 + 3 * CE1) / (1 + 3) = 0.266679
    assert weighted(LOGITS, TARGET).item() == pytest.approx((CE0 + 3 * CE1) / 4, rel=1e-6)


def test_ohem_keeps_the_hard_pixels() -> None:
    # Pixel 0 has p = 0.88 for its label (easy above a 0.8 threshold), pixel 1 p = 0.73 (hard).
    ohem = build_loss("ohem", 2, ohem_threshold=0.8, ohem_min_fraction=0.01)
    assert ohem(LOGITS, TARGET).item() == pytest.approx(CE1, rel=1e-6)
    # Both easy at 0.7: the hardest pixel still counts (at least one is kept).
    assert build_loss("ohem", 2, ohem_threshold=0.7)(LOGITS, TARGET).item() == pytest.approx(
        CE1, rel=1e-6
    )
    # Keeping every pixel is plain cross-entropy.
    everything = build_loss("ohem", 2, ohem_threshold=1.0, ohem_min_fraction=1.0)
    assert everything(LOGITS, TARGET).item() == pytest.approx((CE0 + CE1) / 2, rel=1e-6)
    with pytest.raises(EdgesegError, match="OHEM threshold"):
        build_loss("ohem", 2, ohem_threshold=0.0)


def test_cross_entropy_matches_pytorch_with_ignore() -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 5, 7, generator=generator)
    target = torch.randint(0, 5, (2, 5, 7), generator=generator)  # 4 = ignore
    weights = torch.tensor([0.5, 1.0, 2.0, 3.0])
    ours = build_loss("ce", 4, class_weights=weights, ignore_index=4)(logits, target)
    reference = F.cross_entropy(logits, target, weight=weights, ignore_index=4)
    assert ours.item() == pytest.approx(reference.item(), rel=1e-6)


@pytest.mark.parametrize("name", LOSSES)
def test_ignored_and_out_of_range_pixels_do_not_count(name: str) -> None:
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(1, 3, 4, 6, generator=generator, requires_grad=True)
    target = torch.randint(0, 3, (1, 4, 6), generator=generator)
    noisy = target.clone()
    noisy[0, 0, :] = 7  # the ignore index
    noisy[0, 1, :3] = 255  # augmentation padding
    loss_fn = build_loss(name, 3, class_weights=torch.tensor([1.0, 2.0, 0.5]), ignore_index=7)
    loss = loss_fn(logits, noisy)
    loss.backward()
    assert logits.grad is not None
    assert torch.all(logits.grad[0, :, 0, :] == 0) and torch.all(logits.grad[0, :, 1, :3] == 0)
    # Changing the logits of ignored pixels changes nothing.
    other = logits.detach().clone()
    other[0, :, 0, :] = 50.0
    other[0, :, 1, :3] = -50.0
    assert loss_fn(other, noisy).item() == pytest.approx(loss.item(), rel=1e-6)


@pytest.mark.parametrize("name", LOSSES)
def test_all_ignored_gives_zero_not_nan(name: str) -> None:
    logits = torch.randn(1, 3, 2, 2, requires_grad=True)
    loss = build_loss(name, 3, ignore_index=3)(logits, torch.full((1, 2, 2), 3))
    loss.backward()
    assert loss.item() == 0.0 and torch.all(logits.grad == 0)


def test_focal_with_gamma_zero_is_cross_entropy() -> None:
    generator = torch.Generator().manual_seed(2)
    logits = torch.randn(2, 5, 6, 6, generator=generator)
    target = torch.randint(0, 6, (2, 6, 6), generator=generator)
    weights = torch.rand(5, generator=generator) + 0.1
    focal = build_loss("focal", 5, class_weights=weights, ignore_index=5, focal_gamma=0.0)
    ce = build_loss("ce", 5, class_weights=weights, ignore_index=5)
    assert focal(logits, target).item() == pytest.approx(ce(logits, target).item(), rel=1e-6)


def test_focal_by_hand() -> None:
    # gamma 2: each pixel's CE scaled by (1 - p)^2; alpha = (1, 3) weights and normalises.
    expected = ((1 - P0) ** 2 * CE0 + 3 * (1 - P1) ** 2 * CE1) / 4
    focal = build_loss("focal", 2, class_weights=torch.tensor([1.0, 3.0]), focal_gamma=2.0)
    assert focal(LOGITS, TARGET).item() == pytest.approx(expected, rel=1e-5)


def test_dice_by_hand() -> None:
    # Class 0: intersection P0; predicted mass P0 + (1 - P1); one true pixel.
    # Class 1: intersection P1; predicted mass (1 - P0) + P1; one true pixel.
    dice0 = 2 * P0 / (P0 + (1 - P1) + 1)  # 0.819456
    dice1 = 2 * P1 / ((1 - P0) + P1 + 1)  # 0.790253
    expected = 1 - (dice0 + dice1) / 2
    assert build_loss("dice", 2)(LOGITS, TARGET).item() == pytest.approx(expected, rel=1e-5)
    ce_dice = build_loss("ce+dice", 2, dice_weight=0.5)(LOGITS, TARGET).item()
    assert ce_dice == pytest.approx((CE0 + CE1) / 2 + 0.5 * expected, rel=1e-5)


def test_dice_of_a_perfect_prediction_is_near_zero() -> None:
    target = torch.randint(0, 4, (2, 8, 8), generator=torch.Generator().manual_seed(3))
    logits = 30.0 * F.one_hot(target, 4).permute(0, 3, 1, 2).float()
    assert build_loss("dice", 4)(logits, target).item() < 1e-6
    wrong = 30.0 * F.one_hot((target + 1) % 4, 4).permute(0, 3, 1, 2).float()
    assert build_loss("dice", 4)(wrong, target).item() > 0.99


def test_dice_averages_over_present_classes_only() -> None:
    # Class 2 is absent from the target; predicting it nowhere must not cost anything.
    target = torch.tensor([[[0, 1], [1, 0]]])
    logits = 30.0 * F.one_hot(target, 3).permute(0, 3, 1, 2).float()
    assert build_loss("dice", 3)(logits, target).item() < 1e-6


def test_losses_accept_half_precision_logits() -> None:
    logits = LOGITS.half()
    assert build_loss("ce", 2)(logits, TARGET).dtype == torch.float32


def test_unknown_loss_and_bad_weights() -> None:
    with pytest.raises(EdgesegError, match="'bce' is not one of: ce, ohem, focal, dice, ce\\+dice"):
        build_loss("bce", 2)
    with pytest.raises(EdgesegError, match="3 class weights given for 2 classes"):
        build_loss("ce", 2, class_weights=torch.ones(3))
