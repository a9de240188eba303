"""Segmentation losses: weighted cross-entropy, OHEM cross-entropy, focal, soft Dice, CE + Dice.

Every loss takes logits (N, K, H, W) and an int64 target (N, H, W) and returns a scalar. A target
pixel counts only when its label is in [0, K) and is not ``ignore_index``; everything else (the
dataset's ignore label, the 255 the augmentation pads with, see :mod:`edgeseg.data.dataset`) is
left out. A batch with no counted pixel gives a loss of 0 (with a gradient of 0), never NaN.
The losses compute in float32 whatever the logits' dtype (mixed precision).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from edgeseg.errors import EdgesegError

#: Valid ``name`` values of :func:`build_loss`.
LOSSES = ("ce", "ohem", "focal", "dice", "ce+dice")


def valid_pixels(target: torch.Tensor, num_classes: int, ignore_index: int | None) -> torch.Tensor:
    """(N, H, W) bool: the pixels whose label is a class (in range, not ``ignore_index``)."""
    valid = (target >= 0) & (target < num_classes)
    if ignore_index is not None:
        valid &= target != ignore_index
    return valid


class _SegmentationLoss(nn.Module):
    def __init__(
        self, num_classes: int, class_weights: torch.Tensor | None, ignore_index: int | None
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        if class_weights is not None:
            class_weights = torch.as_tensor(class_weights, dtype=torch.float32).flatten()
            if class_weights.numel() != num_classes:
                raise EdgesegError(
                    f"{class_weights.numel()} class weights given for {num_classes} classes"
                )
        self.register_buffer("class_weights", class_weights)

    def _prepare(
        self, logits: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(float32 logits, target with uncounted pixels set to 0, valid mask)."""
        if logits.ndim != 4 or logits.shape[1] != self.num_classes:
            raise ValueError(f"expected logits (N, {self.num_classes}, H, W), got {logits.shape}")
        if target.shape != logits.shape[:1] + logits.shape[2:]:
            raise ValueError(f"target {tuple(target.shape)} does not match logits {logits.shape}")
        valid = valid_pixels(target, self.num_classes, self.ignore_index)
        return logits.float(), torch.where(valid, target, torch.zeros_like(target)), valid


class CrossEntropyLoss(_SegmentationLoss):
    """Class-weighted cross-entropy: sum of w[t] * -log p_t over counted pixels / sum of w[t].

    This is ``F.cross_entropy(weight=w, ignore_index=...)``'s mean, extended to ignore labels out
    of range as well.
    """

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits, safe, valid = self._prepare(logits, target)
        nll = F.cross_entropy(logits, safe, reduction="none")
        return _weighted_mean(nll, safe, valid, self.class_weights)


class OhemCrossEntropyLoss(_SegmentationLoss):
    """Cross-entropy over the hard pixels only (online hard example mining, as BiSeNet and most
    real-time segmentation recipes train).

    A counted pixel is hard when the model gives its true class a probability below
    ``threshold``; when fewer than ``min_fraction`` of the counted pixels are hard, the
    ``min_fraction`` with the highest loss count instead, so the gradient never vanishes. The
    easy majority (sky, road) stops dominating without re-weighting classes; class weights, when
    given, still apply to the kept pixels.
    """

    def __init__(
        self,
        num_classes: int,
        class_weights: torch.Tensor | None,
        ignore_index: int | None,
        threshold: float = 0.7,
        min_fraction: float = 1 / 16,
    ) -> None:
        super().__init__(num_classes, class_weights, ignore_index)
        if not 0 < threshold <= 1 or not 0 < min_fraction <= 1:
            raise EdgesegError(
                f"OHEM threshold {threshold} and minimum fraction {min_fraction} must be in (0, 1]"
            )
        self.loss_threshold = -math.log(threshold)
        self.min_fraction = float(min_fraction)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits, safe, valid = self._prepare(logits, target)
        nll = F.cross_entropy(logits, safe, reduction="none")
        counted = nll[valid]
        keep_min = max(1, int(self.min_fraction * counted.numel()))
        if counted.numel() > keep_min:
            kth = counted.topk(keep_min, sorted=False).values.min()
            # Hard: above the probability threshold's loss, or among the keep_min hardest.
            cut = torch.minimum(kth, counted.new_tensor(self.loss_threshold))
            valid = valid & (nll >= cut)
        return _weighted_mean(nll, safe, valid, self.class_weights)


class FocalLoss(_SegmentationLoss):
    """Focal loss (Lin et al. 2017): -alpha_t (1 - p_t)^gamma log p_t, alpha = the class weights.

    Normalised like weighted cross-entropy (divided by the sum of alpha_t over counted pixels), so
    ``gamma=0`` gives exactly :class:`CrossEntropyLoss`.
    """

    def __init__(
        self,
        num_classes: int,
        class_weights: torch.Tensor | None,
        ignore_index: int | None,
        gamma: float,
    ) -> None:
        super().__init__(num_classes, class_weights, ignore_index)
        if gamma < 0:
            raise EdgesegError(f"focal gamma must be >= 0, got {gamma}")
        self.gamma = float(gamma)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits, safe, valid = self._prepare(logits, target)
        log_p = F.log_softmax(logits, dim=1).gather(1, safe.unsqueeze(1)).squeeze(1)
        loss = -log_p
        if self.gamma:
            loss = loss * (1 - log_p.exp()).clamp_min(0).pow(self.gamma)
        return _weighted_mean(loss, safe, valid, self.class_weights)


class DiceLoss(_SegmentationLoss):
    """Soft multi-class Dice loss: 1 - mean over present classes of the batch's soft Dice.

    Per class c over all counted pixels of the batch: Dice_c = 2 sum(p_c g_c) /
    (sum(p_c) + sum(g_c)), with p the softmax and g the one-hot target. Classes absent from the
    batch's target are left out of the mean (their Dice is undefined, and a model would be pushed
    to never predict them otherwise). Class weights are not used.
    """

    eps = 1e-7

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits, safe, valid = self._prepare(logits, target)
        probs = logits.softmax(dim=1) * valid.unsqueeze(1)
        # float32 one-hot by scatter (F.one_hot would build an int64 (N, H, W, K) tensor).
        one_hot = torch.zeros_like(probs).scatter_(1, safe.unsqueeze(1), 1.0) * valid.unsqueeze(1)
        dims = (0, 2, 3)
        intersection = (probs * one_hot).sum(dims)
        target_sum = one_hot.sum(dims)
        dice = 2 * intersection / (probs.sum(dims) + target_sum).clamp_min(self.eps)
        present = (target_sum > 0).float()
        # The sum over an empty set is 0 and the count is clamped to 1: no NaN, no sync.
        return (present * (1 - dice)).sum() / present.sum().clamp_min(1)


class CrossEntropyDiceLoss(nn.Module):
    """Cross-entropy + ``dice_weight`` x Dice: pixel accuracy and overlap, good for thin
    structures (cracks, poles) that cross-entropy alone under-segments."""

    def __init__(self, cross_entropy: CrossEntropyLoss, dice: DiceLoss, dice_weight: float) -> None:
        super().__init__()
        self.cross_entropy = cross_entropy
        self.dice = dice
        self.dice_weight = float(dice_weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.cross_entropy(logits, target) + self.dice_weight * self.dice(logits, target)


def _weighted_mean(
    loss: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, weights: torch.Tensor | None
) -> torch.Tensor:
    pixel_weight = valid.float() if weights is None else weights[target] * valid
    # clamp, not a branch on the count: no host sync, and 0/eps = 0 when nothing counts.
    return (loss * pixel_weight).sum() / pixel_weight.sum().clamp_min(1e-12)


def build_loss(
    name: str,
    num_classes: int,
    class_weights: torch.Tensor | None = None,
    ignore_index: int | None = None,
    focal_gamma: float = 2.0,
    dice_weight: float = 1.0,
    ohem_threshold: float = 0.7,
    ohem_min_fraction: float = 1 / 16,
) -> nn.Module:
    """The loss called ``name`` (one of :data:`LOSSES`).

    ``class_weights`` (K,) weight cross-entropy and are focal's alpha; Dice ignores them. Raises
    EdgesegError for an unknown name (listing the valid ones) or a weight count that is not K.
    """
    if name not in LOSSES:
        raise EdgesegError(f"loss {name!r} is not one of: {', '.join(LOSSES)}")
    if name == "ce":
        return CrossEntropyLoss(num_classes, class_weights, ignore_index)
    if name == "ohem":
        return OhemCrossEntropyLoss(
            num_classes, class_weights, ignore_index, ohem_threshold, ohem_min_fraction
        )
    if name == "focal":
        return FocalLoss(num_classes, class_weights, ignore_index, focal_gamma)
    if name == "dice":
        return DiceLoss(num_classes, None, ignore_index)
    return CrossEntropyDiceLoss(
        CrossEntropyLoss(num_classes, class_weights, ignore_index),
        DiceLoss(num_classes, None, ignore_index),
        dice_weight,
    )
