"""Mask R-CNN (torchvision maskrcnn_resnet50_fpn_v2, family "R-CNN") as a semantic segmenter: trained on instance
targets, its eval-mode detections are painted into one N×C×H×W class-score map (see `paint_scores`), so it is
scored, exported and benchmarked like every other arch. Exports to ONNX with the TorchScript-based exporter."""
from __future__ import annotations

import torch
from torch import nn
from torchvision.models.detection import maskrcnn_resnet50_fpn_v2
from torchvision.models.detection.transform import GeneralizedRCNNTransform

from segx.data.instances import Target, instance_train_data, instances_from_semantic
from segx.errors import SegxError
from segx.models.base import SegModel
from segx.models.registry import register

SCORE_THRESH = 0.5  # detections below this score are not painted (and not kept by the box head)
MASK_THRESH = 0.5   # a pixel belongs to a detection where its mask probability is >= this
# torchvision's COCO recipe samples 512 RoIs per training image and keeps 1000 proposals at test time; VOC images hold
# ~2-3 objects, so segx samples 64 as Fast R-CNN did and keeps 300 (the Faster R-CNN paper's test setting)
VOC_SETTINGS = {"box_batch_size_per_image": 64, "rpn_post_nms_top_n_test": 300}
TRT_REASON = ("Mask R-CNN's ONNX graph has data-dependent shapes (NonMaxSuppression, RoiAlign, a Loop pasting each "
              "detection's mask) that TensorRT's ONNX parser is not known to build without graph surgery and "
              "plugins; segx has not verified it: use onnxruntime or openvino")


def paint_scores(scores: torch.Tensor, labels: torch.Tensor, masks: torch.Tensor, num_classes: int,
                 score_thresh: float = SCORE_THRESH, mask_thresh: float = MASK_THRESH) -> torch.Tensor:
    """One image's detections -> a C×H×W class-score map whose argmax is the painted semantic map.

    scores (K,), labels (K,) in 1..C-1, masks (K, 1, H, W) probabilities. A detection covers the pixels where its
    mask is >= mask_thresh, if its score is >= score_thresh. Channel c (c >= 1) holds, per pixel, the highest score of
    the class-c detections covering it (0 where none does); channel 0 (background) is 1 where no detection covers the
    pixel and 0 elsewhere. So argmax over channels = painting the covering detections in ascending score order (the
    highest score wins) over a background canvas; equal scores of two classes go to the lower class index."""
    h, w = masks.shape[-2:]
    dtype = masks.dtype
    covered = (masks[:, 0] >= mask_thresh) & (scores >= score_thresh)[:, None, None]
    value = torch.cat([masks.new_zeros(1, h, w), scores[:, None, None].to(dtype) * covered.to(dtype)])
    labels = torch.cat([labels.new_zeros(1), labels])  # the zero row keeps every max well defined when K = 0
    per_class = [(value * (labels == c).to(dtype)[:, None, None]).amax(0) for c in range(1, num_classes)]
    background = (value.amax(0) <= 0).to(dtype)
    return torch.stack([background, *per_class])


class _InputAsIs(GeneralizedRCNNTransform):
    """segx feeds normalised images at the size to segment: no second normalisation, no resize (only the padding
    of the batch to a multiple of 32)."""

    def normalize(self, image: torch.Tensor) -> torch.Tensor:
        return image

    def resize(self, image: torch.Tensor, target: Target | None = None) -> tuple[torch.Tensor, Target | None]:
        return image, target


class MaskRCNNSeg(SegModel):
    """Eval: forward(x) -> N×C×H×W class scores (`paint_scores` of each image's detections). Train:
    forward(x, targets) -> {"loss": sum of the five Mask R-CNN losses, and each loss by name}; targets are a list of
    `segx.data.instances.Target` dicts, or an N×H×W class-mask batch (objects = connected regions of one class)."""

    takes_targets = True   # the training engine passes the batch's targets to forward and uses out["loss"]
    onnx_dynamo = False    # exporters.onnx: trace with the TorchScript-based exporter (data-dependent detections)
    export_batch = 1       # exports take batch 1 (the trace unrolls per-image work); --dynamic frees H and W only

    def __init__(self, net: nn.Module, num_classes: int, score_thresh: float = SCORE_THRESH,
                 mask_thresh: float = MASK_THRESH) -> None:
        super().__init__()
        t = net.transform
        net.transform = _InputAsIs(t.min_size, t.max_size, t.image_mean, t.image_std)
        self.net = net
        self.num_classes = num_classes
        self.mask_thresh = mask_thresh
        self.score_thresh = score_thresh

    @property
    def score_thresh(self) -> float:
        return float(self.net.roi_heads.score_thresh)

    @score_thresh.setter
    def score_thresh(self, value: float) -> None:
        self.net.roi_heads.score_thresh = value  # the box head drops what would not be painted anyway

    def forward(self, x: torch.Tensor,  # type: ignore[override]
                targets: list[Target] | torch.Tensor | None = None) -> torch.Tensor | dict[str, torch.Tensor]:
        if not self.training:
            return self.logits(x, with_aux=False)[0]
        if targets is None:
            raise SegxError("Mask R-CNN needs targets in training mode: forward(images, targets)")
        if isinstance(targets, torch.Tensor):
            targets = [{k: v.to(x.device) for k, v in instances_from_semantic(m).items()} for m in targets]
        losses = self.net(list(x), targets)
        return {"loss": sum(losses.values()), **losses}

    def logits(self, x: torch.Tensor, with_aux: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        detections = self.net(list(x))
        maps = [paint_scores(d["scores"], d["labels"], d["masks"].to(x.dtype), self.num_classes,
                             self.score_thresh, self.mask_thresh) for d in detections]
        return torch.stack(maps), None

    def profile_forward(self, x: torch.Tensor) -> None:
        """The fixed work of one eval forward, runnable on the meta device for FLOP counting: backbone + FPN, the
        RPN head, the box head on the proposal cap (RPN post-NMS top-n) and the mask head on the detection cap.
        RoIAlign sampling, NMS and mask pasting (data-dependent, few multiply-adds) are not counted."""
        roi = self.net.roi_heads
        features = self.net.backbone(x)
        self.net.rpn.head(list(features.values()))
        channels = self.net.backbone.out_channels
        box_hw, mask_hw = roi.box_roi_pool.output_size, roi.mask_roi_pool.output_size
        proposals = self.net.rpn._post_nms_top_n["testing"] * x.shape[0]
        roi.box_predictor(roi.box_head(x.new_empty(proposals, channels, *box_hw)))
        detections = roi.detections_per_img * x.shape[0]
        roi.mask_predictor(roi.mask_head(x.new_empty(detections, channels, *mask_hw)))


@register("maskrcnn_resnet50_fpn_v2", family="R-CNN", size_divisor=32, optimizer="sgd", lr=0.01, epochs=20,
          crop=256, pretrained=("imagenet",), export_formats=("onnx", "openvino", "torchscript"),
          export_notes={"trt": TRT_REASON}, train_data=instance_train_data,
          description="Mask R-CNN v2 (ResNet-50 FPN) on VOC instances; detections painted into a semantic map")
def maskrcnn_resnet50_fpn_v2_seg(num_classes: int) -> nn.Module:
    net = maskrcnn_resnet50_fpn_v2(weights=None, weights_backbone=None, num_classes=num_classes, **VOC_SETTINGS)
    return MaskRCNNSeg(net, num_classes)
