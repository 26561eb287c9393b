"""OpenVINO export: the ONNX export (same tracing path, same checks) converted with openvino.convert_model and saved
as IR (.xml + .bin): fp32, fp16 (compressed weights) or INT8 through NNCF post-training quantisation on real images
of the split. ModelMeta goes into rt_info["segx"]."""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import onnx

from segx.runtimes.openvino_rt import RT_INFO_KEY
from exporters.job import ExportJob
from exporters.onnx import onnx_model
from exporters.quantize import CalibrationImages

log = logging.getLogger(__name__)


def export_openvino(job: ExportJob, path: Path) -> None:
    import openvino as ov

    with tempfile.TemporaryDirectory(prefix="segx-ov-") as tmp:
        onnx_file = Path(tmp) / "model.onnx"
        onnx.save(onnx_model(job), onnx_file)
        model = ov.convert_model(onnx_file)
        if job.precision == "int8":
            model = quantize_openvino(model, job)
        for key, value in job.meta.to_strings().items():
            model.set_rt_info(value, [RT_INFO_KEY, key])
        ov.save_model(model, path, compress_to_fp16=job.precision == "fp16")


def quantize_openvino(model: Any, job: ExportJob) -> Any:
    """NNCF post-training INT8 (performance preset: symmetric activations, per-channel weights; the transformer
    model type for transformer archs, which keeps softmax / layer-norm patterns in float)."""
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)  # "No CUDA runtime" noise on import
    import nncf

    images = CalibrationImages(job.opts.data, job.opts.split, job.meta.imgsz,  # type: ignore[arg-type]
                               skip=job.opts.n_verify)
    log.info("INT8: NNCF calibration on %d images of split '%s'", images.n_images, job.opts.split)
    from segx.models import get_arch, list_archs

    transformer = job.meta.arch in list_archs() and get_arch(job.meta.arch).family == "transformer"
    return nncf.quantize(model, nncf.Dataset(list(images)), preset=nncf.QuantizationPreset.PERFORMANCE,
                         subset_size=images.n_images, model_type=nncf.ModelType.TRANSFORMER if transformer else None)
