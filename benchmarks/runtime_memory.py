"""Resident memory of a long pipeline run: it must stay flat (no per-frame growth).

5,000 frames (``--frames``) of 360x480 CamVid video, looped from memory by a file-semantics
source, through the whole pipeline: inference, overlay with legend, MP4 video, PNG masks, stats
JSONL. RSS (``/proc/self/status`` VmRSS) is sampled every 250 frames; the figure that matters is
the growth from the end of warm-up (frame 500) to the last sample taken during the run.

The default model is a one-layer ONNX with the CamVid card (the runtime's own memory is what is
measured, and 5,000 SegNet frames take over half an hour on 2 CPU cores); ``--model`` runs any
ONNX file instead.

    python benchmarks/runtime_memory.py [--frames 5000] [--model out/bench/segnet_w0.25.onnx]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from bench_record import emit, machine
from runtime_model import CAMVID_CLIP

from edgeseg.card import ONNX_METADATA_KEY, ModelCard
from edgeseg.data.spec import CAMVID
from edgeseg.runtime import (
    Frame,
    FrameSource,
    MaskSink,
    Pipeline,
    Segmenter,
    Sink,
    StatsSink,
    VideoSink,
)

SAMPLE_EVERY = 250
WARM_UP = 500


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class LoopedClip(FrameSource):
    """The CamVid clip (or synthetic frames) looped to ``count`` frames; never drops."""

    live = False
    description = "looped CamVid clip"

    def __init__(self, count: int) -> None:
        self.frames: list[np.ndarray] = []
        if CAMVID_CLIP.is_file():
            capture = cv2.VideoCapture(str(CAMVID_CLIP))
            while (item := capture.read())[0]:
                self.frames.append(item[1])
        else:
            rng = np.random.default_rng(0)
            self.frames = [rng.integers(0, 255, (360, 480, 3), np.uint8) for _ in range(20)]
        self.count, self.next, self.frame_count, self.fps = count, 0, count, 15.0

    def read(self) -> Frame | None:
        if self.next >= self.count:
            return None
        index = self.next
        self.next += 1
        image = self.frames[index % len(self.frames)].copy()  # a fresh array, like a decoder
        return Frame(image, index, time.perf_counter(), f"{index:06d}")


class RssSampler(Sink):
    def __init__(self) -> None:
        self.samples: list[tuple[int, float]] = []

    def write(self, result) -> None:
        done = result.stats.frames_done + 1
        if done % SAMPLE_EVERY == 0:
            self.samples.append((done, round(rss_mib(), 1)))


def one_layer_model(path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    k = CAMVID.num_classes
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.normal(size=(k, 3, 3, 3)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w"], ["logits"], pads=[1, 1, 1, 1])],
        "one_layer",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 360, 480])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, k, 360, 480])],
        initializer=[weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    card = ModelCard(
        architecture="one-layer",
        num_classes=k,
        class_names=CAMVID.class_names,
        palette=CAMVID.palette,
        input_hw=(360, 480),
    )
    helper.set_model_props(model, {ONNX_METADATA_KEY: card.to_json()})
    onnx.save(model, str(path))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=5000)
    parser.add_argument("--model", type=Path, help="ONNX file (default: a one-layer model)")
    parser.add_argument(
        "--json", type=Path, help="also write the record here (read by benchmarks/performance.py)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        model = args.model or one_layer_model(work / "one_layer.onnx")
        segmenter = Segmenter(model)
        sampler = RssSampler()
        sinks = [
            VideoSink(work / "out.mp4", 15),
            MaskSink(work / "masks"),
            StatsSink(work / "stats.jsonl"),
            sampler,
        ]
        start_rss = rss_mib()
        started = time.perf_counter()
        stats = Pipeline(LoopedClip(args.frames), segmenter, sinks).run()
        seconds = time.perf_counter() - started
        after_run = round(rss_mib(), 1)
    samples = sampler.samples  # taken while the pipeline runs
    after_warm_up = next((rss for n, rss in samples if n >= WARM_UP), samples[0][1])
    final = samples[-1][1]
    record = {
        "model": str(args.model or "one-layer conv, CamVid card, 360x480"),
        "frames": stats.frames_done,
        "fps": round(stats.frames_done / seconds, 1),
        "rss_mib_before_run": round(start_rss, 1),
        "rss_mib_at_frame_500": after_warm_up,
        f"rss_mib_at_frame_{samples[-1][0]}": final,
        "rss_mib_max": max(rss for _, rss in samples),
        "growth_after_warm_up_mib": round(final - after_warm_up, 1),
        "rss_mib_after_run": after_run,
        "rss_mib_by_frame": dict(samples),
        "machine": machine(),
    }
    emit(record, args.json)


if __name__ == "__main__":
    main()
