"""End-to-end FPS of ``edgeseg run`` on a video file against the model alone (ONNX Runtime).

Model-only: ``Segmenter.infer`` on one preprocessed frame, back to back, nothing else running.
Pipeline: :class:`edgeseg.runtime.Pipeline` over a video file (decode, preprocess, inference,
argmax, overlay with legend, MP4 encode), every frame kept. The target is pipeline FPS at least
0.9 of model-only: capture and rendering overlap with inference in their own threads.

Measured in rounds (model-only, then the pipeline), each ratio from neighbouring measurements,
because a shared machine's speed drifts. Run from the repository root:

    python benchmarks/runtime_pipeline.py                  # SegNet width 0.25, CamVid clip
    python benchmarks/runtime_pipeline.py --argmax --rounds 5
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from bench_record import emit, machine
from runtime_model import CAMVID_CLIP, segnet_onnx

from edgeseg.runtime import Pipeline, Segmenter, VideoSink, open_source


def source_frames(count: int) -> list[np.ndarray]:
    """``count`` 360x480 frames: the CamVid clip, looped, or synthetic frames without it."""
    frames: list[np.ndarray] = []
    if CAMVID_CLIP.is_file():
        capture = cv2.VideoCapture(str(CAMVID_CLIP))
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(frame)
    else:
        rng = np.random.default_rng(0)
        base = rng.integers(0, 255, (360, 480, 3), dtype=np.uint8)
        frames = [np.roll(base, 4 * i, axis=1) for i in range(50)]
    return [frames[i % len(frames)] for i in range(count)]


def model_only_fps(segmenter: Segmenter, frame: np.ndarray, iterations: int) -> float:
    batch = segmenter.preprocess(frame)
    segmenter.infer(batch)  # warm-up
    start = time.perf_counter()
    for _ in range(iterations):
        segmenter.infer(batch)
    return iterations / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="ONNX file (default: SegNet width 0.25)")
    parser.add_argument("--argmax", action="store_true", help="model ends in ArgMax")
    parser.add_argument("--frames", type=int, default=40, help="frames per pipeline round")
    parser.add_argument("--model-iterations", type=int, default=20, help="per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, help="ONNX Runtime intra-op threads")
    parser.add_argument(
        "--json", type=Path, help="also write the record here (read by benchmarks/performance.py)"
    )
    args = parser.parse_args()

    model = args.model or segnet_onnx(argmax=args.argmax)
    segmenter = Segmenter(model, threads=args.threads)
    frames = source_frames(args.frames)
    rounds = []
    with tempfile.TemporaryDirectory() as folder:
        video = Path(folder) / "input.mp4"
        writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 15, (480, 360))
        for frame in frames:
            writer.write(frame)
        writer.release()
        # Rounds of model-only then pipeline, each ratio from neighbouring measurements: a
        # shared machine's speed drifts by 2x over minutes, which would swamp one long pair.
        for _ in range(args.rounds):
            model_fps = model_only_fps(segmenter, frames[0], args.model_iterations)
            source = open_source(video)
            start = time.perf_counter()
            stats = Pipeline(source, segmenter, [VideoSink(Path(folder) / "out.mp4", 15)]).run()
            pipeline_fps = stats.frames_done / (time.perf_counter() - start)
            assert stats.frames_done == len(frames) and stats.dropped == 0
            rounds.append(
                {
                    "model_only_fps": round(model_fps, 2),
                    "pipeline_fps": round(pipeline_fps, 2),
                    "ratio": round(pipeline_fps / model_fps, 3),
                    "stage_ms": {k: round(v, 2) for k, v in stats.stage_ms.items()},
                }
            )
    result = {
        "model": str(model),
        "backend": segmenter.describe(),
        "output": segmenter.card.output,
        "input_hw": list(segmenter.card.input_hw),
        "frames_per_round": len(frames),
        "median_model_only_fps": float(np.median([r["model_only_fps"] for r in rounds])),
        "median_pipeline_fps": float(np.median([r["pipeline_fps"] for r in rounds])),
        "median_ratio": float(np.median([r["ratio"] for r in rounds])),
        "rounds": rounds,
        "machine": machine(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    emit(result, args.json)


if __name__ == "__main__":
    main()
