"""The one preprocessing path: frame in, network input out, derived from the model card.

Evaluation, export parity checks, calibration and the runtime all call :func:`preprocess`;
training augments first and then calls :func:`normalize`, the same tail. Keeping one function
means an INT8 calibration set or a runtime frame can never be normalised differently from the
images the model was trained on. numpy and OpenCV only: the runtime uses this without torch.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from edgeseg.card import ModelCard
from edgeseg.errors import EdgesegError
from edgeseg.validate import check_pixels


def normalize(image_rgb: np.ndarray, card: ModelCard) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (3, H, W) float32, scaled to 0..1 then standardised by the card."""
    mean = np.asarray(card.mean, dtype=np.float32) * 255.0
    inv_std = 1.0 / (np.asarray(card.std, dtype=np.float32) * 255.0)
    out = (image_rgb.astype(np.float32) - mean) * inv_std
    return np.ascontiguousarray(out.transpose(2, 0, 1))


def check_frame(image_bgr: np.ndarray) -> None:
    """Raise a one-line error unless ``image_bgr`` is an (H, W, 3) uint8 image."""
    if not isinstance(image_bgr, np.ndarray) or image_bgr.ndim != 3 or image_bgr.shape[2] != 3:
        shape = getattr(image_bgr, "shape", type(image_bgr).__name__)
        raise EdgesegError(f"expected an (H, W, 3) BGR image, got {shape}")
    if image_bgr.dtype != np.uint8:
        raise EdgesegError(f"expected a uint8 image, got {image_bgr.dtype}")
    if image_bgr.shape[0] == 0 or image_bgr.shape[1] == 0:
        raise EdgesegError(f"expected an image with pixels, got an empty one {image_bgr.shape}")
    check_pixels(image_bgr.shape[0], image_bgr.shape[1], "frame")  # the pixel budget


def resize_to_input(image: np.ndarray, input_hw: tuple[int, int]) -> np.ndarray:
    """Resize an image to the network's (H, W): area filter when shrinking, bilinear otherwise."""
    height, width = input_hw
    if image.shape[:2] == (height, width):
        return image
    shrinking = image.shape[0] > height or image.shape[1] > width
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interpolation)


def to_input_rgb(image_bgr: np.ndarray, input_hw: Sequence[int]) -> np.ndarray:
    """(H, W, 3) uint8 BGR frame -> (h, w, 3) uint8 RGB at the network's size, not yet normalised.

    The uint8 stage is what the INT8 calibration cache stores (a quarter of the float size).
    """
    check_frame(image_bgr)
    return cv2.cvtColor(resize_to_input(image_bgr, tuple(input_hw)), cv2.COLOR_BGR2RGB)


def preprocess(image_bgr: np.ndarray, card: ModelCard) -> np.ndarray:
    """(H, W, 3) uint8 BGR frame of any size -> (3, h, w) float32 at the card's ``input_hw``."""
    return normalize(to_input_rgb(image_bgr, card.input_hw), card)


def preprocess_batch(frames_bgr: Sequence[np.ndarray], card: ModelCard) -> np.ndarray:
    """A list of BGR frames -> (N, 3, h, w) float32."""
    if len(frames_bgr) == 0:
        raise EdgesegError("preprocess_batch needs at least one frame")
    return np.stack([preprocess(frame, card) for frame in frames_bgr])
