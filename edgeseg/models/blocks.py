"""Building blocks of the SegNet family: conv-BN-ReLU stacks, index pooling and unpooling.

Unpooling follows DESIGN.md exactly: ``max_pool2d(return_indices=True)`` keeps, per (n, c) plane,
the first maximum of each 2x2 window in row-major order, and ``max_unpool2d`` writes each decoder
value at that position and zeros elsewhere, at the pre-pool size (rows or columns the pooling
dropped at odd sizes stay zero). The export stage swaps :class:`MaxUnpool2x2` for other forms,
so both modules are kept as separate, named modules rather than inline calls.
"""

from __future__ import annotations

from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn


class ConvBNReLU(nn.Sequential):
    """kxk convolution (with bias, as in the paper's Caffe model), batch norm, optional ReLU."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3, relu: bool = True) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2, bias=True),
            nn.BatchNorm2d(out_ch),
        ]
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class MaxPool2x2(nn.Module):
    """2x2 stride-2 max pooling that also returns the per-plane indices of each window's maximum.

    (N, C, H, W) -> ((N, C, H//2, W//2), int64 indices of the same shape).
    """

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return F.max_pool2d(x, kernel_size=2, stride=2, return_indices=True)


class MaxUnpool2x2(nn.Module):
    """Inverse of :class:`MaxPool2x2`: decoder (N, C, H//2, W//2) -> (N, C, H, W).

    ``prepool`` is the encoder tensor that was pooled; only its size is used here, but export
    replaces this module with forms that recompute the argmax from it, so it is passed in.
    """

    def forward(
        self, x: torch.Tensor, indices: torch.Tensor, prepool: torch.Tensor
    ) -> torch.Tensor:
        return F.max_unpool2d(x, indices, kernel_size=2, stride=2, output_size=prepool.shape[-2:])


class EncoderStage(nn.Module):
    """A stack of conv-BN-ReLU layers followed by index pooling."""

    def __init__(self, channels: list[int], kernel_size: int = 3) -> None:
        super().__init__()
        self.convs = nn.Sequential(*(ConvBNReLU(a, b, kernel_size) for a, b in pairwise(channels)))
        self.pool = MaxPool2x2()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns (pooled, indices, pre-pool tensor)."""
        prepool = self.convs(x)
        pooled, indices = self.pool(prepool)
        return pooled, indices, prepool


class DecoderStage(nn.Module):
    """Unpooling with the matching encoder's indices, then a stack of conv-BN(-ReLU) layers.

    ``last_plain`` makes the final layer a bare convolution (SegNet's classifier: no BN, no ReLU).
    """

    def __init__(
        self,
        channels: list[int],
        kernel_size: int = 3,
        relu: bool = True,
        last_plain: bool = False,
    ) -> None:
        super().__init__()
        self.unpool = MaxUnpool2x2()
        layers: list[nn.Module] = []
        pairs = list(pairwise(channels))
        for i, (a, b) in enumerate(pairs):
            if last_plain and i == len(pairs) - 1:
                layers.append(nn.Conv2d(a, b, kernel_size, padding=kernel_size // 2))
            else:
                layers.append(ConvBNReLU(a, b, kernel_size, relu=relu))
        self.convs = nn.Sequential(*layers)

    def forward(
        self, x: torch.Tensor, indices: torch.Tensor, prepool: torch.Tensor
    ) -> torch.Tensor:
        return self.convs(self.unpool(x, indices, prepool))


def encode_decode(
    encoders: nn.ModuleList, decoders: nn.ModuleList, x: torch.Tensor
) -> torch.Tensor:
    """Run the encoder stages, then the decoders in reverse, each unpooling with its mirror's
    indices and pre-pool tensor (decoder i mirrors encoder i)."""
    skips = []
    for encoder in encoders:
        x, indices, prepool = encoder(x)
        skips.append((indices, prepool))
    for decoder, (indices, prepool) in zip(reversed(decoders), reversed(skips), strict=True):
        x = decoder(x, indices, prepool)
    return x
