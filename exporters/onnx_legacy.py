"""ONNX export through torch.onnx's TorchScript-based exporter (dynamo=False) for models whose shapes depend on the
data, which torch.export cannot capture (Mask R-CNN: the number of detections). A model opts in with the class
attribute `onnx_dynamo = False`. The batch of `x` is fixed (the trace unrolls the per-image work: Mask R-CNN exports at
batch 1, see ExportJob.example); H and W are always traced dynamic and `pin_hw` fixes them for a fixed-size export."""
from __future__ import annotations

import io

import onnx
import torch
from torch import nn


def legacy_onnx(module: nn.Module, x: torch.Tensor, *, opset: int, input_name: str,
                output_name: str) -> onnx.ModelProto:
    """The graph with dynamic H/W. A fixed-size trace (or one pinned before onnxslim runs its shape inference)
    annotates Mask R-CNN's mask-pasting Loop with shapes OpenVINO's ONNX frontend rejects, so fixed sizes are pinned
    on the graph's input and output only, after simplification."""
    axes = {input_name: {2: "height", 3: "width"}, output_name: {2: "height", 3: "width"}}
    buffer = io.BytesIO()
    torch.onnx.export(module, (x,), buffer, dynamo=False, opset_version=opset, input_names=[input_name],
                      output_names=[output_name], dynamic_axes=axes, do_constant_folding=True)
    return onnx.load_from_string(buffer.getvalue())


def pin_hw(model: onnx.ModelProto, hw: tuple[int, int]) -> None:
    """Fix the H and W of the graph's (first) input and output to `hw`, in place."""
    for value in (model.graph.input[0], model.graph.output[0]):
        for dim, size in zip(value.type.tensor_type.shape.dim[2:], hw):
            dim.Clear()
            dim.dim_value = int(size)
