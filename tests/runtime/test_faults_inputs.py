"""Issue 26, inputs: every bad value is one line naming it and what is accepted (edgeseg.validate).

Unicode digits, empty sources, broken model cards and calibration cache entries, frames past the
pixel budget (a real 16000x16000 PNG, peak memory measured), post-processing memory, options
of eval and train, a diverging run, a lone copied last.pt, packages that are installed but fail
to import (a shadowing package on PYTHONPATH, in a real process), doctor's exit code, symbolic
link loops.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from cli_helpers import assert_one_line_error, edgeseg
from runtime_helpers import write_huge_png, write_video

from edgeseg.calibration.cache import cache_key, load_images
from edgeseg.calibration.readers import resolve_source
from edgeseg.card import ONNX_METADATA_KEY
from edgeseg.errors import EdgesegError
from edgeseg.masks import argmax_classes, mask_at, resize_scores
from edgeseg.runtime import open_source
from edgeseg.runtime.overlay import Renderer
from edgeseg.runtime.serve import ServeSink
from edgeseg.validate import ascii_int

# -- Unicode digits, empty sources ----------------------------------------------------------------


def test_unicode_digits_are_not_numbers(cli, tiny_onnx: Path, tmp_path: Path) -> None:
    assert ascii_int("²") is None and ascii_int("٣") is None and ascii_int("12") == 12
    video = str(write_video(tmp_path / "clip.mp4", 2))
    model = ("run", "--model", str(tiny_onnx))
    assert_one_line_error(cli(*model, "--source", "²"), "source ² not found")
    assert_one_line_error(cli(*model, "--source", "csi://²"), "expected csi://N")
    assert_one_line_error(cli(*model, "--source", video, "--serve", "²"), "port must be a number")
    with pytest.raises(EdgesegError, match="not found"):
        open_source("²")
    with pytest.raises(EdgesegError, match="expected"):
        ServeSink("²")


def test_an_empty_source_is_refused_not_the_working_folder(
    cli, tiny_onnx: Path, tmp_path: Path
) -> None:
    cv2.imwrite(str(tmp_path / "here.png"), np.zeros((8, 8, 3), np.uint8))
    result = cli("run", "--model", str(tiny_onnx), "--source", "", cwd=tmp_path)
    assert_one_line_error(result, "--source is empty")


# -- model cards and cache entries ---------------------------------------------------------------


def onnx_with_card(tiny_onnx: Path, path: Path, **changes: object) -> Path:
    model = onnx.load(str(tiny_onnx))
    for prop in model.metadata_props:
        if prop.key == ONNX_METADATA_KEY:
            prop.value = json.dumps({**json.loads(prop.value), **changes})
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"mean": [0.5, 0.5]}, "mean must be 3 finite numbers"),
        ({"std": [0, 1, 1]}, "std must not be 0"),
        ({"palette": [[0, 0, 0], "red", [1, 2, 3], [4, 5, 6]]}, "palette entry 1 must be"),
        ({"num_classes": "4"}, "num_classes must be int"),
    ],
)
def test_a_bad_model_card_is_one_line(
    cli, tiny_onnx: Path, tmp_path: Path, changes: dict, fragment: str
) -> None:
    model = onnx_with_card(tiny_onnx, tmp_path / "bad.onnx", **changes)
    video = write_video(tmp_path / "clip.mp4", 2)
    result = cli("run", "--model", str(model), "--source", str(video))
    assert_one_line_error(result, fragment)


def test_a_wrong_or_empty_calibration_cache_entry_is_rebuilt(tmp_path: Path) -> None:
    folder = tmp_path / "calib"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((30, 40, 3), 60 * i, np.uint8))
    source, cache = resolve_source(folder, 3), tmp_path / "cache"
    first, hit = load_images(source, (24, 32), cache_dir=cache, progress=False)
    assert not hit and first.shape == (3, 24, 32, 3)
    entry = cache / f"{cache_key(source, (24, 32))}.npy"
    assert load_images(source, (24, 32), cache_dir=cache, progress=False)[1]
    for bad in (np.zeros((3, 12, 16, 3), np.uint8), np.zeros((0, 24, 32, 3), np.uint8)):
        np.save(entry, bad)
        images, hit = load_images(source, (24, 32), cache_dir=cache, progress=False)
        assert not hit and np.array_equal(images, first)
        assert np.array_equal(np.load(entry), first)  # the entry itself is rebuilt


# -- frames: the pixel budget, post-processing memory, empty frames -----------------------------


def test_a_16000_pixel_square_png_is_refused_before_decoding(
    tiny_onnx: Path, tmp_path: Path
) -> None:
    huge = write_huge_png(tmp_path / "huge.png", 16000, 16000)
    measure = (
        "import resource, subprocess, sys; "
        "r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
        "sys.stderr.write(r.stderr); "
        "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    run = [sys.executable, "-m", "edgeseg", "run", "--model", str(tiny_onnx), "--source"]
    result = subprocess.run(
        [sys.executable, "-c", measure, *run, str(huge)], capture_output=True, text=True
    )
    code, peak_kib = (int(v) for v in result.stdout.split())
    errors = [line for line in result.stderr.splitlines() if line.startswith("edgeseg: error:")]
    assert code == 2 and len(errors) == 1, result.stderr
    assert "16000x16000 is 256,000,000 pixels, above the limit of 50,000,000" in errors[0]
    assert "--max-pixels" in errors[0]
    assert peak_kib < 700 * 1024  # decoded, the frame alone would be 768 MB


def test_max_pixels_sets_the_budget(cli, tiny_onnx: Path, tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((20, 30, 3), np.uint8))
    args = ["run", "--model", str(tiny_onnx), "--source", str(tmp_path / "a.png")]
    refused = edgeseg(*args, "--max-pixels", "599")
    assert refused.returncode == 2 and "600 pixels, above the limit of 599" in refused.stderr
    assert edgeseg(*args, "--max-pixels", "600").returncode == 0


def test_post_processing_memory_follows_the_output_not_classes_times_pixels() -> None:
    rng = np.random.default_rng(0)
    scores = rng.standard_normal((11, 45, 60)).astype(np.float32)
    small = (901, 1333)  # below the banding threshold: the two paths must agree bit for bit
    from edgeseg.masks import _mask_in_bands

    whole = argmax_classes(resize_scores(scores, small))
    assert np.array_equal(_mask_in_bands(scores, *small), whole)
    tracemalloc.start()
    mask = mask_at(scores, (4000, 4000))  # resized whole: 11 x 16 M floats = 704 MB
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert mask.shape == (4000, 4000) and mask.dtype == np.uint8
    assert peak < 4000 * 4000 + 96 * 2**20, peak  # the mask and a few bands


def test_rendering_an_empty_frame_is_one_line(tiny_onnx: Path) -> None:
    from edgeseg.runtime import Segmenter

    renderer = Renderer(Segmenter(tiny_onnx).card)
    with pytest.raises(EdgesegError, match="an image with pixels"):
        renderer.render(np.zeros((0, 0, 3), np.uint8), np.zeros((0, 0), np.uint8))


# -- options of eval and train -------------------------------------------------------------------


def test_eval_options_are_validated(cli, camvid_like: Path, tmp_path: Path) -> None:
    onnx_model, checkpoint = tmp_path / "m.onnx", tmp_path / "m.pt"
    onnx_model.write_bytes(b"x")
    checkpoint.write_bytes(b"x")
    data = ("--data", str(camvid_like))
    cases = [
        ((str(onnx_model), *data, "--batch-size", "0"), "--batch-size must be at least 1"),
        ((str(onnx_model), *data, "--limit", "-1"), "--limit must be at least 1, got -1"),
        ((str(checkpoint), *data, "--device", "foo"), "device 'foo' is not available"),
        ((str(onnx_model), *data, "--device", "cuda"), "ONNX files are evaluated with ONNX"),
    ]
    import torch

    if not torch.cuda.is_available():
        cases.append(((str(checkpoint), *data, "--device", "cuda"), "sees no CUDA GPU"))
    for args, fragment in cases:
        assert_one_line_error(cli("eval", *args, cwd=tmp_path), fragment)


def test_train_options_are_validated(cli, camvid_like: Path, tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("lr: fast\n")
    data = ("--data", str(camvid_like), "--out", str(tmp_path / "run"))
    cases = [
        (("--config", str(config)), f"config file {config}: lr must be float or None"),
        (("--lr", "nan"), "lr must be a finite number above 0, got nan"),
        (("--device", "tpu9"), "device 'tpu9' is not available; use one of auto, cpu"),
        (("--limit-train", "-1"), "limit_train must be at least 1"),
    ]
    for args, fragment in cases:
        assert_one_line_error(cli("train", *data, *args, cwd=tmp_path), fragment)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_diverging_run_and_a_lone_last_pt(cli, camvid_like: Path, tmp_path: Path) -> None:
    common = ("--data", str(camvid_like), "--model", "segnet", "--width", "0.125")
    # The smallest run that still diverges (two steps: the second sees the first's update).
    common += ("--input-size", "32x32", "--batch-size", "2", "--workers", "0")
    common += ("--limit-train", "4", "--limit-val", "2")
    diverged = cli("train", *common, "--epochs", "1", "--lr", "1e30", "--out", "d", cwd=tmp_path)
    assert diverged.returncode == 2 and "Traceback" not in diverged.stderr
    assert "training diverged: the loss became" in diverged.stderr
    done = cli("train", *common, "--epochs", "1", "--out", "a", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (tmp_path / "b").mkdir()
    shutil.copy(tmp_path / "a" / "last.pt", tmp_path / "b" / "last.pt")  # copied alone
    resumed = cli("train", "--resume", "b/last.pt", "--epochs", "2", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "no best.pt of epoch 1" in resumed.stderr
    assert (tmp_path / "b" / "best.pt").is_file()


# -- installs that fail to import, doctor's exit code --------------------------------------------


def shadowing(tmp_path: Path, package: str) -> dict[str, str]:
    """PYTHONPATH with a ``package`` that is found but raises while importing, as a wheel
    missing its shared library does."""
    folder = tmp_path / "broken" / package
    folder.mkdir(parents=True)
    message = f"lib{package}.so.1: cannot open shared object file: No such file or directory"
    (folder / "__init__.py").write_text(f"raise ImportError({message!r})\n")
    return {"PYTHONPATH": str(tmp_path / "broken")}


@pytest.mark.slow
def test_an_installed_package_that_fails_to_import_is_one_line(
    tiny_onnx: Path, camvid_like: Path, tmp_path: Path
) -> None:
    video = str(write_video(tmp_path / "clip.mp4", 2))
    ort = shadowing(tmp_path / "o", "onnxruntime")
    result = edgeseg("run", "--model", str(tiny_onnx), "--source", video, env=ort)
    errors = [line for line in result.stderr.splitlines() if line.startswith("edgeseg: error:")]
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "onnxruntime is installed but fails to import (ImportError: libonnxruntime" in errors[0]
    torch_env = shadowing(tmp_path / "t", "torch")
    trained = edgeseg(
        "train", "--data", str(camvid_like), "--out", str(tmp_path / "r"), env=torch_env
    )
    assert_one_line_error(trained, "torch is installed but fails to import (ImportError: libtorch")
    doctor = edgeseg("doctor", "--no-self-test", env=ort)
    assert doctor.returncode == 1, doctor.stdout + doctor.stderr
    assert "onnxruntime does not import" in doctor.stdout


# -- symbolic link loops -------------------------------------------------------------------------


def test_a_symlink_loop_in_a_folder_or_glob_is_skipped(
    cli, tiny_onnx: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.zeros((8, 8, 3), np.uint8))
    (folder / "loop.png").symlink_to("loop.png")
    (folder / "b.png").symlink_to("c.png")
    (folder / "c.png").symlink_to("b.png")
    for source in (str(folder), str(folder / "*.png")):
        masks = tmp_path / f"masks{len(source)}"
        result = cli(
            "run", "--model", str(tiny_onnx), "--source", source, "--save-masks", str(masks)
        )
        assert result.returncode == 0, result.stderr
        assert "a symbolic link loop" in result.stderr and "Traceback" not in result.stderr
        assert sorted(p.name for p in masks.iterdir()) == ["a.png"]
    assert os.path.islink(folder / "loop.png")
