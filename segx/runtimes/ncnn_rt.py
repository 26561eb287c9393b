"""NCNN runtime: `MODEL.ncnn.param` + `MODEL.ncnn.bin` written by pnnx, run image by image by the ncnn Python
binding on the CPU (fp32, or fp16 storage for an fp16 export). ModelMeta comes from the `.ncnn.param.json` sidecar."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from segx.errors import SegxError
from segx.runtimes.base import register_runtime
from segx.runtimes.base import Runtime
from segx.runtimes.common import check_batch, file_precision
from segx.runtimes.edge import fixed_input, read_sidecar, require


def weights_path(param: str | Path) -> Path:
    """best.ncnn.param -> best.ncnn.bin."""
    p = Path(param)
    return p.with_name(p.stem + ".bin")


@register_runtime
class NcnnRuntime(Runtime):
    name = "ncnn"
    suffixes = (".param",)
    precisions = ("fp32", "fp16")
    devices = ("cpu",)

    @classmethod
    def check_available(cls, device: str = "cpu") -> None:
        super().check_available(device)
        require("ncnn", cls.name, "ncnn")

    def load(self) -> None:
        ncnn = require("ncnn", self.name, "ncnn")
        weights = weights_path(self.model_path)
        for f in (self.model_path, weights):
            if not f.is_file():
                raise SegxError(f"{self.model_path}: NCNN file {f} not found (an NCNN model is .ncnn.param + .ncnn.bin)")
        self.meta = read_sidecar(self.model_path, "ncnn")
        self.precision = file_precision(self.name, self.model_path, self.precision, self.meta.precision)
        fp16 = self.precision == "fp16" or self.meta.precision == "fp16"
        self.precision = "fp16" if fp16 else "fp32"
        net = ncnn.Net()
        net.opt.use_vulkan_compute = False
        net.opt.use_fp16_storage = net.opt.use_fp16_packed = fp16
        net.opt.use_fp16_arithmetic = False  # x86 has no fp16 arithmetic; ARM builds would set it
        net.opt.use_bf16_storage = False
        if self.threads:
            net.opt.num_threads = self.threads
        if net.load_param(str(self.model_path)) != 0 or net.load_model(str(weights)) != 0:
            raise SegxError(f"{self.model_path}: ncnn cannot load it (corrupt or from another ncnn version); "
                            f"re-export with segx export --fmt ncnn")
        self.net, self.ncnn = net, ncnn
        self.input_name, self.output_name = net.input_names()[0], net.output_names()[0]
        self.input_shape = fixed_input(self.meta)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        batch = check_batch(self.name, self.input_shape, batch)
        return np.stack([self._one(image) for image in batch])

    def _one(self, image: np.ndarray) -> np.ndarray:
        data = np.ascontiguousarray(image)  # ncnn.Mat shares this buffer: keep it alive until extract returns
        with self.net.create_extractor() as ex:
            ex.input(self.input_name, self.ncnn.Mat(data))
            rc, out = ex.extract(self.output_name)
            if rc != 0:
                raise SegxError(f"{self.model_path}: ncnn inference failed (code {rc})")
            return np.array(out, dtype=np.float32, copy=True)

    def close(self) -> None:
        self.net = None
