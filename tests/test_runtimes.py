"""The runtime classes behind the one Runtime interface: loading, metadata, input shapes, precisions, devices and
their errors. Exports are made once per module at 64² (verify=False: parity has its own tests)."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from segx.runtimes import get_runtime, load_runtime, runtime_for_path
from segx.runtimes.base import RuntimeUnavailable
from exporters import export
from segx.errors import SegxError
from segx.meta import ModelMeta

ARCH = "lraspp_mobilenet_v3_large"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from segx.checkpoint import make_checkpoint
    from segx.io import save_checkpoint
    from segx.models import build_model

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("rt")
    ckpt = save_checkpoint(make_checkpoint(build_model(ARCH).eval(), ModelMeta(arch=ARCH, imgsz=64)),
                           folder / "best.pt")
    out = {"pt": ckpt}
    for fmt in ("onnx", "openvino", "torchscript"):
        out[fmt] = export(ckpt, fmt, imgsz=64, verify=False)
    return out


@pytest.fixture(scope="module")
def batch() -> np.ndarray:
    return torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(3)).numpy()


@pytest.fixture(scope="module")
def reference(files: dict[str, Path], batch: np.ndarray) -> np.ndarray:
    from segx.checkpoint import load_model

    module, _ = load_model(files["pt"])
    with torch.no_grad():
        return module(torch.from_numpy(batch)).numpy()


def test_default_runtime_by_suffix(files: dict[str, Path], tmp_path: Path) -> None:
    expect = {"pt": "torch", "onnx": "onnxruntime", "openvino": "openvino", "torchscript": "torchscript"}
    for key, name in expect.items():
        assert runtime_for_path(files[key]).name == name
    assert runtime_for_path("m.engine").name == "tensorrt"
    folder = tmp_path / "ov"
    folder.mkdir()
    shutil.copy(files["openvino"], folder)
    shutil.copy(files["openvino"].with_suffix(".bin"), folder)
    assert runtime_for_path(folder).name == "openvino"
    with load_runtime(folder) as rt:  # a folder holding one IR loads too
        assert rt.meta.arch == ARCH
    with pytest.raises(SegxError, match="unknown model file type '.h5'"):
        runtime_for_path("m.h5")


@pytest.mark.parametrize("key", ["pt", "onnx", "openvino", "torchscript"])
def test_every_runtime_answers_like_pytorch(key: str, files: dict[str, Path], batch: np.ndarray,
                                           reference: np.ndarray) -> None:
    with load_runtime(files[key], threads=1) as rt:
        assert rt.meta.arch == ARCH and rt.meta.num_classes == 21 and rt.meta.imgsz == 64
        assert rt.input_shape == ((None, 3, None, None) if key == "pt" else (1, 3, 64, 64))
        out = rt.infer(batch)
    assert out.dtype == np.float32 and out.shape == reference.shape
    assert np.abs(out - reference).max() < 1e-4


@pytest.mark.parametrize("key", ["onnx", "openvino", "torchscript"])
def test_fixed_shape_models_name_the_size_they_take(key: str, files: dict[str, Path]) -> None:
    with load_runtime(files[key]) as rt:
        with pytest.raises(SegxError, match="exported for height 64, got 96.*--dynamic"):
            rt.infer(np.zeros((1, 3, 96, 64), np.float32))
        with pytest.raises(SegxError, match="exported for batch 1, got 2"):
            rt.infer(np.zeros((2, 3, 64, 64), np.float32))
        with pytest.raises(SegxError, match="N×3×H×W"):
            rt.infer(np.zeros((3, 64, 64), np.float32))


def test_torch_precisions_and_layout(files: dict[str, Path], batch: np.ndarray, reference: np.ndarray) -> None:
    with load_runtime(files["pt"], precision="bf16") as rt:
        assert rt.channels_last  # the default: the fast CPU layout
        out = rt.infer(batch)
    assert 0 < np.abs(out - reference).max() < 1.0  # bf16 really ran, and is close
    with load_runtime(files["pt"], channels_last=False) as rt:
        assert not rt.channels_last and np.abs(rt.infer(batch) - reference).max() < 1e-5
    with pytest.raises(RuntimeUnavailable, match="fp16 on CUDA only"):
        load_runtime(files["pt"], precision="fp16")
    with pytest.raises(SegxError, match="no precision 'int4'"):
        load_runtime(files["pt"], precision="int4")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is present")
@pytest.mark.parametrize("name", ["torch", "compile", "torchscript"])
def test_cuda_without_gpu(name: str) -> None:
    with pytest.raises(RuntimeUnavailable, match="needs an NVIDIA GPU with CUDA"):
        get_runtime(name).check_available("cuda")


def test_onnxruntime_precision_is_the_files(files: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(SegxError, match="is a fp32 model.*export --int8"):
        load_runtime(files["onnx"], precision="int8")
    with load_runtime(files["onnx"], threads=1) as rt:
        assert rt.session.get_session_options().intra_op_num_threads == 1
    bare = onnx.load(files["onnx"])
    del bare.metadata_props[:]
    onnx.save(bare, tmp_path / "bare.onnx")
    with pytest.raises(SegxError, match="no segx metadata"):
        load_runtime(tmp_path / "bare.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"junk")
    with pytest.raises(SegxError, match="cannot load it"):
        load_runtime(tmp_path / "junk.onnx")


def test_onnxruntime_cuda_needs_onnxruntime_gpu() -> None:
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("onnxruntime-gpu is installed")
    with pytest.raises(RuntimeUnavailable, match=r"pip install 'segx\[gpu\]'"):
        get_runtime("onnxruntime").check_available("cuda")


def test_openvino_pins_f32_and_checks_bf16(files: dict[str, Path], tmp_path: Path) -> None:
    import openvino as ov

    with load_runtime(files["openvino"]) as rt:
        assert rt.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name() == "f32"
    has_bf16 = "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    if has_bf16:
        with load_runtime(files["openvino"], precision="bf16") as rt:
            assert rt.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name() == "bf16"
    else:
        with pytest.raises(RuntimeUnavailable, match="no bf16"):
            load_runtime(files["openvino"], precision="bf16")
    lone = tmp_path / "lone.xml"
    shutil.copy(files["openvino"], lone)
    with pytest.raises(SegxError, match="lone.bin is missing"):
        load_runtime(lone)
    with pytest.raises(RuntimeUnavailable, match="Intel GPU"):
        if "GPU" in ov.Core().available_devices:
            pytest.skip("an OpenVINO GPU is present")
        get_runtime("openvino").check_available("gpu")


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_torchscript_without_segx_metadata(tmp_path: Path) -> None:
    path = tmp_path / "plain.torchscript"
    torch.jit.save(torch.jit.trace(torch.nn.Conv2d(3, 2, 1), torch.zeros(1, 3, 8, 8)), str(path))
    with pytest.raises(SegxError, match="no segx_meta.json inside"):
        load_runtime(path)


def test_compile_failure_is_runtime_unavailable(files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(module: torch.nn.Module, **kw: object) -> object:
        def run(x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("inductor exploded\nlong details")
        return run

    monkeypatch.setattr(torch, "compile", broken)
    with pytest.raises(RuntimeUnavailable, match="torch.compile failed for lraspp_mobilenet_v3_large: "
                                                 "inductor exploded$") as e:
        load_runtime(files["pt"], runtime="compile")
    assert "\n" not in str(e.value)


@pytest.mark.slow
def test_compile_runtime_matches_eager(files: dict[str, Path], batch: np.ndarray, reference: np.ndarray) -> None:
    with load_runtime(files["pt"], runtime="compile") as rt:
        assert np.abs(rt.infer(batch) - reference).max() < 1e-3
