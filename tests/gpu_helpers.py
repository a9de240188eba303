"""Skip where the GPU is absent, fail where it is present: the rule for a GPU test's missing piece.

A test of the plugin, the kernel or an engine needs build tools (nvcc, cmake, a C++ compiler), a
built plugin and a working driver. Where there is no GPU, their absence is a skip naming what is
missing. On a machine with a GPU the same absence is a failure: a GPU test that skips there
would let a plugin that cannot build pass as green (pytest -rs lists skips; nobody reads them).
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from typing import NoReturn

import pytest


@functools.cache
def gpu_present() -> bool:
    """An NVIDIA GPU on this machine: PyTorch sees CUDA, or ``nvidia-smi -L`` lists a GPU."""
    try:
        import torch

        if torch.cuda.is_available():
            return True
    except ImportError:
        pass
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return False
    try:
        listed = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return "GPU " in listed


def missing(reason: str) -> NoReturn:
    """Skip naming ``reason`` where there is no GPU; fail naming it where there is one."""
    if gpu_present():
        pytest.fail(f"{reason}, on a machine with a GPU: GPU tests must run here", pytrace=False)
    pytest.skip(reason)
