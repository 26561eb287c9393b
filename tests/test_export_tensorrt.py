"""TensorRT up to the GPU edge on CPU (profiles, calibration cache keys, the calibrator over the shared images,
sidecar checks that refuse engines built elsewhere, the one-line missing-TensorRT error), and real engine builds that
run only where tensorrt and CUDA exist."""
from __future__ import annotations

import json
import shutil
import types
from pathlib import Path

import pytest
import torch

from segx.runtimes import load_runtime
from segx.runtimes.base import RuntimeUnavailable
from segx.runtimes.tensorrt_rt import REBUILD, TensorRTRuntime, check_engine_env, read_sidecar, sidecar_path
from exporters.job import ExportOptions, Source, make_job
from exporters.quantize import CalibrationImages
from exporters.tensorrt import MAX_BATCH, calibration_cache, make_calibrator, profile_shapes
from segx.errors import SegxError
from segx.meta import ModelMeta


def _has_trt() -> bool:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available()


gpu = pytest.mark.skipif(not _has_trt(), reason="needs tensorrt and a CUDA GPU")
HERE = {"tensorrt_version": "10.9.0", "gpu_name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0"}


def test_profiles() -> None:
    assert profile_shapes(512, False) == {k: (1, 3, 512, 512) for k in ("min", "opt", "max")}
    dyn = profile_shapes(512, True)
    assert dyn["min"] == (1, 3, 256, 256) and dyn["opt"] == (1, 3, 512, 512)
    assert dyn["max"] == (MAX_BATCH, 3, 1024, 1024)
    assert profile_shapes(48, True)["min"] == (1, 3, 32, 32)


def test_calibration_cache_is_keyed_by_model_size_and_split(tmp_path: Path) -> None:
    src = Source(torch.nn.Identity(), ModelMeta(arch="toy"))
    job = make_job(src, ExportOptions(imgsz=64, int8=True, data="d"), "int8", tmp_path)
    other_size = make_job(src, ExportOptions(imgsz=96, int8=True, data="d"), "int8", tmp_path)
    other_split = make_job(src, ExportOptions(imgsz=64, int8=True, data="d", split="train"), "int8", tmp_path)
    a = calibration_cache(job, b"model-a")
    assert a.parent == tmp_path and a == calibration_cache(job, b"model-a")
    assert len({a, calibration_cache(job, b"model-b"), calibration_cache(other_size, b"model-a"),
                calibration_cache(other_split, b"model-a")}) == 4


def test_calibrator_protocol_without_tensorrt(synth_voc: Path, tmp_path: Path) -> None:
    """The trt subclass is thin: batch size from CalibrationImages, cache read/write through segx.io."""
    class Base:
        def __init__(self) -> None:
            pass

    fake_trt = types.SimpleNamespace(IInt8EntropyCalibrator2=Base)
    images = CalibrationImages(synth_voc, "train", 32, n=6, batch=3)
    cache = tmp_path / "x.calib"
    cal = make_calibrator(fake_trt, images, cache)
    assert isinstance(cal, Base) and cal.get_batch_size() == 3
    assert cal.read_calibration_cache() is None
    cal.write_calibration_cache(memoryview(b"TRT-calib"))
    assert cache.read_bytes() == b"TRT-calib" and cal.read_calibration_cache() == b"TRT-calib"


def test_engine_env_mismatch_is_refused_with_rebuild_hint(tmp_path: Path) -> None:
    engine = tmp_path / "best.engine"
    check_engine_env(engine, HERE, HERE)  # same setup: accepted
    for key, value in (("gpu_name", "NVIDIA GeForce RTX 4090"), ("tensorrt_version", "8.6.1"),
                       ("compute_capability", "8.9")):
        with pytest.raises(SegxError) as e:
            check_engine_env(engine, {**HERE, key: value}, HERE)
        msg = str(e.value)
        assert str(engine) in msg and value in msg and HERE[key] in msg and msg.endswith(REBUILD)
        assert "rebuild the engine with segx export --fmt trt on this machine" in msg
    with pytest.raises(SegxError, match="gpu name \\?"):
        check_engine_env(engine, {"tensorrt_version": "10.9.0", "compute_capability": "9.0"}, HERE)


def test_sidecar_round_trip_and_problems(tmp_path: Path) -> None:
    engine = tmp_path / "best.engine"
    with pytest.raises(SegxError, match="sidecar best.engine.json is missing.*rebuild"):
        read_sidecar(engine)
    meta = ModelMeta(arch="lraspp_mobilenet_v3_large", precision="fp16", extra=HERE)
    sidecar_path(engine).write_text(json.dumps(meta.to_dict()))
    assert read_sidecar(engine) == meta
    sidecar_path(engine).write_text("{not json")
    with pytest.raises(SegxError, match="unreadable sidecar"):
        read_sidecar(engine)


@pytest.mark.skipif(_has_trt(), reason="TensorRT and CUDA are present here")
def test_runtime_without_tensorrt_says_what_to_install(tmp_path: Path) -> None:
    for call in (lambda: TensorRTRuntime.check_available("cuda"),
                 lambda: load_runtime(tmp_path / "best.engine", device="cuda")):
        with pytest.raises(RuntimeUnavailable) as e:
            call()
        assert "needs an NVIDIA GPU with CUDA and the tensorrt package: pip install 'segx[gpu]'" in str(e.value)
        assert "\n" not in str(e.value)
    with pytest.raises(RuntimeUnavailable, match="does not run on 'cpu'"):
        load_runtime(tmp_path / "best.engine")


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("options", [{}, {"fp16": True}, {"dynamic": True}])
def test_engine_builds_and_passes_parity(options: dict, trained_checkpoint: Path, synth_voc: Path,
                                         tmp_path: Path) -> None:
    from exporters import run_export

    shutil.copy(trained_checkpoint, tmp_path / "best.pt")
    result = run_export(tmp_path / "best.pt", "trt", imgsz=64, data=synth_voc, n_verify=4, **options)
    assert result.passed and not result.fell_back, result.summary()
    side = json.loads(sidecar_path(result.path).read_text())
    assert {"tensorrt_version", "gpu_name", "compute_capability"} <= set(side["extra"])
    with load_runtime(result.path, device="cuda") as rt:
        assert rt.meta.precision == result.precision
    side["extra"]["gpu_name"] = "Some Other GPU"
    sidecar_path(result.path).write_text(json.dumps(side))
    with pytest.raises(SegxError, match="rebuild the engine"):
        load_runtime(result.path, device="cuda")


@gpu
@pytest.mark.gpu
def test_int8_engine_passes_its_gate(trained_checkpoint: Path, synth_voc: Path, tmp_path: Path) -> None:
    from exporters import run_export

    shutil.copy(trained_checkpoint, tmp_path / "best.pt")
    result = run_export(tmp_path / "best.pt", "trt", imgsz=64, int8=True, data=synth_voc, n_verify=4)
    assert result.passed, result.summary()
    assert any(p.suffix == ".calib" for p in tmp_path.iterdir())  # calibration cache written
