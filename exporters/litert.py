"""LiteRT (TFLite) export with litert-torch, straight from torch (no TensorFlow): fp32; fp16 weights (ai-edge-
quantizer float casting of conv / fully-connected weights, compute stays fp32); INT8 through litert-torch's PT2E
quantiser calibrated on real images of --data. ModelMeta goes to the `.tflite.json` sidecar."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from exporters.edge import calibrated_pt2e, no_dynamic, refuse_known, write_sidecar
from exporters.job import ExportJob


def export_litert(job: ExportJob, path: Path) -> None:
    import litert_torch

    refuse_known(job, "litert")
    no_dynamic(job, "litert")
    kwargs: dict[str, Any] = {}
    module = copy.deepcopy(job.module).eval()
    if job.precision == "int8":
        module, kwargs["quant_config"] = quantized(job)
    model = litert_torch.convert(module, (job.example(),), **kwargs)
    data = model.tflite_model() if hasattr(model, "tflite_model") else None
    if job.precision == "fp16":
        data = fp16_weights(data if data is not None else _bytes(model, path))
    if data is not None:
        path.write_bytes(bytes(data))
    else:
        model.export(str(path))
    write_sidecar(job, path, litert_torch=litert_torch.__version__)


def _bytes(model: Any, path: Path) -> bytes:
    model.export(str(path))
    return path.read_bytes()


def quantized(job: ExportJob) -> tuple[Any, Any]:
    """PT2E static INT8 (per-channel symmetric weights) and the QuantConfig litert-torch lowers it with."""
    from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
    from litert_torch.quantize.quant_config import QuantConfig

    quantizer = PT2EQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True,
                                                                             is_dynamic=False))
    return calibrated_pt2e(job, quantizer, fold_quantize=False), QuantConfig(pt2e_quantizer=quantizer)


def fp16_weights(tflite: bytes) -> bytes:
    """Cast conv / depthwise / transposed-conv / fully-connected weights to fp16 (weight-only float casting)."""
    from ai_edge_quantizer import quantizer, recipe_manager
    from ai_edge_quantizer.algorithms.nonlinear_quantize import float_casting

    manager = recipe_manager.RecipeManager()
    for op in float_casting.SUPPORTED_WEIGHT_QUANT_OPS:
        manager.add_weight_only_config(regex=".*", operation_name=op, num_bits=16,
                                       algorithm_key=float_casting.ALGORITHM_KEY)
    result = quantizer.Quantizer(bytearray(tflite), manager.get_quantization_recipe()).quantize()
    return bytes(result.quantized_model)
