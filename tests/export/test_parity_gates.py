"""The parity gate below FP32 counts agreement on the pixels the reference decides."""

from __future__ import annotations

import numpy as np

from edgeseg.export.parity import compare, decisive_pixels


def _logits(margins: np.ndarray) -> np.ndarray:
    """(1, 2, H, W) logits with class 0 ahead of class 1 by ``margins``, largest logit 10."""
    second = np.zeros_like(margins)
    first = margins.copy()
    first[0, 0] = 10.0
    return np.stack([first, second])[None].astype(np.float32)


def test_near_ties_flipped_by_rounding_do_not_fail_fp16() -> None:
    margins = np.full((10, 10), 1.0, dtype=np.float32)
    margins[0, 1:] = 0.05  # 9 near-ties (0.5% of the largest logit)
    reference = _logits(margins)
    actual = reference.copy()
    actual[0, 1, 0, 1:] += 0.06  # FP16-size nudges flip the near-ties: 91% agree on all pixels
    fp16 = compare("model.fp16.onnx", "ONNX Runtime", reference, actual, "fp16")
    assert fp16.all_agreement == 0.91 and fp16.agreement == 1.0 and fp16.decided == 0.91
    assert fp16.passed, fp16.row()
    assert "91% of pixels the reference decides" in fp16.row()
    fp32 = compare("model.onnx", "ONNX Runtime", reference, actual, "fp32", tolerance=1.0)
    assert fp32.decided == 1.0 and not fp32.passed  # FP32 counts every pixel


def test_a_decided_pixel_that_flips_fails_fp16() -> None:
    reference = _logits(np.full((10, 10), 1.0, dtype=np.float32))
    actual = reference.copy()
    actual[0, 1, 3, 3] = 5.0  # one clearly decided pixel changes class
    result = compare("model.fp16.onnx", "ONNX Runtime", reference, actual, "fp16")
    assert result.decided == 1.0 and result.agreement == 0.99 and not result.passed


def test_decisive_pixels_uses_the_two_best_classes() -> None:
    reference = np.array([[[[3.0]], [[2.95]], [[-1.0]]], [[[1.0]], [[-5.0]], [[0.0]]]])
    assert decisive_pixels(reference, 0.1).ravel().tolist() == [False, True]
    assert decisive_pixels(reference, 0.0).all()
