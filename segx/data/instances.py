"""VOC instance targets for detection archs (Mask R-CNN): every object of SegmentationObject becomes a box, a class
(from SegmentationClass) and a binary mask; void (255) is never part of a mask; objects with no pixels are dropped.
Images without a SegmentationObject file (SBD ids) fall back to connected components of the class mask."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import ndimage
from torchvision import tv_tensors

from segx.data.constants import IGNORE_INDEX, NUM_CLASSES
from segx.data.layout import OBJECT_DIR
from segx.data.voc import VOCSegmentation, read_mask
from segx.errors import SegxError

# boxes float32 K×4 (x1, y1, x2, y2; x2/y2 exclusive), labels int64 K (1..20), masks uint8 K×H×W
Target = dict[str, torch.Tensor]


def instance_targets(objects: torch.Tensor, classes: torch.Tensor) -> Target:
    """Targets from an H×W object-id mask (0 background, 255 void) and the H×W class mask of the same image.

    An object's label is the most frequent class 1..20 under it; an object whose pixels carry no such class is
    dropped (it cannot be scored), as is an id with no pixels. Boxes enclose each mask's pixels."""
    ids = [int(i) for i in torch.unique(objects) if 0 < int(i) != IGNORE_INDEX]
    masks, labels = [], []
    for i in ids:
        mask = objects == i
        under = classes[mask]
        under = under[(under > 0) & (under < NUM_CLASSES)]
        if under.numel() == 0:
            continue
        masks.append(mask)
        labels.append(int(torch.mode(under).values))
    h, w = objects.shape[-2:]
    if not masks:
        return {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64),
                "masks": torch.zeros(0, h, w, dtype=torch.uint8)}
    stacked = torch.stack(masks)
    return {"boxes": mask_boxes(stacked), "labels": torch.tensor(labels, dtype=torch.int64),
            "masks": stacked.to(torch.uint8)}


def mask_boxes(masks: torch.Tensor) -> torch.Tensor:
    """K×H×W non-empty boolean masks -> K×4 float32 boxes (x1, y1, x2, y2) with exclusive x2/y2, so a one-pixel
    object still has a positive width and height (what torchvision's detection losses require)."""
    rows, cols = masks.any(2), masks.any(1)
    y = torch.arange(masks.shape[1])
    x = torch.arange(masks.shape[2])
    big = torch.iinfo(torch.int64).max
    y1 = torch.where(rows, y, big).amin(1)
    y2 = torch.where(rows, y, -1).amax(1) + 1
    x1 = torch.where(cols, x, big).amin(1)
    x2 = torch.where(cols, x, -1).amax(1) + 1
    return torch.stack([x1, y1, x2, y2], 1).float()


def instances_from_semantic(classes: torch.Tensor) -> Target:
    """Targets from a class mask alone: each 4-connected region of one class is an object (touching objects of the
    same class merge). Used where no SegmentationObject exists and when a semantic batch is given to the model."""
    cls = classes.cpu().numpy()
    objects = np.zeros(cls.shape, np.int64)
    count = 0
    for c in np.unique(cls):
        if not 0 < c < NUM_CLASSES:
            continue
        regions, n = ndimage.label(cls == c)
        objects[regions > 0] = regions[regions > 0] + count
        count += n
    if count >= IGNORE_INDEX:  # keep ids clear of the void value
        objects[objects >= IGNORE_INDEX] += 1
    return instance_targets(torch.from_numpy(objects), classes.cpu())


class VOCInstances(torch.utils.data.Dataset):
    """VOC2012 instances: item i = (image float32 3×H×W normalised, Target). `transforms` maps (Image, Mask, Mask)
    jointly, e.g. `segx.data.transforms.train_transforms(crop)`; objects cropped away are dropped."""

    def __init__(self, root: str | Path, split: str = "train",
                 transforms: Callable[..., tuple[Any, ...]] | None = None) -> None:
        self.semantic = VOCSegmentation(root, split, transforms)
        self.root, self.ids, self.transforms = self.semantic.root, self.semantic.ids, self.semantic.transforms

    def __len__(self) -> int:
        return len(self.semantic)

    def object_path(self, i: int) -> Path:
        return self.root / OBJECT_DIR / f"{self.ids[i]}.png"

    def __getitem__(self, i: int) -> tuple[torch.Tensor, Target]:
        image, classes = self.semantic.load(i)
        img_t = tv_tensors.Image(torch.from_numpy(image).permute(2, 0, 1))
        cls_t = tv_tensors.Mask(torch.from_numpy(classes))
        path = self.object_path(i)
        if not path.is_file():
            img_t, cls_t = self.transforms(img_t, cls_t)
            return img_t.as_subclass(torch.Tensor), instances_from_semantic(cls_t.as_subclass(torch.Tensor))
        objects = read_mask(path)
        if objects.shape != classes.shape:
            raise SegxError(f"{path}: object mask is {objects.shape[1]}×{objects.shape[0]} but the class mask is "
                            f"{classes.shape[1]}×{classes.shape[0]}; run `segx data check --root {self.root}`")
        img_t, cls_t, obj_t = self.transforms(img_t, cls_t, tv_tensors.Mask(torch.from_numpy(objects)))
        target = instance_targets(obj_t.as_subclass(torch.Tensor), cls_t.as_subclass(torch.Tensor))
        return img_t.as_subclass(torch.Tensor), target


def collate_instances(batch: list[tuple[torch.Tensor, Target]]) -> tuple[torch.Tensor, list[Target]]:
    """Stack the (equal-size, cropped) images; keep the targets as a list (each image has its own count)."""
    images, targets = zip(*batch)
    return torch.stack(images), list(targets)


def instance_train_data(root: Path, split: str, crop: int) -> tuple[VOCInstances, Callable[..., Any]]:
    """The training set of instance archs (an `ArchSpec.train_data` hook): VOCInstances with the segx train
    transforms, and its collate function."""
    from segx.data.transforms import train_transforms

    return VOCInstances(root, split, train_transforms(crop)), collate_instances


def targets_to(targets: list[Target], device: torch.device | str) -> list[Target]:
    return [{k: v.to(device, non_blocking=True) for k, v in t.items()} for t in targets]
