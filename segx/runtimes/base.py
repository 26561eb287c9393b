"""The one `Runtime` interface every inference backend implements: load a model file, run a float32 NCHW batch
(already normalised) and return float32 logits N x C x H x W. Used by bench, by export's parity check and by predict."""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from segx.errors import SegxError
from segx.meta import ModelMeta


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
        """float32 N x 3 x H x W (normalised) -> float32 logits N x C x H x W."""

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
