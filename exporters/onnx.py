"""ONNX export: torch.onnx.export (the torch.export-based exporter, default since torch 2.9) at a fixed size or with
dynamic batch/H/W, onnxslim simplification, onnx.checker, segx metadata in metadata_props; INT8: the Q/DQ model of
exporters.qdq in the form ONNX Runtime runs fastest."""
from __future__ import annotations

import warnings
from pathlib import Path

import onnx
import torch

from exporters.job import ExportJob
from exporters.onnx_fp16 import to_fp16
from exporters.onnx_legacy import legacy_onnx, pin_hw
from segx.errors import SegxError
from segx.meta import ModelMeta
from segx.models.heads import OUTPUT_NAMES

DEFAULT_OPSET = 18   # the torch.export-based exporter's native opset; ONNX_OPSETS lists the others allowed
INPUT, OUTPUT = "images", "logits"  # a mask head's outputs: segx.models.heads.OUTPUT_NAMES


def set_metadata(model: onnx.ModelProto, meta: ModelMeta) -> None:
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, meta.to_strings())


def onnx_model(job: ExportJob) -> onnx.ModelProto:
    """The float ONNX model of job.module (checked, simplified unless opts.simplify is False), metadata set.
    Traced once per run: the precision fall-backs of one export reuse it."""
    key = ("onnx", job.meta.imgsz, job.meta.dynamic, job.opts.opset, job.opts.simplify, job.meta.head)
    if key not in job.traced:
        job.traced[key] = _trace(job)
    model = onnx.ModelProto()
    model.CopyFrom(job.traced[key])
    set_metadata(model, job.meta)
    return model


def _trace(job: ExportJob) -> onnx.ModelProto:
    x = job.example()
    dynamic = None
    if job.meta.dynamic:
        dims = {0: torch.export.Dim("batch"), 2: torch.export.Dim("height"), 3: torch.export.Dim("width")}
        dynamic = (dims,)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        if getattr(job.module, "onnx_dynamo", True):
            model = torch.onnx.export(job.module, (x,), None, dynamo=True, opset_version=job.opts.opset or
                                      DEFAULT_OPSET, input_names=[INPUT],
                                      output_names=list(OUTPUT_NAMES[job.meta.head]),
                                      dynamic_shapes=dynamic, verbose=False, report=False).model_proto
        else:  # data-dependent shapes (Mask R-CNN's detections): the TorchScript-based exporter, batch 1
            model = legacy_onnx(job.module, x, opset=job.opts.opset or DEFAULT_OPSET, input_name=INPUT,
                                output_name=OUTPUT)
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    if opset != (job.opts.opset or DEFAULT_OPSET):
        raise SegxError(f"torch.onnx wrote opset {opset} instead of {job.opts.opset}; choose another --opset")
    if job.opts.simplify:
        import onnxslim

        model = onnxslim.slim(model)
    if not job.meta.dynamic and not getattr(job.module, "onnx_dynamo", True):
        pin_hw(model, tuple(x.shape[2:]))  # after onnxslim (see exporters.onnx_legacy)
    onnx.checker.check_model(model, full_check=True)
    return model


def int8_model(job: ExportJob, model: onnx.ModelProto, form: str = "ort") -> onnx.ModelProto:
    """The Q/DQ INT8 model in `form` ("ort": what ONNX Runtime runs fastest; "tensorrt": signed symmetric int8
    activations, zero point 0) from the one INT8 path (exporters.qdq), with segx metadata."""
    import tempfile

    from exporters.qdq import build, calibrate
    from exporters.quantize import calibration_for
    from exporters.sensitivity import tune

    with tempfile.TemporaryDirectory(prefix="segx-qdq-") as tmp:
        cal = calibrate(model, Path(tmp), calibration_for(job), job.meta.dynamic)
        job.report["calibration"] = cal.images.describe()
        exclude = tune(cal, job, form)  # what the metric-driven search keeps in float (+ --explain's report)
        build(cal, Path(tmp) / "final.onnx", form, exclude)
        quantized = onnx.load(Path(tmp) / "final.onnx")
    set_metadata(quantized, job.meta)  # the quantiser does not keep metadata_props
    onnx.checker.check_model(quantized)
    return quantized


def tensorrt_int8_onnx(job: ExportJob) -> onnx.ModelProto:
    """The INT8 ONNX TensorRT gets: explicit Q/DQ, signed int8 symmetric activations (zero point 0), per-channel
    symmetric weights, from the same calibration policy and layer search as ONNX Runtime's form."""
    return int8_model(job, onnx_model(job), form="tensorrt")


def export_onnx(job: ExportJob, path: Path) -> None:
    model = onnx_model(job)
    if job.precision == "int8":
        onnx.save(int8_model(job, model), path)
    else:
        onnx.save(to_fp16(model) if job.precision == "fp16" else model, path)
