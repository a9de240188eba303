"""Encoder initialisation from torchvision's VGG16-BN ImageNet weights, read from a local file.

edgeseg never downloads weights: the user passes the ``vgg16_bn-*.pth`` file torchvision would
fetch (a plain state dict, loaded with ``weights_only=True``). The 13 convolutions and their batch
norms map in order onto SegNet's encoder; only full width (``width=1``) has matching shapes.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from edgeseg.errors import EdgesegError


def load_vgg16_bn_encoder(model: nn.Module, weights_path: str | Path) -> int:
    """Copy VGG16-BN ``features.*`` weights into ``model.encoders``; return the tensors copied."""
    path = Path(weights_path)
    if not path.is_file():
        raise EdgesegError(
            f"VGG16-BN weights file {path} not found; download torchvision's vgg16_bn ImageNet "
            "weights (vgg16_bn-6c64b313.pth) yourself and pass its path"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a corrupt or non-torch file: the user's to fix
        raise EdgesegError(f"cannot read VGG16-BN weights from {path}: {exc}") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    conv_keys = sorted(
        {
            int(k.split(".")[1])
            for k in state
            if k.startswith("features.") and k.endswith(".weight") and state[k].ndim == 4
        }
    )
    targets = [m for m in model.encoders.modules() if isinstance(m, nn.Conv2d)]
    if len(conv_keys) != 13 or len(targets) != 13:
        raise EdgesegError(f"{path} does not hold VGG16-BN features (found {len(conv_keys)} convs)")
    copied = 0
    with torch.no_grad():
        for index, conv in zip(conv_keys, targets, strict=True):
            source_w = state[f"features.{index}.weight"]
            if source_w.shape != conv.weight.shape:
                raise EdgesegError(
                    f"VGG16-BN weights do not fit this encoder ({tuple(source_w.shape)} vs "
                    f"{tuple(conv.weight.shape)}); ImageNet init needs --width 1"
                )
            conv.weight.copy_(source_w)
            conv.bias.copy_(state[f"features.{index}.bias"])
            copied += 2
        bns = [m for m in model.encoders.modules() if isinstance(m, nn.BatchNorm2d)]
        for index, bn in zip(conv_keys, bns, strict=True):
            prefix = f"features.{index + 1}."
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(bn, name).copy_(state[prefix + name])
                copied += 1
    return copied
