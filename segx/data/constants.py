"""PASCAL VOC 2012 constants: the 21 class names, the official colormap, the void label and ImageNet statistics.
The one place these are defined; everything else imports them."""
from __future__ import annotations

NUM_CLASSES = 21
IGNORE_INDEX = 255  # void / object boundary in VOC masks

CLASSES: tuple[str, ...] = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)

MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def voc_colormap(n: int = 256) -> list[tuple[int, int, int]]:
    """The official VOC colormap (bit-interleaved label -> RGB), as in the VOC devkit's labelcolormap.m."""
    cmap = []
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        cmap.append((r, g, b))
    return cmap


PALETTE_256: list[tuple[int, int, int]] = voc_colormap(256)  # index 255 -> (224, 224, 192), VOC's void colour
PALETTE: tuple[tuple[int, int, int], ...] = tuple(PALETTE_256[:NUM_CLASSES])
