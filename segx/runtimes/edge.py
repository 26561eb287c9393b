"""Shared by the edge runtimes (ExecuTorch, LiteRT, NCNN): the install line of the `edge` extra, the import that
names it when a package is missing, and the JSON sidecar (`MODEL.json`) that carries ModelMeta for these formats."""
from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from segx.errors import SegxError
from segx.meta import ModelMeta, sidecar_path
from segx.meta import read_sidecar as read_meta_sidecar
from segx.runtimes.base import RuntimeUnavailable

EDGE_INSTALL = "pip install 'segx[edge]'"


def require(module: str, runtime: str, package: str) -> ModuleType:
    """Import `module` or raise RuntimeUnavailable naming the package and the install line."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise RuntimeUnavailable(f"runtime '{runtime}' needs the {package} package: {EDGE_INSTALL}") from e


def read_sidecar(model: Path, fmt: str) -> ModelMeta:
    """ModelMeta from the JSON sidecar next to `model` (segx.meta.read_sidecar)."""
    return read_meta_sidecar(model, f"re-export it with segx export --fmt {fmt}")


def fixed_input(meta: ModelMeta) -> tuple[int, int, int, int]:
    """Edge exports are fixed-shape: batch 1 (or the trace's batch), 3 channels, imgsz²."""
    return meta.extra.get("batch") or 1, 3, meta.imgsz, meta.imgsz
