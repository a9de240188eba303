"""Two checkpoints (or ONNX files) on the same images: per-class IoU side by side and a collage.

What ``docs/training.md`` shows for the bundled model's versions: mIoU, pixel accuracy and each
class's IoU of both on one split (images read once), and a picture of the same evenly spaced
frames segmented by each (input | ground truth | one column per model).

    python benchmarks/compare_models.py OLD.pt NEW.pt --data ../shared/datasets/camvid \
        --split val --names v1,v2 --collage docs/images/default_model_v1_v2.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeseg.apps.evaluate import predictor_for
from edgeseg.data import load_split
from edgeseg.evaluate import evaluate_predictor, load_eval_set
from edgeseg.plots import comparison_collage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs=2, help="the older and the newer checkpoint or ONNX")
    parser.add_argument("--data", required=True, help="dataset root")
    parser.add_argument("--split", default="val")
    parser.add_argument("--names", default="old,new", help="column names, comma-separated")
    parser.add_argument("--frames", type=int, default=4, help="rows of the collage")
    parser.add_argument("--collage", type=Path, help="PNG to write the collage to")
    args = parser.parse_args()
    names = args.names.split(",")
    spec, samples = load_split(args.data, args.split)
    eval_set = load_eval_set(samples, spec, progress=True)
    total = len(eval_set.images)
    keep = sorted({round(i * (total - 1) / max(1, args.frames - 1)) for i in range(args.frames)})
    results = {}
    for name, model in zip(names, args.models, strict=True):
        predict, card = predictor_for(model)
        results[name] = (*evaluate_predictor(eval_set, card, predict, keep=keep), card)

    old, new = (results[n][0] for n in names)
    print(f"| class | {names[0]} IoU | {names[1]} IoU | change |")
    print("| --- | --- | --- | --- |")
    for before, after in zip(old["per_class"], new["per_class"], strict=True):
        change = after["iou"] - before["iou"]
        print(f"| {after['name']} | {before['iou']:.3f} | {after['iou']:.3f} | {change:+.3f} |")
    for key in ("miou", "pixel_accuracy", "class_accuracy", "fwiou"):
        print(f"| **{key}** | {old[key]:.3f} | {new[key]:.3f} | {new[key] - old[key]:+.3f} |")
    if args.collage:
        card = results[names[1]][3]
        columns = {name: results[name][2] for name in names}
        comparison_collage(
            [eval_set.images[i] for i in keep],
            [eval_set.masks[i] for i in keep],
            columns,
            card.palette,
            card.ignore_index,
            args.collage,
        )
        print(f"wrote {args.collage}")


if __name__ == "__main__":
    main()
