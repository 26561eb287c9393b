"""Shared by the edge runtimes (ExecuTorch, LiteRT, NCNN): the install line of the `edge` extra, the import that
names it when a package is missing, and the JSON sidecar (`MODEL.json`) that carries ModelMeta for these formats."""
from __future__ import annotations

import importlib
import json
from pathlib import Path
from types import ModuleType

from segx.errors import SegxError
from segx.meta import ModelMeta
from segx.runtimes.base import RuntimeUnavailable

EDGE_INSTALL = "pip install 'segx[edge]'"


def require(module: str, runtime: str, package: str) -> ModuleType:
    """Import `module` or raise RuntimeUnavailable naming the package and the install line."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise RuntimeUnavailable(f"runtime '{runtime}' needs the {package} package: {EDGE_INSTALL}") from e


def sidecar_path(model: str | Path) -> Path:
    """best.pte -> best.pte.json (the same rule for .tflite and .ncnn.param)."""
    return Path(f"{model}.json")


def read_sidecar(model: Path, fmt: str) -> ModelMeta:
    """ModelMeta from the sidecar next to `model`; a missing or broken one is a one-line error."""
    side = sidecar_path(model)
    if not side.is_file():
        raise SegxError(f"{model}: its metadata sidecar {side.name} is missing (not exported by segx, or copied "
                        f"without it); re-export it with segx export --fmt {fmt}")
    try:
        return ModelMeta.from_dict(json.loads(side.read_text()))
    except (json.JSONDecodeError, TypeError, SegxError) as e:
        raise SegxError(f"{side}: unreadable metadata sidecar ({e}); re-export with segx export --fmt {fmt}") from e


def fixed_input(meta: ModelMeta) -> tuple[int, int, int, int]:
    """Edge exports are fixed-shape: batch 1 (or the trace's batch), 3 channels, imgsz²."""
    return meta.extra.get("batch") or 1, 3, meta.imgsz, meta.imgsz
