"""Training configuration: dataclass defaults < ``--config`` YAML < command-line flags.

The defaults are the recipe of v2 (CamVid val mIoU 0.548, docs/training.md), the from-scratch
stage of the bundled v3: SegNet width 0.25 at 180x240, AdamW at 2e-3 with one warm-up epoch then
cosine, batch 8, cross-entropy weighted by the square root of median-frequency balancing, 100
epochs. v3 fine-tunes that model at 216x288 on train + val (``--init``, ``--train-split``);
every value is a flag away.

The resolved configuration is written beside the outputs (``config.yaml``) and stored in every
checkpoint, so a run can be repeated or resumed from what it wrote. YAML is read with
``safe_load``: configuration is data, never code.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from edgeseg.errors import EdgesegError
from edgeseg.validate import at_least, check_fields, finite

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("poly", "cosine")
LOSSES = ("ce", "ohem", "focal", "dice", "ce+dice")
BALANCING = ("median", "sqrt-median", "inverse", "none")
#: The bundled v2 model's recipe (the defaults below).
DEFAULT_WIDTH = 0.25
DEFAULT_INPUT_HW = (180, 240)
#: Learning rate per optimiser when --lr is not given.
DEFAULT_LR = {"sgd": 0.01, "adamw": 0.002}


@dataclass
class TrainConfig:
    """Everything a training run depends on. Paths are strings so the config round-trips YAML."""

    data: str = ""
    out: str = "runs/train"
    model: str = "segnet"
    #: Architecture options passed to ``create_model`` (``width`` for segnet, ...); the default
    #: width applies to segnet only (another architecture given without options gets none).
    model_options: dict[str, Any] = field(default_factory=lambda: {"width": DEFAULT_WIDTH})
    vgg_weights: str | None = None
    #: A checkpoint whose weights start the run (fine-tuning); same architecture and classes.
    init: str | None = None
    #: The split(s) trained on, '+'-joined: ``train+val`` is the final fit of a recipe whose
    #: epoch count was chosen on train -> val (then val no longer measures anything).
    train_split: str = "train"
    val_split: str = "val"
    #: Network input (height, width); None takes the size of the first training image.
    input_hw: list[int] | None = field(default_factory=lambda: list(DEFAULT_INPUT_HW))
    mean: list[float] = field(default_factory=lambda: [0.485, 0.456, 0.406])
    std: list[float] = field(default_factory=lambda: [0.229, 0.224, 0.225])
    epochs: int = 100
    batch_size: int = 8
    optimizer: str = "adamw"
    #: Learning rate; None picks the optimiser's value (SGD 0.01, AdamW 0.002: the v2 recipe's).
    lr: float | None = None
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    warmup_epochs: float = 1.0
    loss: str = "ce"
    class_balance: str = "sqrt-median"
    focal_gamma: float = 2.0
    dice_weight: float = 1.0
    #: OHEM: pixels whose probability of their true class is below this count as hard ...
    ohem_threshold: float = 0.7
    #: ... and at least this fraction of the counted pixels (the hardest) always counts.
    ohem_min_fraction: float = 1 / 16
    scale_min: float = 0.75
    scale_max: float = 1.5
    hflip: bool = True
    color_jitter: float = 0.2
    #: Decay of the exponential moving average of the weights that is validated, saved and
    #: exported (``train/ema.py``); 0 turns it off.
    ema: float = 0.0
    seed: int = 0
    workers: int = 2
    device: str = "auto"
    amp: bool = True
    channels_last: bool = True
    cache_images: bool = True
    #: Use only the first N training / validation images (quick trials, smoke tests).
    limit_train: int | None = None
    limit_val: int | None = None
    #: Images in the prediction collage written at the end.
    collage_images: int = 4

    def validate(self) -> None:
        """Reject values no run could use, naming the valid choices (types first: ``lr: fast``
        in a YAML file, then NaN, infinities and counts below 1: :mod:`edgeseg.validate`)."""
        check_fields(self, "training config")
        finite("lr", self.lr, positive=True)
        for name in ("momentum", "weight_decay", "warmup_epochs", "color_jitter"):
            at_least(name, getattr(self, name), 0)
        finite("ema", self.ema)
        if not 0 <= self.ema < 1:
            raise EdgesegError(f"ema {self.ema} must be at least 0 (off) and below 1, e.g. 0.99")
        for name in ("limit_train", "limit_val", "workers"):
            at_least(name, getattr(self, name), 1 if name != "workers" else 0)
        choices = {
            "optimizer": OPTIMIZERS,
            "schedule": SCHEDULES,
            "loss": LOSSES,
            "class_balance": BALANCING,
        }
        for name, valid in choices.items():
            value = getattr(self, name)
            if value not in valid:
                raise EdgesegError(f"{name} {value!r} is not one of: {', '.join(valid)}")
        if not self.data:
            raise EdgesegError("no dataset given; pass --data DATASET_ROOT")
        if self.vgg_weights and self.init:
            raise EdgesegError("--init and --vgg-weights both set the weights; give one")
        if self.epochs < 1 or self.batch_size < 1:
            raise EdgesegError("epochs and batch size must be at least 1")
        if self.input_hw is not None and (len(self.input_hw) != 2 or min(self.input_hw) < 32):
            # Five 2x2 poolings need 32 pixels; odd sizes are fine (unpooling restores them).
            raise EdgesegError(
                f"input size {self.input_hw} must be HEIGHTxWIDTH, each at least 32 (e.g. 360x480)"
            )

    @property
    def learning_rate(self) -> float:
        if self.lr is not None:
            return self.lr
        return DEFAULT_LR[self.optimizer]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def load_config(path: str | Path | None = None, **overrides: Any) -> TrainConfig:
    """Defaults, then the YAML file at ``path`` (if any), then ``overrides`` that are not None."""
    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise EdgesegError(f"config file {path} not found")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise EdgesegError(f"config file {path} is not valid YAML: {exc}") from None
        if not isinstance(loaded, dict):
            raise EdgesegError(f"config file {path} must hold a mapping of option: value")
        values.update(loaded)
    values.update({k: v for k, v in overrides.items() if v is not None})
    where = f"config file {path}" if path is not None else "training config"
    if "model_options" not in values and values.get("model", "segnet") != "segnet":
        values["model_options"] = {}  # the default width is segnet's
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise EdgesegError(
            f"unknown config keys {', '.join(unknown)}; valid: {', '.join(sorted(known))}"
        )
    config = TrainConfig(**values)
    check_fields(config, where)
    return config


def config_from_checkpoint(payload: dict[str, Any], epochs: int | None = None) -> TrainConfig:
    """The configuration a ``last.pt`` was trained with, optionally with more epochs."""
    if "config" not in payload or "optimizer" not in payload:
        raise EdgesegError(
            "this checkpoint holds no training state; resume from a run's last.pt, not best.pt"
        )
    config = TrainConfig(**payload["config"])
    if epochs is not None:
        config.epochs = epochs
    return config
