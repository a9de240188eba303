"""The JetPack 6 recipe as CI runs it (``.ci/jetson-rehearsal``): a ``--system-site-packages``
venv over Debian's python3-opencv (GStreamer, numpy 1.x), checked the way a Jetson user meets it.

Every test runs edgeseg in a subprocess of the rehearsal venv's Python
(``EDGESEG_REHEARSAL_PYTHON``; skipped, naming it, where unset). ``csi://`` runs the pipeline
string the product builds, with only NVIDIA's elements replaced (``EDGESEG_GST_STANDIN=1``,
``edgeseg/runtime/gst_standin.py``).
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import cv2
import numpy as np
import pytest
from rehearsal import rehearsal_python
from rehearsal_helpers import ROOT, python_json, record, run_edgeseg

from edgeseg.runtime.cameras import CameraSettings, csi_pipeline
from edgeseg.runtime.gst_standin import desktop_standin

pytestmark = pytest.mark.slow
STANDIN = {"EDGESEG_GST_STANDIN": "1"}


@pytest.fixture(scope="module")
def python() -> Path:
    return rehearsal_python()


def test_the_recipe_ran_verbatim_but_for_its_apt_lines(python: Path) -> None:
    """Every line of recipes/jetpack6.sh ran as written except `sudo apt-get install`, whose
    JetPack packages were each mapped to a Debian one or skipped, with the reason."""
    ran = record()
    recipe = (ROOT / "recipes" / "jetpack6.sh").read_text().splitlines()
    apt = [line for line in recipe if line.startswith("sudo apt-get install")]
    assert len(apt) == 1
    assert ran["lines_run"] == [line for line in recipe if line not in apt]
    jetpack = [w for w in shlex.split(apt[0])[3:] if not w.startswith("-")]
    assert [d["jetpack"] for d in ran["apt"]] == jetpack
    assert all(d["why"] for d in ran["apt"])
    assert {"nvidia-opencv": ["python3-opencv"], "python3-libnvinfer": []}.items() <= {
        d["jetpack"]: d["debian"] for d in ran["apt"]
    }.items()
    assert Path(ran["python"]) == python


def test_cv2_is_still_the_system_one_with_gstreamer_on_numpy_1(python: Path) -> None:
    facts = python_json(
        python,
        "import cv2, json, numpy, re; print(json.dumps({'cv2': cv2.__file__, 'numpy': "
        "numpy.__version__, 'gst': re.search(r'GStreamer:\\s*(\\S+)', "
        "cv2.getBuildInformation()).group(1)}))",
    )
    assert facts["cv2"].startswith("/usr/lib/python3/"), facts
    assert facts["gst"] == "YES", facts
    assert int(facts["numpy"].split(".")[0]) == 1, facts


def test_no_torch_and_no_pip_opencv_in_the_venv(python: Path) -> None:
    facts = python_json(
        python,
        "import importlib.metadata as m, importlib.util as u, json; print(json.dumps({"
        "'torch': u.find_spec('torch') is not None, 'dists': sorted(d.metadata['Name'].lower() "
        "for d in m.distributions())}))",
    )
    assert not facts["torch"]
    assert not [d for d in facts["dists"] if d.startswith("opencv")], facts["dists"]
    assert "onnx" in facts["dists"] and "edgeseg" in facts["dists"]


def test_doctor_has_no_check_that_itself_failed(python: Path, tmp_path: Path) -> None:
    result = run_edgeseg(python, "doctor", "--json", cwd=tmp_path)
    report = json.loads(result.stdout)
    assert result.returncode == report["exit_code"] == 0, report["checks"]
    checks = {c["name"]: c for c in report["checks"]}
    assert not [c for c in report["checks"] if "itself failed" in c["detail"]]
    assert checks["opencv gstreamer"]["status"] == "ok"
    assert "none needed" in checks["extra [opencv]"]["fix"]  # not "pip install edgeseg[opencv]"
    assert checks["extra [engine]"]["status"] == "ok"
    assert "gstreamer nvidia" in checks and "argus daemon" in checks


def overlay_frames(path: Path) -> tuple[int, tuple[int, int]]:
    capture = cv2.VideoCapture(str(path))
    count, size = 0, (0, 0)
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        count, size = count + 1, frame.shape[:2]
    capture.release()
    return count, size


def check_run(result, out: Path, frames: int, size_hw: tuple[int, int]) -> None:
    assert result.returncode == 0, result.stderr[-3000:]
    count, size = overlay_frames(out / "overlay.mp4")
    assert count == frames and size == size_hw, (count, size)
    stats = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()]
    delays = [s["capture_to_output_ms"]["p50"] for s in stats if s["capture_to_output_ms"]]
    assert delays and max(delays) > 0 and min(delays) >= 0, stats[-1]


def test_csi_runs_the_argus_pipeline_the_product_builds(python: Path, tmp_path: Path) -> None:
    """`edgeseg run --source csi://0` opens the real csi:// string with only NVIDIA's elements
    mapped, gets 1280x720 frames through Debian's OpenCV, writes an overlay and the stats."""
    run = run_edgeseg(
        python, "run", "--source", "csi://0", "--camera-width", "1280", "--camera-height", "720",
        "--max-frames", "4", "--headless", "--output", "overlay.mp4", "--stats", "stats.jsonl",
        cwd=tmp_path, env=STANDIN,
    )  # fmt: skip
    built = csi_pipeline(0, CameraSettings((720, 1280)))
    assert f"opening: {desktop_standin(built)}" in run.stderr
    assert "CSI camera 0 (nvarguscamerasrc, 1280x720" in run.stderr
    check_run(run, tmp_path, 4, (720, 1280))


V4L2_MJPG = (
    "v4l2src device=/dev/video0 ! image/jpeg, width=(int)640, height=(int)480, "
    "framerate=(fraction)30/1 ! nvjpegdec ! nvvidconv ! video/x-raw, format=(string)BGRx ! "
    "videoconvert ! video/x-raw, format=(string)BGR ! appsink drop=true max-buffers=1 sync=false"
)


def test_a_v4l2_mjpg_pipeline_as_jetson_users_write_it(python: Path, tmp_path: Path) -> None:
    """A USB camera's MJPG through NVIDIA's JPEG decoder and nvvidconv, given as a pipeline."""
    run = run_edgeseg(
        python, "run", "--source", V4L2_MJPG, "--max-frames", "3", "--headless",
        "--output", "overlay.mp4", "--stats", "stats.jsonl", cwd=tmp_path, env=STANDIN,
    )  # fmt: skip
    assert "videotestsrc is-live=true ! jpegenc ! image/jpeg" in run.stderr
    check_run(run, tmp_path, 3, (480, 640))


FLIP_SCRIPT = """
import json, numpy as np
from edgeseg.runtime.cameras import flip_image
from edgeseg.runtime.sources import open_source
def frame(flip):
    with open_source("csi://0", camera_size=(96, 160), flip=flip) as source:
        return source.read().image.astype(np.int16)
upright = frame("none")
out = {}
for flip in {flips}:
    turned = frame(flip)
    expected = flip_image(upright.astype(np.uint8), flip).astype(np.int16)
    out[flip] = [list(turned.shape), float(np.abs(turned - expected).mean())
                 if turned.shape == expected.shape else -1.0]
print(json.dumps(out))
"""


def test_the_flip_standins_turn_frames_as_nvvidconv_does(python: Path) -> None:
    """Each --flip through the stand-in's videoflip equals edgeseg's CPU flip (tested against
    nvvidconv's definitions) of the upright frame: the mapping by name is right, shapes too."""
    flips = ["counterclockwise", "rotate-180", "clockwise", "horizontal", "upper-left-diagonal"]
    from rehearsal_helpers import run_python

    result = run_python(python, FLIP_SCRIPT.replace("{flips}", repr(flips)), env=STANDIN)
    assert result.returncode == 0, result.stderr[-2000:]
    turned = json.loads(result.stdout.strip().splitlines()[-1])
    for flip, (shape, diff) in turned.items():
        quarter = flip in ("counterclockwise", "clockwise", "upper-left-diagonal")
        assert shape == ([160, 96, 3] if quarter else [96, 160, 3]), (flip, shape)
        assert 0 <= diff < 3.0, (flip, diff)  # chroma rounding of NV12 only


def bundled_onnx(python: Path) -> str:
    return python_json(
        python,
        "import json, edgeseg, pathlib; print(json.dumps({'p': str(next((pathlib.Path("
        "edgeseg.__file__).parent / 'assets' / 'default').glob('*.onnx')))}))",
    )["p"]


def test_engine_export_without_tensorrt_is_one_line(python: Path, tmp_path: Path) -> None:
    """The recipe brings onnx, so the engine path reaches TensorRT and says it is missing
    (before: a ModuleNotFoundError traceback for onnx)."""
    run = run_edgeseg(
        python, "export", bundled_onnx(python), "--format", "engine", "--out", "engine/",
        cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "TensorRT" in lines[0] and "Traceback" not in run.stderr, lines
    assert not (tmp_path / "engine" / "model.engine").exists()


def test_a_missing_onnx_is_one_line_naming_the_extra(python: Path, tmp_path: Path) -> None:
    """Without onnx (a venv made before the recipe had it), one line naming the extra."""
    from rehearsal_helpers import run_python

    code = (
        "import sys; sys.modules['onnx'] = None\n"
        "from edgeseg.cli.main import main\n"
        f"main(['export', {bundled_onnx(python)!r}, '--format', 'engine', '--out', "
        f"{str(tmp_path / 'e')!r}])"
    )
    run = run_python(python, code)
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    (line,) = run.stderr.strip().splitlines()
    assert "onnx is not installed" in line and "edgeseg[engine]" in line


def test_overlay_frames_hold_the_test_pattern_not_black(python: Path, tmp_path: Path) -> None:
    """The frames that went through the pipeline are videotestsrc's bars, blended: not empty."""
    run = run_edgeseg(
        python, "run", "--source", "csi://0", "--camera-width", "320", "--camera-height", "240",
        "--max-frames", "2", "--headless", "--alpha", "0", "--output", "frames/",
        cwd=tmp_path, env=STANDIN,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    images = sorted((tmp_path / "frames").glob("*.jpg"))
    assert len(images) == 2
    image = cv2.imread(str(images[0]))
    # SMPTE bars: the top row holds seven distinct colours from left to right.
    top = image[image.shape[0] // 4]
    columns = [top[int((i + 0.5) * image.shape[1] / 7)] for i in range(7)]
    assert len({tuple(int(v) // 32 for v in c) for c in columns}) >= 6, columns
    assert float(np.std(image)) > 20


def test_the_installed_package_is_the_clone_and_nothing_else(python: Path) -> None:
    """The recipe builds edgeseg from the clone: the venv's modules are the clone's, none left
    over from an earlier build (setuptools' build/lib keeps deleted modules)."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    layout = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {k.removeprefix("edgeseg").lstrip("."): v for k, v in layout["package-dir"].items()}
    source = set()
    for sub, folder in folders.items():
        for path in (ROOT / folder).rglob("*.py"):
            relative = path.relative_to(ROOT / folder)
            source.add(str(Path(sub) / relative) if sub else str(relative))
    installed = python_json(
        python,
        "import edgeseg, json, pathlib; root = pathlib.Path(edgeseg.__file__).parent; "
        "print(json.dumps(sorted(str(p.relative_to(root)) for p in root.rglob('*.py'))))",
    )
    assert set(installed) == source, set(installed) ^ source
