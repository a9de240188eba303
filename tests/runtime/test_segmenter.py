"""Segmenter on real ONNX Runtime: masks against a numpy reference, batches, faults."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from runtime_helpers import (
    reference_class_map_mask,
    reference_mask,
    synthetic_frame,
    tiny_card,
    write_tiny_onnx,
)

from edgeseg.errors import EdgesegError
from edgeseg.runtime import Segmenter, argmax_classes, resize_mask


@pytest.mark.parametrize("hw", [(48, 64), (17, 11), (24, 32), (101, 77)])
def test_predict_matches_reference_at_frame_size(tiny_onnx: Path, hw: tuple[int, int]) -> None:
    segmenter = Segmenter(tiny_onnx)
    frame = synthetic_frame(5, hw)
    mask = segmenter.predict(frame)
    assert mask.shape == hw and mask.dtype == np.uint8
    np.testing.assert_array_equal(mask, reference_mask(frame, segmenter.card))


def test_card_backend_and_device(tiny_onnx: Path) -> None:
    segmenter = Segmenter(tiny_onnx)
    assert segmenter.card == tiny_card()
    assert segmenter.backend_name == "onnxruntime"
    assert segmenter.device == "CPUExecutionProvider"
    assert "onnxruntime (CPUExecutionProvider)" in repr(segmenter)


def test_class_map_model_masks(tiny_onnx: Path, tiny_class_map_onnx: Path) -> None:
    # A graph ending in ArgMax gives the logits model's classes at network size; at another
    # frame size its class map can only be resized by nearest neighbour.
    logits, argmax = Segmenter(tiny_onnx), Segmenter(tiny_class_map_onnx)
    assert argmax.card.output == "class_map"
    for i in range(4):
        frame = synthetic_frame(i, logits.card.input_hw)
        np.testing.assert_array_equal(logits.predict(frame), argmax.predict(frame))
        other = synthetic_frame(i, (37, 53))
        np.testing.assert_array_equal(
            argmax.predict(other), reference_class_map_mask(other, argmax.card)
        )


def test_predict_batch_frames_of_different_sizes(tiny_onnx: Path) -> None:
    segmenter = Segmenter(tiny_onnx)
    frames = [synthetic_frame(i, hw) for i, hw in enumerate([(48, 64), (17, 11), (30, 90)])]
    masks = segmenter.predict_batch(frames)
    for frame, mask in zip(frames, masks, strict=True):
        np.testing.assert_array_equal(mask, segmenter.predict(frame))


def test_predict_batch_on_a_fixed_batch_model_runs_in_chunks(tmp_path: Path) -> None:
    path = write_tiny_onnx(tmp_path / "b1.onnx", batch=1)
    segmenter = Segmenter(path)
    frames = [synthetic_frame(i) for i in range(3)]
    masks = segmenter.predict_batch(frames)
    assert len(masks) == 3
    np.testing.assert_array_equal(masks[2], reference_mask(frames[2], segmenter.card))


def test_predict_rejects_a_non_image(tiny_onnx: Path) -> None:
    with pytest.raises(EdgesegError, match="BGR image"):
        Segmenter(tiny_onnx).predict(np.zeros((10, 10), np.uint8))


@pytest.mark.parametrize("shape", [(12, 17, 11), (3, 5, 7), (1, 4, 4), (2, 1, 9)])
def test_argmax_classes_matches_numpy_on_ties(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(0)
    tied = np.round(rng.normal(size=shape)).astype(np.float32)  # many ties
    np.testing.assert_array_equal(argmax_classes(tied), np.argmax(tied, axis=0))
    smooth = rng.normal(size=shape).astype(np.float32)
    np.testing.assert_array_equal(argmax_classes(smooth), np.argmax(smooth, axis=0))
    zeros = np.zeros(shape, np.float32)  # all tied: first class
    assert not argmax_classes(zeros).any()


def test_resize_mask_is_nearest_on_pixel_centres() -> None:
    small = np.array([[0, 1], [2, 3]], np.uint8)
    big = resize_mask(small, (4, 6))
    expected = np.repeat(np.repeat(small, 2, axis=0), 3, axis=1)
    np.testing.assert_array_equal(big, expected)
    odd = resize_mask(np.arange(12, dtype=np.uint8).reshape(3, 4), (7, 9))
    assert set(np.unique(odd)) <= set(range(12))


# -- faults -------------------------------------------------------------------------------------


def test_onnx_without_model_card(tmp_path: Path) -> None:
    path = write_tiny_onnx(tmp_path / "bare.onnx", with_card=False)
    with pytest.raises(EdgesegError, match="has no edgeseg model card"):
        Segmenter(path)


def test_missing_model_file(tmp_path: Path) -> None:
    with pytest.raises(EdgesegError, match="not found"):
        Segmenter(tmp_path / "nope.onnx")


def test_garbage_onnx(tmp_path: Path) -> None:
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(EdgesegError, match="cannot load ONNX model"):
        Segmenter(path)


def test_unknown_artifact_type(tmp_path: Path) -> None:
    path = tmp_path / "model.tflite"
    path.write_bytes(b"x")
    with pytest.raises(EdgesegError, match=r"\.engine.*\.onnx"):
        Segmenter(path)


@pytest.mark.parametrize(
    ("backend", "fragment"), [("tensorrt", "edgeseg export"), ("torch", "checkpoints")]
)
def test_backend_that_cannot_run_the_file(tiny_onnx: Path, backend: str, fragment: str) -> None:
    with pytest.raises(EdgesegError, match=fragment):
        Segmenter(tiny_onnx, backend=backend)


def test_unknown_backend_lists_choices(tiny_onnx: Path) -> None:
    with pytest.raises(EdgesegError, match="auto, tensorrt, onnxruntime, torch"):
        Segmenter(tiny_onnx, backend="openvino")


def test_unavailable_provider_is_named(tiny_onnx: Path) -> None:
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("onnxruntime-gpu is installed: the CUDA provider is available")
    with pytest.raises(EdgesegError, match="onnxruntime-gpu"):
        Segmenter(tiny_onnx, providers=["CUDAExecutionProvider"])


def test_card_that_disagrees_with_the_graph(tmp_path: Path) -> None:
    path = write_tiny_onnx(
        tmp_path / "lying.onnx", card=tiny_card(input_hw=(24, 32)), input_hw=(16, 16)
    )
    with pytest.raises(EdgesegError, match="re-export"):
        Segmenter(path)


def test_trt_onnx_is_refused_with_a_hint(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    from edgeseg.card import ONNX_METADATA_KEY

    node = helper.make_node(
        "EdgesegUnpool",
        ["input", "input"],
        ["out"],
        domain="",
        plugin_namespace="edgeseg",
        plugin_version="1",
    )
    graph = helper.make_graph(
        [node],
        "trt",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 24, 32])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3, 24, 32])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    helper.set_model_props(model, {ONNX_METADATA_KEY: tiny_card().to_json()})
    path = tmp_path / "model.trt.onnx"
    onnx.save(model, str(path))
    with pytest.raises(EdgesegError, match="TensorRT only"):
        Segmenter(path)


def _run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )


def test_runtime_imports_and_runs_with_torch_blocked(tiny_onnx: Path, tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    from runtime_helpers import write_video

    write_video(video, 6)
    code = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
sys.meta_path.insert(0, Block())
import numpy as np
from edgeseg.runtime import Segmenter, Pipeline, open_source, MaskSink, overlay
seg = Segmenter({str(tiny_onnx)!r})
mask = seg.predict(np.zeros((20, 30, 3), np.uint8))
assert mask.shape == (20, 30)
overlay(np.zeros((20, 30, 3), np.uint8), mask, seg.card, legend=True)
snap = Pipeline(open_source({str(video)!r}), seg, [MaskSink({str(tmp_path / "m")!r})]).run()
assert snap.frames_done == 6, snap
assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules), "torch imported"
print("ok")
"""
    result = _run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@pytest.mark.parametrize(
    ("blocked", "artifact", "extra"),
    [("onnxruntime", "tiny.onnx", "onnx"), ("torch", "best.pt", "train")],
)
def test_missing_dependency_names_the_extra(
    tiny_onnx: Path, tmp_path: Path, blocked: str, artifact: str, extra: str
) -> None:
    if artifact.endswith(".onnx"):
        path = tiny_onnx
    else:
        path = tmp_path / artifact
        path.write_bytes(b"not really")
    code = f"""
import sys
sys.modules[{blocked!r}] = None
from edgeseg.errors import EdgesegError
from edgeseg.runtime import Segmenter
try:
    Segmenter({str(path)!r})
except EdgesegError as exc:
    print(exc)
"""
    result = _run_python(code)
    assert f"pip install 'edgeseg[{extra}]'" in result.stdout, result.stderr


def _varied_model(torch: object, arch_args: dict) -> object:
    """A segnet-basic whose BatchNorm statistics and affine terms are random: a fresh model
    predicts one class almost everywhere, which any post-processing would reproduce."""
    from edgeseg.models import create_model

    torch.manual_seed(0)
    model = create_model("segnet-basic", 4, **arch_args)
    generator = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            size = module.num_features
            module.running_mean.copy_(torch.randn(size, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(size, generator=generator) * 0.1 + 0.05)
            module.weight.data.copy_(torch.randn(size, generator=generator))
            module.bias.data.copy_(torch.randn(size, generator=generator) * 0.1)
    return model.eval()


@pytest.mark.slow
def test_checkpoint_and_its_exported_onnx_give_the_torch_masks(tmp_path: Path) -> None:
    """A real SegNet checkpoint on the torch backend, and (when the export stage is installed)
    its ArgMax-ended ONNX export on ONNX Runtime, against PyTorch computed here: the scores
    resized bilinearly to the frame then the argmax (what eval scores) for the checkpoint, the
    class map resized by nearest neighbour for the ArgMax graph. The model predicts several
    classes, so a Segmenter that resized the wrong thing would fail."""
    torch = pytest.importorskip("torch")
    from edgeseg.checkpoint import save_checkpoint
    from edgeseg.preprocess import preprocess

    arch_args = {"channels": 8, "kernel_size": 3, "depth": 2}
    model = _varied_model(torch, arch_args)
    card = tiny_card(architecture="segnet-basic", arch_args=arch_args)
    save_checkpoint(tmp_path / "best.pt", model, card)
    artifacts = [tmp_path / "best.pt"]
    try:
        from edgeseg.export.onnx_io import attach_card, save_onnx
        from edgeseg.export.torch_to_onnx import export_onnx
    except ImportError:
        pass  # the export stage is not installed: the checkpoint alone
    else:
        proto = export_onnx(model, card, argmax=True)
        attach_card(proto, card.replace(output="class_map"))
        artifacts.append(save_onnx(proto, tmp_path / "model.onnx"))
    frames = [synthetic_frame(i, hw) for i, hw in enumerate([(40, 50), (17, 11)])]
    for artifact in artifacts:
        segmenter = Segmenter(artifact)
        assert segmenter.backend_name == ("torch" if artifact.suffix == ".pt" else "onnxruntime")
        for frame in frames:
            with torch.no_grad():
                logits = model(torch.from_numpy(preprocess(frame, card)[None]))
            if artifact.suffix == ".pt":
                scores = torch.nn.functional.interpolate(
                    logits, size=frame.shape[:2], mode="bilinear", align_corners=False
                )
                expected = scores.argmax(1)[0].numpy().astype(np.uint8)
            else:
                expected = cv2.resize(
                    logits.argmax(1)[0].numpy().astype(np.uint8),
                    frame.shape[1::-1],
                    interpolation=cv2.INTER_NEAREST_EXACT,
                )
            shares = np.bincount(expected.ravel(), minlength=4) / expected.size
            assert (shares > 0.05).sum() >= 2, shares  # not one class everywhere
            np.testing.assert_array_equal(segmenter.predict(frame), expected)


def test_edgeseg_run_works_with_torch_blocked(tiny_onnx: Path, tmp_path: Path) -> None:
    from runtime_helpers import write_video

    video = write_video(tmp_path / "clip.mp4", 5)
    code = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
sys.meta_path.insert(0, Block())
from edgeseg.cli.main import main
main(["run", "--model", {str(tiny_onnx)!r}, "--source", {str(video)!r},
      "--output", {str(tmp_path / "out.mp4")!r}])
assert "torch" not in sys.modules
print("ok")
"""
    result = _run_python(code)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
    assert (tmp_path / "out.mp4").is_file()
