"""Model card round trips and validation; checkpoints: safe load, atomic write, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from edgeseg.card import ModelCard, read_sidecar, write_sidecar
from edgeseg.checkpoint import load_model, read_checkpoint, save_checkpoint, weights_sha256
from edgeseg.errors import EdgesegError
from edgeseg.models import create_model
from edgeseg.preprocess import preprocess


def make_card(**changes) -> ModelCard:
    card = ModelCard(
        architecture="segnet",
        num_classes=3,
        class_names=("a", "b", "c"),
        palette=((0, 0, 0), (255, 0, 0), (0, 255, 0)),
        input_hw=(64, 96),
        arch_args={"width": 0.125},
        ignore_index=2,
    )
    return card.replace(**changes)


def test_card_json_round_trip_and_unknown_keys_ignored() -> None:
    card = make_card(build={"tensorrt": "10.3.0"})
    data = json.loads(card.to_json())
    data["added_by_a_newer_edgeseg"] = 1
    assert ModelCard.from_dict(data) == card


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"class_names": ("a", "b")}, "2 class names for 3 classes"),
        ({"palette": ((0, 0, 0),)}, "1 palette colours"),
        ({"precision": "int4"}, "precision 'int4'"),
        ({"output": "probs"}, "output 'probs'"),
    ],
)
def test_card_rejects_inconsistent_values(changes: dict, message: str) -> None:
    with pytest.raises(EdgesegError, match=message):
        make_card(**changes)


def test_card_missing_field_names_it() -> None:
    data = make_card().to_dict()
    del data["input_hw"]
    with pytest.raises(EdgesegError, match="missing input_hw"):
        ModelCard.from_dict(data)


def test_sidecar_round_trip_and_missing_sidecar(tmp_path: Path) -> None:
    engine = tmp_path / "model.engine"
    write_sidecar(make_card(precision="fp16"), engine)
    assert read_sidecar(engine).precision == "fp16"
    with pytest.raises(EdgesegError, match="no model card"):
        read_sidecar(tmp_path / "other.engine")


def test_preprocess_follows_the_card() -> None:
    card = make_card(mean=(0.5, 0.5, 0.5), std=(0.5, 0.25, 0.5))
    frame = np.zeros((10, 20, 3), np.uint8)
    frame[..., 0] = 255  # blue in BGR
    x = preprocess(frame, card)
    assert x.shape == (3, 64, 96) and x.dtype == np.float32
    # RGB order after conversion: R=0 -> (0-0.5)/0.5 = -1, G=0 -> -2, B=255 -> +1
    assert np.allclose(x[:, 5, 5], [-1.0, -2.0, 1.0])
    with pytest.raises(EdgesegError, match="uint8"):
        preprocess(frame.astype(np.float32), card)


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    model = create_model("segnet", 3, width=0.125)
    written = save_checkpoint(tmp_path / "m.pt", model, make_card(), {"epoch": 4})
    assert written.weights_sha256 == weights_sha256(model.state_dict())
    assert written.edgeseg_version
    loaded, card = load_model(tmp_path / "m.pt")
    assert card == written
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        assert torch.equal(loaded(x), model.eval()(x))
    assert read_checkpoint(tmp_path / "m.pt")["epoch"] == 4


def test_checkpoint_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = create_model("segnet", 3, width=0.125)
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, make_card())
    before = path.read_bytes()

    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        save_checkpoint(path, model, make_card())
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]


def test_foreign_and_missing_checkpoints_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(EdgesegError, match="not found"):
        read_checkpoint(tmp_path / "none.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(EdgesegError, match="cannot read checkpoint"):
        read_checkpoint(tmp_path / "junk.pt")
    torch.save({"state_dict": {}}, tmp_path / "plain.pt")
    with pytest.raises(EdgesegError, match="not an edgeseg checkpoint"):
        read_checkpoint(tmp_path / "plain.pt")


def test_checkpoint_refuses_code_execution(tmp_path: Path) -> None:
    class Payload:
        def __reduce__(self):
            return (Path.touch, (tmp_path / "pwned",))

    torch.save({"format": "edgeseg-checkpoint", "x": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(EdgesegError):
        read_checkpoint(tmp_path / "evil.pt")
    assert not (tmp_path / "pwned").exists()
