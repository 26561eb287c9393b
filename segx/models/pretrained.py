"""Pretrained weights (`segx train --weights`, `build_model(weights=...)`, model spec "torchvision:NAME"):
"torchvision" = the whole-model weights torchvision trained on COCO images with the 20 VOC classes (21 outputs, VOC's
order); "imagenet" = backbone / encoder weights only; an http(s) URL or a local file = a segx checkpoint or state_dict
of the same arch. URLs and sha256 prefixes are the ones torchvision's Weights enums publish (see segx.models.hub)."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from torchvision.models import get_weight

from segx.data.constants import NUM_CLASSES
from segx.errors import SegxError
from segx.models import hub
from segx.models.weights import check_state_dict, load_weights

if TYPE_CHECKING:
    from torch import nn

SOURCES = ("torchvision", "imagenet")  # besides a URL or a file
SPEC_PREFIX = "torchvision:"           # model spec accepted wherever a model file is: torchvision:NAME
TORCHVISION_IMGSZ = 520                # torchvision's evaluation resize of these weights

# arch -> URL of its torchvision COCO-with-VOC-labels weights (the `net` inside segx's TorchvisionSeg)
TORCHVISION: dict[str, str] = {arch: get_weight(name).url for arch, name in {
    "fcn_resnet50": "FCN_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1",
    "deeplabv3_resnet50": "DeepLabV3_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1",
    "deeplabv3_mobilenet_v3_large": "DeepLabV3_MobileNet_V3_Large_Weights.COCO_WITH_VOC_LABELS_V1",
    "lraspp_mobilenet_v3_large": "LRASPP_MobileNet_V3_Large_Weights.COCO_WITH_VOC_LABELS_V1",
}.items()}

_RESNET50, _MOBILENET = get_weight("ResNet50_Weights.IMAGENET1K_V1").url, \
    get_weight("MobileNet_V3_Large_Weights.IMAGENET1K_V1").url
# arch -> (ImageNet weights URL, the segx submodule they initialise, key prefix kept from the file (then stripped));
# the backbones torchvision's own builders use by default
IMAGENET_TORCHVISION: dict[str, tuple[str, str, str]] = {
    "fcn_resnet50": (_RESNET50, "net.backbone", ""),
    "deeplabv3_resnet50": (_RESNET50, "net.backbone", ""),
    "deeplabv3_mobilenet_v3_large": (_MOBILENET, "net.backbone", "features."),
    "lraspp_mobilenet_v3_large": (_MOBILENET, "net.backbone", "features."),
    "maskrcnn_resnet50_fpn_v2": (_RESNET50, "net.backbone.body", ""),
}
# arch -> smp encoder whose "imagenet" weights smp publishes (Hugging Face hub, pinned revision) for `net.encoder`
IMAGENET_SMP: dict[str, str] = {"unet_resnet18": "resnet18", "unet_mobilenet_v2": "mobilenet_v2",
                                "deeplabv3plus_resnet50": "resnet50", "segformer_mit_b0": "mit_b0"}


def sources(arch: str) -> tuple[str, ...]:
    """The named weight sources segx can load for `arch`."""
    return tuple(s for s, table in (("torchvision", TORCHVISION), ("imagenet", {**IMAGENET_TORCHVISION,
                                                                              **IMAGENET_SMP})) if arch in table)


def apply_weights(model: nn.Module, arch: str, weights: str | Path, num_classes: int) -> None:
    """Initialise a freshly built `model` of `arch` from `weights`: a source name, an http(s) URL or a file."""
    text = str(weights)
    if text in SOURCES:
        if text not in sources(arch):
            have = ", ".join(sources(arch)) or "none"
            raise SegxError(f"arch '{arch}' has no '{text}' weights (it has: {have}); give a file or URL instead")
        if text == "torchvision":
            load_torchvision(model, arch, num_classes)
        elif arch in IMAGENET_SMP:
            load_smp_encoder(model, IMAGENET_SMP[arch])
        else:
            load_backbone(model, *IMAGENET_TORCHVISION[arch])
        return
    if text.startswith(("http://", "https://")):
        weights = hub.fetch(text)
    load_weights(model, weights, arch=arch, num_classes=num_classes)


def load_torchvision(model: nn.Module, arch: str, num_classes: int) -> None:
    if num_classes != NUM_CLASSES:
        raise SegxError(f"torchvision's '{arch}' weights predict VOC's {NUM_CLASSES} classes, not {num_classes}")
    path = hub.fetch(TORCHVISION[arch])
    state = hub.load_state_dict(path)
    check_state_dict(model.net, state, path, f"torchvision's {arch}")
    model.net.load_state_dict(state)


def load_backbone(model: nn.Module, url: str, module: str, prefix: str) -> None:
    """Load the ImageNet classifier weights at `url` into `model.<module>` (keys under `prefix`; the classifier
    head is left out); every weight of the submodule must be covered."""
    path = hub.fetch(url)
    target = model.get_submodule(module)
    own = target.state_dict()
    state = {k[len(prefix):]: v for k, v in hub.load_state_dict(path).items()
             if k.startswith(prefix) and k[len(prefix):] in own}
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    bad = [k for k, v in state.items() if v.shape != own[k].shape]
    if missing or bad:
        key = (missing or bad)[0]
        raise SegxError(f"{path}: does not fit the backbone ({len(missing)} missing and {len(bad)} mis-shaped "
                        f"weights, e.g. '{key}')")
    target.load_state_dict(state, strict=False)


def load_smp_encoder(model: nn.Module, encoder: str) -> None:
    from segmentation_models_pytorch.encoders import encoders

    settings = encoders[encoder]["pretrained_settings"]["imagenet"]
    path = hub.fetch_hf(settings["repo_id"], settings["revision"])
    state = hub.load_state_dict(path)
    target = model.get_submodule("net.encoder")
    check_state_dict(target, state, path, f"smp's {encoder} encoder")
    target.load_state_dict(state)


def spec_arch(text: str | Path) -> str | None:
    """The arch of a "torchvision:NAME" model spec, or None when `text` is not one."""
    text = str(text)
    return text[len(SPEC_PREFIX):] if text.startswith(SPEC_PREFIX) else None
