"""A procedural road-scene video, for ``edgeseg demo`` when no ``--source`` is given.

A newcomer has no video at hand, and the package must not ship footage it has no licence to
redistribute, so the demo draws its own: sky gradient, building blocks and trees along the
horizon, a road in perspective with lane markings coming towards the camera, pavements, and a
couple of car-like boxes moving along the lanes. Every frame carries a visible
``SYNTHETIC - edgeseg demo clip`` label, so no one mistakes the overlay for a result on real
data. The scene only resembles CamVid's street layout; the bundled model segments it roughly,
which is all a toolkit demo needs.

Deterministic for a given ``seed``: the same call writes the same frames (the encoded bytes may
differ between OpenCV builds).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from edgeseg.errors import EdgesegError

LABEL = "SYNTHETIC - edgeseg demo clip"
FOURCC = "mp4v"
HORIZON = 0.42  # horizon height as a share of the frame height


def _scenery(rng: np.random.Generator, width: int) -> dict[str, list]:
    """Buildings and trees on a strip three frames wide, scrolled past as the camera moves."""
    strip = 3 * width
    buildings, x = [], 0
    while x < strip:
        w = int(rng.integers(width // 10, width // 4))
        buildings.append(
            {
                "x": x,
                "w": w,
                "h": float(rng.uniform(0.12, 0.34)),  # share of the frame height
                "colour": tuple(int(c) for c in rng.integers(70, 190, 3)),
            }
        )
        x += w + int(rng.integers(0, width // 30 + 1))
    trees = [
        {"x": int(rng.integers(0, strip)), "r": float(rng.uniform(0.04, 0.08))}
        for _ in range(max(3, strip // 90))
    ]
    return {"buildings": buildings, "trees": trees}


def _road_edges(y: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Left and right road edge x at rows ``y`` (perspective: narrow at the horizon)."""
    horizon = HORIZON * height
    depth = np.clip((y - horizon) / (height - horizon), 0.0, 1.0)
    half = width * (0.03 + 0.38 * depth)
    return width / 2 - half, width / 2 + half


def _draw_frame(
    index: int, fps: float, size_hw: tuple[int, int], scenery: dict, noise: np.ndarray
) -> np.ndarray:
    """Frame ``index`` of the scene: sky, ground and road, scenery, centre line, cars, sensor
    noise, and the SYNTHETIC label."""
    height, width = size_hw
    t = index / fps
    horizon = int(HORIZON * height)
    frame = np.empty((height, width, 3), np.uint8)
    _draw_sky_and_ground(frame, horizon)
    _draw_scenery(frame, horizon, int(t * width * 0.12), scenery)
    _draw_centre_line(frame, horizon, t)
    _draw_cars(frame, horizon, t)
    frame = cv2.add(frame, noise[index % len(noise)], dtype=cv2.CV_8U)  # not flat colours
    _draw_label(frame)
    return frame


def _draw_sky_and_ground(frame: np.ndarray, horizon: int) -> None:
    """Sky blue overhead fading to a pale haze at the horizon; pavement below it, the road
    drawn over the pavement (BGR)."""
    height, width = frame.shape[:2]
    ramp = np.linspace(0.0, 1.0, horizon, dtype=np.float32)[:, None]
    top, haze = np.array([200, 140, 90], np.float32), np.array([235, 225, 215], np.float32)
    frame[:horizon] = (top + (haze - top) * ramp)[:, None, :].astype(np.uint8)
    frame[horizon:] = (150, 165, 175)
    rows = np.arange(horizon, height)
    left, right = _road_edges(rows.astype(np.float32), height, width)
    cols = np.arange(width)[None, :]
    road = (cols >= left[:, None]) & (cols <= right[:, None])
    frame[horizon:][road] = (95, 95, 100)


def _draw_scenery(frame: np.ndarray, horizon: int, shift: int, scenery: dict) -> None:
    """Buildings (with window rows) and trees, scrolled left by ``shift`` pixels."""
    height, width = frame.shape[:2]
    strip = 3 * width
    for b in scenery["buildings"]:
        x0 = (b["x"] - shift) % strip - width
        x1 = x0 + b["w"]
        if x1 < 0 or x0 >= width:
            continue
        y0 = horizon - int(b["h"] * height)
        cv2.rectangle(frame, (x0, y0), (x1, horizon), b["colour"], -1)
        for wy in range(y0 + 6, horizon - 8, 14):
            for wx in range(x0 + 5, x1 - 8, 12):
                cv2.rectangle(frame, (wx, wy), (wx + 5, wy + 7), (60, 50, 40), -1)
    for tree in scenery["trees"]:
        x = (tree["x"] - shift) % strip - width
        radius = int(tree["r"] * height)
        if x + radius < 0 or x - radius >= width:
            continue
        cv2.rectangle(frame, (x - 2, horizon - radius), (x + 2, horizon + 4), (30, 50, 80), -1)
        cv2.circle(frame, (x, horizon - radius - radius // 2), radius, (40, 120, 50), -1)


def _draw_centre_line(frame: np.ndarray, horizon: int, t: float) -> None:
    """The dashed centre line, moving towards the camera."""
    height, width = frame.shape[:2]
    dash_period = 0.18
    phase = (t * 0.6) % dash_period
    depth = np.linspace(0.0, 1.0, height - horizon, dtype=np.float32)
    on = ((np.sqrt(depth) + phase) % dash_period) < dash_period / 2
    for row, visible in zip(np.arange(horizon, height), on, strict=True):
        if visible:
            half = max(1, int((row - horizon) / (height - horizon) * width * 0.012))
            frame[row, width // 2 - half : width // 2 + half + 1] = (235, 235, 235)


def _draw_cars(frame: np.ndarray, horizon: int, t: float) -> None:
    """Two cars, one in each lane, drifting up and down the road at different speeds; the
    farther one is drawn first so the nearer one covers it."""
    height, width = frame.shape[:2]
    cars = []
    for lane, speed, colour in ((-0.5, 0.23, (40, 40, 170)), (0.5, 0.13, (150, 90, 30))):
        depth_car = 0.15 + 0.7 * (0.5 + 0.5 * np.sin(2 * np.pi * speed * t + lane))
        cars.append((int(horizon + depth_car * (height - horizon)), lane, colour))
    for y_bottom, lane, colour in sorted(cars):
        l_edge, r_edge = _road_edges(np.array([y_bottom], np.float32), height, width)
        centre = int(width / 2 + lane * (r_edge[0] - l_edge[0]) / 2)
        car_w = int(max(8, (r_edge[0] - l_edge[0]) * 0.35))
        car_h = int(car_w * 0.7)
        x0, y0 = centre - car_w // 2, y_bottom - car_h
        cv2.rectangle(frame, (x0, y0), (x0 + car_w, y_bottom), colour, -1)
        window = ((x0 + car_w // 8, y0 + car_h // 8), (x0 + car_w - car_w // 8, y0 + car_h // 2))
        cv2.rectangle(frame, *window, (70, 60, 50), -1)
        wheel = max(2, car_w // 8)
        for wx in (x0 + wheel, x0 + car_w - wheel):
            cv2.circle(frame, (wx, y_bottom), wheel, (20, 20, 20), -1)


def _draw_label(frame: np.ndarray) -> None:
    """The label, plainly visible on a dark box; top right, where the runtime's overlay draws
    nothing (its legend is top left, its stats line bottom left)."""
    width = frame.shape[1]
    scale = max(0.35, width / 1000)
    thickness = max(1, round(scale * 2))
    (text_w, text_h), base = cv2.getTextSize(LABEL, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    x0 = max(0, width - text_w - 12)
    cv2.rectangle(frame, (x0, 4), (width - 4, 12 + text_h + base), (0, 0, 0), -1)
    cv2.putText(
        frame, LABEL, (x0 + 4, 8 + text_h), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255),
        thickness, cv2.LINE_AA,
    )  # fmt: skip


def synthetic_frames(
    frames: int = 120, size_hw: tuple[int, int] = (360, 480), fps: float = 15, seed: int = 0
) -> list[np.ndarray]:
    """The clip's frames: ``frames`` BGR uint8 arrays of ``size_hw`` (height, width)."""
    if frames < 1:
        raise EdgesegError(f"a synthetic clip needs at least 1 frame, got {frames}")
    height, width = size_hw
    if height < 64 or width < 64:
        raise EdgesegError(f"a synthetic clip needs at least 64x64 pixels, got {height}x{width}")
    rng = np.random.default_rng(seed)
    scenery = _scenery(rng, width)
    noise = [rng.integers(0, 12, (height, width, 3), dtype=np.uint8) for _ in range(4)]
    return [_draw_frame(i, fps, (height, width), scenery, noise) for i in range(frames)]


def write_synthetic_clip(
    path: str | os.PathLike[str],
    *,
    frames: int = 120,
    size_hw: tuple[int, int] = (360, 480),
    fps: float = 15,
    seed: int = 0,
) -> Path:
    """Write the synthetic road clip to ``path`` (``.mp4``, FourCC mp4v) and return the path.

    Written to a temporary file beside ``path`` and renamed into place once it decodes back
    with all ``frames`` frames, so a reader never sees a partial clip. Raises EdgesegError when
    the folder cannot be written or this OpenCV cannot encode mp4v.
    """
    target = Path(path)
    if target.suffix.lower() != ".mp4":
        raise EdgesegError(f"synthetic clip {target}: the file name must end in .mp4")
    height, width = size_hw
    images = synthetic_frames(frames, size_hw, fps, seed)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=".mp4", dir=target.parent)
    except OSError as exc:
        raise EdgesegError(f"cannot write the synthetic clip in {target.parent}: {exc}") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*FOURCC), fps, (width, height))
        if not writer.isOpened():
            raise EdgesegError(f"this OpenCV cannot encode {FOURCC} video ({target})")
        for image in images:
            writer.write(image)
        writer.release()
        decoded = count_frames(tmp)
        if decoded != frames:
            raise EdgesegError(
                f"synthetic clip {target}: wrote {frames} frames but {decoded} decode back"
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def count_frames(path: str | os.PathLike[str]) -> int:
    """Frames OpenCV decodes from a video, read to the end (not the header's claim)."""
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count
