"""Small helpers shared by the runtime classes: input-shape bookkeeping, batch checks against a fixed-shape
model, and reconciling the precision a caller asks for with the precision baked into an exported file."""
from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import numpy as np

from segx.errors import SegxError

log = logging.getLogger(__name__)

Shape = tuple[int | None, int | None, int | None, int | None]

# lower rank = fewer bits; the gate of a run is the one of its lowest precision
PRECISION_RANK = {"int8": 0, "fp16": 1, "bf16": 2, "fp32": 3}


def dims_to_shape(dims: Iterable[Any]) -> Shape:
    """Model input dims (ints, -1, None or symbolic names) -> (N, C, H, W) with None for dynamic axes."""
    out = [d if isinstance(d, int) and d > 0 else None for d in dims]
    if len(out) != 4:
        raise SegxError(f"model input has {len(out)} dims, expected 4 (N×3×H×W)")
    return out[0], out[1], out[2], out[3]


def check_batch(name: str, shape: Shape, batch: np.ndarray) -> np.ndarray:
    """Return `batch` as contiguous float32 N×3×H×W, or raise naming the size the model takes."""
    if batch.ndim != 4 or batch.shape[1] != 3:
        raise SegxError(f"{name}: input must be N×3×H×W, got shape {tuple(batch.shape)}")
    for axis, label in ((0, "batch"), (2, "height"), (3, "width")):
        want = shape[axis]
        if want is not None and batch.shape[axis] != want:
            raise SegxError(f"{name}: model was exported for {label} {want}, got {batch.shape[axis]} "
                            f"(input {tuple(batch.shape)}); re-export with --dynamic or --imgsz")
    return np.ascontiguousarray(batch, dtype=np.float32)


def file_precision(runtime: str, path: object, requested: str, stored: str) -> str:
    """The precision to run a file whose weights are stored in `stored` (fp32 / fp16 / int8).

    An int8 file only runs as int8: asking for the default fp32 runs it as int8 (logged); asking for int8 of a float
    file is an error saying how to make one."""
    if stored == "int8" and requested == "fp32":
        log.info("%s: %s is an int8 model; running it as int8", runtime, path)
        return "int8"
    if requested == "int8" and stored != "int8":
        raise SegxError(f"{path} is a {stored} model; runtime '{runtime}' runs int8 only from an int8 export "
                        f"(segx export --int8 --data VOC)")
    return requested


def effective_precision(*precisions: str) -> str:
    """The lowest of the given precisions (a fp16 file run in fp32 is judged as fp16)."""
    return min(precisions, key=lambda p: PRECISION_RANK.get(p, 3))
