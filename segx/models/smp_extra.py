"""More segmentation_models_pytorch archs: DeepLabV3+ (ResNet-50 encoder, output stride 16) and SegFormer-B0 (MiT-B0
encoder, family "transformer"). Built with encoder_weights=None (nothing is downloaded); wrapped by `SmpSeg`."""
from __future__ import annotations

import torch
from torch import nn

from segx.models.registry import register
from segx.models.smp_archs import SmpSeg

_DIVISOR = 32  # five stride-2 encoder stages (MiT: four, with a stride-4 stem)


@register("deeplabv3plus_resnet50", family="CNN", library="smp", size_divisor=_DIVISOR, optimizer="sgd", lr=0.01,
          pretrained=("imagenet",),
          description="DeepLabV3+ (smp): ASPP + low-level decoder, ResNet-50 encoder (output stride 16)")
def deeplabv3plus_resnet50(num_classes: int) -> nn.Module:
    import segmentation_models_pytorch as smp

    return SmpSeg(smp.DeepLabV3Plus(encoder_name="resnet50", encoder_weights=None, classes=num_classes))


@register("segformer_mit_b0", family="transformer", library="smp", size_divisor=_DIVISOR, optimizer="adamw",
          lr=1e-3, pretrained=("imagenet",),
          description="SegFormer-B0 (smp): Mix Transformer MiT-B0 encoder, all-MLP decoder")
def segformer_mit_b0(num_classes: int) -> nn.Module:
    import segmentation_models_pytorch as smp

    device = torch.get_default_device()  # "meta" while segx.models.profile counts FLOPs
    with torch.device("cpu"):  # MiT reads its drop-path rates with .item(), which a meta tensor cannot do
        net = smp.Segformer(encoder_name="mit_b0", encoder_weights=None, classes=num_classes)
    return SmpSeg(net).to(device)
