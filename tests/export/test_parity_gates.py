"""The parity gate below FP32 counts agreement on the pixels the reference decides."""

from __future__ import annotations

import numpy as np
import pytest

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
    assert "91% of pixels the FP32 reference decides" in fp16.row()
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


def test_an_argmax_class_map_is_counted_on_the_pixels_the_reference_decides() -> None:
    """--argmax: the artifact gives classes, the margins come from the FP32 logits."""
    margins = np.full((10, 10), 1.0, dtype=np.float32)
    margins[0, 1:] = 0.05  # 9 near-ties
    reference = _logits(margins)
    classes = reference.argmax(axis=1)
    classes[0, 0, 1:] = 1  # rounding flipped the near-ties
    fp16 = compare("model.fp16.onnx", "ONNX Runtime", reference, classes, "fp16")
    assert fp16.output == "class_map" and fp16.decided == 0.91 and fp16.agreement == 1.0
    assert fp16.passed, fp16.row()
    # An engine against its ONNX, both class maps: the FP32 logits still decide.
    engine = compare(
        "model.engine", "TensorRT", reference.argmax(axis=1), classes, "fp16", decided_by=reference
    )
    assert engine.decided == 0.91 and engine.passed
    classes[0, 5, 5] = 1  # a decided pixel flips: 1 of 91
    engine = compare(
        "model.engine", "TensorRT", reference.argmax(axis=1), classes, "fp16", decided_by=reference
    )
    assert not engine.passed and round(engine.agreement, 4) == round(90 / 91, 4)


def test_each_failure_names_its_figure_and_the_option_that_changes_it() -> None:
    import pytest

    from edgeseg.errors import EdgesegError
    from edgeseg.export.parity import require_parity

    reference = _logits(np.full((10, 10), 1.0, dtype=np.float32))
    flipped = reference.argmax(axis=1)
    flipped[0, :2] = 1  # 20 decided pixels change class (an --argmax class map)
    fp16 = compare("model.fp16.onnx", "ONNX Runtime", reference, flipped, "fp16")
    assert fp16.failure().startswith("FP16 agreement 80.00% on the pixels the FP32 reference")
    assert "without --fp16" in fp16.failure() and "--tolerance" not in fp16.failure()
    nudged = reference + 0.01  # every class kept, logits off by 0.1% of the largest
    fp32 = compare("model.onnx", "ONNX Runtime", reference, nudged, "fp32")
    assert fp32.failure().startswith("mean |logit diff| 1.00e-02 is above its limit 1.00e-03")
    assert "raise --tolerance" in fp32.failure()
    with pytest.raises(EdgesegError, match=r"model.fp16.onnx: FP16 agreement .*; model.onnx"):
        require_parity([fp16, fp32])


@pytest.mark.slow
def test_logits_graph_drops_the_final_argmax() -> None:
    import torch
    from model_helpers import TINY_CARD

    from edgeseg.backends.runner import run_onnx
    from edgeseg.export.torch_to_onnx import export_onnx
    from edgeseg.models import create_model
    from edgeseg.onnx_graph import logits_graph

    torch.manual_seed(0)
    model = create_model("segnet-basic", num_classes=3, channels=8, kernel_size=3).eval()
    plain = export_onnx(model, TINY_CARD)
    assert logits_graph(plain) is plain
    argmax = export_onnx(model, TINY_CARD, argmax=True)
    inputs = np.random.default_rng(0).standard_normal((1, 3, 36, 52)).astype(np.float32)
    logits = run_onnx(logits_graph(argmax), inputs)
    assert logits.shape == (1, 3, 36, 52)
    np.testing.assert_allclose(logits, run_onnx(plain, inputs), rtol=1e-5, atol=1e-5)
    assert (run_onnx(argmax, inputs) == logits.argmax(axis=1)).all()
