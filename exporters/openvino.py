"""OpenVINO export: the ONNX export (same tracing path, same checks) converted with openvino.convert_model and saved
as IR (.xml + .bin): fp32, fp16 (compressed weights) or INT8 through NNCF post-training quantisation with accuracy
control on real images (exporters.quantize's calibration policy). ModelMeta goes into rt_info["segx"]."""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import onnx

from segx.runtimes.openvino_rt import RT_INFO_KEY
from exporters.job import ExportJob
from exporters.onnx import onnx_model
from exporters.quantize import CalibrationImages, calibration_for

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


def _validation(images: CalibrationImages, n: int) -> tuple[Any, Any]:
    """(nncf.Dataset of labelled calibration images, validation_fn -> mIoU) for NNCF's accuracy control, scored like
    the accuracy protocol (input resized to the export size, class maps at the mask's size)."""
    import nncf
    import numpy as np
    import torch

    from segx.evaluate import class_map_at, fit_input
    from segx.metrics import ConfusionMatrix, miou_of

    size = (images.imgsz, images.imgsz)
    items = [(fit_input(x[None], size).numpy(), m.numpy()) for x, m in
             (images.dataset[i] for i in images.indices[:n])]

    def validate(compiled: Any, data: Any) -> tuple[float, None]:
        cm: ConfusionMatrix | None = None
        for x, mask in data:
            logits = np.asarray(compiled(x)[0], dtype=np.float32)
            cm = cm or ConfusionMatrix(logits.shape[1])
            cm.update(class_map_at(torch.from_numpy(logits), mask.shape[-2:])[0], mask)
        return (float(miou_of(cm.mat)) if cm is not None else 0.0), None

    return nncf.Dataset(items), validate


def quantize_openvino(model: Any, job: ExportJob) -> Any:
    """NNCF post-training INT8 (performance preset: symmetric activations, per-channel weights; the transformer
    model type for transformer archs, which keeps softmax / layer-norm patterns in float) with accuracy control:
    NNCF ranks the layers by their mIoU cost on labelled calibration images (never the gate's) and keeps the
    costliest in float until the drop is within exporters.sensitivity.TUNE_TARGET."""
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)  # "No CUDA runtime" noise on import
    import nncf

    from exporters.sensitivity import TUNE_IMAGES, TUNE_TARGET
    from segx.models import get_arch, list_archs

    images = calibration_for(job)
    job.report["calibration"] = images.describe()
    transformer = job.meta.arch in list_archs() and get_arch(job.meta.arch).family == "transformer"
    common = {"preset": nncf.QuantizationPreset.PERFORMANCE, "subset_size": images.n_images,
              "model_type": nncf.ModelType.TRANSFORMER if transformer else None}
    calibration = nncf.Dataset(list(images))
    if job.meta.arch in list_archs() and job.meta.extra.get("batch"):  # a fixed-batch detector: plain PTQ
        return nncf.quantize(model, calibration, **common)
    validation, validate = _validation(images, TUNE_IMAGES)
    job.report["tuning"] = f"NNCF accuracy control: max drop {TUNE_TARGET:g} pt on {TUNE_IMAGES} calibration images"
    return nncf.quantize_with_accuracy_control(model, calibration, validation, validate, max_drop=TUNE_TARGET / 100,
                                               drop_type=nncf.DropType.ABSOLUTE, **common)
