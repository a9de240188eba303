"""Overlay cost per 1920x1080 frame (target: under 3 ms on a 2-core CPU).

What the pipeline does per frame: colour the network-resolution class map (360x480) with the
palette table, resize the colours nearest-neighbour to the frame, blend with alpha, paste the
cached legend; all into buffers reused between frames. Also timed: a class map already at
1920x1080 (what ``Segmenter.predict`` returns), the mask and side-by-side modes, and ``--classes``
filtering. ``--threads 1`` pins OpenCV to one thread, as when inference holds the other cores.

    python benchmarks/runtime_overlay.py [--threads 1] [--iterations 300]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import cv2
import numpy as np
from bench_record import emit, machine

from edgeseg.card import ModelCard
from edgeseg.data.spec import CAMVID
from edgeseg.runtime import Renderer, resize_mask

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "camvid"
FULL_HD = (1080, 1920)


def inputs() -> tuple[np.ndarray, np.ndarray]:
    """A 1080p frame and a 360x480 class map: a CamVid frame and its label when present."""
    images = sorted((SHARED / "val").glob("*.png"))
    if images:
        frame = cv2.imread(str(images[0]))
        labels = cv2.imread(str(SHARED / "valannot" / images[0].name), cv2.IMREAD_UNCHANGED)
        labels = np.minimum(labels, CAMVID.num_classes - 1).astype(np.uint8)
    else:
        rng = np.random.default_rng(0)
        frame = rng.integers(0, 255, (360, 480, 3), dtype=np.uint8)
        blocks = rng.integers(0, CAMVID.num_classes, (12, 16), dtype=np.uint8)
        labels = resize_mask(blocks, (360, 480))
    return cv2.resize(frame, FULL_HD[::-1], interpolation=cv2.INTER_LINEAR), labels


def summarise(samples: list[float]) -> dict[str, float]:
    values = np.asarray(samples) * 1000
    return {
        "median_ms": round(float(np.median(values)), 3),
        "p95_ms": round(float(np.percentile(values, 95)), 3),
        "min_ms": round(float(values.min()), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--threads", type=int, help="cv2.setNumThreads (default: OpenCV's)")
    parser.add_argument(
        "--json", type=Path, help="also write the record here (read by benchmarks/performance.py)"
    )
    args = parser.parse_args()
    if args.threads is not None:
        cv2.setNumThreads(args.threads)
    card = ModelCard(
        architecture="segnet",
        num_classes=CAMVID.num_classes,
        class_names=CAMVID.class_names,
        palette=CAMVID.palette,
        input_hw=(360, 480),
    )
    frame, class_map = inputs()
    full_mask = resize_mask(class_map, FULL_HD)
    cases = {
        "overlay, 360x480 class map, legend": (Renderer(card, "overlay", 0.5, True), class_map),
        "overlay, 1080p mask, legend": (Renderer(card, "overlay", 0.5, True), full_mask),
        "overlay, no legend": (Renderer(card, "overlay", 0.5, False), class_map),
        "overlay, --classes road,car": (
            Renderer(card, "overlay", 0.5, True, classes="road,car"),
            class_map,
        ),
        "mask mode": (Renderer(card, "mask", 0.5, True), class_map),
        "side-by-side (3840x1080 out)": (Renderer(card, "side-by-side", 0.5, True), class_map),
    }
    renders = {}
    for name, (renderer, mask) in cases.items():
        buffer: list[np.ndarray | None] = [None]

        def render(renderer=renderer, mask=mask, buffer=buffer) -> None:
            buffer[0] = renderer.render(frame, mask, out=buffer[0])

        render()  # warm-up: allocates the reused buffers
        renders[name] = render
    # Round-robin: each iteration times every case once, so a busy moment on a shared machine
    # hits all cases alike instead of whichever happened to run then.
    samples: dict[str, list[float]] = {name: [] for name in renders}
    for _ in range(args.iterations):
        for name, render in renders.items():
            start = time.perf_counter()
            render()
            samples[name].append(time.perf_counter() - start)
    results = {name: summarise(values) for name, values in samples.items()}
    record = {
        "frame": f"{FULL_HD[1]}x{FULL_HD[0]}",
        "opencv_threads": cv2.getNumThreads(),
        "iterations": args.iterations,
        "results": results,
        "machine": machine(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    emit(record, args.json)


if __name__ == "__main__":
    main()
