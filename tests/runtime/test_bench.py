"""``edgeseg bench`` end to end on a tiny real checkpoint and a tiny real ONNX file.

Timings here are only checked for sanity (p95 >= p50 > 0); the figures themselves belong to
``benchmarks/`` and ``docs/performance.md``. What is checked: the table, ``bench.json``'s keys,
a decodable ``bench.png``, rows that cannot run here skipped with their reason (TensorRT, torch
FP16 without CUDA), a static ONNX file measured at its own size only, one-line errors.
"""

from __future__ import annotations

import importlib.util
import json
import shlex
import subprocess
from pathlib import Path

import cv2
import pytest
from cli_helpers import assert_one_line_error
from model_helpers import TINY_CARD

from edgeseg.apps.bench import resolve_model
from edgeseg.errors import EdgesegError

CARD = TINY_CARD
FAST = ("--runs", "3", "--warmup", "1")


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch", reason="torch (edgeseg[train]) makes the tiny checkpoint")
    from edgeseg.checkpoint import save_checkpoint
    from edgeseg.models import create_model

    path = tmp_path_factory.mktemp("bench") / "tiny.pt"
    save_checkpoint(path, create_model("segnet-basic", 3, channels=8, kernel_size=3), CARD)
    return path


@pytest.fixture(scope="module")
def bench_runs() -> dict[str, tuple[subprocess.CompletedProcess[str], Path]]:
    """Where :func:`bench_run` keeps its one run for the module's tests."""
    return {}


@pytest.fixture()
def bench_run(
    cli, checkpoint: Path, tmp_path_factory: pytest.TempPathFactory, bench_runs: dict
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """One run over every backend and precision at one small size (export included), made by
    the first test that asks (``cli`` captures per test, so this fixture cannot be
    module-scoped itself)."""
    pytest.importorskip("onnxruntime", reason="ONNX Runtime (edgeseg[onnx]) runs the rows")
    if "all" not in bench_runs:
        out = tmp_path_factory.mktemp("bench") / "out"
        args = ("--model", str(checkpoint), *FAST, "--sizes", "64x96", "--out", str(out))
        bench_runs["all"] = (cli("bench", *args), out)
    return bench_runs["all"]


def _rows(out: Path) -> dict[tuple[str, str], dict]:
    report = json.loads((out / "bench.json").read_text())
    return {(r["backend"], r["precision"]): r for r in report["rows"]}


@pytest.mark.slow
def test_checkpoint_table_json_and_chart(bench_run: tuple) -> None:
    result, out = bench_run
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "bench.json").read_text())
    assert {"model", "card", "runs", "warmup", "machine", "date", "command", "rows"} <= set(report)
    assert report["runs"] == 3 and report["warmup"] == 1
    assert report["command"].startswith("edgeseg bench --model")
    machine = report["machine"]
    for key in ("platform", "cpu", "cores", "threads", "onnxruntime", "torch", "gpu"):
        assert key in machine
    assert machine["cores"] >= 1 and machine["onnxruntime"]

    rows = _rows(out)
    assert len(rows) == 12 and all(r["size"] == "64x96" for r in rows.values())  # 4 x 3
    for key in (("onnxruntime", "fp32"), ("onnxruntime", "fp16"), ("torch", "fp32")):
        assert rows[key]["status"] == "ok", rows[key]
    for row in rows.values():
        if row["status"] == "ok":
            assert row["p95_ms"] >= row["p50_ms"] > 0
            assert row["fps"] == pytest.approx(1000 / row["mean_ms"], rel=1e-3)
            assert row["device"]
        else:
            assert row["status"] == "skipped" and row["reason"]
            assert f"skipped: {row['reason']}" in result.stdout
    assert "torch has no INT8 path" in rows[("torch", "int8")]["reason"]

    header, *lines = result.stdout.strip().splitlines()
    assert header.split()[:4] == ["backend", "precision", "size", "p50"]
    assert "mIoU" not in header  # only with --data
    # One line per measured row, one per backend and reason for the skipped ones: TensorRT's
    # reason once for its three precisions, not on every row.
    skipped = {(r["backend"], r["reason"]) for r in rows.values() if r["status"] == "skipped"}
    measured = [r for r in rows.values() if r["status"] == "ok"]
    assert len(lines) == len(measured) + len(skipped)
    for backend, reason in skipped:
        said = [line for line in lines if line.split()[0] == backend and reason in line]
        assert len(said) == 1, (backend, reason)
    assert "exporting ONNX at 64x96" in result.stderr

    chart = cv2.imread(str(out / "bench.png"))
    assert chart is not None and chart.shape[0] > 100 and chart.shape[1] > 100


@pytest.mark.slow
def test_rows_that_cannot_run_here_are_skipped_with_the_reason(bench_run: tuple) -> None:
    import torch

    result, out = bench_run
    assert result.returncode == 0, result.stderr
    rows = _rows(out)
    if not torch.cuda.is_available():
        assert rows[("torch", "fp16")]["status"] == "skipped"
        assert "CUDA" in rows[("torch", "fp16")]["reason"]
    if _has("tensorrt") and torch.cuda.is_available():
        pytest.skip("TensorRT and a GPU are present: the tensorrt rows may run here")
    for precision in ("fp32", "fp16", "int8"):
        for backend in ("tensorrt", "tensorrt-native"):  # plugin and native side by side
            row = rows[(backend, precision)]
            assert row["status"] == "skipped" and "TensorRT" in row["reason"], row


def test_static_onnx_is_measured_at_its_own_size(cli, tiny_onnx: Path, tmp_path: Path) -> None:
    """The --help example for an ONNX file, pointed at a tiny one; more sizes are skipped rows."""
    pytest.importorskip("onnxruntime", reason="ONNX Runtime (edgeseg[onnx]) runs the file")
    help_text = cli("bench", "--help").stdout
    examples = [
        shlex.split(line.strip())
        for line in help_text.split("Examples:")[1].split("Options:")[0].strip().splitlines()
    ]
    assert len(examples) == 4 and all(e[:2] == ["edgeseg", "bench"] for e in examples)
    example = next(e for e in examples if any(a.endswith(".onnx") for a in e))
    args = [
        str(tiny_onnx) if a.endswith(".onnx") else str(tmp_path / "out") if "runs/" in a else a
        for a in example[2:]
    ]
    result = cli("bench", *args, *FAST, "--sizes", "64x96")
    assert result.returncode == 0, result.stderr
    assert "static (fp32, 24x32)" in result.stderr
    rows = json.loads((tmp_path / "out" / "bench.json").read_text())["rows"]
    assert [(r["size"], r["status"]) for r in rows] == [("24x32", "ok"), ("64x96", "skipped")]
    assert "one precision and size per file" in rows[1]["reason"]
    assert rows[0]["p95_ms"] >= rows[0]["p50_ms"] > 0
    assert cv2.imread(str(tmp_path / "out" / "bench.png")) is not None


def test_nothing_runnable_is_an_error_after_the_table(cli, tiny_onnx: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = cli("bench", "--model", str(tiny_onnx), "--backends", "torch", "--out", str(out))
    assert result.returncode == 2
    assert "skipped: the torch backend runs checkpoints" in result.stdout
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("edgeseg: error: no combination could run here")
    )
    assert (out / "bench.json").is_file()  # the reasons are kept


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--backends", "onnxruntime,onnx"), "unknown backend onnx; choose from: onnxruntime"),
        (("--precisions", "fp32,int4"), "unknown precision int4; choose from: fp32"),
        (("--sizes", "64y96"), "size '64y96' must be HEIGHTxWIDTH"),
    ],
)
def test_bad_values_are_one_line_errors(
    cli, tiny_onnx: Path, tmp_path: Path, args, fragment
) -> None:
    out = tmp_path / "out"
    assert_one_line_error(
        cli("bench", "--model", str(tiny_onnx), *args, "--out", str(out)), fragment
    )
    assert not out.exists()


def test_missing_model_and_too_small_size(cli, checkpoint: Path, tmp_path: Path) -> None:
    assert_one_line_error(cli("bench", "--model", str(tmp_path / "nope.pt")), "nope.pt not found")
    # Checked before the run folder is claimed: no "writes to runs/bench2" first, no folder.
    earlier = tmp_path / "runs" / "bench"
    earlier.mkdir(parents=True)
    (earlier / "bench.json").write_text("{}")
    result = cli("bench", "--model", "nope.pt", cwd=tmp_path)
    assert_one_line_error(result, "model nope.pt not found")
    assert not (tmp_path / "runs" / "bench2").exists()
    result = cli("bench", "--data", str(tmp_path / "nodata"), cwd=tmp_path)
    assert_one_line_error(result, "nodata not found")
    result = cli("bench", "--model", str(checkpoint), "--sizes", "8x8", "--out", str(tmp_path))
    assert_one_line_error(
        result, "size 8x8 is below what segnet-basic takes (each side at least 16)"
    )


def test_default_model_is_the_bundled_checkpoint() -> None:
    try:
        from edgeseg.apps.default_model import default_checkpoint

        expected = default_checkpoint()
    except (ImportError, EdgesegError) as exc:
        pytest.skip(f"no bundled default model here: {exc}")
    assert resolve_model(None) == expected and expected.suffix == ".pt"


@pytest.mark.slow
def test_int8_row(bench_run: tuple) -> None:
    """Last: INT8 needs edgeseg.calibration.quantize; without it the row says so."""
    _, out = bench_run
    row = _rows(out)[("onnxruntime", "int8")]
    if not _has("edgeseg.calibration.quantize"):
        assert row["status"] == "skipped" and "edgeseg.calibration.quantize" in row["reason"]
        pytest.skip("edgeseg.calibration.quantize is not available: INT8 row skipped")
    assert row["status"] == "ok", row
    assert row["p95_ms"] >= row["p50_ms"] > 0


def test_combinations_take_turns_and_a_failing_one_is_skipped(tiny_onnx: Path) -> None:
    """Real sessions, each call recorded: warm-ups first, then rounds whose order rotates, so a
    drift of the machine spreads over every backend; a call that fails drops only its row."""
    from contextlib import nullcontext

    from edgeseg.apps.bench import Timed, time_interleaved
    from edgeseg.apps.bench_report import BenchRow
    from edgeseg.runtime import Segmenter

    calls: list[str] = []
    entries = []
    for name in "abc":
        segmenter = Segmenter(tiny_onnx, spinning=False)
        real = segmenter.infer

        def infer(batch: object, name: str = name, real: object = real) -> object:
            calls.append(name)
            if name == "c" and calls.count("c") == 3:
                raise EdgesegError("c broke")
            return real(batch)  # type: ignore[operator]

        segmenter.infer = infer
        entries.append(Timed(BenchRow("onnxruntime", name, (8, 8)), segmenter, nullcontext))
    ticks = []
    time_interleaved(entries, runs=3, warmup=1, tick=lambda: ticks.append(1))

    # warm-up a, b, c; round 0 a b c; round 1 starts at b: b, c (fails: dropped), a; round 2
    # rotates the two left by 2 % 2 = 0: a, b
    assert calls == ["a", "b", "c", "a", "b", "c", "b", "c", "a", "a", "b"]
    assert [len(e.times) for e in entries] == [3, 3, 0]
    assert all(t > 0 for e in entries[:2] for t in e.times)
    assert (entries[2].row.status, entries[2].row.reason) == ("skipped", "c broke")
    assert entries[0].row.status == "ok"
    assert len(ticks) == len(calls)


@pytest.mark.slow
def test_default_size_is_the_models_own(cli, checkpoint: Path, tmp_path: Path) -> None:
    """What `edgeseg run` runs: the card's input size, not a fixed list."""
    pytest.importorskip("onnxruntime", reason="ONNX Runtime (edgeseg[onnx]) runs the row")
    out = tmp_path / "out"
    args = ("--backends", "onnxruntime", "--precisions", "fp32", "--runs", "1", "--warmup", "0")
    result = cli("bench", "--model", str(checkpoint), *args, "--out", str(out))
    assert result.returncode == 0, result.stderr
    rows = json.loads((out / "bench.json").read_text())["rows"]
    assert [r["size"] for r in rows] == ["36x52"] and rows[0]["status"] == "ok"


@pytest.mark.slow
def test_data_adds_an_accuracy_column(cli, camvid_like: Path, tmp_path: Path) -> None:
    """Each measured row's mIoU through its own segmenter: FP32 in ONNX Runtime equals the
    checkpoint in torch (the same model), and equals ``edgeseg eval`` on the same images."""
    pytest.importorskip("onnxruntime", reason="ONNX Runtime (edgeseg[onnx]) runs the rows")
    import torch
    from model_helpers import randomize_batchnorm

    from edgeseg.apps.evaluate import evaluate_many
    from edgeseg.checkpoint import save_checkpoint
    from edgeseg.data.spec import CAMVID
    from edgeseg.models import create_model

    torch.manual_seed(0)
    model = randomize_batchnorm(create_model("segnet-basic", 11, channels=8, kernel_size=3))
    card = CARD.replace(
        num_classes=11, class_names=CAMVID.class_names, palette=CAMVID.palette,
        ignore_index=CAMVID.ignore_index, input_hw=(48, 64),
    )  # fmt: skip
    checkpoint = save_checkpoint(tmp_path / "camvid.pt", model.eval(), card) and (
        tmp_path / "camvid.pt"
    )
    out = tmp_path / "out"
    result = cli(
        "bench", "--model", str(checkpoint), "--backends", "onnxruntime,torch",
        "--precisions", "fp32", "--data", str(camvid_like), "--limit", "3", *FAST,
        "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "mIoU" in result.stdout.splitlines()[0]
    report = json.loads((out / "bench.json").read_text())
    assert report["data"] == str(camvid_like)
    miou = {r["backend"]: r["miou"] for r in report["rows"]}
    assert 0 <= miou["onnxruntime"] <= 1
    assert miou["onnxruntime"] == pytest.approx(miou["torch"], abs=1e-3)
    ((metrics, _, _),) = evaluate_many([checkpoint], camvid_like, "val", limit=3, progress=False)
    assert miou["torch"] == pytest.approx(metrics["miou"], abs=1e-4)
