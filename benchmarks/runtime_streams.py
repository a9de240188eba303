"""Aggregate FPS of N streams in one ``edgeseg run`` against N separate ``edgeseg run`` processes.

The question a vehicle with four to eight cameras asks: one process with one model batching
every stream (``edgeseg run --source A --source B ...``), or one process per camera? Each case
is real ``edgeseg run`` processes over N video files of ``--frames`` frames each (the CamVid
clip at N different offsets, 360x480; synthetic frames without it), each stream written to its
own MP4, wall time from the first launch to the last exit (process start and model loading
included, as a user pays them). Aggregate FPS = N x frames / that wall time. The in-pipeline
figure (frames over the pipelines' own elapsed time, start-up excluded) is recorded beside it.

One and separate alternate, count by count and round by round, so a shared machine's drift
falls on both. Target: 4 streams in one process at least 1.2x the aggregate FPS of 4 processes.
Run from the repository root:

    python benchmarks/runtime_streams.py                     # counts 1,2,4,8, 30 frames each
    python benchmarks/runtime_streams.py --counts 4 --rounds 3 --model model.onnx
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from bench_record import emit, machine
from runtime_model import CACHE, CAMVID_CLIP

FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "amx_tile")


def cpu_facts() -> dict[str, Any]:
    """The CPU model and the vector flags ONNX Runtime's kernels care about (Linux)."""
    model, flags = "", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and not model:
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return {"cpu": model, "flags": [f for f in FLAGS if f in flags], "machine": machine()}


def dynamic_bundled_onnx() -> Path:
    """The bundled model exported with a dynamic batch (cached): N frames in one call."""
    path = CACHE / "streams" / "model.onnx"
    if not path.is_file():
        from edgeseg.apps.default_model import default_checkpoint

        command = [sys.executable, "-m", "edgeseg", "export", str(default_checkpoint())]
        command += ["--out", str(path.parent), "--dynamic", "--no-check"]
        subprocess.run(command, check=True, capture_output=True)
    return path


def write_clips(folder: Path, count: int, frames: int) -> list[Path]:
    """``count`` MP4s of ``frames`` frames: the CamVid clip from ``count`` offsets, looped."""
    images: list[np.ndarray] = []
    if CAMVID_CLIP.is_file():
        capture = cv2.VideoCapture(str(CAMVID_CLIP))
        while (read := capture.read())[0]:
            images.append(read[1])
        capture.release()
    if not images:
        rng = np.random.default_rng(0)
        base = rng.integers(0, 255, (360, 480, 3), dtype=np.uint8)
        images = [np.roll(base, 4 * i, axis=1) for i in range(50)]
    clips = []
    for n in range(count):
        path = folder / f"cam{n}.mp4"
        h, w = images[0].shape[:2]
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 15, (w, h))
        for i in range(frames):
            writer.write(images[(n * 13 + i) % len(images)])
        writer.release()
        clips.append(path)
    return clips


def _edgeseg_run(model: Path, sources: list[Path], output: str) -> subprocess.Popen:
    args = [sys.executable, "-m", "edgeseg", "run", "--model", str(model), "--headless"]
    for source in sources:
        args += ["--source", str(source)]
    return subprocess.Popen(
        [*args, "--output", output], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )


def _finish(processes: list[subprocess.Popen]) -> list[str]:
    outputs = [p.communicate()[1] for p in processes]
    for process, stderr in zip(processes, outputs, strict=True):
        if process.returncode != 0:
            raise SystemExit(f"edgeseg run failed ({process.returncode}):\n{stderr}")
    return outputs


def one_process(model: Path, clips: list[Path], folder: Path, frames: int) -> dict[str, Any]:
    start = time.perf_counter()
    (stderr,) = _finish([_edgeseg_run(model, clips, str(folder / "one_{stream}.mp4"))])
    wall = time.perf_counter() - start
    done = [int(m) for m in re.findall(r"stream \S+: (\d+) frames in", stderr)]
    if len(clips) == 1:
        done = [int(m) for m in re.findall(r"edgeseg: (\d+) frames in", stderr)]
    inside = re.search(r"([\d.]+) fps over all streams; batch ([\d.]+) frames", stderr)
    single = re.search(r"frames in [\d.]+ s \(([\d.]+) fps\)", stderr)
    assert sum(done) == frames * len(clips), stderr
    return {
        "wall_s": round(wall, 2),
        "aggregate_fps": round(sum(done) / wall, 3),
        "pipeline_fps": float(inside.group(1) if inside else single.group(1)),
        "mean_batch": float(inside.group(2)) if inside else 1.0,
    }


def separate(model: Path, clips: list[Path], folder: Path, frames: int) -> dict[str, Any]:
    start = time.perf_counter()
    running = [_edgeseg_run(model, [c], str(folder / f"sep_{c.stem}.mp4")) for c in clips]
    outputs = _finish(running)
    wall = time.perf_counter() - start
    runs = [re.search(r"edgeseg: (\d+) frames in ([\d.]+) s", text) for text in outputs]
    done = sum(int(r.group(1)) for r in runs if r)
    assert done == frames * len(clips), outputs
    longest = max(float(r.group(2)) for r in runs if r)
    return {
        "wall_s": round(wall, 2),
        "aggregate_fps": round(done / wall, 3),
        "pipeline_fps": round(done / longest, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="ONNX file (default: the bundled model, "
                        "exported with a dynamic batch)")  # fmt: skip
    parser.add_argument("--counts", default="1,2,4,8", help="stream counts, comma-separated")
    parser.add_argument("--frames", type=int, default=30, help="frames per stream")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the record here")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    model = args.model or dynamic_bundled_onnx()
    load_before = os.getloadavg()
    rows: dict[int, list[dict[str, Any]]] = {n: [] for n in counts}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        clips = write_clips(folder, max(counts), args.frames)
        for round_index in range(args.rounds):
            for n in counts:
                pair: dict[str, Any] = {"load_1m": round(os.getloadavg()[0], 2)}
                order = ("one", "separate") if round_index % 2 == 0 else ("separate", "one")
                for case in order:
                    run = one_process if case == "one" else separate
                    pair[case] = run(model, clips[:n], folder, args.frames)
                pair["ratio"] = round(
                    pair["one"]["aggregate_fps"] / pair["separate"]["aggregate_fps"], 3
                )
                rows[n].append(pair)
                print(f"{n} streams: {pair}", file=sys.stderr)
    result = {
        "model": str(model),
        "frames_per_stream": args.frames,
        "rounds": args.rounds,
        **cpu_facts(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "median_ratio": {n: float(np.median([p["ratio"] for p in rows[n]])) for n in counts},
        "cases": rows,
    }
    emit(result, args.json)


if __name__ == "__main__":
    main()
