"""The bundled default model's two files describe one model: the ONNX the runtime runs was
exported from the checkpoint ``edgeseg export`` starts from, and computes what it computes."""

from __future__ import annotations

import torch

from edgeseg.apps.default_model import default_card, default_checkpoint, default_onnx
from edgeseg.backends.onnxruntime import OnnxRuntimeRunner
from edgeseg.checkpoint import load_model
from edgeseg.export.parity import compare, sample_inputs


def test_the_bundled_onnx_is_the_checkpoint_exported() -> None:
    card, metrics, splits = default_card()
    onnx_card = OnnxRuntimeRunner(default_onnx(), with_card=True).card
    assert onnx_card.weights_sha256 == card.weights_sha256 != ""
    for field in ("architecture", "arch_args", "class_names", "palette", "input_hw", "mean"):
        assert getattr(onnx_card, field) == getattr(card, field), field
    assert onnx_card.precision == "fp32" and onnx_card.output == "logits"
    # a fit on train carries its validation figures; a final fit on train+val has none to show
    assert metrics["miou"] > 0 if splits == "train" else (splits == "train+val" and metrics == {})


def test_the_bundled_onnx_computes_what_the_checkpoint_computes() -> None:
    model, card = load_model(default_checkpoint())
    inputs = sample_inputs(card, 2)
    with torch.no_grad():
        expected = model(torch.from_numpy(inputs)).numpy()
    actual = OnnxRuntimeRunner(default_onnx(), with_card=True).infer(inputs)
    result = compare("bundled", "ONNX Runtime", expected, actual)
    assert result.passed, result.row()
