"""Training throughput (images/s) of the SegNet family: forward + backward + SGD step.

    python benchmarks/train_speed.py                      # CPU, 360x480, batch 2
    python benchmarks/train_speed.py --device cuda --batch-size 8 --amp

Synthetic inputs: this measures the model, not data loading. Prints one line per model and a
JSON record (with the machine) at the end for docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from edgeseg.files import atomic_write_bytes
from edgeseg.models import count_parameters, create_model
from edgeseg.train.losses import build_loss

MODELS = {
    "segnet": ("segnet", {}),
    "segnet --width 0.25": ("segnet", {"width": 0.25}),
    "segnet-basic": ("segnet-basic", {}),
}


def measure(name: str, options: dict, args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    model = create_model(name, 11, **options).to(device).train()
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = build_loss("ce", 11, ignore_index=11)
    height, width = args.size
    x = torch.randn(args.batch_size, 3, height, width, device=device)
    y = torch.randint(0, 12, (args.batch_size, height, width), device=device)
    use_amp = args.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    def step() -> None:
        with torch.autocast("cuda", dtype=torch.float16, enabled=use_amp):
            loss = loss_fn(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    for _ in range(args.warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {
        "images_per_s": args.steps * args.batch_size / seconds,
        "params": count_parameters(model),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--size", default="360x480")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--amp", action="store_true")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument(
        "--json", type=Path, help="also write the record here (read by benchmarks/performance.py)"
    )
    args = parser.parse_args()
    args.size = tuple(int(v) for v in args.size.split("x"))
    machine = (
        torch.cuda.get_device_name()
        if args.device.startswith("cuda")
        else f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    )
    results = {}
    for label in args.models.split(","):
        name, options = MODELS[label]
        results[label] = measure(name, options, args)
        print(
            f"{label:22s} {results[label]['images_per_s']:8.2f} images/s  "
            f"({results[label]['params']:,} params, {args.size[0]}x{args.size[1]}, "
            f"batch {args.batch_size}, {args.device}{', amp' if args.amp else ''})"
        )
    record = {
        "benchmark": "train_speed",
        "machine": machine,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "size": f"{args.size[0]}x{args.size[1]}",
        "batch_size": args.batch_size,
        "device": args.device,
        "amp": args.amp,
        "results": results,
    }
    print(json.dumps(record))
    if args.json:
        atomic_write_bytes(args.json, json.dumps(record, indent=1).encode())


if __name__ == "__main__":
    main()
