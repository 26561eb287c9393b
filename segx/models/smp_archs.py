"""U-Nets from segmentation_models_pytorch, built with encoder_weights=None (nothing is downloaded).
The input is zero-padded to a multiple of 32 and the logits cropped back, so any H×W works."""
from __future__ import annotations

import torch
from torch import nn

from segx.models.base import SegModel, pad_to_multiple
from segx.models.registry import register

_DIVISOR = 32  # five stride-2 encoder stages


class SmpSeg(SegModel):
    def __init__(self, net: nn.Module, divisor: int = _DIVISOR) -> None:
        super().__init__()
        self.net = net
        self.divisor = divisor

    def logits(self, x: torch.Tensor, with_aux: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        h, w = x.shape[-2:]
        out = self.net(pad_to_multiple(x, self.divisor))
        return out[..., :h, :w], None


def _unet(encoder: str, num_classes: int) -> nn.Module:
    import segmentation_models_pytorch as smp

    return SmpSeg(smp.Unet(encoder_name=encoder, encoder_weights=None, classes=num_classes))


@register("unet_resnet18", family="CNN", library="smp", size_divisor=_DIVISOR,
          pretrained=("imagenet",), description="U-Net (smp), ResNet-18 encoder")
def unet_resnet18(num_classes: int) -> nn.Module:
    return _unet("resnet18", num_classes)


@register("unet_mobilenet_v2", family="CNN", library="smp", size_divisor=_DIVISOR,
          pretrained=("imagenet",), description="U-Net (smp), MobileNetV2 encoder")
def unet_mobilenet_v2(num_classes: int) -> nn.Module:
    return _unet("mobilenet_v2", num_classes)
