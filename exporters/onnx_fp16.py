"""FP16 ONNX: the float export converted by ONNX Runtime's float16 converter (onnxruntime.transformers.float16) with
float32 inputs/outputs and the numerically sensitive ops (softmax, normalisation, reductions, the final resize) kept
in float32. The graph TensorRT builds strongly typed for `--fp16`, and `segx export --fmt onnx --fp16`."""
from __future__ import annotations

import logging

import onnx

from segx.errors import SegxError
from segx.runtimes.base import RuntimeUnavailable

log = logging.getLogger(__name__)

# ops computed in float32 inside the fp16 graph: exp / sums / variances overflow or lose the small terms in fp16
SENSITIVE_OPS = ("Softmax", "LogSoftmax", "BatchNormalization", "InstanceNormalization", "LayerNormalization",
                 "GroupNormalization", "ReduceMean", "ReduceSum", "ReduceSumSquare", "ReduceL2", "ReduceLogSumExp",
                 "ReduceMax", "ReduceMin", "ReduceProd", "Pow", "Sqrt", "Exp", "Erf")
PASS_THROUGH = ("Identity", "Cast", "Reshape", "Transpose", "Squeeze", "Unsqueeze")


def final_resizes(model: onnx.ModelProto) -> list[str]:
    """Names of the Resize nodes that produce a graph output (through pass-through ops): the logits upsample."""
    producer = {out: node for node in model.graph.node for out in node.output}
    found: list[str] = []
    for output in model.graph.output:
        node = producer.get(output.name)
        while node is not None and node.op_type in PASS_THROUGH:
            node = producer.get(node.input[0])
        if node is not None and node.op_type == "Resize":
            found.append(node.name)
    return found


def to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """The fp16 graph of a float ONNX model: float32 I/O, SENSITIVE_OPS and the final Resize in float32."""
    try:
        from onnxruntime.transformers import float16
    except ImportError as e:
        raise RuntimeUnavailable("fp16 ONNX needs ONNX Runtime's float16 converter: pip install 'segx[cpu]' "
                                 "(or 'segx[gpu]' on an NVIDIA GPU)") from e

    unnamed = [n for n in model.graph.node if not n.name]
    for i, node in enumerate(unnamed):  # node_block_list addresses nodes by name
        node.name = f"segx_node_{i}"
    blocked = final_resizes(model)
    if not blocked:
        log.info("fp16: no Resize produces the output; every op outside %s runs in fp16", ", ".join(SENSITIVE_OPS))
    try:
        converted = float16.convert_float_to_float16(
            model, keep_io_types=True, op_block_list=[*float16.DEFAULT_OP_BLOCK_LIST, *SENSITIVE_OPS],
            node_block_list=blocked)
    except Exception as e:  # noqa: BLE001 - the converter raises AssertionError / ValueError / onnx errors
        raise SegxError(f"fp16 conversion of the ONNX graph failed: {type(e).__name__}: {e}") from e
    converted = topological(converted)  # the converter appends its input Casts after their consumers
    onnx.checker.check_model(converted)
    return converted


def topological(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with its nodes in topological order (onnx_ir, which torch.onnx's exporter already installs)."""
    import onnx_ir as ir

    graph = ir.serde.deserialize_model(model)
    graph.graph.sort()
    return ir.serde.serialize_model(graph)


def float_types(model: onnx.ModelProto) -> dict[str, int]:
    """How many initializers hold float16 / float32 weights (what the conversion changed)."""
    counts = {"float16": 0, "float32": 0}
    names = {onnx.TensorProto.FLOAT16: "float16", onnx.TensorProto.FLOAT: "float32"}
    for init in model.graph.initializer:
        if init.data_type in names:
            counts[names[init.data_type]] += 1
    return counts
