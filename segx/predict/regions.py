"""Boundaries, then classes: split a class mask into connected regions, each with its OpenCV contour (holes kept),
class id and name, pixel area, bounding box and mean confidence."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np


@dataclass
class Region:
    class_id: int
    class_name: str
    area: int                               # pixels in the region (the mask's count, not the polygon's)
    bbox: tuple[int, int, int, int]         # x, y, w, h
    polygon: np.ndarray                     # outer boundary, K×2 int32 (x, y) pixel coordinates
    holes: list[np.ndarray] = field(default_factory=list)  # inner boundaries, each K×2
    confidence: float | None = None         # mean softmax probability of the class over the region

    def polygon_area(self) -> float:
        """Area enclosed by the outer polygon minus the holes (pixel-centre polygons: a little under `area`)."""
        return float(cv2.contourArea(self.polygon) - sum(cv2.contourArea(h) for h in self.holes))

    def to_dict(self) -> dict[str, Any]:
        return {"class_id": self.class_id, "class_name": self.class_name, "area": self.area,
                "bbox": list(self.bbox), "polygon": self.polygon.tolist(), "holes": [h.tolist() for h in self.holes],
                "confidence": None if self.confidence is None else round(self.confidence, 4)}


def find_regions(mask: np.ndarray, classes: tuple[str, ...] | list[str], confidence: np.ndarray | None = None, *,
                 include_background: bool = False, min_area: int = 1) -> list[Region]:
    """Connected regions of each class in `mask` (8-connected, as cv2.findContours traces them), largest first
    within each class; background (class 0) only when asked."""
    regions: list[Region] = []
    for cid in np.flatnonzero(np.bincount(mask.ravel(), minlength=1)):  # the classes present
        if (cid == 0 and not include_background) or cid >= len(classes):
            continue
        regions += _class_regions(mask == cid, int(cid), classes[int(cid)], confidence, min_area)
    return regions


def _class_regions(binary: np.ndarray, cid: int, name: str, confidence: np.ndarray | None,
                   min_area: int) -> list[Region]:
    rows, cols = np.flatnonzero(binary.any(axis=1)), np.flatnonzero(binary.any(axis=0))
    y0, x0 = int(rows[0]), int(cols[0])  # work inside the class's bounding box (much faster for small classes)
    b8 = binary[y0:rows[-1] + 1, x0:cols[-1] + 1].astype(np.uint8)
    contours, hierarchy = cv2.findContours(b8, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE, offset=(x0, y0))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(b8, connectivity=8)
    sums = None
    if confidence is not None:
        sub = confidence[y0:rows[-1] + 1, x0:cols[-1] + 1]
        sums = np.bincount(labels.ravel(), weights=sub.ravel(), minlength=n)
    holes: dict[int, list[np.ndarray]] = {}
    for i, (_, _, _, parent) in enumerate(hierarchy[0]):
        if parent >= 0:
            holes.setdefault(int(parent), []).append(contours[i].reshape(-1, 2))
    out: list[Region] = []
    for i, (_, _, _, parent) in enumerate(hierarchy[0]):
        if parent >= 0:
            continue
        px, py = contours[i][0, 0]
        label = int(labels[py - y0, px - x0])  # contour points are pixels of their own component
        area = int(stats[label, cv2.CC_STAT_AREA])
        if area < min_area:
            continue
        x, y, w, h = (int(v) for v in stats[label, :4])
        conf = float(sums[label] / area) if sums is not None else None
        out.append(Region(cid, name, area, (x + x0, y + y0, w, h), contours[i].reshape(-1, 2), holes.get(i, []),
                          conf))
    out.sort(key=lambda r: -r.area)
    return out
