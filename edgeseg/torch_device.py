"""The one rule for ``--device`` (train, eval): ``auto`` is CUDA when PyTorch sees a GPU, else CPU.

Imports torch only when called, so the core imports without it.
"""

from __future__ import annotations

from edgeseg.errors import EdgesegError

DEVICE_HELP = "PyTorch device: auto (CUDA when PyTorch sees a GPU, else cpu), cpu, cuda or cuda:N."


def resolve_device(requested: str) -> str:
    """``auto`` -> ``cuda``/``cpu``; a CUDA device without a GPU is refused in one line."""
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise EdgesegError(
            f"--device {requested} was asked for but PyTorch sees no CUDA GPU; use --device cpu"
        )
    if requested != "cpu" and not requested.startswith("cuda"):
        raise EdgesegError(f"--device {requested!r}: choose auto, cpu, cuda or cuda:N")
    return requested
