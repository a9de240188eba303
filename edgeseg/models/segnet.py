"""SegNet (Badrinarayanan, Kendall, Cipolla 2015) and SegNet-Basic, wired from the blocks.

SegNet: the 13 convolutional layers of VGG16 with BN and ReLU, five 2x2 index poolings, and a
mirrored decoder that unpools with the matching encoder's indices; the last 3x3 convolution maps
to the K classes without BN or ReLU (29,449,355 parameters for K=11). ``width`` scales every
channel count for CPU-class devices (0.25 -> 16..128 channels, about 1/16 of the compute).

SegNet-Basic: the paper's small variant for analysis: 4 encoders and 4 decoders of one 7x7
64-channel convolution each, BN, ReLU in the encoder only (the paper's decoder has none), and a
1x1 classifier. The Caffe original normalises the input with LRN; here the model card's mean/std
normalisation plays that role.

Both accept any input height and width: unpooling restores each pre-pool size, so 360x480 goes
45x60 -> 22x30 -> 45x60 and odd sizes round-trip exactly.
"""

from __future__ import annotations

import torch
from torch import nn

from edgeseg.models.blocks import DecoderStage, EncoderStage, encode_decode

#: VGG16 channel counts per encoder stage (each stage ends in a 2x2 pooling).
VGG16_STAGES: tuple[tuple[int, ...], ...] = (
    (64, 64),
    (128, 128),
    (256, 256, 256),
    (512, 512, 512),
    (512, 512, 512),
)


def scale_channels(channels: int, width: float) -> int:
    """Channel count under a width multiplier, rounded to a multiple of 8 (at least 8)."""
    return max(8, round(channels * width / 8.0) * 8)


class SegNet(nn.Module):
    """VGG16-BN SegNet. (N, in_channels, H, W) float -> (N, num_classes, H, W) logits."""

    def __init__(self, num_classes: int, in_channels: int = 3, width: float = 1.0) -> None:
        super().__init__()
        stages = [[scale_channels(c, width) for c in stage] for stage in VGG16_STAGES]
        self.encoders = nn.ModuleList()
        previous = in_channels
        for stage in stages:
            self.encoders.append(EncoderStage([previous, *stage]))
            previous = stage[-1]
        # Decoder i mirrors encoder i: same convolutions in reverse, the last one of each stage
        # narrowing to the channel count of the stage before (SegNet's Caffe definition).
        self.decoders = nn.ModuleList()
        for i, stage in enumerate(stages):
            out = stages[i - 1][-1] if i > 0 else num_classes
            channels = [*reversed(stage), out]
            self.decoders.append(DecoderStage(channels, last_plain=(i == 0)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return encode_decode(self.encoders, self.decoders, x)


class SegNetBasic(nn.Module):
    """SegNet-Basic. (N, in_channels, H, W) float -> (N, num_classes, H, W) logits."""

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 3,
        channels: int = 64,
        kernel_size: int = 7,
        depth: int = 4,
    ) -> None:
        super().__init__()
        self.encoders = nn.ModuleList(
            EncoderStage([in_channels if i == 0 else channels, channels], kernel_size)
            for i in range(depth)
        )
        self.decoders = nn.ModuleList(
            DecoderStage([channels, channels], kernel_size, relu=False) for _ in range(depth)
        )
        self.classifier = nn.Conv2d(channels, num_classes, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(encode_decode(self.encoders, self.decoders, x))
