"""Model size and compute: parameters and FLOPs of an arch's inference forward, counted on the meta device
(no memory, no compute: torch.utils.flop_counter counts a multiply-add as 2 FLOPs)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from segx.data.constants import NUM_CLASSES
from segx.models.registry import build_model


@dataclass(frozen=True)
class Profile:
    arch: str
    params: int       # parameters the inference forward uses (training-only aux heads excluded)
    flops: int        # FLOPs of one 1×3×imgsz×imgsz forward
    imgsz: int


def profile(arch: str, imgsz: int = 512, num_classes: int = NUM_CLASSES) -> Profile:
    with torch.device("meta"):
        model = build_model(arch, num_classes).eval()
        x = torch.empty(1, 3, imgsz, imgsz)
    params = model.inference_parameters() if hasattr(model, "inference_parameters") else list(model.parameters())
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        getattr(model, "profile_forward", model)(x)  # archs with data-dependent work count their fixed part
    return Profile(arch, sum(p.numel() for p in params), int(counter.get_total_flops()), imgsz)
