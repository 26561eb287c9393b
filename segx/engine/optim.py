"""Optimizer, LR schedule and mixed precision for training: SGD (momentum 0.9, wd 1e-4) or AdamW, a linear warm-up
then poly decay (power 0.9) stepped every iteration as in torchvision's segmentation references; AMP settings."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from segx.errors import SegxError, unknown_choice

WARMUP_START = 0.01  # first warm-up step runs at 1% of the base LR (references: --lr-warmup-decay 0.01)
POLY_POWER = 0.9


def _sgd(params: list[nn.Parameter], lr: float, wd: float) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=wd)


def _adamw(params: list[nn.Parameter], lr: float, wd: float) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=lr, weight_decay=wd)


# name -> (builder(params, lr, weight_decay), default weight decay)
OPTIMIZERS: dict[str, tuple[Callable[[list[nn.Parameter], float, float], torch.optim.Optimizer], float]] = {
    "sgd": (_sgd, 1e-4),
    "adamw": (_adamw, 1e-4),
}


def build_optimizer(model: nn.Module, name: str, lr: float, weight_decay: float | None) -> torch.optim.Optimizer:
    if name not in OPTIMIZERS:
        raise unknown_choice("optimizer", name, OPTIMIZERS)
    builder, default_wd = OPTIMIZERS[name]
    params = [p for p in model.parameters() if p.requires_grad]
    return builder(params, lr, default_wd if weight_decay is None else weight_decay)


def poly_warmup(total_iters: int, warmup_iters: int) -> Callable[[int], float]:
    """LR factor at iteration `it`: linear 0.01 -> 1 over the warm-up, then (1 - progress) ** 0.9 down to 0."""
    warmup_iters = min(warmup_iters, max(total_iters - 1, 0))

    def factor(it: int) -> float:
        if it < warmup_iters:
            return WARMUP_START + (1 - WARMUP_START) * it / warmup_iters
        progress = (it - warmup_iters) / max(1, total_iters - warmup_iters)
        return max(0.0, 1 - progress) ** POLY_POWER

    return factor


def build_scheduler(optimizer: torch.optim.Optimizer, total_iters: int,
                    warmup_iters: int) -> torch.optim.lr_scheduler.LambdaLR:
    # a closure (not a callable object): LambdaLR's state_dict then holds only plain counters, so a resumed run
    # with more epochs follows the new schedule from where it stopped
    return torch.optim.lr_scheduler.LambdaLR(optimizer, poly_warmup(total_iters, warmup_iters))


@dataclass(frozen=True)
class AmpSettings:
    enabled: bool
    dtype: torch.dtype
    device_type: str

    @property
    def needs_scaler(self) -> bool:
        return self.enabled and self.dtype == torch.float16

    def autocast(self) -> torch.autocast:
        return torch.autocast(self.device_type, dtype=self.dtype, enabled=self.enabled)


AMP_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def amp_settings(enabled: bool, dtype: str | None, device: torch.device) -> AmpSettings:
    """bf16 autocast on CPU; fp16 (with a GradScaler) on CUDA unless dtype='bf16'."""
    name = dtype or ("fp16" if device.type == "cuda" else "bf16")
    if name not in AMP_DTYPES:
        raise unknown_choice("AMP dtype", name, AMP_DTYPES)
    if device.type == "cpu" and name == "fp16":
        raise SegxError("fp16 autocast needs CUDA; use --amp-dtype bf16 on the CPU")
    if enabled and device.type == "cuda" and name == "bf16" and not torch.cuda.is_bf16_supported():
        raise SegxError(f"{torch.cuda.get_device_name(device)} does not support bf16; use --amp without --amp-dtype "
                        f"(fp16 with a loss scaler)")
    return AmpSettings(enabled, AMP_DTYPES[name], device.type)
