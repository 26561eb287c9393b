"""TorchScript runtime: a `.torchscript` file written by `segx export --fmt torchscript` (torch.jit.trace), its
ModelMeta read from the `segx_meta.json` extra file. fp32 on CPU or CUDA."""
from __future__ import annotations

import json
import warnings

import numpy as np
import torch

from segx.runtimes.base import register_runtime
from segx.runtimes.base import Runtime
from segx.runtimes.common import check_batch
from segx.runtimes.torch_rt import cuda_check, tensors_to_numpy
from segx.errors import SegxError
from segx.meta import ModelMeta

META_FILE = "segx_meta.json"  # the extra file inside the TorchScript archive that holds ModelMeta


@register_runtime
class TorchScriptRuntime(Runtime):
    name = "torchscript"
    suffixes = (".torchscript",)
    precisions = ("fp32",)
    devices = ("cpu", "cuda")

    @classmethod
    def check_available(cls, device: str = "cpu") -> None:
        super().check_available(device)
        cuda_check(cls.name, device)

    def load(self) -> None:
        if not self.model_path.is_file():
            raise SegxError(f"{self.model_path}: TorchScript file not found")
        extra = {META_FILE: ""}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated upstream; LibTorch uses it
                self.module = torch.jit.load(str(self.model_path), map_location=self.device, _extra_files=extra)
        except Exception as e:  # noqa: BLE001 - torch.jit raises RuntimeError subclasses with long texts
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise SegxError(f"{self.model_path}: not a loadable TorchScript file ({first[:200]})") from e
        if not extra[META_FILE]:
            raise SegxError(f"{self.model_path}: no {META_FILE} inside (not exported by segx); re-export it with "
                            f"segx export --fmt torchscript")
        try:
            self.meta = ModelMeta.from_dict(json.loads(extra[META_FILE]))
        except (json.JSONDecodeError, TypeError) as e:
            raise SegxError(f"{self.model_path}: unreadable {META_FILE} inside ({e})") from e
        if self.threads:
            torch.set_num_threads(self.threads)
        size = None if self.meta.dynamic else self.meta.imgsz
        batch = self.meta.extra.get("batch") or (None if self.meta.dynamic else 1)  # "batch": a fixed-batch trace
        self.input_shape = (batch, 3, size, size)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        return self.outputs(batch)[0]

    def outputs(self, batch: np.ndarray) -> tuple[np.ndarray, ...]:
        batch = check_batch(self.name, self.input_shape, batch)
        with torch.inference_mode():
            out = self.module(torch.from_numpy(batch).to(self.device))
        return tensors_to_numpy(out)

    def close(self) -> None:
        self.module = None
