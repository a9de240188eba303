"""Overlay pixels are exact for a known mask and palette, in every mode and alpha."""

from __future__ import annotations

import numpy as np
import pytest
from runtime_helpers import tiny_card

from edgeseg.errors import EdgesegError
from edgeseg.masks import resize_mask
from edgeseg.runtime import Renderer, colorize, overlay, palette_bgr, select_classes

H, W = 17, 23  # odd on purpose


def known() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frame, mask, expected colours): even frame values and an all-even palette, so a 0.5
    blend has no rounding ties and the expected value is an exact integer."""
    card = tiny_card()
    rng = np.random.default_rng(1)
    frame = (rng.integers(0, 128, size=(H, W, 3)) * 2).astype(np.uint8)
    mask = (np.arange(H * W).reshape(H, W) % card.num_classes).astype(np.uint8)
    bgr = np.array([c[::-1] for c in card.palette], np.uint8)
    assert not (bgr % 2).any()
    return frame, mask, bgr[mask]


def blend(frame: np.ndarray, colours: np.ndarray, alpha: float) -> np.ndarray:
    exact = (1 - alpha) * frame.astype(np.float64) + alpha * colours.astype(np.float64)
    return np.rint(exact).astype(np.uint8)


def test_palette_is_converted_to_bgr() -> None:
    card = tiny_card()
    np.testing.assert_array_equal(palette_bgr(card)[3], [60, 20, 220])  # RGB (220, 20, 60)


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_overlay_mode_pixels(alpha: float) -> None:
    frame, mask, colours = known()
    out = overlay(frame, mask, tiny_card(), alpha=alpha, mode="overlay")
    np.testing.assert_array_equal(out, blend(frame, colours, alpha))
    if alpha == 0.0:
        np.testing.assert_array_equal(out, frame)
    if alpha == 1.0:
        np.testing.assert_array_equal(out, colours)


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_mask_mode_pixels_ignore_alpha(alpha: float) -> None:
    frame, mask, colours = known()
    out = overlay(frame, mask, tiny_card(), alpha=alpha, mode="mask")
    np.testing.assert_array_equal(out, colours)


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_side_by_side_pixels(alpha: float) -> None:
    frame, mask, colours = known()
    out = overlay(frame, mask, tiny_card(), alpha=alpha, mode="side-by-side")
    assert out.shape == (H, 2 * W, 3)
    np.testing.assert_array_equal(out[:, :W], frame)
    np.testing.assert_array_equal(out[:, W:], blend(frame, colours, alpha))


@pytest.mark.parametrize("mode", ["overlay", "mask", "side-by-side"])
def test_only_selected_classes_are_drawn(mode: str) -> None:
    frame, mask, colours = known()
    out = overlay(frame, mask, tiny_card(), alpha=1.0, mode=mode, classes="road,CAR")
    shown = np.isin(mask, [1, 2])
    right = out[:, W:] if mode == "side-by-side" else out
    np.testing.assert_array_equal(right[shown], colours[shown])
    hidden_expected = np.zeros_like(frame) if mode == "mask" else frame
    np.testing.assert_array_equal(right[~shown], hidden_expected[~shown])


def test_small_mask_is_resized_nearest_to_the_frame() -> None:
    card = tiny_card()
    frame = np.zeros((48, 64, 3), np.uint8)
    small = (np.arange(12 * 16).reshape(12, 16) % 4).astype(np.uint8)
    out = overlay(frame, small, card, alpha=1.0)
    full = resize_mask(small, (48, 64))
    np.testing.assert_array_equal(out, palette_bgr(card)[full])
    np.testing.assert_array_equal(colorize(full, card), palette_bgr(card)[full])


def test_renderer_reuses_its_output_buffer() -> None:
    frame, mask, _ = known()
    renderer = Renderer(tiny_card(), alpha=1.0, legend=False)
    first = renderer.render(frame, mask)
    second = renderer.render(frame, np.zeros_like(mask), out=first)
    assert second is first
    np.testing.assert_array_equal(second, np.broadcast_to(palette_bgr(tiny_card())[0], frame.shape))


def test_legend_is_drawn_top_left_and_nothing_else_changes() -> None:
    card = tiny_card()
    frame = np.full((360, 480, 3), 200, np.uint8)
    mask = np.zeros((360, 480), np.uint8)
    out = Renderer(card, alpha=0.0, legend=True).render(frame, mask)
    changed = np.argwhere((out != frame).any(axis=2))
    assert changed.size
    top, left = changed.min(axis=0)
    bottom, right = changed.max(axis=0)
    assert top < 20 and left < 20 and bottom < 180 and right < 240
    for colour in palette_bgr(card):  # every class swatch is in the legend
        assert (out == colour).all(axis=2).any()


def test_legend_lists_only_the_selected_classes() -> None:
    renderer = Renderer(tiny_card(), classes=["Sky"])
    every = Renderer(tiny_card())
    assert renderer.legend_patch(360).shape[0] < every.legend_patch(360).shape[0]


def test_stats_text_is_drawn_at_the_bottom() -> None:
    frame = np.full((120, 200, 3), 100, np.uint8)
    mask = np.zeros((120, 200), np.uint8)
    out = Renderer(tiny_card(), alpha=0.0, legend=False).render(frame, mask, text="12.0 fps")
    changed = np.argwhere((out != frame).any(axis=2))
    assert changed.size and changed[:, 0].min() > 60


def test_unknown_class_lists_the_valid_ones() -> None:
    with pytest.raises(EdgesegError, match="Sky, Road, Car, Person"):
        select_classes(tiny_card(), "road,truck")


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [({"mode": "blend"}, "overlay, mask, side-by-side"), ({"alpha": 1.5}, "between 0 and 1")],
)
def test_bad_renderer_options(kwargs: dict, fragment: str) -> None:
    with pytest.raises(EdgesegError, match=fragment):
        Renderer(tiny_card(), **kwargs)


def test_bad_mask_is_refused() -> None:
    with pytest.raises(EdgesegError, match="uint8 class mask"):
        overlay(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.int64), tiny_card())
