"""Helpers for tests that build small models (importable as ``model_helpers``: pytest puts
``tests/`` on ``sys.path``)."""

from __future__ import annotations

import torch

from edgeseg.card import ModelCard

#: A tiny 3-class segnet-basic (8 channels, 3x3 kernels) at 36x52: fast to export and quantize.
TINY_CARD = ModelCard(
    architecture="segnet-basic",
    num_classes=3,
    class_names=("a", "b", "c"),
    palette=((0, 0, 0), (9, 9, 9), (99, 99, 99)),
    input_hw=(36, 52),
    arch_args={"channels": 8, "kernel_size": 3},
)


def randomize_batchnorm(model: torch.nn.Module, var_low: float = 0.5) -> torch.nn.Module:
    """Give every BatchNorm layer random statistics and affine parameters, from torch's global
    generator (seed it first).

    A freshly built network has mean 0 / variance 1 / identity affine in every BN layer, so in
    eval mode a random small SegNet often predicts one class everywhere; comparisons of class maps
    (export parity, INT8 agreement) would then pass whatever the export did.
    """
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0.0, 0.5)
                module.running_var.uniform_(var_low, 2.0)
                module.weight.uniform_(0.8, 1.2)
                module.bias.normal_(0.0, 0.5)
    return model
