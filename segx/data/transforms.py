"""Joint image+mask transforms (torchvision.transforms.v2 with tv_tensors.Mask): masks resize nearest, pad with 255.
train = random scale 0.5–2.0 of the crop, pad, random crop, flip; eval = no crop (or fixed resize); normalise."""
from __future__ import annotations

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from segx.data.constants import IGNORE_INDEX, MEAN, STD
from segx.errors import SegxError

_FILL = {tv_tensors.Image: 0, tv_tensors.Mask: IGNORE_INDEX}


def _finish() -> list[v2.Transform]:
    """uint8 image -> float32 0..1 -> normalised; mask -> int64."""
    return [v2.ToDtype({tv_tensors.Image: torch.float32, tv_tensors.Mask: torch.int64, "others": None}, scale=True),
            v2.Normalize(mean=list(MEAN), std=list(STD))]


def _check_size(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SegxError(f"{name} must be a positive integer, got {value!r}")
    return value


def train_transforms(crop: int) -> v2.Compose:
    """Random resize (short side 0.5–2.0 × crop), pad to crop (image 0, mask 255), random crop, h-flip, normalise."""
    crop = _check_size("crop", crop)
    return v2.Compose([
        v2.RandomResize(min_size=max(1, int(0.5 * crop)), max_size=int(2.0 * crop) + 1),
        v2.RandomCrop(crop, pad_if_needed=True, fill=_FILL),
        v2.RandomHorizontalFlip(0.5),
        *_finish(),
    ])


def eval_transforms(size: int | None = None) -> v2.Compose:
    """Normalise only (size=None keeps the resolution) or resize to size×size (image bilinear, mask nearest)."""
    steps: list[v2.Transform] = []
    if size is not None:
        size = _check_size("size", size)
        steps.append(v2.Resize((size, size), interpolation=v2.InterpolationMode.BILINEAR, antialias=True))
    return v2.Compose([*steps, *_finish()])
