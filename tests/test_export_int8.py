"""INT8: ONNX Runtime static QDQ and OpenVINO NNCF on the briefly trained model pass their mIoU gate; a failing INT8
gate falls back to the best precision that passes (file kept, result and CLI say so); the calibration images."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from segx.parity import GATES, Gate
from segx.runtimes import load_runtime
from exporters import run_export
from exporters.quantize import CalibrationImages
from segx.cli import cli

TINY = {"imgsz": 64, "n_verify": 4}


@pytest.fixture()
def run_dir(trained_checkpoint: Path, tmp_path: Path) -> Path:
    """A private copy of the trained run folder (tests write exports next to the checkpoint)."""
    shutil.copy(trained_checkpoint, tmp_path / "best.pt")
    return tmp_path


def test_onnx_int8_is_qdq_and_passes_its_gate(run_dir: Path, synth_voc: Path) -> None:
    result = run_export(run_dir / "best.pt", "onnx", int8=True, data=synth_voc, **TINY)
    assert result.passed and result.precision == "int8" and not result.fell_back, result.summary()
    path = run_dir / "best_int8.onnx"
    assert result.path == path
    ops = {n.op_type for n in onnx.load(path).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    check = result.attempts[0].checks[0]
    assert check.labels and check.miou_ref is not None and check.miou_ref > 0  # a real gate, not 0 vs 0
    assert -check.miou_delta * 100 <= 1.0
    with load_runtime(path) as rt:  # the default precision of an int8 file is int8
        assert rt.precision == "int8" and rt.meta.precision == "int8"


def test_openvino_int8_passes_its_gate(run_dir: Path, synth_voc: Path) -> None:
    result = run_export(run_dir / "best.pt", "openvino", int8=True, data=synth_voc, **TINY)
    assert result.passed and result.precision == "int8", result.summary()
    xml = run_dir / "best_int8.xml"
    assert xml.is_file() and xml.with_suffix(".bin").is_file()
    assert "FakeQuantize" in xml.read_text()
    import torch

    fp32_bytes = 4 * sum(v.numel() for v in torch.load(run_dir / "best.pt", weights_only=True)["model"].values())
    assert xml.with_suffix(".bin").stat().st_size < 0.5 * fp32_bytes  # the weights are stored as int8


@pytest.mark.parametrize(("fmt", "kept", "suffixes"), [
    # NNCF: 32 s at load 10 on 2 cores
    pytest.param("openvino", "fp16", {"best_fp16.xml", "best_fp16.bin"}, marks=pytest.mark.slow),
    ("onnx", "fp32", {"best.onnx"})])
def test_failing_int8_falls_back_to_the_best_passing_precision(
        run_dir: Path, synth_voc: Path, monkeypatch: pytest.MonkeyPatch, fmt: str, kept: str,
        suffixes: set[str]) -> None:
    monkeypatch.setitem(GATES, "int8", Gate("int8", max_miou_drop=-1.0))  # no int8 model can pass this
    result = run_export(run_dir / "best.pt", fmt, int8=True, data=synth_voc, **TINY)
    assert result.passed and result.fell_back and result.requested == "int8" and result.precision == kept
    assert [a.precision for a in result.attempts][0] == "int8" and not result.attempts[0].kept
    assert result.attempts[0].checks and not result.attempts[0].checks[0].passed
    assert f"kept the best precision that passed: {kept}" in result.summary()
    assert {p.name for p in run_dir.iterdir()} == {"best.pt", *suffixes}  # no int8 file, no temp file


def test_cli_says_int8_fell_back(run_dir: Path, synth_voc: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(GATES, "int8", Gate("int8", max_miou_drop=-1.0))
    res = CliRunner().invoke(cli, ["export", "--model", str(run_dir / "best.pt"), "--fmt", "onnx", "--int8",
                                   "--imgsz", "64", "--data", str(synth_voc), "--n-verify", "4"])
    assert res.exit_code == 0, res.output
    assert "int8 failed" in res.output and "kept the best precision that passed: fp32" in res.output
    assert "FAIL" in res.output and "PASS" in res.output
    assert (run_dir / "best.onnx").is_file() and not (run_dir / "best_int8.onnx").exists()


def test_calibration_images(synth_voc: Path) -> None:
    from segx.data.transforms import eval_transforms
    from segx.data.voc import VOCSegmentation

    total = len(VOCSegmentation(synth_voc, "train"))
    cal = CalibrationImages(synth_voc, "train", 48, n=10, batch=4, skip=4)
    batches = list(cal)
    assert len(batches) == len(cal) == 2 and cal.n_images == 8  # the partial third batch is dropped
    assert all(b.shape == (4, 3, 48, 48) and b.dtype == np.float32 for b in batches)
    assert cal.indices == list(range(4, 14)) and total >= 14  # skips the parity images when it can
    small = CalibrationImages(synth_voc, "val", 32, n=128, skip=32)  # val is smaller than skip: uses all of it
    assert small.indices == list(range(len(VOCSegmentation(synth_voc, "val"))))
    ref = VOCSegmentation(synth_voc, "train", transforms=eval_transforms(size=48))[4][0].numpy()
    np.testing.assert_array_equal(batches[0][0], ref)  # the same pre-processing as the parity check
