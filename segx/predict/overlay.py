"""The picture a person looks at: classes colour-mapped and blended over the frame, class boundaries drawn as
contour lines, a legend of the classes present and, on video, an FPS counter. Frames are RGB uint8."""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from segx.data.constants import PALETTE_256
from segx.predict.regions import Region

_FONT = cv2.FONT_HERSHEY_SIMPLEX


def palette_lut(palette: Sequence[Sequence[int]]) -> np.ndarray:
    """256×1×3 uint8 colour table (cv2.LUT's shape): the model's palette, then VOC colours beyond it."""
    lut = np.array(PALETTE_256, np.uint8)
    lut[:len(palette)] = np.asarray(palette, np.uint8).reshape(-1, 3)
    return lut.reshape(256, 1, 3)


def blend(frame: np.ndarray, mask: np.ndarray, lut: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Class colours blended over the frame; background (class 0) pixels keep the frame's colour.
    (OpenCV calls throughout: about 10x faster than the numpy equivalent at 640×360.)"""
    colour = cv2.LUT(cv2.merge([mask, mask, mask]), lut)
    out = cv2.addWeighted(frame, 1.0 - alpha, colour, alpha, 0.0)
    cv2.copyTo(frame, (mask == 0).view(np.uint8), out)
    return out


def _scale(shape: tuple[int, ...]) -> float:
    """Drawing scale: 1 at 360p, 2 at 720p, 3 at 1080p (text and lines grow with the frame)."""
    return max(0.35, min(shape[0], shape[1]) / 360)


def draw_boundaries(image: np.ndarray, regions: Sequence[Region], colour: tuple[int, int, int] = (255, 255, 255)
                    ) -> None:
    """Each region's outer contour and holes as lines, in place."""
    thickness = max(1, round(_scale(image.shape)))
    lines = [c.reshape(-1, 1, 2) for r in regions for c in (r.polygon, *r.holes)]
    if lines:
        cv2.drawContours(image, lines, -1, colour, thickness, cv2.LINE_AA)


def draw_legend(image: np.ndarray, class_ids: Sequence[int], classes: Sequence[str], lut: np.ndarray) -> None:
    """A swatch and name per class present, top-left on a dark box, in place."""
    ids = [int(c) for c in class_ids if 0 < c < len(classes)]
    if not ids:
        return
    s = _scale(image.shape)
    font, thick = 0.5 * s, max(1, round(s))
    (_, th), _ = cv2.getTextSize("Ag", _FONT, font, thick)
    line = th + max(4, round(8 * s))
    width = max(cv2.getTextSize(classes[c], _FONT, font, thick)[0][0] for c in ids) + line + 12
    box = image[:min(image.shape[0], line * len(ids) + 8), :min(image.shape[1], width)]
    box[:] = (box * 0.4).astype(np.uint8)
    for k, c in enumerate(ids):
        y = 4 + k * line
        cv2.rectangle(image, (4, y + 2), (4 + line - 6, y + line - 4), tuple(int(v) for v in lut[c, 0]), -1)
        cv2.putText(image, classes[c], (4 + line, y + th + 2), _FONT, font, (255, 255, 255), thick, cv2.LINE_AA)


def draw_fps(image: np.ndarray, fps: float) -> None:
    """'12.3 FPS' in the top-right corner, in place."""
    s = _scale(image.shape)
    text, font, thick = f"{fps:.1f} FPS", 0.6 * s, max(1, round(s))
    (tw, th), _ = cv2.getTextSize(text, _FONT, font, thick)
    org = (max(0, image.shape[1] - tw - 8), th + 8)
    cv2.putText(image, text, org, _FONT, font, (0, 0, 0), thick + 2, cv2.LINE_AA)
    cv2.putText(image, text, org, _FONT, font, (255, 255, 255), thick, cv2.LINE_AA)


def render(frame: np.ndarray, mask: np.ndarray, regions: Sequence[Region], classes: Sequence[str], lut: np.ndarray,
           *, alpha: float = 0.5, boundaries: bool = True, fps: float | None = None) -> np.ndarray:
    """The full overlay: blend, boundaries, legend of the classes present, FPS (video)."""
    out = blend(frame, mask, lut, alpha)
    if boundaries:
        draw_boundaries(out, regions)
    draw_legend(out, sorted({r.class_id for r in regions}), classes, lut)
    if fps is not None:
        draw_fps(out, fps)
    return out
