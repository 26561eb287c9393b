"""Weights of a built model: unwrap DDP / torch.compile wrappers, copy the state_dict to the CPU, check that a
state_dict fits a model, and load a weights file into one. Knows nothing of the arch registry or checkpoints."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from segx.errors import SegxError
from segx.io import safe_torch_load


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


def load_weights(model: nn.Module, path: str | Path, *, arch: str, num_classes: int) -> None:
    """Initialise `model` from a segx checkpoint (same arch) or a bare state_dict file (strict shapes)."""
    obj = safe_torch_load(path, "weights file")
    if isinstance(obj, dict) and "model" in obj and "arch" in obj:
        if obj["arch"] != arch:
            raise SegxError(f"{path}: checkpoint is for arch '{obj['arch']}', not '{arch}'")
        obj = obj["model"]
    check_state_dict(model, obj, path, f"arch '{arch}' with {num_classes} classes")
    unwrap(model).load_state_dict(obj)
