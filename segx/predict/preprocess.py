"""Model-side geometry for predict: a frame goes to the model's input size (letterbox for a fixed-shape model, pad to
the size multiple for a dynamic one), normalised with the model's mean/std; logits come back cropped and resized to
the frame before argmax."""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from segx.errors import SegxError
from segx.meta import ModelMeta
from segx.runtimes.base import argmax_classes

DEFAULT_MULTIPLE = 32
_BAND_PIXELS = 1 << 18  # output pixels per band when resizing every class plane (bounds memory on big photos)
_POINTS_PER_CHUNK = 1 << 17  # class-edge pixels interpolated per step


@dataclass(frozen=True)
class Letterbox:
    """Where the frame sits in the model input: frame (h, w) resized to (rh, rw) at (top, left) of (H, W)."""

    frame_hw: tuple[int, int]
    resized_hw: tuple[int, int]
    offset: tuple[int, int]  # (top, left)
    input_hw: tuple[int, int]


def _round_up(v: int, multiple: int) -> int:
    return int(math.ceil(v / multiple) * multiple)


def plan_letterbox(frame_hw: tuple[int, int], fixed_hw: tuple[int, int] | None, *, multiple: int = DEFAULT_MULTIPLE,
                   max_side: int | None = None) -> Letterbox:
    """Fixed model size: keep aspect, fit inside, pad centred. Dynamic: native size (or the long side scaled to
    `max_side`), padded bottom/right up to a multiple of `multiple`."""
    h, w = frame_hw
    if fixed_hw is not None:
        fh, fw = fixed_hw
        s = min(fh / h, fw / w)
        rh, rw = min(fh, max(1, round(h * s))), min(fw, max(1, round(w * s)))
        return Letterbox((h, w), (rh, rw), ((fh - rh) // 2, (fw - rw) // 2), (fh, fw))
    rh, rw = h, w
    if max_side is not None and max(h, w) > max_side:
        s = max_side / max(h, w)
        rh, rw = max(1, round(h * s)), max(1, round(w * s))
    return Letterbox((h, w), (rh, rw), (0, 0), (_round_up(rh, multiple), _round_up(rw, multiple)))


def to_input(frame: np.ndarray, box: Letterbox, mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """RGB uint8 H×W×3 -> float32 3×H×W in the model's input size, normalised; padding is 0 (the mean colour)."""
    rh, rw = box.resized_hw
    img = frame if (rh, rw) == frame.shape[:2] else cv2.resize(frame, (rw, rh), interpolation=cv2.INTER_LINEAR)
    scale = (1.0 / (255.0 * np.asarray(std, np.float32))).astype(np.float32)
    shift = (np.asarray(mean, np.float32) / np.asarray(std, np.float32)).astype(np.float32)
    out = np.zeros((3, *box.input_hw), np.float32)
    top, left = box.offset
    chw = img.transpose(2, 0, 1)
    np.multiply(chw, scale[:, None, None], out=out[:, top:top + rh, left:left + rw], casting="unsafe")
    out[:, top:top + rh, left:left + rw] -= shift[:, None, None]
    return out


def _axis_map(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear source indices and weights along one axis (half-pixel centres, edges clamped): the mapping of
    cv2.resize INTER_LINEAR and torch interpolate(mode="bilinear", align_corners=False)."""
    src = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)
    i0 = np.floor(src).astype(np.intp)
    return i0, np.minimum(i0 + 1, n_in - 1), (src - i0).astype(np.float32)


def _argmax0(planes: np.ndarray) -> np.ndarray:
    """argmax over axis 0 of a C×... array as uint8 (segx.runtimes.base.argmax_classes)."""
    return argmax_classes(planes, axis=0)


def _interp_points(logits: np.ndarray, offset: tuple[int, int], ys: np.ndarray, xs: np.ndarray, ymap: tuple,
                   xmap: tuple) -> np.ndarray:
    """Bilinear logits C×K at output pixels (ys, xs); the maps index the crop at `offset` of contiguous `logits`."""
    (y0, y1, wy), (x0, x1, wx) = ymap, xmap
    flat, width = logits.reshape(logits.shape[0], -1), logits.shape[2]
    r0, r1 = (y0[ys] + offset[0]) * width, (y1[ys] + offset[0]) * width
    c0, c1 = x0[xs] + offset[1], x1[xs] + offset[1]
    fy, fx = wy[ys], wx[xs]
    top = np.take(flat, r0 + c0, axis=1) * (1 - fx) + np.take(flat, r0 + c1, axis=1) * fx
    bottom = np.take(flat, r1 + c0, axis=1) * (1 - fx) + np.take(flat, r1 + c1, axis=1) * fx
    return top * (1 - fy) + bottom * fy


def _fast_mask(logits: np.ndarray, box: Letterbox, ymap: tuple, xmap: tuple) -> np.ndarray:
    """argmax of the bilinearly resized logits without resizing every class plane: where the 4 source pixels
    around an output pixel share their argmax, a convex combination keeps it (so the class is known); only the
    pixels along class edges are interpolated in full. Equal to `_argmax0` of the full resize."""
    (top, left), (rh, rw) = box.offset, box.resized_hw
    lo = _argmax0(logits[:, top:top + rh, left:left + rw])
    (y0, y1, _), (x0, x1, _) = ymap, xmap
    rows0, rows1 = np.take(lo, y0, axis=0), np.take(lo, y1, axis=0)
    a, b = np.take(rows0, x0, axis=1), np.take(rows0, x1, axis=1)
    c, d = np.take(rows1, x0, axis=1), np.take(rows1, x1, axis=1)
    mask = a
    ys, xs = np.nonzero((a != b) | (a != c) | (a != d))
    for k in range(0, ys.size, _POINTS_PER_CHUNK):
        sy, sx = ys[k:k + _POINTS_PER_CHUNK], xs[k:k + _POINTS_PER_CHUNK]
        mask[sy, sx] = _argmax0(_interp_points(logits, box.offset, sy, sx, ymap, xmap))
    return mask


def from_logits(logits: np.ndarray, box: Letterbox, *, want_conf: bool = False,
                want_probs: bool = False) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """C×H×W model logits -> (mask uint8 h×w, confidence float32 h×w = max softmax prob, probabilities C×h×w).

    The letterbox padding is cropped, the logits are resized bilinearly to the frame and argmax'd. Confidence and
    probabilities are opt-in: they need every class plane at full size (computed in row bands to bound memory)."""
    logits = np.ascontiguousarray(logits, dtype=np.float32)  # no copy for a runtime's own output
    (top, left), (rh, rw) = box.offset, box.resized_hw
    ymap, xmap = _axis_map(box.frame_hw[0], rh), _axis_map(box.frame_hw[1], rw)
    mask = _fast_mask(logits, box, ymap, xmap)
    if not (want_conf or want_probs):
        return mask, None, None
    conf, probs = _softmax_bands(logits[:, top:top + rh, left:left + rw], box.frame_hw, ymap, want_probs)
    return mask, conf, probs


def _softmax_bands(crop: np.ndarray, out_hw: tuple[int, int], ymap: tuple,
                   want_probs: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Max softmax probability (and all probabilities) of the bilinearly resized logits, a band of rows at a time:
    rows interpolated vertically here, then each class plane resized horizontally by cv2 (same height: exact)."""
    h, w = out_hw
    n = crop.shape[0]
    conf = np.empty((h, w), np.float32)
    probs = np.empty((n, h, w), np.float32) if want_probs else None
    y0, y1, wy = ymap
    step = max(1, _BAND_PIXELS // w)
    for r in range(0, h, step):
        band = slice(r, min(h, r + step))
        fy = wy[band][None, :, None]
        rows = crop[:, y0[band]] * (1 - fy) + crop[:, y1[band]] * fy
        full = np.empty((n, rows.shape[1], w), np.float32)
        for c in range(n):
            cv2.resize(rows[c], (w, rows.shape[1]), dst=full[c], interpolation=cv2.INTER_LINEAR)
        full -= full.max(axis=0)
        np.exp(full, out=full)
        total = full.sum(axis=0)
        conf[band] = 1.0 / total
        if probs is not None:
            probs[:, band] = full / total
    return conf, probs


def size_multiple(meta: ModelMeta) -> int:
    """The input size multiple a dynamic model needs: metadata's `size_divisor` if recorded, else the registered
    arch's (e.g. 32 for U-Nets), else 32."""
    value = meta.extra.get("size_divisor") if isinstance(meta.extra, dict) else None
    if value is None:
        from segx.models import get_arch

        try:
            value = get_arch(meta.arch).size_divisor
        except SegxError:
            value = DEFAULT_MULTIPLE
    try:
        return max(1, int(value))
    except (TypeError, ValueError):
        return DEFAULT_MULTIPLE


def check_model(input_shape: tuple[int | None, ...], meta: ModelMeta, model: str) -> None:
    """Refuse a model whose input/metadata cannot work with RGB frames and named classes."""
    if len(input_shape) != 4 or input_shape[1] not in (None, 3):
        raise SegxError(f"{model}: model input is {tuple(input_shape)}; segx needs N×3×H×W RGB input")
    if len(meta.classes) != meta.num_classes:
        raise SegxError(f"{model}: metadata lists {len(meta.classes)} class names for {meta.num_classes} classes")
    if len(meta.mean) != 3 or len(meta.std) != 3 or min(meta.std) <= 0:
        raise SegxError(f"{model}: metadata mean/std must have 3 values and std > 0 (got {meta.mean}, {meta.std})")
