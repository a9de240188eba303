"""Capture-to-output latency beside FPS, on a video file played at its own rate.

A camera delivers frames on its own clock whatever the model does; a file read as fast as
possible does not, and its "latency" is only queueing. So the file is released on the video's
clock (:class:`edgeseg.runtime.PacedSource`: frame *i* at start + i / fps) and the pipeline
treats it as a camera: newest frame only, stale frames dropped. Per run it reports FPS (frames
out per second), frames dropped, capture-to-output p50/p95 (from a frame's release to its overlay
handed to the writer) and latency p50/p95 (to the end of the last sink, MP4 encoding included).

The clip is played at several rates, so the figures show both regimes: a rate the model keeps
up with (latency is one inference plus the overlay) and one it does not (frames are dropped,
latency stays bounded instead of growing). Run from the repository root:

    python benchmarks/runtime_latency.py                       # SegNet width 0.25, CamVid clip
    python benchmarks/runtime_latency.py --rates 5,15 --frames 90 --json out/bench/latency.json
    python benchmarks/runtime_latency.py --one-layer --rates 15,30   # the runtime's own delay
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import cv2
from bench_record import emit, machine
from runtime_memory import one_layer_model
from runtime_model import segnet_onnx
from runtime_pipeline import source_frames

from edgeseg.runtime import PacedSource, Pipeline, Segmenter, VideoSink, open_source


def write_clip(path: Path, frames: int) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 15, (480, 360))
    for frame in source_frames(frames):
        writer.write(frame)
    writer.release()
    return path


def measure(segmenter: Segmenter, clip: Path, rate: float, out: Path) -> dict:
    source = PacedSource(open_source(clip), fps=rate)
    stats = Pipeline(source, segmenter, [VideoSink(out, live=True)]).run()
    return {
        "played_at_fps": rate,
        "fps": round(stats.mean_fps, 2),
        "frames_read": stats.frames_read,
        "frames_done": stats.frames_done,
        "dropped": stats.dropped,
        "capture_to_output_p50_ms": round(stats.capture_to_output_p50_ms, 1),
        "capture_to_output_p95_ms": round(stats.capture_to_output_p95_ms, 1),
        "latency_p50_ms": round(stats.latency_p50_ms, 1),
        "latency_p95_ms": round(stats.latency_p95_ms, 1),
        "stage_ms": {k: round(v, 2) for k, v in stats.stage_ms.items()},
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="ONNX file (default: SegNet width 0.25)")
    parser.add_argument("--argmax", action="store_true", help="model ends in ArgMax")
    parser.add_argument(
        "--one-layer", action="store_true", help="a one-layer model: the runtime's own delay"
    )
    parser.add_argument("--rates", default="2,15", help="comma-separated playback rates (fps)")
    parser.add_argument("--frames", type=int, default=60, help="frames of the clip per run")
    parser.add_argument("--threads", type=int, help="ONNX Runtime intra-op threads")
    parser.add_argument("--json", type=Path, help="also write the record here")
    args = parser.parse_args()

    runs = []
    with tempfile.TemporaryDirectory() as folder:
        if args.one_layer:
            model = one_layer_model(Path(folder) / "one_layer.onnx")
        else:
            model = args.model or segnet_onnx(argmax=args.argmax)
        segmenter = Segmenter(model, threads=args.threads)
        clip = write_clip(Path(folder) / "clip.mp4", args.frames)
        segmenter.infer(segmenter.preprocess(source_frames(1)[0]))  # warm-up
        for rate in (float(r) for r in args.rates.split(",")):
            runs.append(measure(segmenter, clip, rate, Path(folder) / "out.mp4"))
            print(json.dumps(runs[-1]), flush=True)
    result = {
        "model": str(model),
        "backend": segmenter.describe(),
        "input_hw": list(segmenter.card.input_hw),
        "frames_per_run": args.frames,
        "runs": runs,
        "machine": machine(),
    }
    emit(result, args.json)


if __name__ == "__main__":
    main()
