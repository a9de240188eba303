"""Helpers for the runtime tests: tiny real ONNX models with a model card, real video files and
image folders written with OpenCV. Nothing here depends on the export stage or on torch.

A uniquely named module (not ``conftest``) so that ``from runtime_helpers import ...`` cannot
pick up another folder's conftest."""

from __future__ import annotations

import time
import zlib
from pathlib import Path

import cv2
import numpy as np

from edgeseg.card import ONNX_METADATA_KEY, ModelCard
from edgeseg.runtime import Frame, FrameSource, SourceLost

ROOT = Path(__file__).resolve().parents[2]
CAMVID_CLIP = ROOT.parent / "shared" / "datasets" / "camvid" / "clip_val.mp4"

CLASS_NAMES = ("Sky", "Road", "Car", "Person")
PALETTE = ((128, 128, 128), (128, 64, 128), (64, 0, 128), (220, 20, 60))
INPUT_HW = (24, 32)

# A 1x1 convolution from normalised RGB to 4 class scores: class 0 when blue dominates, 1 when
# green, 2 when red, 3 when all are bright. Scores are linear, so the numpy reference is exact.
WEIGHTS = np.array(
    [[-1.0, -1.0, 2.0], [-1.0, 2.0, -1.0], [2.0, -1.0, -1.0], [0.7, 0.7, 0.7]], np.float32
)  # (K, 3) over RGB channels
BIAS = np.array([0.0, 0.0, 0.0, -2.5], np.float32)


def tiny_card(**changes) -> ModelCard:
    card = ModelCard(
        architecture="tiny-conv",
        num_classes=len(CLASS_NAMES),
        class_names=CLASS_NAMES,
        palette=PALETTE,
        input_hw=INPUT_HW,
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
    )
    return card.replace(**changes) if changes else card


def write_tiny_onnx(
    path: Path,
    card: ModelCard | None = None,
    output: str = "logits",
    with_card: bool = True,
    input_hw: tuple[int, int] | None = None,
    batch: int | str = "N",
) -> Path:
    """Conv(1x1) -> scores, or Conv -> ArgMax(axis=1) -> class map, with the card in metadata."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    card = (card or tiny_card()).replace(output=output)
    h, w = input_hw or card.input_hw
    k = card.num_classes
    weight = numpy_helper.from_array(WEIGHTS[:k].reshape(k, 3, 1, 1).copy(), "weight")
    bias = numpy_helper.from_array(BIAS[:k].copy(), "bias")
    nodes = [helper.make_node("Conv", ["input", "weight", "bias"], ["scores"])]
    if output == "class_map":
        nodes.append(helper.make_node("ArgMax", ["scores"], ["classes"], axis=1, keepdims=0))
        out = helper.make_tensor_value_info("classes", TensorProto.INT64, [batch, h, w])
    else:
        out = helper.make_tensor_value_info("scores", TensorProto.FLOAT, [batch, k, h, w])
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 3, h, w])],
        [out],
        initializer=[weight, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if with_card:
        helper.set_model_props(model, {ONNX_METADATA_KEY: card.to_json()})
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def reference_scores(frame_bgr: np.ndarray, card: ModelCard) -> np.ndarray:
    """(K, h, w) scores of the tiny model at network size: the numpy preprocess -> 1x1 conv."""
    from edgeseg.preprocess import preprocess

    x = preprocess(frame_bgr, card)  # (3, h, w)
    return (np.einsum("kc,chw->khw", WEIGHTS, x) + BIAS[:, None, None]).astype(np.float32)


def reference_mask(frame_bgr: np.ndarray, card: ModelCard) -> np.ndarray:
    """What the tiny model must predict at the frame's size, computed independently of
    edgeseg.masks: the scores resized bilinearly as one multi-channel image, then np.argmax."""
    scores = reference_scores(frame_bgr, card)
    h, w = frame_bgr.shape[:2]
    resized = cv2.resize(
        np.ascontiguousarray(scores.transpose(1, 2, 0)), (w, h), interpolation=cv2.INTER_LINEAR
    )
    return np.argmax(resized.reshape(h, w, -1), axis=2).astype(np.uint8)


def reference_class_map_mask(frame_bgr: np.ndarray, card: ModelCard) -> np.ndarray:
    """What a model ending in ArgMax gives: classes at network size, resized by nearest."""
    classes = np.argmax(reference_scores(frame_bgr, card), axis=0).astype(np.uint8)
    h, w = frame_bgr.shape[:2]
    return cv2.resize(classes, (w, h), interpolation=cv2.INTER_NEAREST_EXACT)


def synthetic_frame(index: int, hw: tuple[int, int] = (48, 64)) -> np.ndarray:
    """A BGR frame with moving colour blocks, so every class appears and frames differ."""
    h, w = hw
    frame = np.zeros((h, w, 3), np.uint8)
    shift = (index * 3) % w
    frame[:, :] = (200, 40, 40)  # blue: class 0
    frame[h // 2 :, :] = (40, 200, 40)  # green: class 1
    x0 = shift
    frame[h // 4 : h // 2, x0 : x0 + w // 4] = (40, 40, 220)  # red: class 2
    frame[3 * h // 4 :, (w - shift) % w :] = (250, 250, 250)  # white: class 3
    return frame


def write_video(path: Path, frames: int, hw: tuple[int, int] = (48, 64), fps: float = 15.0) -> Path:
    h, w = hw
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened()
    for i in range(frames):
        writer.write(synthetic_frame(i, hw))
    writer.release()
    return path


def count_video_frames(path: Path) -> int:
    """Frames OpenCV decodes from ``path`` (read to the end, not the header's claim)."""
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count


class GeneratedLiveSource(FrameSource):
    """A simulated camera: ``frames`` frames, one every ``interval_s``, marked live.

    ``lose_at``: reads at these indices raise SourceLost; ``reopen`` then fails ``fail_reopens``
    times before the stream comes back.
    """

    live = True
    description = "generated camera"

    def __init__(
        self, frames: int, interval_s: float, lose_at: tuple[int, ...] = (), fail_reopens: int = 0
    ) -> None:
        self.frames, self.interval_s = frames, interval_s
        self.lose_at, self.fail_reopens = set(lose_at), fail_reopens
        self.next, self.reopen_calls, self.closed = 0, 0, False

    def read(self) -> Frame | None:
        if self.next >= self.frames:
            return None
        time.sleep(self.interval_s)
        if self.next in self.lose_at:
            self.lose_at.discard(self.next)
            raise SourceLost("no frame from the device")
        index = self.next
        self.next += 1
        return Frame(synthetic_frame(index), index, time.perf_counter(), f"{index:06d}")

    def reopen(self) -> None:
        self.reopen_calls += 1
        if self.reopen_calls <= self.fail_reopens:
            raise SourceLost("device busy")

    def close(self) -> None:
        self.closed = True


def write_huge_png(path: Path, height: int, width: int) -> Path:
    """A real 1-bit greyscale PNG (a few hundred KB) that decodes to height x width pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([1, 0, 0, 0, 0])
    packer, row = zlib.compressobj(9), b"\x00" * (1 + (width + 7) // 8)
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data)
    path.write_bytes(png + chunk(b"IEND", b""))
    return path
