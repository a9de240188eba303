"""Several GPUs through ``torchrun``: process-group setup, rank checks, confusion all-reduce.

A plain ``edgeseg train`` is world size 1 and none of this does anything. Under
``torchrun --nproc-per-node N -m edgeseg train ...`` each process trains on its shard of the data
(DistributedSampler), gradients are averaged by DistributedDataParallel, validation confusion
matrices are summed across ranks, and rank 0 alone writes files and shows progress.
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.distributed as dist


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    return rank() == 0


def setup(device: str) -> str:
    """Join the process group when launched by torchrun; return the device this rank uses."""
    if world_size() <= 1 or dist.is_initialized():
        return device
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl")
        return f"cuda:{local_rank}"
    dist.init_process_group("gloo")
    return device


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def sum_across_ranks(array: np.ndarray) -> np.ndarray:
    """Element-wise sum of ``array`` over all ranks (identity without a process group)."""
    if not (dist.is_available() and dist.is_initialized()):
        return array
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float64))
    if dist.get_backend() == "nccl":
        tensor = tensor.cuda()
    dist.all_reduce(tensor)
    return tensor.cpu().numpy().astype(array.dtype)


def mean_across_ranks(value: float) -> float:
    return float(sum_across_ranks(np.array([value]))[0]) / max(1, world_size())
