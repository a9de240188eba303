"""The one rule for ``--device`` (train, eval): ``auto`` is CUDA when PyTorch sees a GPU, else CPU.

Imports torch only when called, so the core imports without it.
"""

from __future__ import annotations

DEVICE_HELP = "PyTorch device: auto (CUDA when PyTorch sees a GPU, else cpu), cpu, cuda or cuda:N."


def resolve_device(requested: str) -> str:
    """``auto`` -> ``cuda``/``cpu``; a device this torch does not have is refused in one line
    naming the ones it has (:func:`edgeseg.validate.torch_device`, the one rule)."""
    import torch

    from edgeseg.validate import torch_device

    return torch_device(requested, torch)
