"""The one `Runtime` interface every inference backend implements: load a model file, run a float32 NCHW batch
(already normalised) and return its outputs: float32 logits N x C x H x W for a logits head, or a uint8 mask N x H x W
(+ float32 confidence) for a mask head. `predict_mask` turns either into a class map: used by bench, parity, eval,
predict and serve."""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from segx.errors import SegxError
from segx.meta import ModelMeta


def argmax_classes(logits: np.ndarray, axis: int = 1) -> np.ndarray:
    """argmax over the class axis as uint8 (first max wins, as np.argmax); about 3x faster than np.argmax."""
    planes = np.moveaxis(logits, axis, 0)
    best = planes[0].copy()
    idx = np.zeros(best.shape, np.uint8)
    for c in range(1, planes.shape[0]):
        np.putmask(idx, planes[c] > best, c)
        np.maximum(best, planes[c], out=best)
    return idx


def max_probability(logits: np.ndarray, axis: int = 1) -> np.ndarray:
    """The max softmax probability over the class axis: 1 / sum(exp(l - max l)), float32."""
    x = np.asarray(logits, np.float32)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return (1.0 / e.sum(axis=axis)).astype(np.float32)


def class_map(outputs: tuple[np.ndarray, ...], head: str,
              confidence: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """A model's outputs -> (uint8 class map N x H x W at the model's output size, confidence N x H x W or None), for
    predict, serve and bench timing. Logits are arg-maxed (confidence = max softmax probability); a mask head's uint8
    mask passes through (confidence only when its head has one: mask+conf). Accuracy scoring at the label's size
    goes through segx.evaluate.class_map_at instead (it resizes first)."""
    if head == "logits":
        logits = outputs[0]
        if logits.ndim != 4:
            raise SegxError(f"a logits model returns N×C×H×W, got shape {tuple(logits.shape)}")
        return argmax_classes(logits), max_probability(logits) if confidence else None
    mask = np.asarray(outputs[0])
    if mask.ndim != 3:
        raise SegxError(f"a {head} model returns an N×H×W mask, got shape {tuple(mask.shape)}")
    conf = np.asarray(outputs[1], np.float32) if confidence and head == "mask+conf" and len(outputs) > 1 else None
    return mask.astype(np.uint8, copy=False), conf


class RuntimeUnavailable(SegxError):
    """The runtime's package, device or precision is not present here; the message says what to install."""


class Runtime(ABC):
    name: ClassVar[str]                  # registry key, e.g. "onnxruntime"
    suffixes: ClassVar[tuple[str, ...]]  # model file suffixes it loads, e.g. (".onnx",)
    precisions: ClassVar[tuple[str, ...]] = ("fp32",)
    devices: ClassVar[tuple[str, ...]] = ("cpu",)

    def __init__(self, model: str | Path, *, precision: str = "fp32", device: str = "cpu",
                 threads: int | None = None, **options: Any) -> None:
        if precision not in self.precisions:
            raise SegxError(f"runtime '{self.name}' has no precision '{precision}'; choose from: "
                            f"{', '.join(self.precisions)}")
        self.model_path = Path(model)
        self.precision = precision
        self.device = device
        self.threads = threads
        self.options = options
        self.meta: ModelMeta = ModelMeta(arch="unknown")
        # (N, 3, H, W) with None for dynamic axes; set by load()
        self.input_shape: tuple[int | None, int | None, int | None, int | None] = (None, 3, None, None)
        try:
            self.load()
        except SegxError as e:  # every load error names the model file (same type: bench tells unavailable apart)
            if str(self.model_path) in str(e):
                raise
            raise type(e)(f"{self.model_path}: {e}") from e

    @classmethod
    def check_available(cls, device: str = "cpu") -> None:
        """Raise RuntimeUnavailable (with what to install) when this runtime cannot run on `device` here."""
        if device.split(":")[0] not in cls.devices:
            raise RuntimeUnavailable(f"runtime '{cls.name}' does not run on '{device}' "
                                     f"(devices: {', '.join(cls.devices)})")

    @abstractmethod
    def load(self) -> None:
        """Load self.model_path; set self.meta and self.input_shape."""

    @abstractmethod
    def infer(self, batch: np.ndarray) -> np.ndarray:
        """float32 N x 3 x H x W (normalised) -> the model's first output (float32 logits N x C x H x W for a
        logits head)."""

    def outputs(self, batch: np.ndarray) -> tuple[np.ndarray, ...]:
        """Every output of the model, in order (a runtime whose files can have several overrides this)."""
        return (self.infer(batch),)

    def predict_mask(self, batch: np.ndarray, confidence: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """float32 N x 3 x H x W -> (uint8 class map N x H x W, float32 max softmax probability N x H x W or None),
        whatever the model's head: a logits head is arg-maxed here, a mask head's output is passed through."""
        return class_map(self.outputs(batch), self.meta.head, confidence)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release sessions / device memory."""

    @property
    def fixed_hw(self) -> tuple[int, int] | None:
        """(H, W) when the model only takes one size, else None."""
        h, w = self.input_shape[2], self.input_shape[3]
        return (h, w) if h is not None and w is not None else None

    def describe(self) -> str:
        return f"{self.name}/{self.precision}/{self.device}"

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# name -> class, in registration order (= preference order for a file suffix); filled by the adapter modules
RUNTIMES: dict[str, type[Runtime]] = {}


def register_runtime(cls: type[Runtime]) -> type[Runtime]:
    if cls.name in RUNTIMES:
        raise ValueError(f"runtime '{cls.name}' registered twice")
    RUNTIMES[cls.name] = cls
    return cls
