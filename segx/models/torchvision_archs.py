"""torchvision's segmentation models (FCN, DeepLabV3, LR-ASPP), wrapped so they return one logits tensor.
Built with weights=None and weights_backbone=None: nothing is downloaded."""
from __future__ import annotations

import torch
from torch import nn
from torchvision.models import segmentation as tvseg

from segx.models.base import SegModel, resize_to, set_bn_momentum
from segx.models.registry import register

_TV_PRETRAINED = ("torchvision", "imagenet")  # COCO-with-VOC-labels full model; ImageNet backbone


class TorchvisionSeg(SegModel):
    """Runs a torchvision segmentation model's backbone and heads directly (the aux head only when training)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.whole_features = isinstance(net, tvseg.LRASPP)  # LR-ASPP's head reads several feature maps
        self.has_aux = getattr(net, "aux_classifier", None) is not None

    def inference_parameters(self) -> list[nn.Parameter]:
        aux = {id(p) for p in self.net.aux_classifier.parameters()} if self.has_aux else set()
        return [p for p in self.parameters() if id(p) not in aux]

    def logits(self, x: torch.Tensor, with_aux: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        feats = self.net.backbone(x)
        out = self.net.classifier(feats if self.whole_features else feats["out"])
        aux = resize_to(self.net.aux_classifier(feats["aux"]), x) if with_aux and self.has_aux else None
        return resize_to(out, x), aux


@register("fcn_resnet50", family="CNN", size_divisor=8, has_aux=True, optimizer="sgd", lr=0.01,
          pretrained=_TV_PRETRAINED, description="FCN, ResNet-50 dilated backbone (output stride 8)")
def fcn_resnet50(num_classes: int) -> nn.Module:
    return TorchvisionSeg(tvseg.fcn_resnet50(weights=None, weights_backbone=None, num_classes=num_classes,
                                             aux_loss=True))


@register("deeplabv3_resnet50", family="CNN", size_divisor=8, has_aux=True, optimizer="sgd", lr=0.01,
          pretrained=_TV_PRETRAINED, description="DeepLabV3 (ASPP), ResNet-50 dilated backbone (output stride 8)")
def deeplabv3_resnet50(num_classes: int) -> nn.Module:
    return TorchvisionSeg(tvseg.deeplabv3_resnet50(weights=None, weights_backbone=None, num_classes=num_classes,
                                                   aux_loss=True))


@register("deeplabv3_mobilenet_v3_large", family="CNN", size_divisor=16, has_aux=True, lr=3e-3,
          pretrained=_TV_PRETRAINED, description="DeepLabV3 (ASPP), MobileNetV3-Large backbone (output stride 16)")
def deeplabv3_mobilenet_v3_large(num_classes: int) -> nn.Module:
    net = tvseg.deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=num_classes,
                                             aux_loss=True)
    return TorchvisionSeg(set_bn_momentum(net, 0.1))


@register("lraspp_mobilenet_v3_large", family="CNN", size_divisor=16, lr=3e-3,
          pretrained=_TV_PRETRAINED, description="Lite R-ASPP, MobileNetV3-Large backbone: the fastest")
def lraspp_mobilenet_v3_large(num_classes: int) -> nn.Module:
    net = tvseg.lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=num_classes)
    return TorchvisionSeg(set_bn_momentum(net, 0.1))
