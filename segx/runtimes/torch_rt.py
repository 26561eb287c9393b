"""PyTorch eager runtime: a segx `.pt` checkpoint (or an in-memory module) on CPU or CUDA, fp32 or bf16/fp16
autocast, channels_last by default (about 2× faster than NCHW for these convnets on CPU). The parity reference."""
from __future__ import annotations

import contextlib
import os
from typing import Any

import numpy as np
import torch
from torch import nn

from segx.runtimes.base import register_runtime
from segx.runtimes.base import Runtime, RuntimeUnavailable
from segx.runtimes.common import check_batch
from segx.errors import SegxError
from segx.meta import ModelMeta

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def cuda_check(name: str, device: str) -> None:
    """Raise RuntimeUnavailable when `device` is CUDA and torch sees no CUDA GPU."""
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeUnavailable(f"runtime '{name}' on '{device}' needs an NVIDIA GPU with CUDA and a CUDA build "
                                 f"of torch; torch {torch.__version__} sees no CUDA device here")


def gpu_memory_mb(device: str) -> float | None:
    """GPU memory in use on `device`, MiB: this process's share from NVML (pynvml) when it can tell, else the whole
    device's (torch.cuda.mem_get_info: includes TensorRT and ONNX Runtime allocations, and other processes); None
    without CUDA."""
    if not device.startswith("cuda") or not torch.cuda.is_available():
        return None
    index = int(device.split(":")[1]) if ":" in device else 0
    try:
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByUUID(f"GPU-{torch.cuda.get_device_properties(index).uuid}")
        mine = [p.usedGpuMemory for p in pynvml.nvmlDeviceGetComputeRunningProcesses(handle)
                if p.pid == os.getpid() and p.usedGpuMemory]
        if mine:
            return mine[0] / 2**20
    except Exception:  # noqa: BLE001 - no pynvml, no NVML driver, PID namespaces hiding our pid: fall back
        pass
    try:
        free, total = torch.cuda.mem_get_info(index)
    except RuntimeError:
        return None
    return (total - free) / 2**20
def tensors_to_numpy(out: torch.Tensor | tuple[torch.Tensor, ...]) -> tuple[np.ndarray, ...]:
    """A module's output(s) as host arrays: floating tensors as float32 (autocast gives bf16/fp16), others as is."""
    outs = out if isinstance(out, tuple) else (out,)
    return tuple((t.float() if t.is_floating_point() else t).cpu().numpy() for t in outs)


@register_runtime
class TorchRuntime(Runtime):
    """Options: channels_last (default True), head (logits | mask | mask+conf: wrap the model in that deployment
    head, segx.models.heads; default logits)."""

    name = "torch"
    suffixes = (".pt", ".pth")
    precisions = ("fp32", "bf16", "fp16")
    devices = ("cpu", "cuda")

    @classmethod
    def check_available(cls, device: str = "cpu") -> None:
        super().check_available(device)
        cuda_check(cls.name, device)

    @classmethod
    def from_module(cls, module: nn.Module, meta: ModelMeta, **kwargs: Any) -> TorchRuntime:
        """Wrap an already-built model (e.g. one being exported) instead of loading a checkpoint file."""
        rt = cls.__new__(cls)
        rt._given = (module, meta)
        Runtime.__init__(rt, f"<{meta.arch} in memory>", **kwargs)
        return rt

    def load(self) -> None:
        given = getattr(self, "_given", None)
        if given is None:
            from segx.checkpoint import load_model

            given = load_model(self.model_path)
        module, self.meta = given
        head = self.options.get("head", "logits")
        if head != self.meta.head:
            from segx.models.heads import with_head

            if self.meta.head != "logits":
                raise SegxError(f"{self.model_path}: a {self.meta.head} model cannot be given another head")
            module, self.meta = with_head(module, head), self.meta.replace(head=head)
        if self.precision == "fp16" and not self.device.startswith("cuda"):
            raise RuntimeUnavailable("runtime 'torch' runs fp16 on CUDA only (CPU autocast fp16 is emulated and "
                                     "slow); use bf16 on CPU")
        if self.threads:
            torch.set_num_threads(self.threads)
        self.channels_last = bool(self.options.get("channels_last", True))
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        self.module = module.eval().to(self.device, memory_format=fmt)
        self.input_shape = (None, 3, None, None)

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.split(":")[0], dtype=_DTYPES[self.precision])

    def infer(self, batch: np.ndarray) -> np.ndarray:
        return self.outputs(batch)[0]

    def outputs(self, batch: np.ndarray) -> tuple[np.ndarray, ...]:
        batch = check_batch(self.name, self.input_shape, batch)
        x = torch.from_numpy(batch).to(self.device)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), self._autocast():
            out = self.module(x)
        if not isinstance(out, (torch.Tensor, tuple)):
            raise SegxError(f"{self.model_path}: model returned {type(out).__name__}, expected one logits tensor")
        return tensors_to_numpy(out)

    def close(self) -> None:
        self.module = None  # type: ignore[assignment]
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()

