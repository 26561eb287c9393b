"""Regions from a class mask: contours with holes (RETR_CCOMP), areas, boxes and mean confidence, cross-checked with
scipy's connected-component labelling; and the overlay drawn from them."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from segx.data.constants import CLASSES, PALETTE
from segx.predict.overlay import blend, palette_lut, render
from segx.predict.regions import find_regions


def ring_scene() -> np.ndarray:
    mask = np.zeros((100, 120), np.uint8)
    mask[10:70, 10:70] = 5      # bottle: a square ...
    mask[25:55, 25:55] = 0      # ... with a hole ...
    mask[35:45, 35:45] = 5      # ... holding an island of the same class
    mask[75:95, 80:115] = 9     # a chair
    mask[5, 110] = 9            # a one-pixel speck
    return mask


def test_regions_match_connected_components() -> None:
    mask = ring_scene()
    regions = find_regions(mask, CLASSES)
    for cid in (5, 9):
        labels, n = ndimage.label(mask == cid, structure=np.ones((3, 3)))
        areas = sorted(np.bincount(labels.ravel())[1:].tolist(), reverse=True)
        assert [r.area for r in regions if r.class_id == cid] == areas
    bottle = [r for r in regions if r.class_id == 5]
    assert [len(r.holes) for r in bottle] == [1, 0]
    assert bottle[0].bbox == (10, 10, 60, 60) and bottle[1].bbox == (35, 35, 10, 10)
    assert bottle[0].class_name == "bottle" and bottle[0].area == 60 * 60 - 30 * 30


def test_polygon_area_is_close_to_mask_area() -> None:
    for r in find_regions(ring_scene(), CLASSES, min_area=50):
        # polygons run through boundary pixel centres: short of the pixel count by about half the perimeter
        perimeter = sum(2 * (w + h) for w, h in [r.bbox[2:]])
        assert r.polygon_area() <= r.area
        assert r.area - r.polygon_area() <= perimeter
    big = np.kron(ring_scene(), np.ones((5, 5), np.uint8))  # the same shapes, 5x larger
    for r in find_regions(big, CLASSES, min_area=10_000):  # the ring (with its hole) and the chair
        assert abs(r.polygon_area() - r.area) / r.area < 0.03


def test_background_speck_and_confidence_options() -> None:
    mask = ring_scene()
    conf = np.random.default_rng(0).uniform(0.2, 1.0, mask.shape).astype(np.float32)
    regions = find_regions(mask, CLASSES, conf)
    chair = next(r for r in regions if r.class_id == 9 and r.area > 1)
    assert chair.confidence == pytest.approx(float(conf[75:95, 80:115].mean()), rel=1e-6)
    assert all(r.class_id != 0 for r in regions)
    assert len(find_regions(mask, CLASSES, min_area=2)) == len(regions) - 1
    background = [r for r in find_regions(mask, CLASSES, include_background=True) if r.class_id == 0]
    assert sum(r.area for r in background) == int((mask == 0).sum())
    d = regions[0].to_dict()
    assert set(d) == {"class_id", "class_name", "area", "bbox", "polygon", "holes", "confidence"}
    assert all(len(p) == 2 for p in d["polygon"])


def test_overlay_keeps_background_and_marks_classes() -> None:
    mask = ring_scene()
    frame = np.full((*mask.shape, 3), 100, np.uint8)
    lut = palette_lut(PALETTE)
    plain = blend(frame, mask, lut, alpha=0.5)
    assert (plain[mask == 0] == 100).all()
    np.testing.assert_allclose(plain[mask == 5][0], (np.array(PALETTE[5]) + 100) / 2, atol=1)
    drawn = render(frame, mask, find_regions(mask, CLASSES), CLASSES, lut, fps=12.5)
    assert drawn.shape == frame.shape and drawn.dtype == np.uint8
    assert (drawn[69, 20:60] > 200).all()  # a (near-)white boundary line along the square's bottom edge
    assert (drawn[60, 20:24] == plain[60, 20:24]).all()  # inside the region: just the blend
    assert not np.array_equal(drawn[:20, :60], plain[:20, :60])  # the legend
