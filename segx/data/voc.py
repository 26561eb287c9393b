"""Reading and writing VOC images and palette masks, and the `VOCSegmentation` dataset over a VOC2012 tree.
Masks are palette-index PNGs (0..20 classes, 255 void); images come back RGB."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torchvision import tv_tensors

from segx.data.constants import PALETTE_256
from segx.data.layout import AUG_MASK_DIR, IMAGE_DIR, MASK_DIR, resolve_voc_root
from segx.errors import SegxError
from segx.io import atomic_path

__all__ = ["VOCSegmentation", "mask_to_pil", "read_image", "read_mask", "resolve_voc_root", "write_mask"]

_FLAT_PALETTE = [v for rgb in PALETTE_256 for v in rgb]


def _open(path: str | Path) -> Image.Image:
    path = Path(path)
    if not path.is_file():
        raise SegxError(f"{path}: file not found")
    try:
        img = Image.open(path)
        img.load()
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise SegxError(f"{path}: unreadable image ({e})") from e
    return img


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as uint8 H×W×3 RGB."""
    return np.array(_open(path).convert("RGB"))


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
        return image, mask

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = self.load(i)
        img_t = tv_tensors.Image(torch.from_numpy(image).permute(2, 0, 1))
        mask_t = tv_tensors.Mask(torch.from_numpy(mask))
        img_t, mask_t = self.transforms(img_t, mask_t)
        return img_t.as_subclass(torch.Tensor), mask_t.as_subclass(torch.Tensor)

    def __repr__(self) -> str:
        return f"VOCSegmentation(root={str(self.root)!r}, split={self.split!r}, n={len(self)})"
