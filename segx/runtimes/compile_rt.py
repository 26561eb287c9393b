"""torch.compile runtime: the torch runtime's module compiled with Inductor (default mode on CPU, "reduce-overhead"
= CUDA graphs on CUDA). Compilation is lazy, so load() runs WARMUP_RUNS batches of the size it will be timed at
(option batch, default 1: CUDA graphs are recorded per shape); any failure is RuntimeUnavailable."""
from __future__ import annotations

import shutil

import numpy as np
import torch

from segx.runtimes.base import register_runtime
from segx.runtimes.base import RuntimeUnavailable
from segx.runtimes.torch_rt import TorchRuntime

WARMUP_RUNS = 3  # compile, then (reduce-overhead) warm and record the CUDA graph: three runs before any timing


@register_runtime
class CompileRuntime(TorchRuntime):
    """Options: channels_last (default True), mode (torch.compile mode; default per device as above), batch (the
    batch size load() warms up at)."""

    name = "compile"
    suffixes = ()  # never the default runtime for a file; ask for it by name

    @classmethod
    def check_available(cls, device: str = "cpu") -> None:
        super().check_available(device)
        if device == "cpu" and not (shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")):
            raise RuntimeUnavailable("runtime 'compile' needs a C++ compiler on CPU (Inductor generates C++): "
                                     "install g++")

    def load(self) -> None:
        super().load()
        mode = self.options.get("mode") or ("reduce-overhead" if self.device.startswith("cuda") else None)
        self.module = torch.compile(self.module, mode=mode)
        h = w = self.meta.imgsz
        warm = np.zeros((int(self.options.get("batch", 1)), 3, h, w), np.float32)
        try:
            for _ in range(WARMUP_RUNS):
                super().infer(warm)
        except Exception as e:  # noqa: BLE001 - Inductor raises many types; the reason is what matters
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise RuntimeUnavailable(f"torch.compile failed for {self.meta.arch}: {first[:300]}") from e
