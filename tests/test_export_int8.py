"""INT8 on a model that predicts >= 5 classes (conftest.multiclass_checkpoint): the ONNX Runtime and OpenVINO forms
pass their mIoU gate; the TensorRT form has zero-point-0 signed int8 activations and passes the gate in ONNX Runtime;
a model with wrong quantisation scales fails `segx parity` and is never kept by `segx export`; dynamic INT8 keeps
int8 and runs at batch 2; fall-backs, --strict and the calibration policy."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import numpy_helper

from exporters import run_export
from exporters.quantize import CalibrationImages
from segx.cli import cli
from segx.parity import GATES, Gate, check_file
from segx.runtimes import load_runtime

TINY = {"imgsz": 64}
# INT8 exports calibrate, measure and search layer groups; the first test also trains the session fixture model
pytestmark = pytest.mark.timeout(1200)


def _copy(checkpoint: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(checkpoint, folder / "best.pt")
    return folder


@pytest.fixture()
def run_dir(multiclass_checkpoint: Path, tmp_path: Path) -> Path:
    """A private copy of the trained run folder (tests write exports next to the checkpoint)."""
    return _copy(multiclass_checkpoint, tmp_path)


@pytest.fixture(scope="module")
def int8_onnx(multiclass_checkpoint: Path, synth_voc: Path, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """One ONNX Runtime INT8 export of the multi-class model (the whole val split as gate)."""
    folder = _copy(multiclass_checkpoint, tmp_path_factory.mktemp("int8"))
    return folder, run_export(folder / "best.pt", "onnx", int8=True, data=synth_voc, **TINY)


def _wrong_scales(model: onnx.ModelProto, factor: float = 0.5) -> onnx.ModelProto:
    """Multiply every per-channel weight scale of the Q/DQ model by `factor`: structurally valid, numerically wrong."""
    inits = {i.name: i for i in model.graph.initializer}
    edited = 0
    for node in model.graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in inits and len(node.input) > 1:
            scale = inits[node.input[1]]
            arr = numpy_helper.to_array(scale)
            if arr.ndim == 1 and arr.size > 1:  # per-channel: a weight's scales
                scale.CopyFrom(numpy_helper.from_array((arr * factor).astype(arr.dtype), scale.name))
                edited += 1
    assert edited > 10
    onnx.checker.check_model(model)
    return model


@pytest.mark.slow
def test_onnx_int8_is_qdq_and_passes_its_gate(int8_onnx, multiclass_checkpoint: Path, synth_voc: Path) -> None:  # noqa: ANN001
    folder, result = int8_onnx
    assert result.passed and result.precision == "int8" and not result.fell_back, result.summary()
    path = folder / "best_int8.onnx"
    ops = {n.op_type for n in onnx.load(path).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    check = result.attempts[0].checks[0]
    assert check.labels and check.miou_ref > 0.05 and check.imgsz == (64, 64)
    assert check.n_images == 5 and check.drop_ci is not None  # the whole val split of synth_voc
    assert -check.miou_delta * 100 <= 1.0 and check.pixel_agreement > 0.9  # not collapsed to one class
    assert "calibrated on" in result.attempts[0].notes["calibration"]
    assert "disjoint" in result.attempts[0].notes["calibration"]
    with load_runtime(path) as rt:  # the default precision of an int8 file is int8
        assert rt.precision == "int8" and rt.meta.precision == "int8"


@pytest.mark.slow
def test_wrong_scales_fail_segx_parity(int8_onnx, multiclass_checkpoint: Path, synth_voc: Path,  # noqa: ANN001
                                       tmp_path: Path) -> None:
    folder, _ = int8_onnx
    good = folder / "best_int8.onnx"
    bad = tmp_path / "edited_int8.onnx"
    onnx.save(_wrong_scales(onnx.load(good)), bad)
    args = ["parity", "--ref", str(multiclass_checkpoint), "--data", str(synth_voc)]
    ok = CliRunner().invoke(cli, [*args[:1], str(good), *args[1:]])
    assert ok.exit_code == 0 and "PASS" in ok.output and "5 val images at 64²" in ok.output, ok.output
    res = CliRunner().invoke(cli, [*args[:1], str(bad), *args[1:]])
    assert res.exit_code == 1 and "FAIL" in res.output and "failed the int8 parity gate" in res.output, res.output


@pytest.mark.slow
def test_export_never_keeps_an_int8_model_with_wrong_scales(run_dir: Path, synth_voc: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import exporters.onnx as onnx_mod

    real = onnx_mod.set_metadata

    def corrupt(model: onnx.ModelProto, meta) -> None:  # noqa: ANN001 - the last step before the file is written
        if any(n.op_type == "QuantizeLinear" for n in model.graph.node):
            _wrong_scales(model)
        real(model, meta)

    monkeypatch.setattr(onnx_mod, "set_metadata", corrupt)
    result = run_export(run_dir / "best.pt", "onnx", int8=True, data=synth_voc, **TINY)
    assert result.precision == "fp32" and result.attempts[0].checks and not result.attempts[0].checks[0].passed
    assert not (run_dir / "best_int8.onnx").exists()


@pytest.mark.slow
def test_tensorrt_form_is_signed_symmetric_int8_and_passes_the_gate(multiclass_checkpoint: Path, synth_voc: Path,
                                                                    tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import exporters.sensitivity as sens
    from exporters.job import load_source, make_job, validate_options
    from exporters.onnx import tensorrt_int8_onnx

    every = sens.layer_groups  # the search over the 3 kind groups only (hard-swish, squeeze-excite, upsample): fast
    monkeypatch.setattr(sens, "layer_groups", lambda m: [g for g in every(m) if not g.name.startswith("net.")])

    opts = validate_options("trt", ("int8",), {"int8": True, "data": synth_voc, **TINY})
    job = make_job(load_source(multiclass_checkpoint), opts, "int8", tmp_path)
    model = tensorrt_int8_onnx(job)
    path = tmp_path / "trt_int8.onnx"
    onnx.save(model, path)
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    quants = [n for n in model.graph.node if n.op_type == "QuantizeLinear"]
    assert quants
    for q in quants:  # activations: signed int8, zero point 0
        zp = inits[q.input[2]]
        assert zp.dtype == np.int8 and not zp.any(), q.name
    weights = [n for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in inits
               and inits[n.input[0]].ndim == 4]
    assert weights and all(inits[w.input[1]].ndim == 1 and not inits[w.input[2]].any() for w in weights)
    result = check_file(path, multiclass_checkpoint, data=synth_voc, precision="int8")
    assert result.precision == "int8" and result.passed and result.pixel_agreement > 0.9, result.reason


@pytest.mark.slow
def test_dynamic_int8_keeps_int8_and_runs_batch_two(run_dir: Path, synth_voc: Path) -> None:
    res = CliRunner().invoke(cli, ["export", "--model", str(run_dir / "best.pt"), "--fmt", "onnx", "--dynamic",
                                   "--int8", "--imgsz", "64", "--data", str(synth_voc), "--strict"])
    assert res.exit_code == 0, res.output
    path = run_dir / "best_dynamic_int8.onnx"
    assert path.is_file() and "QuantizeLinear" in {n.op_type for n in onnx.load(path).graph.node}
    with load_runtime(path) as rt:
        out = rt.infer(np.zeros((3, 3, 64, 96), np.float32))
    assert out.shape[:2] == (3, 21)


@pytest.mark.slow
def test_openvino_int8_passes_its_gate(run_dir: Path, synth_voc: Path) -> None:
    result = run_export(run_dir / "best.pt", "openvino", int8=True, data=synth_voc, **TINY)
    assert result.passed and result.precision == "int8", result.summary()
    check = result.attempts[0].checks[0]
    assert check.miou_ref > 0.05 and check.pixel_agreement > 0.9
    xml = run_dir / "best_int8.xml"
    assert xml.is_file() and xml.with_suffix(".bin").is_file()
    assert "FakeQuantize" in xml.read_text()


@pytest.mark.slow
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


def _export_cli(run_dir: Path, synth_voc: Path, *extra: str) -> object:
    return CliRunner().invoke(cli, ["export", "--model", str(run_dir / "best.pt"), "--fmt", "onnx", "--int8",
                                    "--imgsz", "64", "--data", str(synth_voc), *extra])


@pytest.mark.slow
def test_cli_fall_back_and_strict(run_dir: Path, synth_voc: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(GATES, "int8", Gate("int8", max_miou_drop=-1.0))
    res = _export_cli(run_dir, synth_voc)
    assert res.exit_code == 0, res.output
    assert "int8 failed its gate" in res.output and "kept the best precision that passed: fp32" in res.output
    assert "FAIL" in res.output and "PASS" in res.output and "calibrated on" in res.output
    assert (run_dir / "best.onnx").is_file() and not (run_dir / "best_int8.onnx").exists()
    strict = _export_cli(run_dir, synth_voc, "--strict")
    assert strict.exit_code == 1 and "--strict: int8 failed its gate; kept fp32" in strict.output


@pytest.mark.slow
def test_strict_says_when_int8_could_not_be_built(run_dir: Path, synth_voc: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import exporters.qdq

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("quantiser exploded")

    monkeypatch.setattr(exporters.qdq, "calibrate", broken)
    res = _export_cli(run_dir, synth_voc)
    assert res.exit_code == 0 and "int8 could not be built" in res.output and "NOT BUILT" in res.output, res.output
    strict = _export_cli(run_dir, synth_voc, "--strict")
    assert strict.exit_code == 1 and "--strict: int8 could not be built; kept fp32" in strict.output


def test_calibration_policy(synth_voc: Path) -> None:
    from segx.data.voc import VOCSegmentation

    n_train, n_val = len(VOCSegmentation(synth_voc, "train")), len(VOCSegmentation(synth_voc, "val"))
    cal = CalibrationImages(synth_voc, "train", 48, n=10, batch=4, gate_split="val")
    batches = list(cal)
    assert len(batches) == len(cal) == 2 and cal.n_images == 8  # the partial third batch is dropped
    assert all(b.shape == (4, 3, 48, 48) and b.dtype == np.float32 for b in batches)
    assert cal.indices == list(range(10)) and cal.disjoint and "disjoint" in cal.describe()
    capped = CalibrationImages(synth_voc, "val", 32, gate_split="val", gate_n=2)  # gate scores 2: skip them
    assert capped.indices == list(range(2, n_val)) and capped.disjoint
    shared = CalibrationImages(synth_voc, "val", 32, gate_split="val")  # gate scores all: nothing disjoint left
    assert shared.indices == list(range(n_val)) and not shared.disjoint and "OVERLAPPING" in shared.describe()
    fallback = CalibrationImages(synth_voc, "nope", 32, gate_split="val", gate_n=1)  # no such split: the gate's
    assert fallback.split == "val" and fallback.indices[0] == 1 and n_train > n_val
