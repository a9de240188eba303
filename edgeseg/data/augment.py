"""Training augmentation on uint8 images: random scale and crop, horizontal flip, colour jitter.

Scale, crop, padding and flip are one affine warp per image (``cv2.warpAffine`` straight to the
network's input size, so no full-size intermediate is made), bilinear for the image and nearest
for the mask, with the same geometry for both and the pixel-centre convention of ``cv2.resize``
(the image matches ``INTER_LINEAR``, the mask ``INTER_NEAREST_EXACT``).
Shrinking below half size is done first with ``INTER_AREA``, so large photos do not alias.
Colour jitter works on the crop, in saturating uint8 OpenCV passes.

All randomness comes from the ``numpy.random.Generator`` passed in; see
:mod:`edgeseg.data.dataset` for where that generator's seed comes from.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edgeseg.errors import EdgesegError

# ITU-R BT.601 luma weights for RGB, as torchvision's colour jitter uses.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation settings.

    The image is scaled so that it just covers the network input, times a factor drawn uniformly
    from [``scale_min``, ``scale_max``], then cropped at random (below 1 the crop extends past the
    image and is padded). Jitter factors are drawn from [1 - x, 1 + x]; ``hue`` shifts the hue by
    up to that fraction of the colour wheel. Any jitter of 0 disables it.
    """

    scale_min: float = 0.75
    scale_max: float = 1.5
    hflip: bool = True
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.02

    def __post_init__(self) -> None:
        if not 0 < self.scale_min <= self.scale_max:
            raise EdgesegError(
                f"augmentation scale range {self.scale_min}..{self.scale_max} must satisfy "
                "0 < min <= max"
            )
        for name in ("brightness", "contrast", "saturation"):
            if not 0 <= getattr(self, name) < 1:
                raise EdgesegError(f"{name} jitter must be in [0, 1), got {getattr(self, name)}")
        if not 0 <= self.hue <= 0.5:
            raise EdgesegError(f"hue jitter must be in [0, 0.5], got {self.hue}")


def scale_crop_flip(
    image: np.ndarray,
    mask: np.ndarray,
    out_hw: tuple[int, int],
    config: AugmentConfig,
    rng: np.random.Generator,
    fill: tuple[float, float, float],
    pad_label: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Random scale, crop to ``out_hw`` and flip of an (H, W, 3) image and its (H, W) mask.

    Pixels outside the source image get colour ``fill`` (image channel order) and label
    ``pad_label``. Returns ((h, w, 3) uint8, (h, w) uint8).
    """
    out_h, out_w = out_hw
    src_h, src_w = mask.shape
    cover = max(out_h / src_h, out_w / src_w)
    scale = cover * float(rng.uniform(config.scale_min, config.scale_max))
    flip = config.hflip and bool(rng.integers(2))
    scaled_h, scaled_w = max(1, round(src_h * scale)), max(1, round(src_w * scale))
    top = int(rng.integers(min(0, scaled_h - out_h), max(0, scaled_h - out_h) + 1))
    left = int(rng.integers(min(0, scaled_w - out_w), max(0, scaled_w - out_w) + 1))

    if scale < 0.5:  # area filter for strong shrinking; the warp below then only moves pixels
        image = cv2.resize(image, (scaled_w, scaled_h), interpolation=cv2.INTER_AREA)
        mask = cv2.resize(mask, (scaled_w, scaled_h), interpolation=cv2.INTER_NEAREST_EXACT)
        scale_x = scale_y = 1.0
    else:
        scale_x, scale_y = scaled_w / src_w, scaled_h / src_h
    # dst + 0.5 = scale * (src + 0.5) - offset: the pixel-centre convention of cv2.resize.
    shift_x = 0.5 * scale_x - 0.5 - left
    shift_y = 0.5 * scale_y - 0.5 - top
    if flip:
        matrix = np.array([[-scale_x, 0, out_w - 1 - shift_x], [0, scale_y, shift_y]])
    else:
        matrix = np.array([[scale_x, 0, shift_x], [0, scale_y, shift_y]])
    size = (out_w, out_h)
    # Edge pixels replicate (as cv2.resize does) rather than blend half a pixel of fill colour;
    # pixels mapping outside the image then get the fill colour, decided by nearest neighbour
    # exactly as the mask's padding is.
    image_out = cv2.warpAffine(
        image, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    mask_out = cv2.warpAffine(
        mask, matrix, size, flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT,
        borderValue=int(pad_label),
    )  # fmt: skip
    pads = top < 0 or left < 0 or top + out_h > scaled_h or left + out_w > scaled_w
    if pads:
        inside = cv2.warpAffine(
            np.ones(mask.shape, np.uint8), matrix, size, flags=cv2.INTER_NEAREST,
            borderMode=cv2.BORDER_CONSTANT, borderValue=0,
        )  # fmt: skip
        image_out[inside == 0] = np.asarray(fill, dtype=np.float64).round().astype(np.uint8)
    return image_out, mask_out


def color_jitter(
    image_rgb: np.ndarray, config: AugmentConfig, rng: np.random.Generator
) -> np.ndarray:
    """Brightness, contrast, saturation (in that order), then hue, of an (H, W, 3) uint8 RGB image.

    Brightness multiplies; contrast blends with the image's mean grey; saturation blends with each
    pixel's grey; hue rotates OpenCV's 0..179 hue channel. Brightness and contrast are one affine
    map, each step a single saturating OpenCV pass over uint8 (about 2 ms at 360x480). Returns a
    new uint8 RGB image (or the input itself when every jitter is 0).
    """
    brightness = _factor(rng, config.brightness)
    contrast = _factor(rng, config.contrast)
    saturation = _factor(rng, config.saturation)
    hue = float(rng.uniform(-config.hue, config.hue)) if config.hue > 0 else 0.0
    out = image_rgb
    if brightness != 1 or contrast != 1:
        # contrast(brightness(x)) = c (b x - m) + m, m the mean grey of b x: = b c x + m (1 - c)
        mean_grey = brightness * float(np.dot(cv2.mean(out)[:3], _LUMA))
        out = cv2.addWeighted(out, brightness * contrast, out, 0.0, mean_grey * (1 - contrast))
    if saturation != 1:
        grey = cv2.cvtColor(cv2.cvtColor(out, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
        out = cv2.addWeighted(out, saturation, grey, 1 - saturation, 0.0)
    shift = round(hue * 180)
    if shift:
        hsv = cv2.cvtColor(out, cv2.COLOR_RGB2HSV)
        hsv[..., 0] = ((hsv[..., 0].astype(np.int16) + shift) % 180).astype(np.uint8)
        out = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return out


def _factor(rng: np.random.Generator, amount: float) -> float:
    return float(rng.uniform(1 - amount, 1 + amount)) if amount > 0 else 1.0
