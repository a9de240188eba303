"""A segmentation ONNX edgeseg did not export runs through ``edgeseg run --labels``: models defined
and exported here from seeded random weights (never a download), an FCN-like head whose scores
come at a quarter of the input size, an NHWC graph that takes any size and ends in an ArgMax, and
``edgeseg card`` writing the card in so the file runs without options."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from runtime_helpers import write_video

from edgeseg.errors import EdgesegError
from edgeseg.foreign_onnx import (
    IMAGENET_MEAN,
    ForeignModelOptions,
    foreign_card,
    generated_palette,
)
from edgeseg.preprocess import preprocess
from edgeseg.runtime import OutputOptions, Segmenter, run_pipeline

torch = pytest.importorskip("torch")
# The TorchScript exporter (dynamo=False) writes these small conv nets in a second; it warns that
# it is the older one.
pytestmark = pytest.mark.filterwarnings("ignore:You are using the legacy TorchScript")

LABELS = ("sky", "road", "car", "person", "tree")


class FcnHead(torch.nn.Module):
    """Two stride-2 convolutions and a 1x1 classifier: scores at 1/4 of the input, NCHW."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, stride=2, padding=1), torch.nn.ReLU(),
            torch.nn.Conv2d(8, 8, 3, stride=2, padding=1), torch.nn.ReLU(),
            torch.nn.Conv2d(8, classes, 1),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class NhwcArgmax(torch.nn.Module):
    """NHWC in, (N, H, W) int64 class map out, any input size."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, classes, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x.permute(0, 3, 1, 2)).argmax(dim=1)


def _export(model: torch.nn.Module, example: torch.Tensor, path: Path, dynamic: bool) -> Path:
    torch.manual_seed(0)
    for parameter in model.parameters():  # seeded random weights
        torch.nn.init.normal_(parameter, 0.0, 0.5)
    axes = {"image": {0: "n", 1: "h", 2: "w"}} if dynamic else {"image": {0: "n"}}
    torch.onnx.export(
        model.eval(), (example,), str(path), dynamo=False, input_names=["image"],
        output_names=["out"], dynamic_axes=axes, opset_version=17,
    )  # fmt: skip
    return path


@pytest.fixture()
def fcn_onnx(tmp_path: Path) -> Path:
    return _export(FcnHead(len(LABELS)), torch.zeros(1, 3, 40, 56), tmp_path / "fcn.onnx", False)


@pytest.fixture()
def nhwc_onnx(tmp_path: Path) -> Path:
    example = torch.zeros(1, 40, 56, 3)
    return _export(NhwcArgmax(len(LABELS)), example, tmp_path / "nhwc.onnx", True)


@pytest.fixture()
def labels(tmp_path: Path) -> Path:
    path = tmp_path / "labels.txt"
    path.write_text("# classes\n" + "\n".join(LABELS) + "\n")
    return path


def test_the_card_is_read_from_the_graph_where_it_can_be(fcn_onnx: Path, nhwc_onnx: Path) -> None:
    fcn = Segmenter(fcn_onnx, foreign=ForeignModelOptions(LABELS)).card
    assert (fcn.input_hw, fcn.output, fcn.mean) == ((40, 56), "logits", IMAGENET_MEAN)
    assert fcn.palette == generated_palette(5) and len(set(fcn.palette)) == 5
    with pytest.raises(EdgesegError, match="takes any input size"):
        Segmenter(nhwc_onnx, foreign=ForeignModelOptions(LABELS))
    nhwc = Segmenter(nhwc_onnx, foreign=ForeignModelOptions(LABELS, input_hw=(32, 48))).card
    assert nhwc.output == "class_map" and nhwc.arch_args["input_layout"] == "nhwc"


def test_contradictions_are_one_line() -> None:
    with pytest.raises(EdgesegError, match="holds 5 classes but 4 labels"):
        foreign_card([1, 3, 8, 8], [1, 5, 8, 8], False, ForeignModelOptions(LABELS[:4]))
    with pytest.raises(EdgesegError, match="its input is 8x8, not the 9x9 given"):
        foreign_card(
            [1, 3, 8, 8], [1, 5, 8, 8], False, ForeignModelOptions(LABELS, input_hw=(9, 9))
        )
    with pytest.raises(EdgesegError, match="cannot tell the input layout"):
        foreign_card([1, 4, 8, 8], [1, 5, 8, 8], False, ForeignModelOptions(LABELS))
    card = foreign_card(["n", 3, 8, 8], [1, 5, 2, 2], False, ForeignModelOptions(LABELS),
                        {"mean": "0.5,0.5,0.5", "std": "0.2 0.2 0.2"})  # fmt: skip
    assert card.mean == (0.5, 0.5, 0.5) and card.std == (0.2, 0.2, 0.2)


def test_masks_equal_a_reference_computed_from_the_torch_model(fcn_onnx: Path) -> None:
    segmenter = Segmenter(fcn_onnx, foreign=ForeignModelOptions(LABELS))
    frame = np.random.default_rng(1).integers(0, 255, (60, 84, 3), np.uint8)
    mask = segmenter.predict(frame)
    model = FcnHead(len(LABELS))
    torch.manual_seed(0)
    for parameter in model.parameters():
        torch.nn.init.normal_(parameter, 0.0, 0.5)
    with torch.no_grad():
        scores = model.eval()(torch.from_numpy(preprocess(frame, segmenter.card)[None]))
    up = torch.nn.functional.interpolate(scores, size=(60, 84), mode="bilinear")
    expected = up.argmax(1)[0].numpy()
    assert mask.shape == (60, 84)
    assert (mask == expected).mean() > 0.99  # bilinear resize of scores, float rounding at ties


def test_edgeseg_run_with_labels_gives_overlays_stats_and_the_browser_view(
    cli, fcn_onnx: Path, labels: Path, tmp_path: Path
) -> None:
    clip = write_video(tmp_path / "clip.mp4", 8, (60, 84))
    colors = tmp_path / "colors.txt"
    colors.write_text("\n".join(f"{i * 40} {255 - i * 40} 7" for i in range(5)))
    result = cli(
        "run", "--model", str(fcn_onnx), "--labels", str(labels), "--colors", str(colors),
        "--source", str(clip), "--output", str(tmp_path / "frames") + "/", "--stats",
        str(tmp_path / "s.jsonl"), "--serve", "127.0.0.1:0", "--headless",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "onnx, 5 classes, input 40x56" in result.stderr and "watch at http://" in result.stderr
    assert len(list((tmp_path / "frames").glob("*.jpg"))) == 8
    record = json.loads((tmp_path / "s.jsonl").read_text().splitlines()[-1])
    assert record["frames_done"] == 8 and set(record["class_share"]) <= set(LABELS)


def test_edgeseg_card_writes_a_file_that_runs_without_options(
    cli, nhwc_onnx: Path, labels: Path, tmp_path: Path
) -> None:
    carded = tmp_path / "carded.onnx"
    result = cli("card", "--model", str(nhwc_onnx), "--labels", str(labels), "--input-size",
                 "32x48", "--output", str(carded))  # fmt: skip
    assert result.returncode == 0, result.stderr
    segmenter = Segmenter(carded)
    assert segmenter.card.class_names == LABELS and segmenter.card.input_hw == (32, 48)
    masks = tmp_path / "masks"
    run_pipeline(carded, str(write_video(tmp_path / "c.mp4", 3, (50, 70))),
                 outputs=OutputOptions(masks=masks))  # fmt: skip
    assert len(list(masks.glob("*.png"))) == 3
    again = cli("card", "--model", str(carded), "--labels", str(labels), "--output",
                str(tmp_path / "twice.onnx"))  # fmt: skip
    assert again.returncode == 2 and "carries an edgeseg model card already" in again.stderr
    options_alone = cli("run", "--model", str(carded), "--source", "x.mp4", "--colors", "c.txt")
    assert options_alone.returncode == 2 and "give --labels too" in options_alone.stderr
