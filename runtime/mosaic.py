"""The tiled view of several streams: one image with every stream's newest overlay.

Tiles are laid out on a near-square grid (2 streams side by side, 3-4 in 2x2, 5-6 in 2x3, 7-9
in 3x3), each labelled with its stream's name at the top right (the legend is at the top
left). The tile size is fixed by the first frame seen
(or ``tile_hw``), scaled down so the whole mosaic is at most :data:`MAX_WIDTH` pixels wide, so a
video of the mosaic keeps one frame size however the streams' sizes differ; a frame of another
size is resized into its tile (aspect kept, bars left black). A stream that has ended keeps its
last image.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from edgeseg.runtime.overlay import FONT

MAX_WIDTH = 1920


def grid_shape(count: int) -> tuple[int, int]:
    """(rows, columns) for ``count`` tiles: the fewest columns that keep rows <= columns."""
    columns = max(1, math.ceil(math.sqrt(count)))
    rows = max(1, math.ceil(count / columns))
    return rows, columns


class Mosaic:
    """A canvas of tiles; :meth:`put` draws one stream's image into its tile."""

    def __init__(self, tile_hw: tuple[int, int] | None = None) -> None:
        self.tile_hw = tile_hw
        self._canvas: np.ndarray | None = None
        self._grid = (1, 1)

    def _create(self, count: int, first: np.ndarray) -> np.ndarray:
        self._grid = rows, columns = grid_shape(count)
        h, w = self.tile_hw or first.shape[:2]
        scale = min(1.0, MAX_WIDTH / (w * columns))
        self.tile_hw = (max(2, int(h * scale)) // 2 * 2, max(2, int(w * scale)) // 2 * 2)
        th, tw = self.tile_hw
        self._canvas = np.zeros((rows * th, columns * tw, 3), np.uint8)
        return self._canvas

    def put(self, index: int, name: str, count: int, image: np.ndarray) -> None:
        """Draw stream ``index`` (of ``count``) into its tile, with ``name`` at the top left."""
        canvas = self._canvas if self._canvas is not None else self._create(count, image)
        th, tw = self.tile_hw or image.shape[:2]
        row, column = divmod(index, self._grid[1])
        tile = canvas[row * th : (row + 1) * th, column * tw : (column + 1) * tw]
        h, w = image.shape[:2]
        scale = min(th / h, tw / w)
        fh, fw = max(1, round(h * scale)), max(1, round(w * scale))
        if (fh, fw) != (th, tw):
            tile[:] = 0
        top, left = (th - fh) // 2, (tw - fw) // 2
        fitted = (
            image
            if (fh, fw) == (h, w)
            else cv2.resize(image, (fw, fh), interpolation=cv2.INTER_AREA)
        )
        tile[top : top + fh, left : left + fw] = fitted
        _label(tile, name)

    def image(self) -> np.ndarray:
        """The canvas (the same buffer every step: copy to keep it)."""
        if self._canvas is None:
            raise RuntimeError("no stream has been drawn into the mosaic yet")
        return self._canvas


def _label(tile: np.ndarray, text: str) -> None:
    scale = max(0.4, tile.shape[0] / 720)
    thickness = 1 if scale < 0.7 else 2
    (width, height), _ = cv2.getTextSize(text, FONT, scale, thickness + 2)
    origin = (max(0, tile.shape[1] - width - 6), 6 + height)  # top right: the legend is left
    cv2.putText(tile, text, origin, FONT, scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.putText(tile, text, origin, FONT, scale, (255, 255, 255), thickness, cv2.LINE_AA)
