"""TensorRT runtime: a serialized `.engine` plus its `.engine.json` sidecar (ModelMeta + the TensorRT version, GPU
name and compute capability it was built for). An engine built elsewhere is refused with a rebuild hint. Inference
uses the TensorRT 10 API (execute_async_v3 with torch CUDA tensors as buffers)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from segx.runtimes import register_runtime
from segx.runtimes.base import Runtime, RuntimeUnavailable
from segx.runtimes.common import check_batch, dims_to_shape, file_precision
from segx.errors import SegxError
from segx.meta import ModelMeta

ENV_KEYS = ("tensorrt_version", "gpu_name", "compute_capability")
REBUILD = "rebuild the engine with segx export --fmt trt on this machine"


def require_tensorrt(what: str = "runtime 'tensorrt'") -> Any:
    """Import tensorrt and check for a CUDA GPU, or raise RuntimeUnavailable in one line saying what to install."""
    need = f"{what} needs an NVIDIA GPU with CUDA and the tensorrt package: pip install 'segx[gpu]'"
    try:
        import tensorrt
    except ImportError as e:
        raise RuntimeUnavailable(f"{need} (tensorrt is not installed)") from e
    import torch

    if not torch.cuda.is_available():
        raise RuntimeUnavailable(f"{need} (torch sees no CUDA GPU)")
    return tensorrt


def sidecar_path(engine: str | Path) -> Path:
    return Path(f"{engine}.json")


def current_env(trt: Any, device: str = "cuda") -> dict[str, str]:
    """The TensorRT version, GPU name and compute capability an engine built here is tied to."""
    import torch

    major, minor = torch.cuda.get_device_capability(device)
    return {"tensorrt_version": str(trt.__version__), "gpu_name": torch.cuda.get_device_name(device),
            "compute_capability": f"{major}.{minor}"}


def check_engine_env(engine: Path, built: dict[str, Any], here: dict[str, str]) -> None:
    """Refuse an engine whose sidecar says it was built for another TensorRT version or GPU."""
    diffs = [f"{k.replace('_', ' ')} {built.get(k, '?')} (here {here[k]})" for k in ENV_KEYS
             if str(built.get(k)) != here[k]]
    if diffs:
        raise SegxError(f"{engine}: built for a different setup: {'; '.join(diffs)}; {REBUILD}")


def read_sidecar(engine: Path) -> ModelMeta:
    side = sidecar_path(engine)
    if not side.is_file():
        raise SegxError(f"{engine}: its sidecar {side.name} is missing, so segx cannot tell what the engine was "
                        f"built for; {REBUILD}")
    try:
        return ModelMeta.from_dict(json.loads(side.read_text()))
    except (json.JSONDecodeError, TypeError, SegxError) as e:
        raise SegxError(f"{side}: unreadable sidecar ({e}); {REBUILD}") from e


@register_runtime
class TensorRTRuntime(Runtime):
    name = "tensorrt"
    suffixes = (".engine",)
    precisions = ("fp32", "fp16", "int8")
    devices = ("cuda",)

    @classmethod
    def check_available(cls, device: str = "cuda") -> None:
        super().check_available(device)
        require_tensorrt()

    def load(self) -> None:
        trt = require_tensorrt()
        import torch

        if not self.model_path.is_file():
            raise SegxError(f"{self.model_path}: TensorRT engine not found")
        self.meta = read_sidecar(self.model_path)
        check_engine_env(self.model_path, self.meta.extra, current_env(trt, self.device))
        self.precision = file_precision(self.name, self.model_path, self.precision, self.meta.precision)
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.engine = trt.Runtime(self.logger).deserialize_cuda_engine(self.model_path.read_bytes())
        if self.engine is None:
            raise SegxError(f"{self.model_path}: TensorRT could not deserialize the engine; {REBUILD}")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.input_name = inputs[0]
        self.output_names = [n for n in names if n not in inputs]  # logits, or mask (+ confidence)
        self.output_dtypes = [getattr(torch, np.dtype(trt.nptype(self.engine.get_tensor_dtype(n))).name)
                              for n in self.output_names]
        self.input_shape = dims_to_shape(self.engine.get_tensor_shape(self.input_name))
        self.stream = torch.cuda.Stream(device=self.device)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        return self.outputs(batch)[0]

    def outputs(self, batch: np.ndarray) -> tuple[np.ndarray, ...]:
        import torch

        batch = check_batch(self.name, self.input_shape, batch)
        x = torch.from_numpy(batch).to(self.device)
        if not self.context.set_input_shape(self.input_name, tuple(x.shape)):
            profile = self.meta.extra.get("profile", {})
            raise SegxError(f"{self.model_path}: input {tuple(x.shape)} is outside the engine's shapes "
                            f"{profile.get('min')}..{profile.get('max')}; re-export with --imgsz / --dynamic")
        outs = [torch.empty(tuple(self.context.get_tensor_shape(name)), dtype=dtype, device=self.device)
                for name, dtype in zip(self.output_names, self.output_dtypes, strict=True)]
        self.context.set_tensor_address(self.input_name, x.data_ptr())
        for name, out in zip(self.output_names, outs, strict=True):
            self.context.set_tensor_address(name, out.data_ptr())
        self.stream.wait_stream(torch.cuda.current_stream(self.device))
        if not self.context.execute_async_v3(self.stream.cuda_stream):
            raise SegxError(f"{self.model_path}: TensorRT execution failed")
        self.stream.synchronize()
        return tuple(out.cpu().numpy() for out in outs)

    def close(self) -> None:
        self.context = self.engine = None
