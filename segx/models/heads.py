"""Deployment heads: what an exported model outputs. `logits` is the model itself (float32 N×C×H×W); `mask` wraps
it so the upsample to the input size and the argmax run inside the graph (uint8 N×H×W class ids); `mask+conf` also
outputs the max softmax probability (float32 N×H×W)."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from segx.errors import unknown_choice

HEADS = ("logits", "mask", "mask+conf")
OUTPUT_NAMES = {"logits": ("logits",), "mask": ("mask",), "mask+conf": ("mask", "confidence")}


def check_head(head: str) -> str:
    if head not in HEADS:
        raise unknown_choice("head", head, HEADS)
    return head


class MaskHead(nn.Module):
    """model(x) -> logits, resized to x's H×W (bilinear, as segx's logits path does), argmax over classes -> uint8.

    ONNX: Resize + ArgMax(axis=1) + Cast(uint8): ONNX Runtime, OpenVINO and TensorRT (ArgMax -> TopK, int32
    indices, then the uint8 cast) all take it, also with dynamic H/W. Up to 255 classes."""

    def __init__(self, model: nn.Module, confidence: bool = False) -> None:
        super().__init__()
        self.model = model
        self.confidence = confidence
        for attr in ("export_batch", "onnx_dynamo"):  # export hints of the wrapped model (see exporters.job)
            if hasattr(model, attr):
                setattr(self, attr, getattr(model, attr))

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        logits = self.model(x)
        if logits.shape[-2:] != x.shape[-2:]:
            logits = F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)
        mask = logits.argmax(1).to(torch.uint8)
        if not self.confidence:
            return mask
        # max softmax probability = 1 / sum(exp(l - max l)): no full softmax tensor
        top = logits.amax(1, keepdim=True)
        conf = torch.exp(logits - top).sum(1).reciprocal()
        return mask, conf.float()


def with_head(model: nn.Module, head: str) -> nn.Module:
    """The module to export for `head` (the model itself for logits)."""
    check_head(head)
    return model if head == "logits" else MaskHead(model, confidence=head == "mask+conf").eval()
