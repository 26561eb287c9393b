"""Model outputs -> frame-size results, for both deployment heads: a logits head's C×H×W logits are cropped, resized
bilinearly and arg-maxed (preprocess.from_logits); a mask head's class map (and confidence) is cropped and resized
(nearest for classes). Shared by `segx predict` and `segx serve`, so both answer the same."""
from __future__ import annotations

import cv2
import numpy as np

from segx.predict.preprocess import Letterbox, from_logits
from segx.runtimes.base import Runtime

# one image's model output: logits C×H×W, or (mask H×W uint8, confidence H×W float32 | None) of a mask head
Output = np.ndarray | tuple[np.ndarray, np.ndarray | None]


def run_model(runtime: Runtime, batch: np.ndarray, confidence: bool = False) -> list[Output]:
    """float32 N×3×H×W -> one Output per image (logits kept whole for the exact frame-size argmax)."""
    if runtime.meta.head == "logits":
        return list(np.asarray(runtime.infer(batch)))
    mask, conf = runtime.predict_mask(batch, confidence=confidence)
    return [(mask[i], None if conf is None else conf[i]) for i in range(mask.shape[0])]


def to_frame(out: Output, box: Letterbox, *, want_conf: bool = False,
             want_probs: bool = False) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """(mask uint8 h×w, confidence h×w | None, probabilities C×h×w | None) at the frame's size; a mask head has no
    probabilities."""
    if not isinstance(out, tuple):
        return from_logits(out, box, want_conf=want_conf, want_probs=want_probs)
    mask, conf = out
    (top, left), (rh, rw) = box.offset, box.resized_hw
    h, w = box.frame_hw
    mask = _crop_resize(mask, top, left, rh, rw, (h, w), cv2.INTER_NEAREST)
    if conf is not None and want_conf:
        conf = _crop_resize(conf.astype(np.float32, copy=False), top, left, rh, rw, (h, w), cv2.INTER_LINEAR)
    return mask, conf if want_conf else None, None


def _crop_resize(plane: np.ndarray, top: int, left: int, rh: int, rw: int, hw: tuple[int, int],
                 interpolation: int) -> np.ndarray:
    crop = np.ascontiguousarray(plane[top:top + rh, left:left + rw])
    return crop if crop.shape == hw else cv2.resize(crop, (hw[1], hw[0]), interpolation=interpolation)
