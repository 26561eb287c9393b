"""bench unit tests against the Runtime interface with a stand-in runtime: speed loop, Pareto front, report files,
matrix planning and skip reasons, list-option parsing, worker result protocol."""
from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import segx.runtimes
from bench import matrix, report, rows, worker
from bench.plot import pareto_front
from segx.runtimes import RUNTIMES, Runtime
from bench.speed import SpeedConfig, make_batch, measure
from segx.cli import cli
from segx.errors import SegxError
from segx.meta import ModelMeta


class StandIn(Runtime):
    """A tiny runtime: logits = channel-mean of the input broadcast to 21 classes, after a short sleep."""

    name = "standin"
    suffixes = (".standin",)
    precisions = ("fp32", "int8")
    delay = 0.002

    def load(self) -> None:
        if not self.model_path.is_file():
            raise SegxError(f"{self.model_path}: no such model")
        self.meta = ModelMeta(arch="standin")
        self.input_shape = (None, 3, None, None)
        self.calls = 0

    def infer(self, batch: np.ndarray) -> np.ndarray:
        self.calls += 1
        time.sleep(self.delay)
        return np.repeat(batch.mean(axis=1, keepdims=True), 21, axis=1)


@pytest.fixture
def standin(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Register StandIn (fp32/int8 recipes) and return a model file it loads."""
    monkeypatch.setattr(segx.runtimes, "_import_all", lambda: None)
    monkeypatch.setitem(RUNTIMES, "standin", StandIn)
    monkeypatch.setitem(matrix.RECIPES, ("standin", "fp32"), matrix.Recipe(None))
    monkeypatch.setitem(matrix.RECIPES, ("standin", "int8"), matrix.Recipe(None, devices=("cpu",)))
    model = tmp_path / "m.standin"
    model.write_bytes(b"x" * 2048)
    return model


def test_measure_counts_iterations_and_percentiles(standin: Path) -> None:
    rt = StandIn(standin)
    res = measure(rt, make_batch(2, (8, 8)), SpeedConfig(min_iters=7, min_time=0, warmup_iters=4, warmup_time=10))
    assert res.iters == 7 and res.warmup_iters == 4 and rt.calls == 11
    rt.calls = 0  # fewer warm-up runs asked (or a warm-up time already spent): still MIN_WARMUP runs
    res = measure(rt, make_batch(2, (8, 8)), SpeedConfig(min_iters=7, min_time=0, warmup_iters=1, warmup_time=0))
    assert res.warmup_iters == 3 and rt.calls == 10
    assert StandIn.delay * 1000 <= res.p50_ms <= res.p95_ms <= res.p99_ms
    assert res.fps == pytest.approx(2 * 1000 / res.p50_ms)
    assert res.peak_mem_mb > 10 and res.gpu_mem_mb is None


def test_measure_runs_until_min_time(standin: Path) -> None:
    rt = StandIn(standin)
    t0 = time.perf_counter()
    res = measure(rt, make_batch(1, (8, 8)), SpeedConfig(min_iters=1, min_time=0.1, warmup_iters=0))
    assert time.perf_counter() - t0 >= 0.1 and res.timed_s >= 0.1 and res.iters > 1 and res.warmup_iters == 0


def test_speed_config_rejects_bad_values() -> None:
    with pytest.raises(SegxError, match="min-iters"):
        SpeedConfig(min_iters=0)


def test_pareto_front_known_points() -> None:
    #          0 front     1 beaten by 0  2 front     3 front      4 beaten by 2   5 = 3 (tie, both kept)
    pts = [(10.0, 60.0), (12.0, 55.0), (5.0, 40.0), (20.0, 70.0), (6.0, 39.0), (20.0, 70.0)]
    assert pareto_front(pts) == [2, 0, 3, 5]
    assert pareto_front([]) == []
    assert pareto_front([(1.0, 1.0)]) == [0]


def _row(**kw: object) -> dict:
    row = dict.fromkeys(rows.ROW_KEYS)
    row.update(arch="a", model="a", runtime="torch", precision="fp32", device="cpu", batch=1, imgsz=64,
               size_mb=1.0, p50_ms=10.0, p95_ms=11.0, p99_ms=12.0, fps=100.0, status="pass")
    row.update(kw)
    return row


def test_speedup_against_best_torch_row() -> None:
    rs = [_row(), _row(precision="bf16", fps=200.0), _row(runtime="openvino", fps=300.0),
          _row(runtime="openvino", batch=8, fps=50.0), _row(model="b", runtime="openvino", fps=10.0)]
    assert report.speedup(rs[2], rs) == pytest.approx(1.5)   # best torch row is bf16 (200 FPS)
    assert report.speedup(rs[3], rs) is None                 # no torch row at batch 8
    assert report.speedup(rs[4], rs) is None                 # no torch row for model b


def test_gate_statuses() -> None:
    assert rows.gate(_row(), 1.0, None) == ("pass", None)  # speed only
    ok = _row(miou=0.5, miou_delta=-0.005, pixel_agreement=0.999)
    assert rows.gate(ok, 1.0, 0.995)[0] == "pass"
    status, why = rows.gate(_row(miou=0.5, miou_delta=-0.02, pixel_agreement=0.999), 1.0, 0.995)
    assert status == "fail" and "mIoU drop 2.00" in why
    status, why = rows.gate(ok, 1.0, 0.9995)
    assert status == "fail" and "agreement" in why
    assert rows.gate(ok, -1.0, None)[0] == "fail"  # a negative allowance fails even a lossless row


def test_write_reports(tmp_path: Path) -> None:
    rs = [_row(miou=0.5, miou_delta=0.0, pixel_agreement=1.0),
          _row(runtime="openvino", precision="int8", p50_ms=5.0, fps=200.0, miou=0.49, miou_delta=-0.01,
               pixel_agreement=0.97, status="fail", error="mIoU drop 1.00 points > 0.5"),
          _row(runtime="tensorrt", status="skipped", error="needs cuda | gpu", p50_ms=None, fps=None),
          _row(runtime="onnxruntime", status="error", error="boom", p50_ms=None, fps=None)]
    files = report.write_reports(tmp_path, {"cpu": "x", "versions": {"torch": "1"}}, rs, command="segx bench --x")
    assert sorted(files) == ["csv", "json", "md", "png"] and all(p.is_file() for p in files.values())
    data = json.loads(files["json"].read_text())
    assert set(data) == {"env", "rows"} and data["env"]["command"] == "segx bench --x"
    assert [r["status"] for r in data["rows"]] == ["pass", "fail", "skipped", "error"]
    assert all(set(rows.ROW_KEYS) <= set(r) for r in data["rows"])
    with open(files["csv"]) as f:
        assert [r["status"] for r in csv.DictReader(f)] == ["pass", "fail", "skipped", "error"]
    md = files["md"].read_text()
    assert "segx bench --x" in md and "❎ fail" in md and "⏭ skipped" in md and "❌ error" in md
    assert "needs cuda \\| gpu" in md and "| 2.00 |" in md  # escaped pipe; openvino x torch = 200/100
    assert files["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_skip_reasons(standin: Path) -> None:
    assert "no bf16 path for onnxruntime" in matrix.skip_reason("onnxruntime", "bf16", "cpu")
    assert "cuda only" in matrix.skip_reason("torch", "fp16", "cpu")
    assert "cpu only" in matrix.skip_reason("standin", "int8", "cuda")
    assert matrix.skip_reason("standin", "fp32", "cpu") is None
    with pytest.raises(SegxError, match="did you mean 'cpu'"):
        matrix.skip_reason("standin", "fp32", "cpux")


def test_plan_rows_and_unknown_names(standin: Path) -> None:
    src = matrix.ModelSource("standin", standin, "standin", trained=False)
    plans = matrix.plan_rows([src], ("standin",), ("fp32", "bf16"), (1, 4), device="cpu", imgsz=64)
    assert [(p.precision, p.batch, p.skip is None, p.dynamic) for p in plans] == \
        [("fp32", 1, True, False), ("fp32", 4, True, True), ("bf16", 1, False, False), ("bf16", 4, False, True)]
    with pytest.raises(SegxError, match="did you mean 'int8'"):
        matrix.plan_rows([src], ("standin",), ("int9",), (1,), device="cpu", imgsz=64)
    with pytest.raises(SegxError, match="did you mean 'standin'"):
        matrix.plan_rows([src], ("standim",), ("fp32",), (1,), device="cpu", imgsz=64)


def test_worker_run_spec_in_process(standin: Path, capfd: pytest.CaptureFixture) -> None:
    spec = {"model": str(standin), "runtime": "standin", "precision": "fp32", "device": "cpu", "threads": 1,
            "batch": 2, "imgsz": 16, "speed": {"min_iters": 3, "min_time": 0}, "parity": None}
    assert worker.main([json.dumps(spec)]) == 0
    out = capfd.readouterr().out.strip().splitlines()
    res = json.loads(out[-1])[worker.RESULT_KEY]
    assert res["status"] == "ok" and res["iters"] == 3 and res["input_hw"] == [16, 16] and res["threads"] == 1
    spec["model"] = str(standin.with_name("missing.standin"))
    assert worker.main([json.dumps(spec)]) == 1
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err.strip().splitlines()[-1].endswith("missing.standin: no such model")


def test_run_worker_subprocess_failure_is_reported() -> None:
    spec = {"model": "nowhere.onnx", "runtime": "no_such_runtime", "precision": "fp32", "device": "cpu",
            "batch": 1, "imgsz": 16}
    with pytest.raises(rows.WorkerError, match="no_such_runtime"):
        rows.run_worker(spec, timeout=120)


def test_cli_list_options(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = {}
    monkeypatch.setattr("bench.run.run_bench", lambda config: seen.setdefault("c", config))
    args = ["bench", "--archs", "a,b", "c", "--archs", "d", "--runtimes", "torch", "openvino", "--batch", "1,8",
            "16", "--precisions", "fp32", "--max-miou-drop", "-1", "--min-time", "0"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    c = seen["c"]
    assert c.archs == ("a", "b", "c", "d") and c.runtimes == ("torch", "openvino") and c.batches == (1, 8, 16)
    assert c.precisions == ("fp32",) and c.max_miou_drop == -1 and c.min_time == 0
    bad = CliRunner().invoke(cli, ["bench", "--archs", "a", "--batch", "x"])
    assert bad.exit_code == 1 and "--batch takes positive integers" in bad.output


def test_run_bench_orchestration_with_standin(standin: Path, monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    """The matrix never stops: an int8 row whose worker dies is an error row; bf16 has no recipe (skipped);
    reports are written before --strict turns the error into exit 1."""
    from bench.run import run_bench

    def fake_worker(spec: dict, timeout: float) -> dict:  # in-process stand-in for the subprocess
        if spec["precision"] == "int8":
            raise rows.WorkerError("Segmentation fault in the stand-in")
        return worker.run_spec(spec)

    monkeypatch.setattr(rows, "run_worker", fake_worker)
    cfg = dict(archs=("lraspp_mobilenet_v3_large",), runtimes=("standin",), precisions=("fp32", "bf16", "int8"),
               imgsz=32, batches=(1, 2), min_iters=3, min_time=0, out=str(tmp_path / "b"))
    result = run_bench(**cfg, repeat=2)
    got = [(r["precision"], r["batch"], r["status"]) for r in result.rows]
    assert got == [("fp32", 1, "pass"), ("fp32", 2, "pass"), ("bf16", 1, "skipped"), ("bf16", 2, "skipped"),
                   ("int8", 1, "error"), ("int8", 2, "error")]
    assert result.rows[4]["error"] == "Segmentation fault in the stand-in"
    assert result.rows[0]["size_mb"] > 1 and result.rows[1]["fps"] > 0
    assert len(result.rows[0]["p50_rounds"]) == 2 and "p50_rounds" not in result.rows[4]  # two timing rounds
    with pytest.raises(SegxError, match="2 bench row"):
        run_bench(**{**cfg, "out": str(tmp_path / "s")}, strict=True)
    assert all((tmp_path / "s" / f"bench.{ext}").is_file() for ext in ("json", "csv", "md", "png"))


def test_print_table_keeps_brackets() -> None:
    import io

    from rich.console import Console

    buf = io.StringIO()
    report.print_table([_row(status="skipped", error="pip install 'segx[gpu]'", p50_ms=None, fps=None)],
                       Console(file=buf, width=250))
    assert "segx[gpu]" in buf.getvalue() and "⏭ skipped" in buf.getvalue()


def test_noisy_rows_flagged(tmp_path: Path) -> None:
    rs = [_row(others_cpu=0.0), _row(runtime="openvino", others_cpu=1.3), _row(runtime="onnxruntime")]
    assert report.noisy_rows(rs) == ["a openvino fp32 b1 (1.3 cores)"]
    md = report.markdown({}, rs, "segx bench")
    assert "suspect" in md and "a openvino fp32 b1 (1.3 cores)" in md
    assert "suspect" not in report.markdown({}, rs[:1], "segx bench")


def test_measure_reports_cpu_use(standin: Path) -> None:
    res = measure(StandIn(standin), make_batch(1, (8, 8)), SpeedConfig(min_iters=1, min_time=0.6, warmup_iters=0))
    assert 0 <= res.cpu_cores < 0.5  # the stand-in sleeps
    assert res.others_cpu is not None and res.others_cpu >= 0


def test_rounds_take_the_median() -> None:
    row = _row(batch=2)
    for p50 in (30.0, 10.0, 20.0):
        rows.add_round(row, {"p50_ms": p50, "p95_ms": p50 + 1, "p99_ms": p50 + 2, "others_cpu": p50 / 100})
    assert row["p50_rounds"] == [30.0, 10.0, 20.0] and row["p50_ms"] == 20.0 and row["p99_ms"] == 22.0
    assert row["fps"] == pytest.approx(100.0) and row["others_cpu"] == pytest.approx(0.3)
