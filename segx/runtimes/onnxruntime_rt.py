"""ONNX Runtime: a `.onnx` export on the CPU execution provider (graph optimisation ALL, `threads` intra-op
threads), or CUDA / TensorRT providers when onnxruntime-gpu is installed; a session that did not get every provider
asked for is refused (RuntimeUnavailable), never run on the CPU instead. TensorRT EP engine and timing caches live
under a folder keyed by TensorRT version and GPU. The precision (fp32, fp16 or int8 QDQ) is the file's metadata."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from segx.runtimes.base import register_runtime
from segx.runtimes.base import Runtime, RuntimeUnavailable
from segx.runtimes.common import check_batch, dims_to_shape, file_precision
from segx.errors import SegxError
from segx.meta import ModelMeta

GPU_HINT = "pip install 'segx[gpu]' (onnxruntime-gpu) on a machine with an NVIDIA GPU"
CACHE_HOME = Path(os.environ.get("SEGX_CACHE", Path.home() / ".cache" / "segx"))


def trt_ep_cache_dir(device_index: int = 0) -> Path:
    """Where ONNX Runtime's TensorRT provider keeps engines and timing caches: one folder per TensorRT version and
    GPU (an engine or timing cache from another is never reused)."""
    from importlib.metadata import PackageNotFoundError, version

    import torch

    trt_version = "unknown"
    for dist in ("tensorrt", "tensorrt-cu12", "tensorrt-cu13", "tensorrt-libs"):
        try:
            trt_version = version(dist)
            break
        except PackageNotFoundError:
            continue
    gpu = torch.cuda.get_device_name(device_index) if torch.cuda.is_available() else "nogpu"
    major, minor = torch.cuda.get_device_capability(device_index) if torch.cuda.is_available() else (0, 0)
    slug = re.sub(r"[^A-Za-z0-9.]+", "-", f"trt{trt_version}-{gpu}-sm{major}{minor}").strip("-")
    return CACHE_HOME / "ort-tensorrt" / slug


def missing_providers(asked: list[Any], got: list[str]) -> list[str]:
    """Providers asked for (name or (name, options)) that the session did not get, in the order asked."""
    names = [p[0] if isinstance(p, tuple) else p for p in asked]
    return [n for n in names if n not in got]


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError as e:
        raise RuntimeUnavailable("runtime 'onnxruntime' needs the onnxruntime package: pip install onnxruntime") from e
    return onnxruntime


@register_runtime
class OnnxRuntime(Runtime):
    """Options: tensorrt_ep (bool, CUDA only: put ONNX Runtime's TensorRT provider first)."""

    name = "onnxruntime"
    suffixes = (".onnx",)
    precisions = ("fp32", "fp16", "int8")
    devices = ("cpu", "cuda")

    @classmethod
    def check_available(cls, device: str = "cpu") -> None:
        super().check_available(device)
        ort = _ort()
        if device.startswith("cuda") and "CUDAExecutionProvider" not in ort.get_available_providers():
            raise RuntimeUnavailable(f"runtime 'onnxruntime' on CUDA needs the CUDA execution provider: {GPU_HINT}")

    def _providers(self) -> list[Any]:
        if not self.device.startswith("cuda"):
            return ["CPUExecutionProvider"]
        index = int(self.device.split(":")[1]) if ":" in self.device else 0
        cuda = [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
        if self.options.get("tensorrt_ep"):
            cache = str(trt_ep_cache_dir(index))
            return [("TensorrtExecutionProvider", {"device_id": index, "trt_engine_cache_enable": True,
                                                   "trt_engine_cache_path": cache, "trt_timing_cache_enable": True,
                                                   "trt_timing_cache_path": cache}), *cuda]
        return cuda

    def load(self) -> None:
        ort = _ort()
        if not self.model_path.is_file():
            raise SegxError(f"{self.model_path}: ONNX file not found")
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.intra_op_num_threads = self.threads or 0
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        providers = self._providers()
        try:
            self.session = ort.InferenceSession(str(self.model_path), so, providers=providers)
        except Exception as e:  # noqa: BLE001 - ORT raises its own Fail/InvalidGraph types
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise SegxError(f"{self.model_path}: ONNX Runtime cannot load it ({first[:200]})") from e
        missing = missing_providers(providers, self.session.get_providers())
        if missing:  # ORT drops a provider it cannot create (no CUDA / cuDNN / TensorRT libraries) and runs on CPU
            self.session = None
            raise RuntimeUnavailable(f"runtime 'onnxruntime' on {self.device}: ONNX Runtime "
                                     f"{ort.__version__} could not create {', '.join(missing)} (it would run on "
                                     f"the CPU instead); check the CUDA/cuDNN libraries or {GPU_HINT}")
        props = self.session.get_modelmeta().custom_metadata_map
        if "arch" not in props:
            raise SegxError(f"{self.model_path}: no segx metadata in the ONNX file (not exported by segx); "
                            f"re-export it with segx export --fmt onnx")
        self.meta = ModelMeta.from_strings(props)
        self.precision = file_precision(self.name, self.model_path, self.precision, self.meta.precision)
        inp, out = self.session.get_inputs()[0], self.session.get_outputs()[0]
        if inp.type != "tensor(float)":
            raise SegxError(f"{self.model_path}: input '{inp.name}' is {inp.type}, segx feeds float32 N×3×H×W "
                            f"images; re-export it with segx export --fmt onnx")
        self.input_name, self.output_name = inp.name, out.name
        self.input_shape = dims_to_shape(inp.shape)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        return self.outputs(batch)[0]

    def outputs(self, batch: np.ndarray) -> tuple[np.ndarray, ...]:
        batch = check_batch(self.name, self.input_shape, batch)
        return tuple(self.session.run(None, {self.input_name: batch}))

    def close(self) -> None:
        self.session = None
