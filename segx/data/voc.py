"""Reading and writing VOC images and palette masks, and the `VOCSegmentation` dataset over a VOC2012 tree.
Masks are palette-index PNGs (0..20 classes, 255 void); images come back RGB."""
from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torchvision import tv_tensors

from segx.data.constants import IGNORE_INDEX, NUM_CLASSES, PALETTE_256
from segx.data.layout import AUG_MASK_DIR, IMAGE_DIR, MASK_DIR, resolve_voc_root
from segx.errors import SegxError
from segx.io import atomic_path

__all__ = ["MAX_PIXELS", "VOCSegmentation", "mask_to_pil", "open_image", "read_image", "read_mask", "resolve_voc_root",
           "write_mask"]

_FLAT_PALETTE = [v for rgb in PALETTE_256 for v in rgb]
MAX_PIXELS = 100_000_000  # decompression-bomb guard: larger images are refused from their header, before decoding
_VALID_LABEL = np.zeros(256, bool)
_VALID_LABEL[:NUM_CLASSES] = _VALID_LABEL[IGNORE_INDEX] = True


def open_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Open an image file lazily (header only), refusing empty files and images above `max_pixels` before any
    pixel is decoded. The one guard every image reader in segx goes through."""
    path = Path(path)
    if not path.is_file():
        raise SegxError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise SegxError(f"{path}: empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)
    except Image.DecompressionBombError as e:
        raise SegxError(f"{path}: image too large ({e}); resize the image first") from e
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise SegxError(f"{path}: unreadable image ({e})") from e
    w, h = img.size
    if w * h > max_pixels:
        img.close()
        raise SegxError(f"{path}: {w}×{h} = {w * h / 1e6:.0f} MP is above the {max_pixels / 1e6:.0f} MP limit "
                        f"(decompression-bomb guard); resize the image first")
    return img


def _open(path: str | Path, max_pixels: int = MAX_PIXELS) -> Image.Image:
    img = open_image(path, max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise SegxError(f"{path}: unreadable image ({e})") from e
    return img


def read_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read an image file as uint8 H×W×3 RGB (images above `max_pixels` are refused before decoding)."""
    return np.array(_open(path, max_pixels).convert("RGB"))


def read_mask(path: str | Path) -> np.ndarray:
    """Read a VOC mask as uint8 H×W class indices (palette "P" PNG; a grey "L" PNG is taken as indices too)."""
    img = _open(path)
    if img.mode not in ("P", "L"):
        raise SegxError(f"{path}: mask has mode {img.mode}, expected a palette (P) PNG of class indices; "
                        f"check the tree with `segx data check`")
    return np.array(img, dtype=np.uint8)


def mask_to_pil(mask: np.ndarray) -> Image.Image:
    """A uint8 H×W index mask as a PIL palette image with the VOC colormap."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise SegxError(f"mask must be H×W, got shape {mask.shape}")
    if mask.dtype != np.uint8:
        if mask.size and (mask.min() < 0 or mask.max() > 255):
            raise SegxError(f"mask values must be 0..255, got {mask.min()}..{mask.max()}")
        mask = mask.astype(np.uint8)
    img = Image.fromarray(np.ascontiguousarray(mask))
    img.putpalette(_FLAT_PALETTE)
    return img


def write_mask(path: str | Path, mask: np.ndarray) -> Path:
    """Write an index mask as a VOC palette PNG, atomically."""
    img = mask_to_pil(mask)
    with atomic_path(path, suffix=".png") as tmp:
        img.save(tmp, format="PNG")
    return Path(path)


class VOCSegmentation(torch.utils.data.Dataset):
    """VOC2012 semantic segmentation: item i = (image float32 3×H×W normalised, mask int64 H×W in {0..20, 255}).

    `split` is any list name in ImageSets/Segmentation (train, val, trainval, segx_train, train_aug, ...).
    `transforms` maps (tv_tensors.Image, tv_tensors.Mask) jointly; None = `eval_transforms()` (original size)."""

    def __init__(self, root: str | Path, split: str = "train",
                 transforms: Callable[[Any, Any], tuple[Any, Any]] | None = None) -> None:
        from segx.data.splits import list_ids
        from segx.data.transforms import eval_transforms

        self.root = resolve_voc_root(root)
        self.split = split
        self.ids = list_ids(self.root, split)
        self.transforms = transforms if transforms is not None else eval_transforms()
        self._images = [self.root / IMAGE_DIR / f"{i}.jpg" for i in self.ids]
        self._masks = [self._find_mask(i) for i in self.ids]
        self._check_files()

    def _find_mask(self, image_id: str) -> Path:
        """Official VOC masks first; SBD-converted ones (SegmentationClassAug) for ids VOC does not annotate."""
        voc = self.root / MASK_DIR / f"{image_id}.png"
        aug = self.root / AUG_MASK_DIR / f"{image_id}.png"
        return aug if not voc.is_file() and aug.is_file() else voc

    def _check_files(self) -> None:
        missing = [p for pair in zip(self._images, self._masks) for p in pair if not p.is_file()]
        if missing:
            more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
            raise SegxError(f"split '{self.split}' lists files that do not exist: {missing[0]}{more}; "
                            f"run `segx data check --root {self.root}`")

    def __len__(self) -> int:
        return len(self.ids)

    def image_path(self, i: int) -> Path:
        return self._images[i]

    def mask_path(self, i: int) -> Path:
        return self._masks[i]

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """The raw (uint8 H×W×3 RGB image, uint8 H×W mask) of item i, untransformed."""
        image, mask = read_image(self._images[i]), read_mask(self._masks[i])
        if image.shape[:2] != mask.shape:
            raise SegxError(f"{self._masks[i]}: mask is {mask.shape[1]}×{mask.shape[0]} but the image is "
                            f"{image.shape[1]}×{image.shape[0]}; run `segx data check --root {self.root}`")
        if not _VALID_LABEL[mask].all():
            bad = np.unique(mask[~_VALID_LABEL[mask]])[:8].tolist()
            raise SegxError(f"{self._masks[i]}: mask values {bad} are outside 0-{NUM_CLASSES - 1} and {IGNORE_INDEX}; "
                            f"run `segx data check --root {self.root}`")
        return image, mask

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = self.load(i)
        img_t = tv_tensors.Image(torch.from_numpy(image).permute(2, 0, 1))
        mask_t = tv_tensors.Mask(torch.from_numpy(mask))
        img_t, mask_t = self.transforms(img_t, mask_t)
        return img_t.as_subclass(torch.Tensor), mask_t.as_subclass(torch.Tensor)

    def __repr__(self) -> str:
        return f"VOCSegmentation(root={str(self.root)!r}, split={self.split!r}, n={len(self)})"
