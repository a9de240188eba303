"""``edgeseg doctor``: the real command here (no GPU, no TensorRT) and its checks one by one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from cli_helpers import edgeseg

from edgeseg.apps import doctor, doctor_media, doctor_selftest


@pytest.fixture(scope="module")
def doctor_json() -> tuple[int, dict]:
    result = edgeseg("doctor", "--json", timeout=300)
    return result.returncode, json.loads(result.stdout)


@pytest.mark.slow
def test_json_parses_and_every_line_that_is_not_ok_says_how_to_fix_it(doctor_json) -> None:
    code, report = doctor_json
    names = [c["name"] for c in report["checks"]]
    for expected in ("python", "gpu", "tensorrt", "plugin", "self-test", "cameras", "display"):
        assert expected in names, names
    for check in report["checks"]:
        assert set(check) == {"name", "status", "detail", "fix"}
        assert check["status"] in doctor.STATUSES
        assert check["detail"] and "\n" not in check["detail"]
        assert bool(check["fix"]) == (check["status"] != "ok"), check
    assert report["exit_code"] == code
    assert report["summary"]["fail"] == sum(c["status"] == "fail" for c in report["checks"])


def test_missing_optional_pieces_do_not_fail(doctor_json) -> None:
    """Here: no GPU and no TensorRT. The extras that are installed work, so exit 0."""
    code, report = doctor_json
    by_name = {c["name"]: c for c in report["checks"]}
    if by_name["tensorrt"]["status"] != "ok":
        assert by_name["self-test"]["status"] == "skip"
        assert (
            "TensorRT" in by_name["self-test"]["detail"] or "GPU" in by_name["self-test"]["detail"]
        )
    if by_name["plugin"]["status"] != "ok":
        assert (
            "--unpool native" in by_name["plugin"]["fix"] or by_name["plugin"]["status"] == "skip"
        )
    assert code == 0, [c for c in report["checks"] if c["status"] == "fail"]


def test_human_report_marks_each_status() -> None:
    report = doctor.DoctorReport()
    report.add("a", "ok", "fine", "ignored for ok")
    report.add("b", "warn", "meh", "do x")
    report.add("c", "fail", "broken", "do y")
    text = doctor.format_report(report)
    assert "[ok] a" in text and "[!!] b" in text and "[XX] c" in text and "fix: do y" in text
    assert report.checks[0].fix == "" and report.exit_code() == 1
    assert json.loads(json.dumps(report.to_json()))["summary"] == {
        "ok": 1,
        "warn": 1,
        "fail": 1,
        "skip": 0,
    }


@pytest.mark.parametrize(
    ("line", "status", "fragment"),
    [
        ("# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic", "ok", "L4T 36.4.3"),
        ("# R35 (release), REVISION: 5.0, GCID: 1", "warn", "L4T 35.5.0"),
    ],
)
def test_jetson_release(tmp_path: Path, line: str, status: str, fragment: str) -> None:
    release = tmp_path / "nv_tegra_release"
    release.write_text(line + "\n")
    report = doctor.DoctorReport()
    doctor.check_jetson(report, release)
    (check,) = report.checks
    assert check.status == status and fragment in check.detail
    assert report.facts["jetson"] is True


def test_a_camera_that_cannot_be_opened_is_a_warning(tmp_path: Path) -> None:
    (tmp_path / "video0").write_bytes(b"")
    report = doctor.DoctorReport()
    doctor_media.check_cameras(report, str(tmp_path / "video*"))
    (check,) = report.checks
    assert check.name.endswith("video0") and check.status == "warn" and check.fix


def test_extras_come_from_the_installed_metadata() -> None:
    extras = doctor.extras_requirements()
    assert ("onnxruntime", "1.17") in extras["onnx"]
    assert {name for name, _ in extras["export"]} >= {"torch", "onnx", "onnxruntime"}


def test_selftest_graph_runs_in_onnx_runtime_and_becomes_both_forms() -> None:
    """The self-test's network: what the engines are compared with runs here, and the planner
    gives each engine its graph: one plugin node, or the standard-op block (native), at the
    precision each TensorRT major parses."""
    from edgeseg.export.trt_graph import trt_graph_problems
    from edgeseg.unpool_graph import find_unpool_sites, plugin_nodes

    graph = doctor_selftest.selftest_graph()
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    out = session.run(None, {"input": doctor_selftest.selftest_inputs(1)})[0]
    assert out.shape == (1, 2, *doctor_selftest.INPUT_HW) and np.isfinite(out).all()
    forms = doctor_selftest.selftest_forms()
    from edgeseg.export.engine_plan import precision_plan

    for major, precision in ((10, "fp16"), (11, "fp16"), (10, "int8"), (11, "fp32")):
        onnx_precision = precision_plan(major, precision).onnx_precision
        plugin = forms.engine_source(major, precision, "plugin")
        native = forms.engine_source(major, precision, "native")
        assert (plugin.precision, native.precision) == (onnx_precision, onnx_precision)
        assert len(plugin_nodes(plugin.model)) == 1 and not trt_graph_problems(plugin.model, 1)
        assert len(find_unpool_sites(native.model)) == 1 and not plugin_nodes(native.model)
        reference = forms.reference(precision).model
        run = ort.InferenceSession(
            reference.SerializeToString(), providers=["CPUExecutionProvider"]
        )
        assert run.run(None, {"input": doctor_selftest.selftest_inputs(1)})[0].shape == out.shape
    assert forms.engine_source(10, "fp32", "plugin") is forms.engine_source(11, "fp32", "plugin")
