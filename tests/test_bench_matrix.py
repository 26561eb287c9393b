"""`segx bench` end to end with the real runtimes and exporters at 64²: the multi-class model x torch/onnxruntime/
openvino x fp32/int8 matrix (the default 1-point INT8 gate, the whole val split) writes all four reports with the
right statuses, and scores the same mIoU as `segx eval` and `segx parity`; a failing export or a corrupt model file
is an error row and the run goes on; the --max-miou-drop gate exits 1 after writing the reports."""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bench.rows import ROW_KEYS
from bench.run import BenchResult, run_bench
from segx.cli import cli

# a real matrix (exports, INT8 calibration, a subprocess per row): minutes on 2 cores, so CI's slow tier;
# the fast tier covers the orchestration (test_bench_units) and real worker subprocesses (test_spawn)
pytestmark = pytest.mark.slow

FAST = {"imgsz": 64, "min_iters": 3, "min_time": 0.0, "threads": 1}
ARCH = "lraspp_mobilenet_v3_large"
MATRIX_TIMEOUT = pytest.mark.timeout(1200)  # the matrix exports INT8 twice (calibration + layer search) at 64²


@pytest.fixture(scope="module")
def matrix_run(multiclass_checkpoint: Path, synth_voc: Path,
               tmp_path_factory: pytest.TempPathFactory) -> BenchResult:
    out = tmp_path_factory.mktemp("bench")
    return run_bench(models=(str(multiclass_checkpoint),), runtimes=("torch", "onnxruntime", "openvino"),
                     precisions=("fp32", "int8"), data=str(synth_voc), out=str(out), **FAST)


def _by(rows: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(r["arch"], r["runtime"], r["precision"]): r for r in rows}


@pytest.mark.slow
@MATRIX_TIMEOUT
def test_matrix_rows_and_statuses(matrix_run: BenchResult) -> None:
    rows = _by(matrix_run.rows)
    assert len(matrix_run.rows) == 6
    for arch in (ARCH,):
        ref = rows[arch, "torch", "fp32"]
        assert ref["status"] == "pass" and ref["miou_delta"] == 0 and ref["pixel_agreement"] == 1.0
        assert rows[arch, "torch", "int8"]["status"] == "skipped"
        assert "no int8 path for torch" in rows[arch, "torch", "int8"]["error"]
        for rt in ("onnxruntime", "openvino"):
            fp32, int8 = rows[arch, rt, "fp32"], rows[arch, rt, "int8"]
            assert fp32["status"] == "pass" and fp32["pixel_agreement"] >= 0.999, fp32
            assert fp32["max_abs_logit_diff"] < 1e-2 and abs(fp32["miou_delta"]) < 0.01
            # int8's gate is the default mIoU drop (1 point) on a model that predicts >= 5 classes
            assert int8["status"] == "pass" and int8["p50_ms"] > 0 and int8["miou"] is not None, int8
            assert int8["pixel_agreement"] > 0.9 and int8["parity_images"] == 5  # the whole val split
            assert "calibrated on" in int8["int8_calibration"]
            assert int8["size_mb"] < 0.8 * fp32["size_mb"]  # int8 weights (the search may keep a few groups float)
            assert int8["miou_ref"] == pytest.approx(ref["miou"])
    trained = rows[ARCH, "torch", "fp32"]
    assert trained["miou"] > 0.05 and trained["fps"] == pytest.approx(1000 / trained["p50_ms"])


@pytest.mark.slow
@MATRIX_TIMEOUT
def test_matrix_report_files(matrix_run: BenchResult) -> None:
    files = matrix_run.files
    assert {p.name for p in files.values()} == {"bench.json", "bench.csv", "bench.md", "bench.png"}
    data = json.loads(files["json"].read_text())
    assert set(data) == {"env", "rows"} and data["env"]["versions"]["openvino"] != "not installed"
    assert [r["status"] for r in data["rows"]] == [r["status"] for r in matrix_run.rows]
    assert all(set(ROW_KEYS) <= set(r) for r in data["rows"])
    with open(files["csv"]) as f:
        assert len(list(csv.DictReader(f))) == 6
    md = files["md"].read_text()
    assert md.count("✅ pass") == 5 and md.count("⏭ skipped") == 1 and "× torch" in md
    assert files["png"].stat().st_size > 10_000


def test_failing_runtime_is_an_error_row(trained_checkpoint: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """onnx export raises, the openvino 'export' is a corrupt file: two error rows, torch still runs."""
    import exporters

    def broken_export(model: str, fmt: str, **kw: Any) -> exporters.ExportResult:
        if fmt == "onnx":
            raise RuntimeError("exporter exploded")
        bad = Path(kw["out"]) / "broken.xml"
        bad.parent.mkdir(parents=True, exist_ok=True)
        bad.write_text("<not an IR")
        bad.with_suffix(".bin").write_bytes(b"\0" * 16)
        return exporters.ExportResult(fmt, "fp32", [exporters.Attempt("fp32", bad, kept=True)], verified=False)

    monkeypatch.setattr(exporters, "run_export", broken_export)
    result = run_bench(models=(str(trained_checkpoint),), runtimes=("onnxruntime", "openvino", "torch"),
                       precisions=("fp32",), out=str(tmp_path), **FAST)
    rows = {r["runtime"]: r for r in result.rows}
    assert rows["onnxruntime"]["status"] == "error" and "exporter exploded" in rows["onnxruntime"]["error"]
    assert rows["openvino"]["status"] == "error" and "broken.xml" in rows["openvino"]["error"]
    assert rows["torch"]["status"] == "pass" and rows["torch"]["p50_ms"] > 0
    assert (tmp_path / "bench.md").read_text().count("❌ error") == 2


def test_gate_exits_1_after_writing_reports(trained_checkpoint: Path, synth_voc: Path, tmp_path: Path) -> None:
    args = ["bench", "--models", str(trained_checkpoint), "--runtimes", "torch", "--precisions", "fp32,fp16",
            "--data", str(synth_voc), "--n-images", "2", "--imgsz", "64", "--min-iters", "3", "--min-time", "0",
            "--threads", "1", "--max-miou-drop", "-1", "--out", str(tmp_path)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert "segx: error: 1 bench row(s) failed the gate" in result.output and "mIoU drop" in result.output
    rows = json.loads((tmp_path / "bench.json").read_text())["rows"]
    assert [r["status"] for r in rows] == ["fail", "skipped"]  # fp16 on CPU: skipped, not an error
    assert (tmp_path / "bench.png").is_file()


@pytest.mark.slow
@MATRIX_TIMEOUT
def test_eval_parity_and_bench_report_the_same_miou(matrix_run: BenchResult, multiclass_checkpoint: Path,
                                                    synth_voc: Path) -> None:
    """One accuracy protocol: the same model file, images and size score the same mIoU in all three (0.05 pt)."""
    from segx.evaluate import evaluate
    from segx.parity import check_file

    rows = _by(matrix_run.rows)
    for rt, precision in (("onnxruntime", "fp32"), ("onnxruntime", "int8"), ("openvino", "int8")):
        row = rows[ARCH, rt, precision]
        ev = evaluate(row["model_path"], synth_voc, "val", show_progress=False)
        par = check_file(row["model_path"], multiclass_checkpoint, data=synth_voc, runtime=rt)
        assert ev["images"] == par.n_images == row["parity_images"]
        assert abs(ev["miou"] - row["miou"]) * 100 <= 0.05 and abs(par.miou - row["miou"]) * 100 <= 0.05, \
            (rt, precision, ev["miou"], par.miou, row["miou"])
