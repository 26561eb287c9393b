"""TensorRT runtime: a serialized `.engine` plus its `.engine.json` sidecar (ModelMeta + the TensorRT version, GPU,
compute capability, source ONNX sha256 and profile it was built with). An engine built for another TensorRT or GPU is
refused in one line naming both sides, or rebuilt here when its source ONNX (`.engine.onnx`) sits beside it.
Inference (TensorRT 10/11 API: execute_async_v3) keeps engine, context, stream and tensors on the runtime's cuda:N."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from segx.errors import SegxError
from segx.io import atomic_write_bytes, atomic_write_json
from segx.runtimes.base import register_runtime
from segx.runtimes.base import Runtime, RuntimeUnavailable
from segx.runtimes.common import check_batch, dims_to_shape, file_precision
from segx.runtimes.tensorrt_engine import (REBUILD, Profile, build_engine, current_env, device_index,
                                           env_mismatch, provenance, read_sidecar, sha256, sidecar_path, source_path)

log = logging.getLogger(__name__)

INSTALL = "pip install 'segx[gpu]'"

__all__ = ["REBUILD", "TensorRTRuntime", "check_engine_env", "current_env", "read_sidecar", "require_tensorrt",
           "sidecar_path"]


def require_tensorrt(what: str = "runtime 'tensorrt'") -> Any:
    """Import tensorrt and check for a CUDA GPU, or raise RuntimeUnavailable in one line saying what to install."""
    need = f"{what} needs an NVIDIA GPU with CUDA and the tensorrt package: {INSTALL}"
    try:
        import tensorrt
    except ImportError as e:
        raise RuntimeUnavailable(f"{need} (tensorrt is not installed)") from e
    import torch

    if not torch.cuda.is_available():
        raise RuntimeUnavailable(f"{need} (torch sees no CUDA GPU)")
    return tensorrt


def check_engine_env(engine_file: Path, built: dict[str, Any], here: dict[str, str]) -> None:
    """Refuse an engine whose sidecar says it was built for another TensorRT version or GPU."""
    diffs = env_mismatch(built, here)
    if diffs:
        raise SegxError(f"{engine_file}: built for a different setup: {diffs}; {REBUILD} (or keep its source "
                        f"{source_path(engine_file).name} beside it and segx rebuilds it)")


def rebuild(trt: Any, engine_file: Path, device: str) -> bool:
    """Rebuild `engine_file` here from the source ONNX beside it when that file is the one the sidecar names; returns
    False (nothing written) when there is no such source."""
    src = source_path(engine_file)
    meta = read_sidecar(engine_file, REBUILD)
    if not src.is_file():
        return False
    onnx_bytes = src.read_bytes()
    if meta.extra.get("onnx_sha256") not in (None, sha256(onnx_bytes)):
        raise SegxError(f"{src}: not the ONNX {engine_file.name} was built from (sha256 differs from its sidecar); "
                        f"{REBUILD}")
    side = meta.extra.get("profile") or {}
    shapes = Profile(*(tuple(side[k]) for k in ("min", "opt", "max")))  # type: ignore[arg-type]
    log.warning("%s: rebuilding the engine for this machine from %s", engine_file, src.name)
    data = build_engine(trt, onnx_bytes, shapes, input_name=meta.extra.get("input", "images"), device=device,
                        cache_dir=engine_file.parent)
    atomic_write_bytes(engine_file, data)
    extra = {**meta.extra, **provenance(trt, device, onnx_bytes, shapes)}
    atomic_write_json(sidecar_path(engine_file), meta.replace(extra=extra).to_dict())
    return True


@register_runtime
class TensorRTRuntime(Runtime):
    """Options: rebuild ("auto": rebuild a foreign engine when its source ONNX sits beside it; True: always rebuild
    from it; False: never)."""

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
        index = device_index(self.device)
        if index >= torch.cuda.device_count():
            raise RuntimeUnavailable(f"runtime 'tensorrt': no {self.device} here (torch sees "
                                     f"{torch.cuda.device_count()} CUDA device(s))")
        self._vet(trt)
        self.logger = trt.Logger(trt.Logger.WARNING)
        with torch.cuda.device(index):  # TensorRT uses the current CUDA device for everything it creates
            runtime = trt.Runtime(self.logger)
            self.engine = runtime.deserialize_cuda_engine(self.model_path.read_bytes())
            if self.engine is None:
                raise SegxError(f"{self.model_path}: TensorRT could not deserialize the engine; {REBUILD}")
            self.context = self.engine.create_execution_context()
            self.stream = torch.cuda.Stream(device=index)
        self._bind(trt)

    def _vet(self, trt: Any) -> None:
        """Read the sidecar; rebuild (option rebuild) or refuse an engine made for another TensorRT / GPU."""
        self.meta = read_sidecar(self.model_path, REBUILD)
        mode = self.options.get("rebuild", "auto")
        here = current_env(trt, self.device)
        foreign = env_mismatch(self.meta.extra, here)
        if (mode is True or (foreign and mode == "auto")) and rebuild(trt, self.model_path, self.device):
            self.meta = read_sidecar(self.model_path, REBUILD)
        check_engine_env(self.model_path, self.meta.extra, here)
        self.precision = file_precision(self.name, self.model_path, self.precision, self.meta.precision)

    def _bind(self, trt: Any) -> None:
        import torch

        engine = self.engine
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.input_name = inputs[0]
        self.output_names = [n for n in names if n not in inputs]  # logits, or mask (+ confidence)
        if engine.get_tensor_dtype(self.input_name) != trt.DataType.FLOAT:
            raise SegxError(f"{self.model_path}: input '{self.input_name}' is {engine.get_tensor_dtype(self.input_name)}"
                            f", segx engines take float32; {REBUILD}")
        self.output_dtypes = [getattr(torch, np.dtype(trt.nptype(engine.get_tensor_dtype(n))).name)
                              for n in self.output_names]
        self.input_shape = dims_to_shape(engine.get_tensor_shape(self.input_name))

    def infer(self, batch: np.ndarray) -> np.ndarray:
        return self.outputs(batch)[0]

    def outputs(self, batch: np.ndarray) -> tuple[np.ndarray, ...]:
        import torch

        batch = check_batch(self.name, self.input_shape, batch)
        context = self.context
        with torch.cuda.device(device_index(self.device)):
            x = torch.from_numpy(batch).to(self.device)
            if not context.set_input_shape(self.input_name, tuple(x.shape)):
                shapes = self.meta.extra.get("profile", {})
                raise SegxError(f"{self.model_path}: input {tuple(x.shape)} is outside the engine's shapes "
                                f"{shapes.get('min')}..{shapes.get('max')}; re-export with --imgsz / --dynamic")
            outs = [torch.empty(tuple(context.get_tensor_shape(name)), dtype=dtype, device=self.device)
                    for name, dtype in zip(self.output_names, self.output_dtypes, strict=True)]
            context.set_tensor_address(self.input_name, x.data_ptr())
            for name, out in zip(self.output_names, outs, strict=True):
                context.set_tensor_address(name, out.data_ptr())
            self.stream.wait_stream(torch.cuda.current_stream(self.device))
            if not context.execute_async_v3(self.stream.cuda_stream):
                raise SegxError(f"{self.model_path}: TensorRT execution failed")
            self.stream.synchronize()
        return tuple(out.cpu().numpy() for out in outs)

    def close(self) -> None:
        self.context = self.engine = None
