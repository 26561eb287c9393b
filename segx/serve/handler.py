"""The served computation, free of Triton: a batch of same-size RGB images -> masks at their size (+ confidence),
through the same pre-processing and output handling as `segx predict` (segx.predict.frames), so both answer alike."""
from __future__ import annotations

import numpy as np

from segx.errors import SegxError
from segx.predict.frames import run_model, to_frame
from segx.predict.preprocess import check_model, plan_letterbox, size_multiple, to_input
from segx.runtimes.base import Runtime


class Segmenter:
    """Callable: uint8 N×H×W×3 RGB -> {"mask": uint8 N×H×W} (+ "confidence": float32 N×H×W, mask+conf models).

    Triton's dynamic batcher only groups requests of one shape, so a batch shares H×W. A model with a fixed batch
    size runs the batch in chunks of that size."""

    def __init__(self, runtime: Runtime) -> None:
        check_model(runtime.input_shape, runtime.meta, str(runtime.model_path))
        self.runtime, self.meta = runtime, runtime.meta
        self.confidence = runtime.meta.head == "mask+conf"
        self.multiple = size_multiple(runtime.meta) if runtime.fixed_hw is None else 1
        self.chunk = runtime.input_shape[0]  # None: any batch

    def outputs(self) -> dict[str, np.dtype]:
        names = {"mask": np.dtype(np.uint8)}
        return {**names, "confidence": np.dtype(np.float32)} if self.confidence else names

    def __call__(self, images: np.ndarray) -> dict[str, np.ndarray]:
        check_images(images)
        box = plan_letterbox(images.shape[1:3], self.runtime.fixed_hw, multiple=self.multiple)
        x = np.stack([to_input(img, box, self.meta.mean, self.meta.std) for img in images])
        step = self.chunk or len(x)
        outs = [o for i in range(0, len(x), step) for o in run_model(self.runtime, x[i:i + step], self.confidence)]
        frames = [to_frame(o, box, want_conf=self.confidence) for o in outs]
        result = {"mask": np.stack([f[0] for f in frames])}
        if self.confidence:
            result["confidence"] = np.stack([f[1] for f in frames]).astype(np.float32)
        return result


def check_images(images: np.ndarray) -> None:
    """Refuse anything but a non-empty uint8 N×H×W×3 batch, naming what was sent."""
    if images.dtype != np.uint8:
        raise SegxError(f"image must be UINT8, got {images.dtype}")
    if images.ndim != 4 or images.shape[-1] != 3:
        raise SegxError(f"image must be H×W×3 RGB, got shape {tuple(images.shape[1:])}")
    if images.size == 0:
        raise SegxError(f"image is empty (shape {tuple(images.shape[1:])})")
