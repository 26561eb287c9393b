"""The synthetic VOC2012 set: real JPEGs and palette PNGs in the exact VOC layout, 1–4 textured objects per image.
Each of the 20 classes has its own hue, shape and texture, so a small CNN learns it fast; deterministic per seed."""
from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from segx.data.constants import CLASSES, IGNORE_INDEX, NUM_CLASSES
from segx.data.layout import IMAGE_DIR, LIST_DIR, MASK_DIR, OBJECT_DIR
from segx.data.voc import mask_to_pil
from segx.errors import SegxError

log = logging.getLogger(__name__)

MARKER = "segx_synth.json"  # written into VOC2012/ so a rerun may replace a synthetic tree (and nothing else)
SHAPES = ("ellipse", "rectangle", "triangle", "star", "cross")
TEXTURES = ("solid", "stripes", "checker", "dots")
VAL_FRACTION = 0.2


@dataclass(frozen=True)
class ClassStyle:
    hue: int  # OpenCV hue 0..179
    bright: bool  # value band: bright (190-255) or deep (110-160)
    shape: str
    texture: str


def class_style(c: int) -> ClassStyle:
    """Class c (1..20): a unique (shape, texture) pair and a unique hue; hue neighbours also differ in brightness."""
    k = c - 1
    slot = k * 7 % 20
    return ClassStyle(hue=slot * 9, bright=slot % 2 == 0, shape=SHAPES[k % 5], texture=TEXTURES[k // 5])


def _polygon(shape: str, cx: float, cy: float, r: float, angle: float, aspect: float) -> np.ndarray:
    if shape == "rectangle":
        pts = [(-1, -aspect), (1, -aspect), (1, aspect), (-1, aspect)]
    elif shape == "triangle":
        pts = [(np.cos(a), np.sin(a)) for a in np.pi / 2 + np.arange(3) * 2 * np.pi / 3]
    elif shape == "star":
        pts = [((1.0 if j % 2 == 0 else 0.45) * np.cos(a), (1.0 if j % 2 == 0 else 0.45) * np.sin(a))
               for j, a in enumerate(np.pi / 2 + np.arange(10) * np.pi / 5)]
    else:  # cross: a plus sign with arms a third of the width
        t = 0.36
        pts = [(-t, -1), (t, -1), (t, -t), (1, -t), (1, t), (t, t),
               (t, 1), (-t, 1), (-t, t), (-1, t), (-1, -t), (-t, -t)]
    p = np.asarray(pts, dtype=np.float64) * r
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return np.round(p @ rot.T + (cx, cy)).astype(np.int32)


def _shape_mask(size: int, shape: str, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """A filled shape of side 20–50% of the image at a random place and angle; returns (bool mask, angle)."""
    r = size * rng.uniform(0.12, 0.25)
    cx, cy = rng.uniform(r * 0.5, size - r * 0.5, 2)
    angle = rng.uniform(0, np.pi)
    aspect = rng.uniform(0.6, 1.0)
    canvas = np.zeros((size, size), np.uint8)
    if shape == "ellipse":
        axes = (max(1, round(r)), max(1, round(r * aspect)))
        cv2.ellipse(canvas, (round(cx), round(cy)), axes, np.degrees(angle), 0, 360, 1, -1)
    else:
        cv2.fillPoly(canvas, [_polygon(shape, cx, cy, r, angle, aspect)], 1)
    return canvas.astype(bool), angle


def _texture(size: int, texture: str, angle: float, rng: np.random.Generator) -> np.ndarray:
    """A bool pattern over the image (True = dark second colour): stripes, checker or dots, rotated with the object."""
    if texture == "solid":
        return np.zeros((size, size), bool)
    period = max(4.0, size * rng.uniform(0.05, 0.08))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    u = (xx * np.cos(angle) + yy * np.sin(angle)) / period
    v = (-xx * np.sin(angle) + yy * np.cos(angle)) / period
    if texture == "stripes":
        return (u % 1.0) < 0.5
    if texture == "checker":
        return (np.floor(u) + np.floor(v)) % 2 == 0
    return ((u % 1.0) - 0.5) ** 2 + ((v % 1.0) - 0.5) ** 2 < 0.09  # dots


def _hsv_to_bgr(h: float, s: float, v: float) -> np.ndarray:
    px = np.array([[[h, s, v]]], dtype=np.uint8)
    return cv2.cvtColor(px, cv2.COLOR_HSV2BGR)[0, 0].astype(np.float32)


def _background(size: int, rng: np.random.Generator) -> np.ndarray:
    """Low-saturation gradient plus smooth blotches and pixel noise (BGR float32), never object-like colours."""
    c0, c1 = (_hsv_to_bgr(rng.integers(0, 180), rng.integers(0, 50), rng.integers(60, 230)) for _ in range(2))
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
    t = np.clip((xx * np.cos(angle) + yy * np.sin(angle) + 1) / 2, 0, 1)[..., None]
    img = c0 * (1 - t) + c1 * t
    blotch = cv2.resize(rng.normal(0, 18, (4, 4)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    return img + blotch[..., None] + rng.normal(0, 6, (size, size, 3)).astype(np.float32)


def _paint(img: np.ndarray, area: np.ndarray, c: int, angle: float, rng: np.random.Generator) -> None:
    style = class_style(c)
    hue = (style.hue + rng.integers(-2, 3)) % 180
    sat, val = rng.integers(180, 256), rng.integers(190, 256) if style.bright else rng.integers(110, 161)
    light, dark = _hsv_to_bgr(hue, sat, val), _hsv_to_bgr(hue, sat, val * 0.45)
    pattern = _texture(img.shape[0], style.texture, angle, rng)
    img[area & ~pattern] = light
    img[area & pattern] = dark


def make_sample(size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One synthetic sample: (BGR uint8 image, class mask, instance mask); masks carry 255 void borders."""
    img = _background(size, rng)
    inst = np.zeros((size, size), np.uint8)
    classes: list[int] = []
    for c in rng.integers(1, NUM_CLASSES, rng.integers(1, 5)):
        for _ in range(5):  # a new object may hide at most half of any earlier one
            area, angle = _shape_mask(size, class_style(int(c)).shape, rng)
            if all((area & (inst == j)).sum() <= 0.5 * (inst == j).sum() for j in range(1, len(classes) + 1)):
                break
        else:
            continue
        _paint(img, area, int(c), angle, rng)
        classes.append(int(c))
        inst[area] = len(classes)
    return np.clip(img, 0, 255).astype(np.uint8), *_labels(inst, classes, size)


def _labels(inst: np.ndarray, classes: list[int], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Class and instance masks with VOC-style void (255) borders a few pixels wide where any label changes."""
    r = max(1, size // 96)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    border = cv2.dilate(inst, kernel) != cv2.erode(inst, kernel)
    lut = np.array([0, *classes] + [0] * (256 - len(classes) - 1), np.uint8)
    cls = lut[inst]
    cls[border] = IGNORE_INDEX
    inst = inst.copy()
    inst[border] = IGNORE_INDEX
    return cls, inst


def _check_args(n: int, size: int, seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise SegxError(f"--seed must be an integer >= 0, got {seed!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise SegxError(f"--n must be an integer >= 2 (one train and one val image at least), got {n!r}")
    if isinstance(size, bool) or not isinstance(size, int) or not 16 <= size <= 4096:
        raise SegxError(f"--size must be an integer from 16 to 4096 pixels, got {size!r}")


def _claim_out(out: Path) -> Path:
    """The VOCdevkit folder to (re)create; refuses to replace a tree segx did not synthesise."""
    devkit = out / "VOCdevkit"
    if devkit.exists() and not (devkit / "VOC2012" / MARKER).is_file():
        raise SegxError(f"{devkit} exists and is not a segx synthetic set; choose another --out")
    if out.exists() and not out.is_dir():
        raise SegxError(f"{out}: exists and is not a folder; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    return devkit


def _write_sample(voc: Path, image_id: str, size: int, rng: np.random.Generator) -> None:
    image, cls, inst = make_sample(size, rng)
    if not cv2.imwrite(str(voc / IMAGE_DIR / f"{image_id}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 92]):
        raise SegxError(f"{voc / IMAGE_DIR}: could not write {image_id}.jpg")
    mask_to_pil(cls).save(voc / MASK_DIR / f"{image_id}.png", compress_level=1)
    mask_to_pil(inst).save(voc / OBJECT_DIR / f"{image_id}.png", compress_level=1)


def _write_tree(voc: Path, n: int, size: int, seed: int, progress: Callable[[int], None] | None) -> None:
    for sub in (IMAGE_DIR, MASK_DIR, OBJECT_DIR, str(LIST_DIR)):
        (voc / sub).mkdir(parents=True)
    ids = [f"synth_{i:06d}" for i in range(1, n + 1)]
    # each image has its own generator, so threads (which overlap the file-system latency) keep it deterministic
    with ThreadPoolExecutor(max_workers=4) as pool:
        jobs = [pool.submit(_write_sample, voc, image_id, size, np.random.default_rng([seed, i]))
                for i, image_id in enumerate(ids)]
        try:
            for job in jobs:
                job.result()
                if progress is not None:
                    progress(1)
        finally:
            for job in jobs:
                job.cancel()
    n_val = max(1, round(n * VAL_FRACTION))
    order = np.random.default_rng(seed).permutation(n)
    lists = {"val": sorted(ids[j] for j in order[:n_val]), "train": sorted(ids[j] for j in order[n_val:]),
             "trainval": ids}
    for name, names in lists.items():
        (voc / LIST_DIR / f"{name}.txt").write_text("".join(f"{x}\n" for x in names))
    meta = {"n": n, "size": size, "seed": seed, "classes": list(CLASSES)}
    (voc / MARKER).write_text(json.dumps(meta, indent=2) + "\n")


def make_synthetic_voc(out: str | Path, n: int = 200, size: int = 256, seed: int = 0,
                       progress: Callable[[int], None] | None = None) -> Path:
    """Write an n-image size×size synthetic set to out/VOCdevkit/VOC2012 and return that folder.

    The tree is built in a staging folder and renamed into place at the end, so an interrupted run leaves nothing
    half-written; an existing synthetic set at `out` is replaced. `progress(k)` (optional) is called per image."""
    _check_args(n, size, seed)
    out = Path(out).expanduser()
    devkit = _claim_out(out)
    staging = Path(tempfile.mkdtemp(prefix=".VOCdevkit.", dir=out))
    try:
        _write_tree(staging / "VOC2012", n, size, seed, progress)
        if devkit.exists():
            old = Path(tempfile.mkdtemp(prefix=".VOCdevkit.old.", dir=out))
            devkit.rename(old / "VOCdevkit")
            staging.rename(devkit)
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.rename(devkit)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    log.debug("wrote %d synthetic %dx%d images to %s", n, size, size, devkit / "VOC2012")
    return devkit / "VOC2012"
