"""Triton model repositories for Triton's native backends: `<stem>_triton[_openvino|_trt]/segx/config.pbtxt` +
`1/model.<ext>`, ready to mount in NVIDIA's Triton container (`tritonserver --model-repository=<stem>_triton`). The
model file is the ordinary ONNX / OpenVINO / TensorRT export (same tracing, same parity check); config.pbtxt names
its tensors, dims, max_batch_size, dynamic batching and instance group. A --dynamic export batches (max_batch_size
8); a fixed one takes exactly [1, 3, H, W] (max_batch_size 0)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from exporters.job import ExportJob
from exporters.onnx import INPUT, export_onnx
from exporters.openvino import export_openvino
from exporters.tensorrt import export_tensorrt
from segx.io import atomic_write_text
from segx.meta import ModelMeta
from segx.models.heads import OUTPUT_NAMES

MODEL_NAME = "segx"
VERSION = "1"
MAX_BATCH = 8          # <= the TensorRT exporter's dynamic profile (16)
QUEUE_DELAY_US = 2000
_TYPES = {"logits": "TYPE_FP32", "mask": "TYPE_UINT8", "confidence": "TYPE_FP32"}


@dataclass(frozen=True)
class Backend:
    platform: str       # Triton's backend / platform name
    file: str           # default_model_filename Triton looks for in the version folder
    kind: str           # instance group kind


BACKENDS = {"onnx": Backend("onnxruntime_onnx", "model.onnx", "KIND_CPU"),
            "openvino": Backend("openvino", "model.xml", "KIND_CPU"),
            "trt": Backend("tensorrt_plan", "model.plan", "KIND_GPU")}


def repository_suffix(fmt: str) -> str:
    """The FORMATS suffix that puts the model file at <stem>_triton[_openvino|_trt]/segx/1/model.<ext>."""
    folder = "_triton" if fmt == "onnx" else f"_triton_{fmt}"
    return f"{folder}/{MODEL_NAME}/{VERSION}/{BACKENDS[fmt].file}"


def _dims(values: list[int | None]) -> str:
    return "[ " + ", ".join(str(v if v is not None else -1) for v in values) + " ]"


def model_config(meta: ModelMeta, fmt: str) -> str:
    """config.pbtxt text (Triton's ModelConfig protobuf in text format) for a segx export of `meta`."""
    backend = BACKENDS[fmt]
    hw: list[int | None] = [None, None] if meta.dynamic else [meta.imgsz, meta.imgsz]
    lead: list[int | None] = [] if meta.dynamic else [1]  # a fixed export has no batch dimension to share
    outs = {"logits": [*lead, meta.num_classes, *hw], "mask": [*lead, *hw], "confidence": [*lead, *hw]}
    key = "platform" if fmt == "trt" else "backend"
    lines = [f'name: "{MODEL_NAME}"', f'{key}: "{backend.platform}"',
             f"max_batch_size: {MAX_BATCH if meta.dynamic else 0}",
             f'default_model_filename: "{backend.file}"',
             f'input [ {{ name: "{INPUT}" data_type: TYPE_FP32 dims: {_dims([*lead, 3, *hw])} }} ]',
             "output [ " + ", ".join(f'{{ name: "{n}" data_type: {_TYPES[n]} dims: {_dims(outs[n])} }}'
                                     for n in OUTPUT_NAMES[meta.head]) + " ]",
             f"instance_group [ {{ count: 1 kind: {backend.kind} }} ]"]
    if meta.dynamic:
        lines.append(f"dynamic_batching {{ max_queue_delay_microseconds: {QUEUE_DELAY_US} }}")
    lines.append(f'parameters {{ key: "segx_meta" value: {{ string_value: {_quote(meta)} }} }}')
    return "\n".join(lines) + "\n"


def _quote(meta: ModelMeta) -> str:
    import json

    return json.dumps(json.dumps(meta.to_dict()))  # a protobuf text string literal (JSON escapes are valid there)


def _exporter(fmt: str, write: object) -> object:
    def export_triton(job: ExportJob, path: Path) -> None:
        """Write the model file at `path` (inside the version folder) and config.pbtxt two levels up."""
        write(job, path)  # type: ignore[operator]
        atomic_write_text(path.parent.parent / "config.pbtxt", model_config(job.meta, fmt))
    return export_triton


export_triton_onnx = _exporter("onnx", export_onnx)
export_triton_openvino = _exporter("openvino", export_openvino)
export_triton_tensorrt = _exporter("trt", export_tensorrt)
