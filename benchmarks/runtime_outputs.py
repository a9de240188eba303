"""What each output costs: CPU ms per frame of mp4v, H.264, RTP and the browser view, at 360x480
and 1920x1080, and the end-to-end FPS of ``edgeseg run`` with each.

Per output: the sink's ``write`` on the same rendered frames, back to back; CPU time is the
process's (``time.process_time``: every thread, so an encoder's own threads count) per frame,
wall time beside it. The browser view is measured with one viewer reading ``/stream.mjpg`` in
this process (its JPEG encoding only happens while someone watches; the viewer's reading counts
too). RTP goes to 127.0.0.1 on a port nobody reads (UDP: sending costs the same).

End to end: ``run_pipeline`` with the bundled model over the CamVid clip (or synthetic frames)
with each output alone, every frame kept. Needs an OpenCV with GStreamer for H.264 and RTP (the
rehearsal Python); an output this OpenCV cannot write is skipped with the reason. Run from the
repository root:

    $EDGESEG_REHEARSAL_PYTHON benchmarks/runtime_outputs.py --frames 60 --json out.json
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from bench_record import emit, machine

from edgeseg.errors import EdgesegError
from edgeseg.runtime import OutputOptions, ServeOptions, run_pipeline
from edgeseg.runtime.encoders import choose_file_encoder
from edgeseg.runtime.frames import Frame
from edgeseg.runtime.options import EncodingOptions
from edgeseg.runtime.outputs import OutputContext, open_output
from edgeseg.runtime.results import FrameResult
from edgeseg.runtime.stats import PipelineStats

ROOT = Path(__file__).resolve().parents[1]
CAMVID_CLIP = ROOT.parent / "shared" / "datasets" / "camvid" / "clip_val.mp4"
SIZES = {"360x480": (360, 480), "1080p": (1080, 1920)}


def frames_at(size_hw: tuple[int, int], count: int) -> list[np.ndarray]:
    """``count`` frames of the CamVid clip (or a moving synthetic pattern) at ``size_hw``."""
    frames: list[np.ndarray] = []
    capture = cv2.VideoCapture(str(CAMVID_CLIP))
    while capture.isOpened() and len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    if not frames:
        base = np.random.default_rng(0).integers(0, 255, (360, 480, 3), dtype=np.uint8)
        frames = [np.roll(base, 4 * i, axis=1) for i in range(count)]
    frames = [frames[i % len(frames)] for i in range(count)]
    return [cv2.resize(f, (size_hw[1], size_hw[0])) for f in frames]


def _viewer(url: str, stop: threading.Event) -> None:
    with urllib.request.urlopen(url, timeout=10) as stream:
        while not stop.is_set() and stream.read(65536):
            pass


def sink_cost(target: str, images: list[np.ndarray], encoding: EncodingOptions) -> dict[str, Any]:
    """CPU and wall ms per frame of one output's ``write`` (module docs)."""
    sink = open_output(target, OutputContext(fps=30.0, encoding=encoding))
    stats = PipelineStats()
    stop = threading.Event()
    if target.startswith("http://"):
        port = sink.port  # type: ignore[attr-defined]
        url = f"http://127.0.0.1:{port}/stream.mjpg"
        threading.Thread(target=_viewer, args=(url, stop), daemon=True).start()
        time.sleep(0.5)
    results = [
        FrameResult(
            Frame(image, i, time.perf_counter(), f"{i:06d}"),
            np.zeros((2, 2), np.uint8),
            image,
            stats,
        )
        for i, image in enumerate(images)
    ]
    sink.write(results[0])  # opens the encoder: not counted
    cpu, wall = time.process_time(), time.perf_counter()
    for result in results[1:]:
        sink.write(result)
    sink.close()  # the encoder's tail (flush, muxing) counts
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    stop.set()
    frames = len(results) - 1
    how = getattr(sink, "description", type(sink).__name__)
    return {"how": how, "cpu_ms": round(1000 * cpu / frames, 2),
            "wall_ms": round(1000 * wall / frames, 2)}  # fmt: skip


def end_to_end_fps(model: Path, clip: Path, outputs: OutputOptions, serve: Any) -> float:
    summary = run_pipeline(model, str(clip), outputs=outputs, serve=serve)
    return round(summary.stats.mean_fps, 2)


def write_clip(path: Path, images: list[np.ndarray]) -> Path:
    height, width = images[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (width, height))
    for image in images:
        writer.write(image)
    writer.release()
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from edgeseg.apps.default_model import default_onnx

    model = default_onnx()
    record: dict[str, Any] = {"machine": machine(), "frames": args.frames, "outputs": {}}
    with tempfile.TemporaryDirectory(prefix="edgeseg-outputs-") as folder:
        work = Path(folder)
        targets = {
            "mp4v": (str(work / "a.mp4"), EncodingOptions("mp4v")),
            "h264": (str(work / "b.mp4"), EncodingOptions("h264")),
            "rtp": ("rtp://127.0.0.1:5999", EncodingOptions()),
            "serve": ("http://127.0.0.1:0", EncodingOptions()),
        }
        for size, size_hw in SIZES.items():
            images = frames_at(size_hw, args.frames)
            clip = write_clip(work / f"clip_{size}.avi", images)
            for name, (target, encoding) in targets.items():
                key = f"{name} {size}"
                try:
                    if name == "h264":
                        choose_file_encoder(target, encoding)  # refused without H.264 here
                    row = sink_cost(target, images, encoding)
                    serve = ServeOptions(0) if name == "serve" else None
                    outputs = OutputOptions(() if serve else (target,), encoding=encoding)
                    row["run_fps"] = end_to_end_fps(model, clip, outputs, serve)
                except EdgesegError as exc:
                    row = {"skipped": str(exc)}
                record["outputs"][key] = row
                print(key, row, flush=True)
            none = end_to_end_fps(model, clip, OutputOptions(), None)
            record["outputs"][f"none {size}"] = {"run_fps": none}
    emit(record, args.json)


if __name__ == "__main__":
    main()
