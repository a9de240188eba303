"""Embed edgeseg in your own capture loop: Segmenter + overlay helpers, no CLI, no Pipeline.

Reads a camera (or any OpenCV source), segments each frame, and shows or saves the overlay with
how much of the picture each chosen class covers. A starting point for an application that owns
its loop (robot control, a GUI, a web server); for the threaded capture/inference/render loop
with drop policy and reconnection, use ``edgeseg.runtime.Pipeline`` instead.

    python examples/embed_camera.py --model model.onnx --source 0 --classes road,car
    python examples/embed_camera.py --model model.onnx --source clip.mp4 --out overlay.mp4

Needs numpy, OpenCV and one engine (onnxruntime for .onnx, TensorRT for .engine); never torch.
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

from edgeseg.errors import EdgesegError
from edgeseg.runtime import Renderer, Segmenter, display_available


def coverage(mask: np.ndarray, class_ids: tuple[int, ...], names: tuple[str, ...]) -> str:
    """``"Road 41% Car 7%"``: share of the frame each class covers."""
    counts = np.bincount(mask.ravel(), minlength=len(names))
    total = mask.size
    return " ".join(f"{names[k]} {100 * counts[k] / total:.0f}%" for k in class_ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help=".onnx, .engine or .pt")
    parser.add_argument("--source", default="0", help="camera index, video file or URL")
    parser.add_argument("--classes", help="comma-separated class names to show (default: all)")
    parser.add_argument("--out", help="write the overlay to this video instead of a window")
    parser.add_argument("--max-frames", type=int, default=0, help="stop after N frames")
    args = parser.parse_args()

    segmenter = Segmenter(args.model)  # reads the model card: classes, palette, input size
    print(f"running {segmenter.describe()} on {args.source}")
    renderer = Renderer(segmenter.card, mode="overlay", alpha=0.5, classes=args.classes)
    names = segmenter.card.class_names

    source = int(args.source) if args.source.isdigit() else args.source
    capture = cv2.VideoCapture(source)
    if not capture.isOpened():
        raise SystemExit(f"cannot open {args.source}")
    show = args.out is None and display_available()
    writer = None
    rendered = None  # reused between frames: the renderer draws into it
    frames, started = 0, time.perf_counter()
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            mask = segmenter.predict(frame)  # (H, W) uint8 class indices at the frame's size
            fps = (frames + 1) / (time.perf_counter() - started)
            text = f"{fps:.1f} fps  {coverage(mask, renderer.shown, names)}"
            rendered = renderer.render(frame, mask, text=text, out=rendered)
            if args.out:
                if writer is None:
                    height, width = rendered.shape[:2]
                    fourcc = cv2.VideoWriter_fourcc(*"mp4v")
                    writer = cv2.VideoWriter(args.out, fourcc, 15, (width, height))
                writer.write(rendered)
            elif show:
                cv2.imshow("edgeseg", rendered)
                if cv2.waitKey(1) & 0xFF == ord("q"):
                    break
            frames += 1
            if args.max_frames and frames >= args.max_frames:
                break
    finally:
        capture.release()
        if writer is not None:
            writer.release()
        if show:
            cv2.destroyAllWindows()
    print(f"{frames} frames, {frames / (time.perf_counter() - started):.1f} fps")


if __name__ == "__main__":
    try:
        main()
    except EdgesegError as exc:
        raise SystemExit(f"error: {exc}") from None
