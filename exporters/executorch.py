"""ExecuTorch export: torch.export of the eval model, lowered to the XNNPACK backend and written as a `.pte`
program (fp32, or INT8 through PT2E quantisation with XNNPACKQuantizer calibrated on real images of --data).
ModelMeta goes to the `.pte.json` sidecar (a .pte has no metadata slot the Python runtime reads)."""
from __future__ import annotations

import copy
from importlib.metadata import version
from pathlib import Path

import torch

from exporters.edge import calibrated_pt2e, refuse_known, write_sidecar
from exporters.job import ExportJob


def export_executorch(job: ExportJob, path: Path) -> None:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    refuse_known(job, "executorch")
    module = quantized(job) if job.precision == "int8" else copy.deepcopy(job.module).eval()
    with torch.no_grad():
        program = torch.export.export(module, (job.example(),))
    lowered = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()]).to_executorch()
    path.write_bytes(lowered.buffer)
    write_sidecar(job, path, executorch=version("executorch"), backend="xnnpack")


def quantized(job: ExportJob) -> torch.nn.Module:
    """PT2E INT8: symmetric per-channel weights, per-tensor activations (XNNPACK's static quantisation)."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (XNNPACKQuantizer,
                                                                          get_symmetric_quantization_config)

    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    return calibrated_pt2e(job, quantizer)
