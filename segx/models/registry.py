"""The model registry: `@register("name", ...)` builder functions, looked up by name. Every built model returns
ONE logits tensor N×C×H×W at input resolution in eval mode (see `segx.models.base.SegModel`)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from segx.data.constants import NUM_CLASSES
from segx.errors import SegxError, unknown_choice

Builder = Callable[[int], nn.Module]  # num_classes -> model (random init, nothing downloaded)

# Export formats the registered archs are expected to export to (plain conv nets, static control flow).
DEFAULT_EXPORTS: tuple[str, ...] = ("onnx", "openvino", "torchscript", "trt")


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
    pretrained: tuple[str, ...] = ()   # weight sources that exist for it (loading them is a later feature)
    export_formats: tuple[str, ...] = DEFAULT_EXPORTS
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

    `weights`: None, or a local segx checkpoint / state_dict file whose weights are loaded (strict)."""
    spec = get_arch(arch)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise SegxError(f"num_classes must be a positive integer, got {num_classes!r}")
    model = spec.builder(num_classes)
    if weights is not None:
        from segx.checkpoint import load_weights

        load_weights(model, weights, arch=arch, num_classes=num_classes)
    return model
