"""LiteRT (TFLite) runtime: a `.tflite` file written by litert-torch (fp32, fp16 weights or INT8), run by the
ai-edge-litert interpreter (XNNPACK delegate) on the CPU with NCHW input like the other runtimes. ModelMeta comes
from the `.tflite.json` sidecar."""
from __future__ import annotations

import numpy as np

from segx.errors import SegxError
from segx.runtimes.base import register_runtime
from segx.runtimes.base import Runtime
from segx.runtimes.common import check_batch, file_precision
from segx.runtimes.edge import fixed_input, read_sidecar, require

INTERPRETER = "ai_edge_litert.interpreter"


@register_runtime
class LiteRTRuntime(Runtime):
    name = "litert"
    suffixes = (".tflite",)
    precisions = ("fp32", "fp16", "int8")
    devices = ("cpu",)

    @classmethod
    def check_available(cls, device: str = "cpu") -> None:
        super().check_available(device)
        require(INTERPRETER, cls.name, "ai-edge-litert")

    def load(self) -> None:
        lite = require(INTERPRETER, self.name, "ai-edge-litert")
        if not self.model_path.is_file():
            raise SegxError(f"{self.model_path}: LiteRT file not found")
        self.meta = read_sidecar(self.model_path, "litert")
        self.precision = file_precision(self.name, self.model_path, self.precision, self.meta.precision)
        if self.precision == "fp32" and self.meta.precision == "fp16":
            self.precision = "fp16"  # fp16 weights: the file's precision sets the gate
        try:
            self.interpreter = lite.Interpreter(model_path=str(self.model_path), num_threads=self.threads or None)
            self.interpreter.allocate_tensors()
        except Exception as e:  # noqa: BLE001 - the interpreter raises ValueError / RuntimeError
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise SegxError(f"{self.model_path}: LiteRT cannot load it ({first[:200]})") from e
        self.input, self.output = self.interpreter.get_input_details()[0], self.interpreter.get_output_details()[0]
        shape = tuple(int(d) for d in self.input["shape"])
        if self.input["dtype"] not in (np.float32, np.int8, np.uint8) or shape != fixed_input(self.meta):
            raise SegxError(f"{self.model_path}: input is {np.dtype(self.input['dtype']).name} {shape}, segx feeds "
                            f"N×3×H×W images {fixed_input(self.meta)}; re-export with segx export --fmt litert")
        self.input_shape = fixed_input(self.meta)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        batch = check_batch(self.name, self.input_shape, batch)
        self.interpreter.set_tensor(self.input["index"], quantize(batch, self.input))
        self.interpreter.invoke()
        return dequantize(self.interpreter.get_tensor(self.output["index"]), self.output)

    def close(self) -> None:
        self.interpreter = None


def quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    """float32 -> the tensor's dtype: an INT8 model with integer I/O takes q = round(x / scale) + zero_point."""
    dtype = detail["dtype"]
    if dtype == np.float32:
        return x
    scale, zero = detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale) + zero, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, detail: dict) -> np.ndarray:
    """The tensor as the model's output: a quantised tensor (scale > 0) -> float32; float outputs and a mask head's
    unquantised integer class map (scale 0) as they are."""
    scale, zero = detail["quantization"]
    if q.dtype == np.float32 or not scale:
        return q.copy()
    return ((q.astype(np.float32) - zero) * scale).astype(np.float32)
