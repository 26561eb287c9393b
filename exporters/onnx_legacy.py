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
    # traced with dynamic H/W even for a fixed size, which is then pinned on the graph's input and output: the fixed-size
    # trace annotates Mask R-CNN's mask-pasting Loop with shapes OpenVINO's ONNX frontend rejects
    axes = {input_name: {2: "height", 3: "width"}, output_name: {2: "height", 3: "width"}}
    buffer = io.BytesIO()
    torch.onnx.export(module, (x,), buffer, dynamo=False, opset_version=opset, input_names=[input_name],
                      output_names=[output_name], dynamic_axes=axes, do_constant_folding=True)
    model = onnx.load_from_string(buffer.getvalue())
    if not dynamic:
        for value in (model.graph.input[0], model.graph.output[0]):
            for dim, size in zip(value.type.tensor_type.shape.dim[2:], x.shape[2:]):
                dim.Clear()
                dim.dim_value = int(size)
    return model
