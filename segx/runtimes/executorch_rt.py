"""ExecuTorch runtime: a `.pte` program lowered to the XNNPACK backend (fp32, or INT8 from PT2E quantisation), run
through ExecuTorch's Python runtime on the CPU. ModelMeta comes from the `.pte.json` sidecar."""
from __future__ import annotations

import numpy as np
import torch

from segx.errors import SegxError
from segx.runtimes.base import register_runtime
from segx.runtimes.base import Runtime
from segx.runtimes.common import check_batch, file_precision
from segx.runtimes.edge import fixed_input, read_sidecar, require


@register_runtime
class ExecuTorchRuntime(Runtime):
    name = "executorch"
    suffixes = (".pte",)
    precisions = ("fp32", "int8")
    devices = ("cpu",)

    @classmethod
    def check_available(cls, device: str = "cpu") -> None:
        super().check_available(device)
        require("executorch.runtime", cls.name, "executorch")

    def load(self) -> None:
        et = require("executorch.runtime", self.name, "executorch")
        if not self.model_path.is_file():
            raise SegxError(f"{self.model_path}: ExecuTorch program not found")
        self.meta = read_sidecar(self.model_path, "executorch")
        self.precision = file_precision(self.name, self.model_path, self.precision, self.meta.precision)
        if self.threads:  # XNNPACK's threadpool is process-wide; the default is one thread per core
            from executorch.extension.pybindings import portable_lib

            portable_lib._unsafe_reset_threadpool(self.threads)
        try:
            program = et.Runtime.get().load_program(self.model_path)
            self.method = program.load_method("forward")
        except Exception as e:  # noqa: BLE001 - the pybindings raise RuntimeError with long texts
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise SegxError(f"{self.model_path}: ExecuTorch cannot load it ({first[:200]})") from e
        self.program = program
        self.input_shape = fixed_input(self.meta)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        batch = check_batch(self.name, self.input_shape, batch)
        out = self.method.execute([torch.from_numpy(batch)])[0]
        return out.float().numpy()

    def close(self) -> None:
        self.method = self.program = None
