"""The model registry: `@register("name", ...)` builder functions, looked up by name. Every built model returns
ONE logits tensor N×C×H×W at input resolution in eval mode (see `segx.models.base.SegModel`)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from segx.data.constants import NUM_CLASSES
from segx.errors import SegxError, unknown_choice

Builder = Callable[[int], nn.Module]  # num_classes -> model (random init, nothing downloaded)

# Export formats the registered archs are expected to export to (plain conv nets, static control flow).
DEFAULT_EXPORTS: tuple[str, ...] = ("onnx", "openvino", "torchscript", "trt", "executorch", "litert", "ncnn")
# Formats whose export + parity check the test suite runs for every arch on a CPU (tests/test_export_archs.py);
# TensorRT needs a GPU (tests/test_export_tensorrt.py), so it is only listed once a GPU run has shown it.
PARITY_TESTED: tuple[str, ...] = ("onnx", "openvino", "torchscript")
# (VOC root, list name, crop) -> (training dataset, collate_fn or None), for archs trained on other targets
TrainData = Callable[[Path, str, int], tuple[Any, Any]]


@dataclass(frozen=True)
class ArchSpec:
    """What segx knows about one architecture, besides how to build it."""

    name: str
    family: str                        # "CNN", ...
    builder: Builder = field(repr=False, compare=False)
    library: str = "torchvision"       # where the implementation lives
    size_divisor: int = 8              # input H/W multiple the network works best with (others are padded)
    has_aux: bool = False              # training forward also returns an auxiliary head ("aux")
    # training defaults (`segx train` without --optimizer/--lr/--epochs/--crop), chosen for training from random
    # weights on the synthetic set on a CPU; see docs/train.md
    optimizer: str = "adamw"           # "sgd" or "adamw"
    lr: float = 1e-3                   # base learning rate for --batch 8
    epochs: int = 20
    crop: int = 160                    # square training crop
    pretrained: tuple[str, ...] = ()   # weight sources `--weights` loads (segx.models.pretrained)
    export_formats: tuple[str, ...] = DEFAULT_EXPORTS
    export_notes: dict[str, str] = field(default_factory=dict, compare=False)  # format -> why it is not exported
    parity_tested: tuple[str, ...] = PARITY_TESTED
    train_data: TrainData | None = field(default=None, repr=False, compare=False)  # None: VOC semantic masks
    description: str = ""


_REGISTRY: dict[str, ArchSpec] = {}


def register(name: str, **spec: object) -> Callable[[Builder], Builder]:
    """Decorator: register `fn(num_classes) -> nn.Module` under `name` with ArchSpec fields `spec`."""

    def wrap(fn: Builder) -> Builder:
        if name in _REGISTRY:
            raise ValueError(f"arch '{name}' registered twice")
        _REGISTRY[name] = ArchSpec(name=name, builder=fn, **spec)  # type: ignore[arg-type]
        return fn

    return wrap


def list_archs() -> list[str]:
    """Registered arch names, sorted."""
    return sorted(_REGISTRY)


def get_arch(name: str) -> ArchSpec:
    if name not in _REGISTRY:
        raise unknown_choice("arch", name, _REGISTRY)
    return _REGISTRY[name]


def build_model(arch: str, num_classes: int = NUM_CLASSES, weights: str | Path | None = None) -> nn.Module:
    """Build `arch` with `num_classes` outputs, randomly initialised (nothing is downloaded).

    `weights`: None; "torchvision" or "imagenet" (published weights, see segx.models.pretrained); an http(s) URL or
    a local file of a segx checkpoint / state_dict whose weights are loaded (strict)."""
    spec = get_arch(arch)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise SegxError(f"num_classes must be a positive integer, got {num_classes!r}")
    model = spec.builder(num_classes)
    if weights is not None:
        from segx.models.pretrained import apply_weights

        apply_weights(model, arch, weights, num_classes)
    return model
