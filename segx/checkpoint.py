"""segx checkpoints (`best.pt` / `last.pt`): a dict of the ModelMeta fields, the model's state_dict and plain training
data, saved with segx.io.save_checkpoint and read back with weights_only=True. Also loads weights into a model."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from segx.errors import SegxError
from segx.io import load_checkpoint, load_failure
from segx.meta import ModelMeta


def unwrap(model: nn.Module) -> nn.Module:
    """The plain model inside DistributedDataParallel / torch.compile wrappers."""
    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        elif isinstance(getattr(model, "_orig_mod", None), nn.Module):
            model = model._orig_mod
        else:
            return model


def cpu_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the weights on the CPU in the standard (contiguous) layout."""
    state = unwrap(model).state_dict()
    return {k: v.detach().cpu().clone(memory_format=torch.contiguous_format) for k, v in state.items()}


def make_checkpoint(model: nn.Module, meta: ModelMeta, **extra: Any) -> dict[str, Any]:
    """meta fields + "model" (CPU state_dict) + extra plain data (epoch, metrics, optimizer state, ...)."""
    return {**meta.to_dict(), "model": cpu_state_dict(model), **extra}


def check_state_dict(model: nn.Module, state: dict[str, Any], source: str | Path, what: str) -> None:
    """Raise one SegxError naming `source` when `state` does not fit `model` key for key and shape for shape."""
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise SegxError(f"{source}: 'model' is not a state_dict of tensors")
    own = unwrap(model).state_dict()
    missing, unexpected = own.keys() - state.keys(), state.keys() - own.keys()
    bad_shape = [k for k in own.keys() & state.keys() if own[k].shape != state[k].shape]
    if missing or unexpected or bad_shape:
        detail = (f"shape of '{bad_shape[0]}' is {tuple(state[bad_shape[0]].shape)}, expected "
                  f"{tuple(own[bad_shape[0]].shape)}" if bad_shape else
                  f"{len(missing)} missing and {len(unexpected)} unexpected keys, e.g. "
                  f"'{next(iter(sorted(missing or unexpected)))}'")
        raise SegxError(f"{source}: weights do not fit {what} ({detail}); was it saved for another arch or "
                        f"class count?")


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, ModelMeta]:
    """Load a `.pt` segx checkpoint -> (model in eval mode on `device`, ModelMeta). "torchvision:NAME" loads
    torchvision's COCO-with-VOC-labels weights of NAME instead (segx.models.pretrained)."""
    from segx.models import build_model
    from segx.models.pretrained import load_spec, spec_arch

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


def load_weights(model: nn.Module, path: str | Path, *, arch: str, num_classes: int) -> None:
    """Initialise `model` from a segx checkpoint (same arch) or a bare state_dict file (strict shapes)."""
    path = Path(path)
    if not path.is_file():
        raise SegxError(f"{path}: weights file not found (give a segx .pt checkpoint or a state_dict file)")
    if path.stat().st_size == 0:
        raise SegxError(f"{path}: weights file is empty (0 bytes)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for bad files
        raise SegxError(f"{path}: not a loadable weights file ({load_failure(e)})") from e
    if isinstance(obj, dict) and "model" in obj and "arch" in obj:
        if obj["arch"] != arch:
            raise SegxError(f"{path}: checkpoint is for arch '{obj['arch']}', not '{arch}'")
        obj = obj["model"]
    check_state_dict(model, obj, path, f"arch '{arch}' with {num_classes} classes")
    unwrap(model).load_state_dict(obj)
