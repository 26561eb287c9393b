"""`SegModel`: the one wrapper contract for every arch. Eval mode: forward(x) -> logits N×C×H×W at x's resolution
(one tensor, what export and every runtime see). Train mode: forward(x) -> {"out": logits, "aux": logits (if any)}."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class SegModel(nn.Module):
    """Subclasses implement `logits(x, with_aux)` -> (main logits, aux logits or None), both at x's resolution."""

    has_aux: bool = False

    def logits(self, x: torch.Tensor, with_aux: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        raise NotImplementedError

    def inference_parameters(self) -> list[nn.Parameter]:
        """Parameters the eval-mode forward uses (training-only heads excluded)."""
        return list(self.parameters())

    def forward(self, x: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:  # type: ignore[override]
        if not self.training:
            return self.logits(x, with_aux=False)[0]
        out, aux = self.logits(x, with_aux=self.has_aux)
        return {"out": out} if aux is None else {"out": out, "aux": aux}


def resize_to(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Bilinear upsampling of logits to the spatial size of the input x."""
    return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)


def pad_to_multiple(x: torch.Tensor, divisor: int) -> torch.Tensor:
    """Zero-pad (the normalised mean colour) bottom/right so H and W are multiples of `divisor`."""
    h, w = x.shape[-2:]
    return F.pad(x, (0, (divisor - w % divisor) % divisor, 0, (divisor - h % divisor) % divisor))


def set_bn_momentum(model: nn.Module, momentum: float) -> nn.Module:
    """Set every BatchNorm's running-stats momentum (torchvision's MobileNetV3 uses 0.01, made for 600-epoch
    ImageNet runs: after a short run its running stats are still mostly the initial 0/1 and eval mode breaks)."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = momentum
    return model
