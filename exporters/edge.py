"""Shared by the edge exporters (ExecuTorch, LiteRT, NCNN): the availability check that names the `edge` extra,
the metadata sidecar they write, the PT2E calibration loop, and KNOWN_LIMITS - the arch x format pairs measured not
to convert here, each with its one-line reason (export error, `segx models`, skipped bench rows)."""
from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from exporters.job import ExportJob
from exporters.quantize import calibration_for
from segx.errors import SegxError
from segx.io import atomic_write_json
from segx.runtimes.edge import require, sidecar_path

log = logging.getLogger(__name__)

EDGE_FORMATS = ("executorch", "litert", "ncnn")
# (arch, format) -> why it does not convert; measured with `segx export` at 64² (docs/edge.md, "Arch coverage")
KNOWN_LIMITS: dict[tuple[str, str], str] = {
    ("segformer_mit_b0", "ncnn"): "pnnx keeps the MiT attention's torch.unbind, a layer ncnn does not have",
}


def limitation(arch: str, fmt: str) -> str | None:
    return KNOWN_LIMITS.get((arch, fmt))


def arch_limits(arch: str) -> dict[str, str]:
    """format -> reason, for every edge format `arch` is known not to convert to."""
    return {fmt: reason for (a, fmt), reason in KNOWN_LIMITS.items() if a == arch}


def refuse_known(job: ExportJob, fmt: str) -> None:
    """Fail up front, with the measured reason, for an arch the format is known not to convert."""
    reason = limitation(job.meta.arch, fmt)
    if reason:
        raise SegxError(f"{job.meta.arch} does not export to {fmt}: {reason}")


def checker(module: str, fmt: str, package: str) -> Callable[[], None]:
    """A FORMATS `check`: raises RuntimeUnavailable with the edge install line when `module` is missing."""
    def check() -> None:
        require(module, fmt, package)
    return check


def write_sidecar(job: ExportJob, path: Path, **extra: Any) -> None:
    atomic_write_json(sidecar_path(path), job.meta.replace(extra={**job.meta.extra, **extra}).to_dict())


def calibrated_pt2e(job: ExportJob, quantizer: Any, **convert_kw: Any) -> torch.nn.Module:
    """torch.export the model, insert `quantizer`'s observers (prepare_pt2e), run the calibration images of
    --data/--split through it and return the converted (Q/DQ) module. Works on a copy: the reference stays float."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    images = calibration_for(job)  # the one calibration policy: --calib-split / --calib-n, disjoint from the gate's
    module = copy.deepcopy(job.module).eval()
    graph = torch.export.export(module, (job.example(),)).module()
    prepared = prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        for batch in images:
            prepared(torch.from_numpy(batch))
    return convert_pt2e(prepared, **convert_kw)


def no_dynamic(job: ExportJob, fmt: str) -> None:
    if job.meta.dynamic:
        raise SegxError(f"{fmt} exports are fixed-shape in segx; drop --dynamic and set --imgsz")
