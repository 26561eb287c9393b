"""Model metadata carried by every checkpoint and every exported model (ONNX metadata_props, OpenVINO rt_info,
TensorRT JSON sidecar): what a runtime needs to pre-process input and name the classes."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import segx
from segx.data.constants import CLASSES, MEAN, NUM_CLASSES, PALETTE, STD
from segx.errors import SegxError


@dataclass(frozen=True)
class ModelMeta:
    arch: str
    num_classes: int = NUM_CLASSES
    classes: tuple[str, ...] = CLASSES
    palette: tuple[tuple[int, int, int], ...] = PALETTE
    mean: tuple[float, float, float] = MEAN
    std: tuple[float, float, float] = STD
    imgsz: int = 512  # training / export square size
    dynamic: bool = False  # exported with dynamic batch and H/W
    precision: str = "fp32"
    head: str = "logits"  # what the model outputs: logits | mask | mask+conf (segx.models.heads)
    segx_version: str = segx.__version__
    extra: dict[str, Any] = field(default_factory=dict)  # format-specific (e.g. TensorRT version, GPU)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["classes"] = list(self.classes)
        d["palette"] = [list(c) for c in self.palette]
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelMeta:
        if "arch" not in d:
            raise SegxError("model metadata has no 'arch' entry (not made by segx?)")
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        for k in ("classes", "mean", "std"):
            if k in kw:
                kw[k] = tuple(kw[k])
        if "palette" in kw:
            kw["palette"] = tuple(tuple(int(v) for v in c) for c in kw["palette"])
        kw.setdefault("num_classes", len(kw.get("classes", CLASSES)))
        return cls(**kw)

    def to_strings(self) -> dict[str, str]:
        """Flat str -> str form (each value JSON-encoded) for ONNX metadata_props / OpenVINO rt_info."""
        return {k: json.dumps(v) for k, v in self.to_dict().items()}

    @classmethod
    def from_strings(cls, d: dict[str, str]) -> ModelMeta:
        try:
            return cls.from_dict({k: json.loads(v) for k, v in d.items()})
        except json.JSONDecodeError as e:
            raise SegxError(f"model metadata is not valid JSON ({e})") from e

    def replace(self, **changes: Any) -> ModelMeta:
        return dataclasses.replace(self, **changes)


def sidecar_path(model: str | Path) -> Path:
    """Where a model file without a metadata slot keeps its ModelMeta: best.engine -> best.engine.json (the same rule
    for .pte, .tflite and .ncnn.param)."""
    return Path(f"{model}.json")


def read_sidecar(model: str | Path, hint: str) -> ModelMeta:
    """ModelMeta from the sidecar next to `model`; a missing or broken one is a one-line error ending with `hint`."""
    side = sidecar_path(model)
    if not side.is_file():
        raise SegxError(f"{model}: its metadata sidecar {side.name} is missing (not exported by segx, or copied "
                        f"without it), so segx cannot tell what the model is; {hint}")
    try:
        return ModelMeta.from_dict(json.loads(side.read_text()))
    except (json.JSONDecodeError, TypeError, SegxError) as e:
        raise SegxError(f"{side}: unreadable metadata sidecar ({e}); {hint}") from e
