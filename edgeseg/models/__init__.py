"""The SegNet model family and ``create_model``.

A plain dict of architectures; :func:`create_model` lists the valid names and options on error.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from edgeseg.errors import EdgesegError
from edgeseg.models.segnet import SegNet, SegNetBasic

ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "segnet": SegNet,
    "segnet-basic": SegNetBasic,
}


def _options_of(name: str) -> list[str]:
    params = inspect.signature(ARCHITECTURES[name]).parameters
    return [p for p in params if p not in ("self", "num_classes")]


def create_model(
    name: str, num_classes: int, vgg_weights: str | None = None, **options: Any
) -> nn.Module:
    """Build architecture ``name`` for ``num_classes`` classes.

    ``options`` are the architecture's own arguments (``width`` for ``segnet``; ``channels``,
    ``kernel_size``, ``depth`` for ``segnet-basic``). ``vgg_weights`` names a local torchvision
    VGG16-BN weights file to initialise SegNet's encoder from; nothing is ever downloaded.
    """
    if name not in ARCHITECTURES:
        raise EdgesegError(
            f"unknown model {name!r}; choose one of: {', '.join(sorted(ARCHITECTURES))}"
        )
    valid = _options_of(name)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise EdgesegError(
            f"model {name!r} has no option {', '.join(unknown)}; valid: {', '.join(valid)}"
        )
    if num_classes < 1:
        raise EdgesegError(f"num_classes must be at least 1, got {num_classes}")
    width = options.get("width", 1.0)
    if not 0 < float(width) <= 4:
        raise EdgesegError(f"width must be in (0, 4], got {width}")
    model = ARCHITECTURES[name](num_classes=num_classes, **options)
    if vgg_weights is not None:
        if name != "segnet":
            raise EdgesegError("VGG16-BN initialisation applies to 'segnet' only")
        from edgeseg.models.vgg_init import load_vgg16_bn_encoder

        load_vgg16_bn_encoder(model, vgg_weights)
    return model


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (BN running statistics are buffers, not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = ["ARCHITECTURES", "SegNet", "SegNetBasic", "count_parameters", "create_model"]
