"""Export formats: FORMATS, the one table (format name, aliases, file suffix, exporter function, options it takes,
devices), and `export()` / `run_export()`, the Python API `segx export` wraps. New format = one module + one row."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from exporters.edge import checker
from exporters.executorch import export_executorch
from exporters.job import ExportJob, ExportOptions
from exporters.litert import export_litert
from exporters.ncnn import export_ncnn
from exporters.onnx import export_onnx
from exporters.openvino import export_openvino
from exporters.pipeline import Attempt, ExportResult, run
from exporters.tensorrt import check_available as tensorrt_available
from exporters.tensorrt import export_tensorrt
from exporters.torchscript import export_torchscript
from exporters.triton import (export_triton_onnx, export_triton_openvino, export_triton_tensorrt,
                              repository_suffix)
from segx.errors import SegxError, unknown_choice
from segx.meta import ModelMeta


@dataclass(frozen=True)
class Format:
    key: str
    aliases: tuple[str, ...]
    suffix: str                                  # the model file (the runtime's suffix)
    function: Callable[[ExportJob, Path], None]  # writes the model (and its companions) at the given path
    options: tuple[str, ...]                     # options beyond the common ones (exporters.job.COMMON_OPTIONS)
    runtime: str                                 # segx.runtimes name that loads the file (parity check)
    devices: tuple[str, ...] = ("cpu",)          # where the parity check runs the export (first entry)
    companions: tuple[str, ...] = ()             # files written beside it: stem + suffix
    check: Callable[[], None] | None = None      # raises RuntimeUnavailable when the format cannot be built here
    fallbacks: tuple[str, ...] = ("fp16", "fp32")  # precisions a failed int8 / fp16 may fall back to
    base: str | None = None                      # the format a wrapper row packages (Triton repositories)


FORMATS: dict[str, Format] = {f.key: f for f in (
    Format("onnx", (), ".onnx", export_onnx, ("dynamic", "fp16", "int8", "simplify", "opset"), "onnxruntime",
           fallbacks=("fp32",)),  # an fp16 graph is for GPUs: on a CPU it runs slower than fp32
    Format("trt", ("engine", "tensorrt"), ".engine", export_tensorrt,
           ("dynamic", "fp16", "int8", "simplify", "opset", "workspace", "batch"), "tensorrt", ("cuda",),
           (".engine.json", ".engine.onnx"), tensorrt_available),
    Format("openvino", ("ov",), ".xml", export_openvino, ("dynamic", "fp16", "int8", "simplify", "opset"),
           "openvino", ("cpu",), (".bin",)),
    Format("torchscript", ("ts", "jit"), ".torchscript", export_torchscript, ("dynamic",), "torchscript"),
    Format("executorch", ("pte", "et"), ".pte", export_executorch, ("int8",), "executorch", ("cpu",),
           (".pte.json",), checker("executorch.exir", "executorch", "executorch")),
    Format("litert", ("tflite",), ".tflite", export_litert, ("fp16", "int8"), "litert", ("cpu",),
           (".tflite.json",), checker("litert_torch", "litert", "litert-torch")),
    Format("ncnn", (), ".ncnn.param", export_ncnn, ("fp16", "int8"), "ncnn", ("cpu",),
           (".bin", ".param.json"), checker("pnnx", "ncnn", "pnnx")),
    # Triton model repositories (exporters.triton): the same exports inside <stem>_triton/segx/1/ + config.pbtxt
    Format("triton", ("triton-onnx",), repository_suffix("onnx"), export_triton_onnx,
           ("dynamic", "int8", "simplify", "opset"), "onnxruntime", base="onnx"),
    Format("triton-openvino", ("triton-ov",), repository_suffix("openvino"), export_triton_openvino,
           ("dynamic", "fp16", "int8", "simplify", "opset"), "openvino", ("cpu",), (".bin",), base="openvino"),
    Format("triton-trt", ("triton-tensorrt",), repository_suffix("trt"), export_triton_tensorrt,
           ("dynamic", "fp16", "int8", "simplify", "opset", "workspace"), "tensorrt", ("cuda",), (".plan.json",),
           tensorrt_available, base="trt"),
)}


def get_format(name: str) -> Format:
    """A FORMATS row by key or alias (case-insensitive); unknown names suggest the closest."""
    key = name.lower().lstrip(".")
    for row in FORMATS.values():
        if key == row.key or key in row.aliases:
            return row
    raise unknown_choice("export format", name, [n for r in FORMATS.values() for n in (r.key, *r.aliases)])


def run_export(model: str | Path | tuple[nn.Module, ModelMeta], fmt: str, **options: Any) -> ExportResult:
    """Export and verify; returns every precision attempt with its parity checks (see ExportResult.summary())."""
    return run(get_format(fmt), model, options)


def export(model: str | Path | tuple[nn.Module, ModelMeta], fmt: str, **options: Any) -> Path:
    """Export a segx checkpoint (or an (nn.Module, ModelMeta) pair, with out=DIR) to `fmt` and check it against
    PyTorch. Options: see ExportOptions. Returns the path of the file kept; with int8/fp16 that is the best precision
    that passed its gate (the name shows it, e.g. best.onnx instead of best_int8.onnx). Raises SegxError when no
    precision passes."""
    result = run_export(model, fmt, **options)
    if not result.passed or result.path is None:
        raise SegxError(result.summary())
    return result.path


__all__ = ["FORMATS", "Attempt", "ExportOptions", "ExportResult", "Format", "export", "get_format", "run_export"]
