"""`segx bench` end to end with the real runtimes and exporters at 64²: a 2-arch x torch/onnxruntime/openvino x
fp32/int8 matrix writes all four reports with the right statuses; a failing export or a corrupt model file is an
error row and the run goes on; the --max-miou-drop gate exits 1 after writing the reports."""
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

# a real 12-row matrix (exports, INT8 calibration, a subprocess per row): minutes on 2 cores, so CI's slow tier;
# the fast tier covers the orchestration (test_bench_units) and real worker subprocesses (test_spawn)
pytestmark = pytest.mark.slow

FAST = {"imgsz": 64, "min_iters": 3, "min_time": 0.0, "n_images": 4, "threads": 1}


@pytest.fixture(scope="module")
def matrix_run(trained_checkpoint: Path, synth_voc: Path, tmp_path_factory: pytest.TempPathFactory) -> BenchResult:
    out = tmp_path_factory.mktemp("bench")
    return run_bench(models=(str(trained_checkpoint),), archs=("deeplabv3_mobilenet_v3_large",),
                     runtimes=("torch", "onnxruntime", "openvino"), precisions=("fp32", "int8"), data=str(synth_voc),
                     out=str(out), max_miou_drop=100.0, **FAST)


def _by(rows: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(r["arch"], r["runtime"], r["precision"]): r for r in rows}


def test_matrix_rows_and_statuses(matrix_run: BenchResult) -> None:
    rows = _by(matrix_run.rows)
    archs = ("lraspp_mobilenet_v3_large", "deeplabv3_mobilenet_v3_large")
    assert len(matrix_run.rows) == 12 and {a for a, _, _ in rows} == set(archs)
    for arch in archs:
        ref = rows[arch, "torch", "fp32"]
        assert ref["status"] == "pass" and ref["miou_delta"] == 0 and ref["pixel_agreement"] == 1.0
        assert rows[arch, "torch", "int8"]["status"] == "skipped"
        assert "no int8 path for torch" in rows[arch, "torch", "int8"]["error"]
        for rt in ("onnxruntime", "openvino"):
            fp32, int8 = rows[arch, rt, "fp32"], rows[arch, rt, "int8"]
            assert fp32["status"] == "pass" and fp32["pixel_agreement"] >= 0.999, fp32
            assert fp32["max_abs_logit_diff"] < 1e-2 and abs(fp32["miou_delta"]) < 0.01
            # int8's gate is the mIoU drop (100 points allowed here): it ran, so it passes
            assert int8["status"] == "pass" and int8["p50_ms"] > 0 and int8["miou"] is not None, int8
            assert int8["size_mb"] < fp32["size_mb"] / 2  # int8 weights
            assert int8["miou_ref"] == pytest.approx(ref["miou"])
    trained = rows["lraspp_mobilenet_v3_large", "torch", "fp32"]
    assert trained["miou"] > 0.05 and trained["fps"] == pytest.approx(1000 / trained["p50_ms"])


def test_matrix_report_files(matrix_run: BenchResult) -> None:
    files = matrix_run.files
    assert {p.name for p in files.values()} == {"bench.json", "bench.csv", "bench.md", "bench.png"}
    data = json.loads(files["json"].read_text())
    assert set(data) == {"env", "rows"} and data["env"]["versions"]["openvino"] != "not installed"
    assert [r["status"] for r in data["rows"]] == [r["status"] for r in matrix_run.rows]
    assert all(set(ROW_KEYS) <= set(r) for r in data["rows"])
    with open(files["csv"]) as f:
        assert len(list(csv.DictReader(f))) == 12
    md = files["md"].read_text()
    assert md.count("✅ pass") == 10 and md.count("⏭ skipped") == 2 and "× torch" in md
    assert files["png"].stat().st_size > 10_000


def test_failing_runtime_is_an_error_row(trained_checkpoint: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """onnx export raises, the openvino 'export' is a corrupt file: two error rows, torch still runs."""
    import exporters

    def broken_export(model: str, fmt: str, **kw: Any) -> Path:
        if fmt == "onnx":
            raise RuntimeError("exporter exploded")
        bad = Path(kw["out"]) / "broken.xml"
        bad.parent.mkdir(parents=True, exist_ok=True)
        bad.write_text("<not an IR")
        bad.with_suffix(".bin").write_bytes(b"\0" * 16)
        return bad

    monkeypatch.setattr(exporters, "export", broken_export)
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
