"""One upsampling for eval and runtime: the masks ``edgeseg run`` writes for a video's frames
are, pixel for pixel, the masks ``edgeseg eval`` scores for the same frames.

Real frames: CamVid's validation clip through the bundled model when the data is present; a
synthetic video otherwise. Both paths are the real ones: the runtime's threaded pipeline with its
mask sink, and evaluation's :func:`edgeseg.evaluate.evaluate_predictor` on the frames OpenCV
decodes from the same file.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from runtime_helpers import CAMVID_CLIP, write_video

from edgeseg.apps.default_model import default_onnx
from edgeseg.backends.onnxruntime import OnnxRuntimeRunner
from edgeseg.evaluate import EvalSet, evaluate_predictor
from edgeseg.runtime import OutputOptions, run_pipeline

FRAMES = 6


def decoded_frames(video: Path, count: int) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(video))
    frames = []
    while len(frames) < count:
        ok, image = capture.read()
        assert ok, f"{video} ended after {len(frames)} frames"
        frames.append(image)
    capture.release()
    return frames


def test_run_masks_equal_eval_masks_on_real_frames(tmp_path: Path) -> None:
    video = CAMVID_CLIP
    if not video.is_file():  # no CamVid here: a synthetic video at CamVid's size
        video = write_video(tmp_path / "clip.mp4", FRAMES, (360, 480))
    model = default_onnx()
    masks = tmp_path / "masks"
    run_pipeline(model, str(video), outputs=OutputOptions(masks=masks), max_frames=FRAMES)
    written = sorted(masks.glob("*.png"))
    assert len(written) == FRAMES

    frames = decoded_frames(video, FRAMES)
    runner = OnnxRuntimeRunner(model, with_card=True)
    blank = [np.zeros(f.shape[:2], np.uint8) for f in frames]  # labels do not enter predictions
    eval_set = EvalSet(frames, blank, [p.name for p in written])
    _, _, predicted = evaluate_predictor(
        eval_set, runner.card, runner.infer, keep=list(range(FRAMES))
    )
    for path, expected in zip(written, predicted, strict=True):
        actual = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        assert actual.shape == expected.shape == frames[0].shape[:2]
        np.testing.assert_array_equal(actual, expected, err_msg=path.name)
    # The masks follow the scores between network pixels: not blocks of the network's stride.
    card = runner.card
    assert card.input_hw[0] < frames[0].shape[0]  # upsampled: 180 or 216 rows -> 360
    blocky = cv2.resize(
        cv2.resize(predicted[0], card.input_hw[::-1], interpolation=cv2.INTER_NEAREST_EXACT),
        predicted[0].shape[::-1],
        interpolation=cv2.INTER_NEAREST_EXACT,
    )
    assert (blocky != predicted[0]).mean() > 0.001
