"""Q/DQ INT8 ONNX from ONE calibration (onnxruntime.quantization; no hand-written quantiser): pre-processing (ONNX
shape inference; ORT's symbolic pass skipped for dynamic shapes, where it cannot resolve the graph), one MinMax
calibration kept as a JSON range cache, and each form built from those ranges:
- "ort": uint8 asymmetric activations, int8 per-channel weights (the U8S8 kernels ONNX Runtime runs fastest on x86);
- "tensorrt": signed int8 symmetric activations (zero point 0), per-channel symmetric int8 weights (the explicit
  quantisation form TensorRT's strongly typed networks take): `exporters.onnx.tensorrt_int8_onnx`.
Mixed precision: the layer groups exporters.sensitivity finds costly stay float (nodes_to_exclude)."""
from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx

from exporters.job import ExportJob
from exporters.quantize import CalibrationImages


def _forms() -> dict[str, dict[str, Any]]:
    from onnxruntime.quantization import QuantType

    return {"ort": {"activation_type": QuantType.QUInt8, "extra_options": {"WeightSymmetric": True}},
            "tensorrt": {"activation_type": QuantType.QInt8,
                         "extra_options": {"ActivationSymmetric": True, "WeightSymmetric": True}}}


FORMS = ("ort", "tensorrt")
CALIB_CHUNK = 8  # MinMax folds its ranges every <= 8 batches (CalibStridedMinMax): memory stays flat at 300 × 512²
# (not CalibMaxIntermediateOutputs: ONNX Runtime 1.32 drops the collected outputs when that limit is reached)


def _stride(n: int) -> int:
    """The largest chunk <= CALIB_CHUNK that divides n (ONNX Runtime requires it)."""
    return max(d for d in range(1, CALIB_CHUNK + 1) if n % d == 0)


@dataclass(frozen=True)
class Calibrated:
    """A pre-processed float model and its calibration ranges: every form and every exclusion set builds from it."""

    pre: Path
    cache: Path
    images: CalibrationImages
    input_name: str


def prepare(model: onnx.ModelProto, folder: Path, dynamic: bool) -> Path:
    """quant_pre_process (shape inference + ORT graph optimisation), then unique names on every node (the
    optimiser leaves decomposed HardSwish nodes unnamed; exclusion works by name)."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    float_file, pre_file = folder / "float.onnx", folder / "pre.onnx"
    onnx.save(model, float_file)
    # symbolic shape inference cannot resolve dynamic H/W through Resize/Shape arithmetic ("Incomplete symbolic shape
    # inference"); ONNX shape inference alone is all the quantiser needs. chdir: on failure ORT dumps files into cwd
    with contextlib.chdir(folder):
        quant_pre_process(str(float_file), str(pre_file), skip_symbolic_shape=dynamic)
    pre = onnx.load(pre_file)
    used = {n.name for n in pre.graph.node if n.name}
    for i, node in enumerate(pre.graph.node):
        if not node.name or sum(1 for m in pre.graph.node if m.name == node.name) > 1:
            name = f"{node.op_type}_{i}"
            while name in used:
                name += "_"
            node.name = name
            used.add(name)
    onnx.save(pre, pre_file)
    return pre_file


def calibrate(model: onnx.ModelProto, folder: Path, images: CalibrationImages, dynamic: bool) -> Calibrated:
    """Pre-process and run the one calibration pass (MinMax over the images); ranges go to folder/ranges.json."""
    pre = prepare(model, folder, dynamic)
    cal = Calibrated(pre, folder / "ranges.json", images, model.graph.input[0].name)
    build(cal, folder / "first.onnx", "ort")  # writes the range cache as a side effect
    return cal


def _reader(cal: Calibrated) -> Any:
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        """ONNX Runtime's calibration protocol over the shared CalibrationImages batches."""

        def __init__(self) -> None:
            self.set_range(0, len(cal.images))

        def __len__(self) -> int:
            return len(cal.images)

        def set_range(self, start_index: int, end_index: int) -> None:
            """The chunk of batches the next collect_data pass reads (CalibStridedMinMax)."""
            self.batches = (cal.images.batch_at(b) for b in range(start_index, min(end_index, len(cal.images))))

        def get_next(self) -> dict[str, Any] | None:
            batch = next(self.batches, None)
            return None if batch is None else {cal.input_name: batch}

    return Reader()


def build(cal: Calibrated, out: Path, form: str, exclude: Sequence[str] = ()) -> Path:
    """The Q/DQ model of `form` from the cached ranges (calibrating first when the cache is not there yet), with the
    nodes named in `exclude` kept in float."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    spec = _forms()[form]
    quantize_static(str(cal.pre), str(out), None if cal.cache.is_file() else _reader(cal),
                    quant_format=QuantFormat.QDQ, per_channel=True, activation_type=spec["activation_type"],
                    weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
                    nodes_to_exclude=list(exclude),
                    extra_options={**spec["extra_options"], "CalibStridedMinMax": _stride(len(cal.images))},
                    calibration_cache_path=str(cal.cache))
    return out
