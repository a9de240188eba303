"""The model the runtime benchmarks run: SegNet width 0.25, CamVid card, 360x480, as ONNX.

Weights are random (seeded): speed does not depend on them. Exported with the export stage
(``edgeseg.export.torch_to_onnx.export_onnx``) when it is installed, else with
``torch.onnx.export`` directly. The export runs in a subprocess, so the benchmark process itself
never imports torch (as on a Jetson) and its memory figures are the runtime's own.

    python benchmarks/runtime_model.py --out out/bench/segnet_w0.25.onnx [--argmax]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "out" / "bench"
CAMVID_CLIP = ROOT.parent / "shared" / "datasets" / "camvid" / "clip_val.mp4"


def random_segnet(width: float, input_hw: tuple[int, int] = (360, 480)) -> tuple[Any, Any]:
    """SegNet at ``width`` with seeded random weights (eval mode) and its CamVid card."""
    import torch

    from edgeseg.card import ModelCard
    from edgeseg.data.spec import CAMVID
    from edgeseg.models import create_model

    torch.manual_seed(0)
    model = create_model("segnet", CAMVID.num_classes, width=width).eval()
    card = ModelCard(
        architecture="segnet",
        num_classes=CAMVID.num_classes,
        class_names=CAMVID.class_names,
        palette=CAMVID.palette,
        input_hw=input_hw,
        arch_args={"width": width},
        ignore_index=CAMVID.ignore_index,
        dataset="camvid (random weights: a speed benchmark)",
    )
    return model, card


def segnet_onnx(width: float = 0.25, argmax: bool = False) -> Path:
    """Path of the cached benchmark model, exporting it first (in a subprocess) if missing."""
    name = f"segnet_w{width}{'_argmax' if argmax else ''}.onnx"
    path = CACHE / name
    if not path.is_file():
        command = [sys.executable, __file__, "--out", str(path), "--width", str(width)]
        subprocess.run([*command, *(["--argmax"] if argmax else [])], check=True)
    return path


def export(out: Path, width: float, argmax: bool) -> str:
    import torch

    from edgeseg.card import ONNX_METADATA_KEY

    model, card = random_segnet(width)
    card = card.replace(output="class_map" if argmax else "logits")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        from edgeseg.export.onnx_io import attach_card, save_onnx
        from edgeseg.export.torch_to_onnx import export_onnx
    except ImportError:
        if argmax:
            raise SystemExit("--argmax needs edgeseg.export") from None
        torch.onnx.export(
            model,
            (torch.zeros(1, 3, 360, 480),),
            str(out),
            dynamo=True,
            input_names=["input"],
            output_names=["logits"],
        )
        import onnx

        proto = onnx.load(str(out))
        entry = proto.metadata_props.add()
        entry.key, entry.value = ONNX_METADATA_KEY, card.to_json()
        onnx.save(proto, str(out))
        return "torch.onnx.export"
    proto = export_onnx(model, card, argmax=argmax)
    attach_card(proto, card)
    save_onnx(proto, out)
    return "edgeseg.export"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--argmax", action="store_true", help="end the graph in ArgMax")
    args = parser.parse_args()
    how = export(args.out, args.width, args.argmax)
    print(f"wrote {args.out} with {how}")


if __name__ == "__main__":
    main()
