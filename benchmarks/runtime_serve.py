"""What watching costs: FPS with 0, 1 and 3 viewers of ``--serve``, and the time added per frame.

The pipeline runs over the CamVid clip looped from memory (file policy: every frame, none
dropped, so FPS is the pipeline's throughput) with a :class:`edgeseg.runtime.serve.ServeSink`,
while 0, 1 or 3 viewers read ``/stream.mjpg`` over 127.0.0.1 as fast as their sockets allow.
Per run: FPS, the process's CPU time per frame (all its threads: what serving costs in total,
whatever share of a busy machine the process gets), the mean render stage (overlay plus every
sink's ``write``: what the pipeline itself pays for the server, one copy of the frame per frame
while someone watches), the JPEG
encoding time per frame in the encoder thread (it runs beside the pipeline, on the CPU the
pipeline shares), and the frames each viewer received. Rounds of 0, 1, 3 viewers, each round in
another order, so that a shared machine's drift and warm-up touch all three alike.

``--stalled``: rounds of no viewer against one viewer that connects and then reads nothing (its
socket buffers fill and it stalls), the FPS of each and their ratio: what a stalled viewer costs
the pipeline (a test once asserted the ratio stays above 0.5; on a shared machine that is a
figure, not a pass/fail).

    python benchmarks/runtime_serve.py                     # one-layer model: serving shows
    python benchmarks/runtime_serve.py --segnet            # SegNet width 0.25: a real model
    python benchmarks/runtime_serve.py --stalled           # a stalled viewer against none
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
from bench_record import emit, machine
from runtime_memory import LoopedClip, one_layer_model
from runtime_model import segnet_onnx

from edgeseg.runtime import Pipeline, Segmenter
from edgeseg.runtime.serve import ServeSink


def viewer(url: str, stop: threading.Event, counts: list[int], slot: int) -> None:
    """Read the MJPEG stream until ``stop``; count the parts (frames) received."""
    with urllib.request.urlopen(url, timeout=30) as response:
        while not stop.is_set():
            chunk = response.read(65536)
            if not chunk:
                return
            counts[slot] += chunk.count(b"--edgesegframe")


def stall(sink: ServeSink) -> socket.socket:
    """A viewer that asks for the stream and never reads it."""
    stalled = socket.create_connection(("127.0.0.1", sink.port))
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: x\r\n\r\n")
    return stalled


def one_run(segmenter: Segmenter, frames: int, viewers: int, stalled: bool = False) -> dict:
    sink = ServeSink("127.0.0.1:0", card=segmenter.card)
    idle = stall(sink) if stalled else None
    stop, counts = threading.Event(), [0] * viewers
    threads = [
        threading.Thread(
            target=viewer, args=(f"{sink.url}stream.mjpg", stop, counts, i), daemon=True
        )
        for i in range(viewers)
    ]
    for thread in threads:
        thread.start()
    while sink.hub.viewers < viewers + (idle is not None):
        time.sleep(0.01)
    started, cpu_started = time.perf_counter(), time.process_time()
    stats = Pipeline(LoopedClip(frames), segmenter, [sink]).run()
    seconds = time.perf_counter() - started
    cpu_ms = 1000 * (time.process_time() - cpu_started) / max(1, stats.frames_done)
    stop.set()
    encoded = sink.hub.seq
    encode_ms = 1000 * sink.hub.encode_s / encoded if encoded else 0.0
    sink.close()
    if idle is not None:
        idle.close()
    return {
        "viewers": "stalled" if stalled else viewers,
        "fps": round(stats.frames_done / seconds, 2),
        "cpu_ms_per_frame": round(cpu_ms, 2),
        "render_ms": round(stats.stage_ms["render"], 2),
        "jpeg_encode_ms": round(encode_ms, 2),
        "frames_encoded": encoded,
        "frames_per_viewer": counts,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segnet", action="store_true", help="SegNet width 0.25, not one layer")
    parser.add_argument("--frames", type=int, default=300, help="frames per run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the record here")
    parser.add_argument("--stalled", action="store_true", help="no viewer against one stalled")
    args = parser.parse_args()
    if args.stalled:
        stalled_main(args)
        return
    with tempfile.TemporaryDirectory() as folder:
        model = segnet_onnx() if args.segnet else one_layer_model(Path(folder) / "one.onnx")
        segmenter = Segmenter(model)
        runs = []
        for round_ in range(args.rounds):
            order = (0, 1, 3)[round_ % 3 :] + (0, 1, 3)[: round_ % 3]  # each first once
            for viewers in order:
                runs.append(one_run(segmenter, args.frames, viewers))
                print(json.dumps(runs[-1]), flush=True)
    summary = {}
    for viewers in (0, 1, 3):
        mine = [r for r in runs if r["viewers"] == viewers]
        summary[str(viewers)] = {
            key: float(np.median([r[key] for r in mine]))
            for key in ("fps", "cpu_ms_per_frame", "render_ms", "jpeg_encode_ms")
        }
    record = {
        "model": "SegNet width 0.25, 360x480" if args.segnet else "one-layer conv, 360x480",
        "frames_per_run": args.frames,
        "median_by_viewers": summary,
        "runs": runs,
        "machine": machine(),
    }
    emit(record, args.json)


def stalled_main(args: argparse.Namespace) -> None:
    """Rounds of (no viewer, one stalled viewer), alternating which goes first."""
    with tempfile.TemporaryDirectory() as folder:
        model = segnet_onnx() if args.segnet else one_layer_model(Path(folder) / "one.onnx")
        segmenter = Segmenter(model)
        runs = []
        for round_ in range(args.rounds):
            for stalled in (False, True) if round_ % 2 == 0 else (True, False):
                runs.append(one_run(segmenter, args.frames, 0, stalled=stalled))
                print(json.dumps(runs[-1]), flush=True)
    alone = round(float(np.median([r["fps"] for r in runs if r["viewers"] == 0])), 2)
    watched = round(float(np.median([r["fps"] for r in runs if r["viewers"] == "stalled"])), 2)
    record = {
        "model": "SegNet width 0.25, 360x480" if args.segnet else "one-layer conv, 360x480",
        "frames_per_run": args.frames,
        "median_fps_alone": alone,
        "median_fps_with_a_stalled_viewer": watched,
        "ratio": round(watched / alone, 3),
        "runs": runs,
        "machine": machine(),
    }
    emit(record, args.json)


if __name__ == "__main__":
    main()
