"""segx checkpoints (`best.pt` / `last.pt`): a dict of the ModelMeta fields, the model's state_dict and plain training
data, saved with segx.io.save_checkpoint and read back with weights_only=True; `load_model` builds the model they
hold (or a "torchvision:NAME" spec). The state_dict helpers live in segx.models.weights (re-exported here)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from segx.data.constants import CLASSES, NUM_CLASSES
from segx.errors import SegxError, unknown_choice
from segx.io import load_checkpoint
from segx.meta import ModelMeta
from segx.models import build_model
from segx.models.pretrained import SPEC_PREFIX, TORCHVISION, TORCHVISION_IMGSZ, spec_arch
from segx.models.weights import check_state_dict, cpu_state_dict, load_weights, unwrap

__all__ = ["check_state_dict", "cpu_state_dict", "load_model", "load_spec", "load_weights", "make_checkpoint",
           "unwrap"]


def make_checkpoint(model: nn.Module, meta: ModelMeta, **extra: Any) -> dict[str, Any]:
    """meta fields + "model" (CPU state_dict) + extra plain data (epoch, metrics, optimizer state, ...)."""
    return {**meta.to_dict(), "model": cpu_state_dict(model), **extra}


def load_spec(text: str | Path) -> tuple[nn.Module, ModelMeta]:
    """"torchvision:NAME" -> (NAME with torchvision's COCO-with-VOC-labels weights, in eval mode; its ModelMeta)."""
    arch = spec_arch(text) or ""
    if arch not in TORCHVISION:
        raise unknown_choice("pretrained model", f"{SPEC_PREFIX}{arch}", [SPEC_PREFIX + a for a in TORCHVISION])
    model = build_model(arch, NUM_CLASSES, weights="torchvision").eval()
    meta = ModelMeta(arch=arch, classes=CLASSES, imgsz=TORCHVISION_IMGSZ,
                     extra={"weights": "torchvision", "url": TORCHVISION[arch]})
    return model, meta


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, ModelMeta]:
    """Load a `.pt` segx checkpoint -> (model in eval mode on `device`, ModelMeta). "torchvision:NAME" loads
    torchvision's COCO-with-VOC-labels weights of NAME instead (segx.models.pretrained)."""
    if spec_arch(path) is not None:
        model, meta = load_spec(path)
        return model.to(device), meta
    path = Path(path)
    ckpt = load_checkpoint(path)
    try:
        meta = ModelMeta.from_dict(ckpt)
        model = build_model(meta.arch, num_classes=meta.num_classes)
    except (SegxError, TypeError, ValueError) as e:
        raise SegxError(f"{path}: bad checkpoint metadata ({e})") from e
    if meta.num_classes != len(meta.classes):
        raise SegxError(f"{path}: num_classes is {meta.num_classes} but {len(meta.classes)} class names are given")
    check_state_dict(model, ckpt["model"], path, f"arch '{meta.arch}' with {meta.num_classes} classes")
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval(), meta
