"""TensorRT up to the GPU edge on CPU: profiles, the timing cache (keyed, never fatal), provenance and the refusal of a
foreign engine, its rebuild from the source ONNX, the Q/DQ form TensorRT takes, the graphs TensorRT gets checked in
ONNX Runtime CPU (fp16 against the fp16 gate, Q/DQ int8 against the int8 gate), ONNX Runtime never running a CUDA
request on the CPU; and real engine builds that run only where tensorrt and CUDA exist (`gpu`)."""
from __future__ import annotations

import json
import logging
import shutil
import types
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from exporters.tensorrt import check_qdq_form
from segx.errors import SegxError
from segx.meta import ModelMeta
from segx.runtimes import load_runtime
from segx.runtimes.base import RuntimeUnavailable
from segx.runtimes import tensorrt_engine as te
from segx.runtimes import tensorrt_rt
from segx.runtimes.tensorrt_rt import REBUILD, TensorRTRuntime, check_engine_env, read_sidecar, sidecar_path


def _has_trt() -> bool:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available()


gpu = pytest.mark.skipif(not _has_trt(), reason="needs tensorrt and a CUDA GPU")
HERE = {"tensorrt_version": "10.9.0", "gpu_name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0"}


@pytest.fixture(scope="module")
def multiclass(synth_voc: Path) -> tuple[torch.nn.Module, ModelMeta]:
    """LR-ASPP (random init, seed 0) whose two classifier convs are rescaled so its logits have unit-scale margins:
    on the val images its argmax holds many classes (checked), so a gate cannot pass by everything being one class."""
    from segx.data.transforms import eval_transforms
    from segx.data.voc import VOCSegmentation
    from segx.models import build_model

    torch.manual_seed(0)
    model = build_model("lraspp_mobilenet_v3_large").eval()
    heads = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.out_channels == 21]
    ds = VOCSegmentation(synth_voc, "val", transforms=eval_transforms(size=64))
    x = torch.stack([ds[i][0] for i in range(len(ds))])
    with torch.no_grad():
        for m in heads:
            torch.nn.init.zeros_(m.bias)
        scale = 3 / model(x).std()
        for m in heads:
            m.weight *= scale
        classes = model(x).argmax(1).unique()
    assert len(classes) >= 5, classes
    return model, ModelMeta(arch="lraspp_mobilenet_v3_large")


# -- profiles, timing cache, provenance -------------------------------------------------------------------------------
def test_profiles_tune_for_the_batch_asked() -> None:
    fixed = te.profile_for(512, False)
    assert fixed.min == fixed.opt == fixed.max == (1, 3, 512, 512)
    dyn = te.profile_for(512, True, batch=8)
    assert dyn.min == (1, 3, 256, 256) and dyn.opt == (8, 3, 512, 512) and dyn.max == (te.MAX_BATCH, 3, 1024, 1024)
    assert te.profile_for(48, True).min == (1, 3, 32, 32)
    assert te.profile_for(64, True, batch=32).max[0] == 32  # a bigger batch than MAX_BATCH still fits its profile
    assert te.profile_for(64, True, batch=4).to_dict()["opt"] == [4, 3, 64, 64]


def test_export_batch_option() -> None:
    from exporters import FORMATS
    from exporters.job import validate_options

    assert validate_options("trt", FORMATS["trt"].options, {"dynamic": True, "batch": 16}).batch == 16
    with pytest.raises(SegxError, match="batch 8 needs a dynamic export"):
        validate_options("trt", FORMATS["trt"].options, {"batch": 8})
    with pytest.raises(SegxError, match="does not take --batch"):
        validate_options("onnx", FORMATS["onnx"].options, {"dynamic": True, "batch": 8})


class FakeConfig:
    """The IBuilderConfig timing-cache calls, with a cache that rejects blobs not starting with b'OK'."""

    def __init__(self, cache_out: object = "cache") -> None:
        self.attached: list[bytes] = []
        self.cache_out = cache_out

    def create_timing_cache(self, data: bytes) -> object:
        if data and not data.startswith(b"OK"):
            raise RuntimeError("Invalid timing cache")
        return types.SimpleNamespace(data=data)

    def set_timing_cache(self, cache: types.SimpleNamespace, ignore_mismatch: bool) -> bool:
        self.attached.append(cache.data)
        return not cache.data.startswith(b"OK-foreign")

    def get_timing_cache(self) -> object:
        if self.cache_out == "raise":
            raise RuntimeError("no cache")
        return None if self.cache_out is None else types.SimpleNamespace(serialize=lambda: memoryview(b"OK-new"))


def test_timing_cache_is_keyed_by_tensorrt_version_and_gpu(tmp_path: Path) -> None:
    a = te.timing_cache_path(tmp_path, HERE)
    assert a.parent == tmp_path and "10.9.0" in a.name and "sm90" in a.name
    assert len({a, te.timing_cache_path(tmp_path, {**HERE, "tensorrt_version": "11.4.0"}),
                te.timing_cache_path(tmp_path, {**HERE, "compute_capability": "8.9"})}) == 3


@pytest.mark.parametrize("blob", [b"garbage", b"OK-foreign"])
def test_broken_or_foreign_timing_cache_is_dropped_with_a_warning(tmp_path: Path, blob: bytes,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "t.timing"
    path.write_bytes(blob)
    config = FakeConfig()
    with caplog.at_level(logging.WARNING):
        te.attach_timing_cache(config, path)
    assert config.attached[-1] == b"" and "timing cache" in caplog.text and "dropped" in caplog.text
    good = FakeConfig()
    path.write_bytes(b"OK-cache")
    te.attach_timing_cache(good, path)
    assert good.attached == [b"OK-cache"]


@pytest.mark.parametrize("cache_out", [None, "raise"])
def test_missing_timing_cache_is_never_fatal(tmp_path: Path, cache_out: object) -> None:
    path = tmp_path / "t.timing"
    te.save_timing_cache(FakeConfig(cache_out), path)  # get_timing_cache() -> None or raising: nothing written
    assert not path.exists()
    te.save_timing_cache(FakeConfig(), path)
    assert path.read_bytes() == b"OK-new"


def test_foreign_engine_is_refused_in_one_line_naming_both_sides(tmp_path: Path) -> None:
    engine = tmp_path / "best.engine"
    check_engine_env(engine, HERE, HERE)  # same setup: accepted
    for key, value in (("gpu_name", "NVIDIA GeForce RTX 4090"), ("tensorrt_version", "11.4.0"),
                       ("compute_capability", "8.9")):
        with pytest.raises(SegxError) as e:
            check_engine_env(engine, {**HERE, key: value}, HERE)
        msg = str(e.value)
        assert str(engine) in msg and value in msg and f"(here {HERE[key]})" in msg and REBUILD in msg
        assert "best.engine.onnx" in msg and "\n" not in msg
    with pytest.raises(SegxError, match="gpu name \\?"):
        check_engine_env(engine, {"tensorrt_version": "10.9.0", "compute_capability": "9.0"}, HERE)


def test_sidecar_round_trip_and_problems(tmp_path: Path) -> None:
    engine = tmp_path / "best.engine"
    with pytest.raises(SegxError, match="sidecar best.engine.json is missing.*rebuild"):
        read_sidecar(engine, REBUILD)
    meta = ModelMeta(arch="lraspp_mobilenet_v3_large", precision="fp16", extra=HERE)
    sidecar_path(engine).write_text(json.dumps(meta.to_dict()))
    assert read_sidecar(engine, REBUILD) == meta
    sidecar_path(engine).write_text("{not json")
    with pytest.raises(SegxError, match="unreadable metadata sidecar"):
        read_sidecar(engine, REBUILD)


def test_foreign_engine_is_rebuilt_from_its_source_onnx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rebuild path without a GPU: build_engine and the local setup stand in, the bookkeeping is real."""
    engine, onnx_bytes = tmp_path / "best.engine", b"onnx-graph"
    shapes = te.profile_for(64, True, batch=4)
    built = {**HERE, "gpu_name": "Other GPU", "onnx_sha256": te.sha256(onnx_bytes), "profile": shapes.to_dict()}
    engine.write_bytes(b"old engine")
    sidecar_path(engine).write_text(json.dumps(ModelMeta(arch="toy", precision="fp16", extra=built).to_dict()))
    calls: list[tuple[bytes, te.Profile]] = []

    def fake_build(trt: object, data: bytes, got: te.Profile, **kw: object) -> bytes:
        calls.append((data, got))
        return b"new engine"

    monkeypatch.setattr(tensorrt_rt, "build_engine", fake_build)
    monkeypatch.setattr(te, "current_env", lambda trt, device="cuda": dict(HERE))
    assert not tensorrt_rt.rebuild(object(), engine, "cuda")  # no source ONNX beside it: nothing to rebuild from
    te.source_path(engine).write_bytes(b"another graph")
    with pytest.raises(SegxError, match="not the ONNX best.engine was built from"):
        tensorrt_rt.rebuild(object(), engine, "cuda")
    te.source_path(engine).write_bytes(onnx_bytes)
    assert tensorrt_rt.rebuild(object(), engine, "cuda")
    assert calls == [(onnx_bytes, shapes)] and engine.read_bytes() == b"new engine"
    side = read_sidecar(engine, REBUILD)
    check_engine_env(engine, side.extra, HERE)  # the sidecar now says: built here
    assert side.precision == "fp16" and side.extra["onnx_sha256"] == te.sha256(onnx_bytes)


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


# -- the Q/DQ form TensorRT takes -------------------------------------------------------------------------------------
def _qdq_model(zp_type: int | None, zp: int = 0) -> onnx.ModelProto:
    inits = [helper.make_tensor("s", TensorProto.FLOAT, [], [0.1])]
    q_inputs = ["x", "s"]
    if zp_type is not None:
        inits.append(helper.make_tensor("z", zp_type, [], [zp]))
        q_inputs.append("z")
    nodes = [helper.make_node("QuantizeLinear", q_inputs, ["q"], name="q0"),
             helper.make_node("DequantizeLinear", ["q", *q_inputs[1:]], ["y"], name="dq0")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])], inits)
    return helper.make_model(graph)


def test_qdq_form_tensorrt_takes() -> None:
    check_qdq_form(_qdq_model(TensorProto.INT8, 0))
    for model, match in ((_qdq_model(TensorProto.UINT8, 128), "uint8 zero point"),
                         (_qdq_model(TensorProto.INT8, 3), "int8 zero point \\[3\\]"),
                         (_qdq_model(None), "no zero point")):
        with pytest.raises(SegxError, match=match):
            check_qdq_form(model)
    float_only = _qdq_model(TensorProto.INT8)
    del float_only.graph.node[:]
    with pytest.raises(SegxError, match="no QuantizeLinear"):
        check_qdq_form(float_only)


# -- what TensorRT gets, checked in ONNX Runtime CPU ------------------------------------------------------------------
def _input_types(model: onnx.ModelProto) -> dict[str, int]:
    """elem type of every tensor (graph inputs, initializers, inferred values)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    types_ = {v.name: v.type.tensor_type.elem_type for v in
              [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]}
    types_.update({i.name: i.data_type for i in model.graph.initializer})
    return types_


@pytest.mark.slow
def test_fp16_onnx_passes_the_fp16_gate_in_onnxruntime(multiclass: tuple, synth_voc: Path, tmp_path: Path) -> None:
    """The fp16 graph (what TensorRT builds for --fp16): float32 I/O, fp16 convolutions, the sensitive ops and the
    final Resize in float32; ONNX Runtime CPU runs it within the fp16 gate on a many-class model."""
    from exporters import run_export
    from exporters.onnx_fp16 import SENSITIVE_OPS, final_resizes, float_types

    result = run_export(multiclass, "onnx", fp16=True, imgsz=64, data=synth_voc, n_verify=8, out=tmp_path)
    assert result.passed and result.precision == "fp16" and not result.fell_back, result.summary()
    check = result.kept.checks[0]  # type: ignore[union-attr]
    assert check.precision == "fp16" and check.pixel_agreement >= 0.995 and check.max_abs_diff > 0
    with load_runtime(result.path) as rt:
        assert rt.meta.precision == "fp16"
    model = onnx.load(result.path)  # type: ignore[arg-type]
    assert [i.type.tensor_type.elem_type for i in (*model.graph.input, *model.graph.output)] == \
        [TensorProto.FLOAT, TensorProto.FLOAT]
    counts = float_types(model)
    assert counts["float16"] > 10 * max(1, counts["float32"])  # the convolution weights are fp16
    kinds = _input_types(model)
    sensitive = [n for n in model.graph.node if n.op_type in SENSITIVE_OPS or n.name in final_resizes(model)]
    assert any(n.op_type == "Resize" for n in sensitive) and any(n.op_type == "ReduceMean" for n in sensitive)
    assert all(kinds[n.input[0]] == TensorProto.FLOAT for n in sensitive)
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    assert convs and all(kinds[n.input[0]] == TensorProto.FLOAT16 for n in convs)


@pytest.mark.slow
def test_tensorrt_int8_qdq_has_zero_point_0_and_passes_the_int8_gate(multiclass: tuple, synth_voc: Path,
                                                                       tmp_path: Path) -> None:
    """The Q/DQ model exporters.tensorrt hands TensorRT (made by exporters.qdq), run by ONNX Runtime CPU."""
    pytest.importorskip("exporters.qdq", reason="the TensorRT Q/DQ form comes with exporters.qdq (issue 15)")
    from exporters.job import ExportOptions, Source, make_job
    from exporters.tensorrt import int8_onnx
    from segx.parity import check_parity
    from segx.runtimes.torch_rt import TorchRuntime

    module, meta = multiclass
    job = make_job(Source(module, meta), ExportOptions(imgsz=64, int8=True, data=synth_voc), "int8", tmp_path)
    model = int8_onnx(job)  # check_qdq_form ran inside: signed int8, zero point 0
    zps = [i for i in model.graph.initializer if i.data_type == TensorProto.INT8 and "zero_point" in i.name]
    assert zps and not any(onnx.numpy_helper.to_array(z).any() for z in zps)
    path = tmp_path / "trt_int8.onnx"
    onnx.save(model, path)
    with TorchRuntime.from_module(module, meta, channels_last=False) as ref, load_runtime(path) as cand:
        result = check_parity(ref, cand, data=synth_voc, split="val", imgsz=64)
    assert result.precision == "int8" and result.passed, result.reason


# -- ONNX Runtime never runs a CUDA request on the CPU ----------------------------------------------------------------
def _tiny_onnx(path: Path) -> Path:
    """A one-node ONNX model (Identity on N×3×8×8): enough for ONNX Runtime to create a session."""
    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 3, 8, 8]) for n in ("images", "logits")]
    onnx.save(helper.make_model(helper.make_graph([helper.make_node("Identity", ["images"], ["logits"])], "g",
                                                  io[:1], io[1:])), path)
    return path


def test_onnxruntime_cuda_request_is_a_skipped_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Asked for CUDA, ONNX Runtime CPU here: a skipped bench row with the reason, never a CPU timing; also when
    the provider is listed as available but the session drops it (missing CUDA / cuDNN libraries)."""
    import onnxruntime as ort

    from bench.worker import run_spec

    spec = {"model": str(_tiny_onnx(tmp_path / "m.onnx")), "runtime": "onnxruntime", "precision": "fp32",
            "device": "cuda", "batch": 1, "imgsz": 8, "speed": {"min_iters": 1, "min_time": 0}}
    row = run_spec(spec)
    assert row["status"] == "skipped" and "CUDA execution provider" in row["error"] and "p50_ms" not in row
    listed = [*ort.get_available_providers(), "CUDAExecutionProvider"]
    monkeypatch.setattr(ort, "get_available_providers", lambda: listed)  # as onnxruntime-gpu without its libraries
    with pytest.warns(UserWarning, match="CUDAExecutionProvider"):
        row = run_spec(spec)
    assert row["status"] == "skipped" and "p50_ms" not in row, row
    assert "could not create CUDAExecutionProvider" in row["error"] and "run on the CPU" in row["error"]


def test_onnxruntime_tensorrt_ep_caches_are_keyed(monkeypatch: pytest.MonkeyPatch) -> None:
    from segx.runtimes.onnxruntime_rt import OnnxRuntime, trt_ep_cache_dir

    rt = OnnxRuntime.__new__(OnnxRuntime)
    rt.device, rt.options = "cuda:1", {"tensorrt_ep": True}
    providers = rt._providers()
    name, opts = providers[0]
    assert name == "TensorrtExecutionProvider" and opts["device_id"] == 1
    assert opts["trt_engine_cache_path"] == opts["trt_timing_cache_path"] == str(trt_ep_cache_dir(1))
    assert opts["trt_engine_cache_enable"] and opts["trt_timing_cache_enable"]
    assert "trt" in trt_ep_cache_dir(1).name and "sm" in trt_ep_cache_dir(1).name


# -- on a GPU ---------------------------------------------------------------------------------------------------------
@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("options", [{}, {"fp16": True}, {"dynamic": True, "batch": 4}])
def test_engine_builds_and_passes_parity(options: dict, multiclass: tuple, synth_voc: Path, tmp_path: Path) -> None:
    from exporters import run_export

    result = run_export(multiclass, "trt", imgsz=64, data=synth_voc, n_verify=8, out=tmp_path, **options)
    assert result.passed and not result.fell_back, result.summary()
    side = json.loads(sidecar_path(result.path).read_text())
    assert {*te.ENV_KEYS, "onnx_sha256", "profile"} <= set(side["extra"])
    assert side["extra"]["profile"]["opt"][0] == options.get("batch", 1)
    assert te.source_path(result.path).is_file()
    with load_runtime(result.path, device="cuda") as rt:
        assert rt.meta.precision == result.precision
    side["extra"]["gpu_name"] = "Some Other GPU"
    sidecar_path(result.path).write_text(json.dumps(side))
    with pytest.raises(SegxError, match="rebuild the engine"):
        load_runtime(result.path, device="cuda", rebuild=False)
    with load_runtime(result.path, device="cuda") as rt:  # source ONNX beside it: rebuilt for this GPU
        assert rt.meta.extra["gpu_name"] == torch.cuda.get_device_name(0)


@gpu
@pytest.mark.gpu
def test_int8_engine_passes_its_gate(multiclass: tuple, synth_voc: Path, tmp_path: Path) -> None:
    from exporters import run_export

    result = run_export(multiclass, "trt", imgsz=64, int8=True, data=synth_voc, n_verify=8, out=tmp_path)
    assert result.passed and result.precision == "int8", result.summary()


@gpu
@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_engine_runs_on_the_device_asked(multiclass: tuple, synth_voc: Path, tmp_path: Path) -> None:
    from exporters import export

    path = export(multiclass, "trt", imgsz=64, out=tmp_path, verify=False)
    with load_runtime(path, device="cuda:1") as rt:
        out = rt.infer(np.zeros((1, 3, 64, 64), np.float32))
    assert out.shape == (1, 21, 64, 64) and np.isfinite(out).all()
