"""Building and vetting TensorRT engines (TensorRT 10.x and 11.x, one code path): a strongly typed network parsed from
ONNX bytes (the precision is the graph's: float, fp16 or explicit Q/DQ int8; never builder flags or calibrators),
one optimisation profile, a timing cache per (TensorRT version, compute capability), and the provenance sidecar that
ties an engine to its TensorRT version, GPU and source ONNX."""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segx.errors import SegxError
from segx.io import atomic_write_bytes
from segx.meta import ModelMeta, sidecar_path
from segx.meta import read_sidecar as read_meta_sidecar

log = logging.getLogger(__name__)

ENV_KEYS = ("tensorrt_version", "gpu_name", "compute_capability")
REBUILD = "rebuild the engine with segx export --fmt trt on this machine"
MAX_BATCH = 16            # dynamic engines take batch 1..max(MAX_BATCH, the batch tuned for)
SOURCE_SUFFIX = ".engine.onnx"  # the ONNX an engine was built from, kept beside it: best.engine -> best.engine.onnx

Shape = tuple[int, int, int, int]


@dataclass(frozen=True)
class Profile:
    """min / opt / max input shapes of the engine's one optimisation profile."""

    min: Shape
    opt: Shape
    max: Shape

    def to_dict(self) -> dict[str, list[int]]:
        return {"min": list(self.min), "opt": list(self.opt), "max": list(self.max)}


def profile_for(imgsz: int, dynamic: bool, batch: int = 1) -> Profile:
    """A fixed engine takes (batch, 3, imgsz, imgsz) only; a dynamic one batch 1..max(16, batch) and sides
    imgsz/2..2×imgsz, tuned (opt) for `batch` at imgsz."""
    opt = (batch, 3, imgsz, imgsz)
    if not dynamic:
        return Profile(opt, opt, opt)
    low = max(32, imgsz // 2)
    return Profile((1, 3, low, low), opt, (max(MAX_BATCH, batch), 3, 2 * imgsz, 2 * imgsz))


def source_path(engine_file: str | Path) -> Path:
    engine_file = Path(engine_file)
    return engine_file.with_name(engine_file.stem + SOURCE_SUFFIX)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def device_index(device: str) -> int:
    return int(device.split(":")[1]) if ":" in device else 0


def current_env(trt: Any, device: str = "cuda") -> dict[str, str]:
    """The TensorRT version, GPU name and compute capability an engine built here is tied to."""
    import torch

    major, minor = torch.cuda.get_device_capability(device_index(device))
    return {"tensorrt_version": str(trt.__version__), "gpu_name": torch.cuda.get_device_name(device_index(device)),
            "compute_capability": f"{major}.{minor}"}


def env_mismatch(built: dict[str, Any], here: dict[str, str]) -> str | None:
    """'tensorrt version 10.9.0 (here 11.4.0); ...' for each key that differs, or None when the engine fits here."""
    diffs = [f"{k.replace('_', ' ')} {built.get(k, '?')} (here {here[k]})" for k in ENV_KEYS
             if str(built.get(k)) != here[k]]
    return "; ".join(diffs) or None


def read_sidecar(engine_file: Path, rebuild_hint: str = REBUILD) -> ModelMeta:
    """The engine's ModelMeta and provenance (segx.meta.read_sidecar)."""
    return read_meta_sidecar(engine_file, rebuild_hint)


def provenance(trt: Any, device: str, onnx_bytes: bytes, shapes: Profile) -> dict[str, Any]:
    """What the sidecar records beside ModelMeta: TensorRT version, GPU, compute capability, source ONNX, profile."""
    return {**current_env(trt, device), "onnx_sha256": sha256(onnx_bytes), "profile": shapes.to_dict()}


# -- timing cache ----------------------------------------------------------------------------------------------------
def timing_cache_path(folder: Path, env: dict[str, str]) -> Path:
    """One cache per (TensorRT version, compute capability): tactics timed on one never mislead another."""
    return folder / f"tensorrt-{env['tensorrt_version']}-sm{env['compute_capability'].replace('.', '')}.timing"


def attach_timing_cache(config: Any, path: Path) -> None:
    """Give the builder config the cache at `path`; a broken or foreign one is dropped with a warning."""
    data = path.read_bytes() if path.is_file() else b""
    try:
        cache = config.create_timing_cache(data)
        if cache is not None and config.set_timing_cache(cache, ignore_mismatch=False):
            return
        problem = "TensorRT did not accept it"
    except Exception as e:  # noqa: BLE001 - TensorRT raises RuntimeError / TypeError for a corrupt blob
        problem = f"{type(e).__name__}: {e}"
    if data:
        log.warning("TensorRT timing cache %s dropped (%s); timing tactics from scratch", path, problem)
    cache = config.create_timing_cache(b"")
    if cache is not None:
        config.set_timing_cache(cache, ignore_mismatch=False)


def save_timing_cache(config: Any, path: Path) -> None:
    """Write the config's timing cache; get_timing_cache() may return None: then nothing is written (never fatal)."""
    try:
        cache = config.get_timing_cache()
        data = bytes(cache.serialize()) if cache is not None else b""
    except Exception as e:  # noqa: BLE001 - a cache is an optimisation: never fail a build over it
        log.warning("TensorRT timing cache not saved (%s: %s)", type(e).__name__, e)
        return
    if data:
        atomic_write_bytes(path, data)


# -- build -----------------------------------------------------------------------------------------------------------
def build_engine(trt: Any, onnx_bytes: bytes, shapes: Profile, *, input_name: str, device: str = "cuda",
                 workspace_gib: float = 4.0, cache_dir: Path | None = None) -> bytes:
    """A serialized engine of the strongly typed network of `onnx_bytes`, built on `device` (cuda:N)."""
    import torch

    logger = trt.Logger(trt.Logger.WARNING)
    with torch.cuda.device(device_index(device)):
        builder = trt.Builder(logger)
        network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
        parser = trt.OnnxParser(network, logger)
        if not parser.parse(onnx_bytes):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise SegxError(f"TensorRT's ONNX parser rejected the model: {errors[:300]}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
        cache_file = timing_cache_path(cache_dir, current_env(trt, device)) if cache_dir is not None else None
        if cache_file is not None:
            attach_timing_cache(config, cache_file)
        profile = builder.create_optimization_profile()
        profile.set_shape(input_name, shapes.min, shapes.opt, shapes.max)
        config.add_optimization_profile(profile)
        log.info("TensorRT %s: building a strongly typed engine (minutes for large models)", trt.__version__)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise SegxError("TensorRT could not build the engine (see the TensorRT log above)")
        if cache_file is not None:
            save_timing_cache(config, cache_file)
        return bytes(serialized)
