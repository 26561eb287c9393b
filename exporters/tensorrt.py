"""TensorRT export: the ONNX export parsed by TensorRT's ONNX parser and built into a serialized engine (FP32,
FP16, or INT8 with an entropy calibrator fed by real images of the split), with a timing cache, a calibration cache,
an optimisation profile for dynamic exports and a workspace limit. Writes MODEL.engine + MODEL.engine.json."""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from segx.runtimes.tensorrt_rt import current_env, require_tensorrt, sidecar_path
from exporters.job import ExportJob
from exporters.onnx import INPUT, onnx_model
from exporters.quantize import CalibrationImages
from segx.errors import SegxError
from segx.io import atomic_write_bytes, atomic_write_json

log = logging.getLogger(__name__)

MAX_BATCH = 16            # dynamic engines: batch 1..MAX_BATCH
TIMING_CACHE = "tensorrt_timing.cache"
CALIB_BATCH = 8


def profile_shapes(imgsz: int, dynamic: bool) -> dict[str, tuple[int, int, int, int]]:
    """min / opt / max input shapes: one fixed shape, or batch 1..MAX_BATCH and sides imgsz/2..2×imgsz."""
    fixed = (1, 3, imgsz, imgsz)
    if not dynamic:
        return {"min": fixed, "opt": fixed, "max": fixed}
    low = max(32, imgsz // 2)
    return {"min": (1, 3, low, low), "opt": fixed, "max": (MAX_BATCH, 3, 2 * imgsz, 2 * imgsz)}


def calibration_cache(job: ExportJob, onnx_bytes: bytes) -> Path:
    """Per model + size + split: a cache from another model would silently calibrate this one wrongly."""
    key = hashlib.sha256(onnx_bytes + f"{job.opts.split}:{job.meta.imgsz}".encode()).hexdigest()[:16]
    return job.cache_dir / f".{job.meta.arch}_{key}.calib"


def make_calibrator(trt: Any, images: CalibrationImages, cache: Path) -> Any:
    """A trt.IInt8EntropyCalibrator2 over the shared CalibrationImages batches (CUDA buffers via torch)."""
    import torch

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.batches = iter(images)
            self.current: torch.Tensor | None = None

        def get_batch_size(self) -> int:
            return images.batch

        def get_batch(self, names: list[str]) -> list[int] | None:
            batch = next(self.batches, None)
            if batch is None:
                return None
            self.current = torch.from_numpy(batch).cuda()  # keep a reference while TensorRT reads it
            return [int(self.current.data_ptr())]

        def read_calibration_cache(self) -> bytes | None:
            return cache.read_bytes() if cache.is_file() else None

        def write_calibration_cache(self, data: Any) -> None:
            atomic_write_bytes(cache, bytes(data))

    return EntropyCalibrator()


def _parse(trt: Any, builder: Any, onnx_bytes: bytes, logger: Any) -> tuple[Any, Any]:
    major = int(trt.__version__.split(".")[0])
    flags = 0 if major >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_bytes):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise SegxError(f"TensorRT's ONNX parser rejected the model: {errors[:300]}")
    return network, parser


def _config(trt: Any, builder: Any, job: ExportJob, onnx_bytes: bytes) -> tuple[Any, Any]:
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(job.opts.workspace * (1 << 30)))
    timing_file = job.cache_dir / TIMING_CACHE
    cache = config.create_timing_cache(timing_file.read_bytes() if timing_file.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    profile = builder.create_optimization_profile()
    shapes = profile_shapes(job.meta.imgsz, job.meta.dynamic)
    profile.set_shape(INPUT, shapes["min"], shapes["opt"], shapes["max"])
    config.add_optimization_profile(profile)
    if job.precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)  # int8 engines keep fp16 for the layers left in float
    calibrator = None
    if job.precision == "int8":
        images = CalibrationImages(job.opts.data, job.opts.calib_split, job.meta.imgsz,  # type: ignore[arg-type]
                                   n=job.opts.calib_n, batch=CALIB_BATCH if job.meta.dynamic else 1,
                                   gate_split=job.opts.split, gate_n=job.opts.n_verify)
        config.set_flag(trt.BuilderFlag.INT8)
        calibrator = make_calibrator(trt, images, calibration_cache(job, onnx_bytes))
        config.int8_calibrator = calibrator
        if job.meta.dynamic:
            cal = builder.create_optimization_profile()
            shape = (images.batch, 3, job.meta.imgsz, job.meta.imgsz)
            cal.set_shape(INPUT, shape, shape, shape)
            config.set_calibration_profile(cal)
    return config, calibrator


def export_tensorrt(job: ExportJob, path: Path) -> None:
    trt = require_tensorrt("TensorRT export")
    onnx_bytes = onnx_model(job).SerializeToString()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network, _parser = _parse(trt, builder, onnx_bytes, logger)
    config, _calibrator = _config(trt, builder, job, onnx_bytes)
    log.info("TensorRT %s: building a %s engine (minutes for large models)", trt.__version__, job.precision)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise SegxError(f"TensorRT could not build the {job.precision} engine (see the TensorRT log above)")
    path.write_bytes(bytes(serialized))
    atomic_write_bytes(job.cache_dir / TIMING_CACHE, bytes(config.get_timing_cache().serialize()))
    extra = {**job.meta.extra, **current_env(trt), "profile": profile_shapes(job.meta.imgsz, job.meta.dynamic)}
    atomic_write_json(sidecar_path(path), job.meta.replace(extra=extra).to_dict())


def check_available() -> None:
    """Raise the one-line 'needs an NVIDIA GPU with CUDA and tensorrt' error before any work is done."""
    require_tensorrt("TensorRT export")
