"""TensorRT export, strongly typed only (one code path for TensorRT 10.x and 11.x): the precision is the ONNX graph's
— the float export, its fp16 conversion (exporters.onnx_fp16) or the explicit Q/DQ INT8 model in TensorRT's form
(exporters.qdq: signed int8, zero point 0, per-channel weights) — built by segx.runtimes.tensorrt_engine. Writes
MODEL.engine, MODEL.engine.json (provenance) and MODEL.engine.onnx (the source, so a foreign engine can be rebuilt)."""
from __future__ import annotations

import logging
from pathlib import Path

import onnx

from exporters.job import ExportJob
from exporters.onnx import INPUT, onnx_model
from exporters.onnx_fp16 import to_fp16
from segx.errors import SegxError
from segx.io import atomic_write_bytes, atomic_write_json
from segx.runtimes.tensorrt_engine import Profile, build_engine, profile_for, provenance, sidecar_path, source_path
from segx.runtimes.tensorrt_rt import require_tensorrt

log = logging.getLogger(__name__)

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


def int8_onnx(job: ExportJob) -> onnx.ModelProto:
    """The Q/DQ INT8 model TensorRT gets, from the one INT8 export path (exporters.qdq), checked for its form."""
    from exporters.onnx import tensorrt_int8_onnx

    model = tensorrt_int8_onnx(job)
    check_qdq_form(model)
    return model


def check_qdq_form(model: onnx.ModelProto) -> None:
    """TensorRT's explicit quantisation: every Q/DQ zero point is signed int8 and 0 (symmetric); raises otherwise."""
    inits = {i.name: i for i in model.graph.initializer}
    nodes = [n for n in model.graph.node if n.op_type in QDQ_OPS]
    if not nodes:
        raise SegxError("the INT8 ONNX holds no QuantizeLinear / DequantizeLinear nodes; TensorRT would build it "
                        "in float")
    for node in nodes:
        if len(node.input) < 3 or not node.input[2]:
            if node.op_type == "QuantizeLinear":  # ONNX's default zero point is uint8
                raise SegxError(f"QuantizeLinear {node.name} has no zero point (ONNX then quantises to uint8); "
                                f"TensorRT needs signed int8 with zero point 0")
            continue
        zp = inits.get(node.input[2])
        values = onnx.numpy_helper.to_array(zp) if zp is not None else None
        if zp is None or zp.data_type != onnx.TensorProto.INT8 or values.any():
            kind = onnx.helper.tensor_dtype_to_np_dtype(zp.data_type).name if zp is not None else "non-constant"
            shown = values.ravel()[:3].tolist() if values is not None else "?"
            raise SegxError(f"Q/DQ node {node.name or node.op_type} has a {kind} zero point {shown}; TensorRT "
                            f"needs signed int8 with zero point 0")


def source_onnx(job: ExportJob) -> onnx.ModelProto:
    """The graph TensorRT builds for the job's precision (metadata included)."""
    if job.precision == "int8":
        return int8_onnx(job)
    model = onnx_model(job)
    return to_fp16(model) if job.precision == "fp16" else model


def export_tensorrt(job: ExportJob, path: Path) -> None:
    trt = require_tensorrt("TensorRT export")
    onnx_bytes = source_onnx(job).SerializeToString()
    shapes: Profile = profile_for(job.meta.imgsz, job.meta.dynamic, job.opts.batch)
    device = "cuda"
    data = build_engine(trt, onnx_bytes, shapes, input_name=INPUT, device=device, workspace_gib=job.opts.workspace,
                        cache_dir=job.cache_dir)
    path.write_bytes(data)
    atomic_write_bytes(source_path(path), onnx_bytes)
    extra = {**job.meta.extra, **provenance(trt, device, onnx_bytes, shapes), "input": INPUT}
    atomic_write_json(sidecar_path(path), job.meta.replace(extra=extra).to_dict())


def check_available() -> None:
    """Raise the one-line 'needs an NVIDIA GPU with CUDA and tensorrt' error before any work is done."""
    require_tensorrt("TensorRT export")
