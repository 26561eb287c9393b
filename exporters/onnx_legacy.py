"""ONNX export through torch.onnx's TorchScript-based exporter (dynamo=False) for models whose shapes depend on the
data, which torch.export cannot capture (Mask R-CNN: the number of detections). A model opts in with the class
attribute `onnx_dynamo = False`. The batch of `x` is fixed (the trace unrolls the per-image work: Mask R-CNN exports at
batch 1, see ExportJob.example); dynamic=True makes H and W dynamic."""
from __future__ import annotations

import io

import onnx
import torch
from torch import nn


def legacy_onnx(module: nn.Module, x: torch.Tensor, *, opset: int, dynamic: bool, input_name: str,
                output_name: str) -> onnx.ModelProto:
    axes = {input_name: {2: "height", 3: "width"}, output_name: {2: "height", 3: "width"}} if dynamic else None
    buffer = io.BytesIO()
    torch.onnx.export(module, (x,), buffer, dynamo=False, opset_version=opset, input_names=[input_name],
                      output_names=[output_name], dynamic_axes=axes, do_constant_folding=True)
    return onnx.load_from_string(buffer.getvalue())
