"""What one export needs: the validated options (`ExportOptions`), the model to export (`Source`) and the job of one
precision attempt (`ExportJob`), plus where its file goes. Shared by every format module."""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from segx.errors import SegxError, unknown_choice
from segx.meta import ModelMeta

PRECISION_SUFFIX = {"fp32": "", "fp16": "_fp16", "bf16": "_bf16", "int8": "_int8"}
MIN_IMGSZ = 32
# ONNX Runtime 1.32, OpenVINO 2026 and TensorRT 10 take 17..20; torch's exporter writes 18+ (17 silently stays 18)
ONNX_OPSETS = (18, 19, 20)


@dataclass(frozen=True)
class ExportOptions:
    """Every `export()` option with its default. `imgsz`..`n_verify` apply to all formats; the rest only where the
    format's FORMATS row lists them."""

    imgsz: int = 512
    data: str | Path | None = None      # VOC root: INT8 calibration images and the parity check's images
    split: str = "val"                  # the split the parity gate scores
    out: str | Path | None = None       # output folder (default: next to the checkpoint)
    verify: bool = True                 # run the parity check (and the INT8 fall-back)
    n_verify: int | None = None         # gate images: None = the whole split
    dynamic: bool = False
    fp16: bool = False
    int8: bool = False
    simplify: bool = True
    opset: int | None = None
    workspace: float = 4.0              # GiB, TensorRT builder workspace
    batch: int = 1                      # TensorRT: the batch the engine is tuned for (its profile's opt)
    head: str = "logits"                # logits | mask | mask+conf: the outputs (segx.models.heads)
    calib_split: str = "train"          # INT8 calibration split (exporters.quantize: disjoint from the gate's)
    calib_n: int = 300                  # at most this many calibration images
    explain: bool = False               # INT8: measure and report the per-layer sensitivity

    @property
    def precision(self) -> str:
        return "int8" if self.int8 else "fp16" if self.fp16 else "fp32"


COMMON_OPTIONS = ("imgsz", "data", "split", "out", "verify", "n_verify", "head", "calib_split", "calib_n", "explain")
HEAD_SUFFIX = {"logits": "", "mask": "_mask", "mask+conf": "_maskconf"}
_DEFAULTS = ExportOptions()


def validate_options(fmt: str, allowed: tuple[str, ...], options: dict[str, Any]) -> ExportOptions:
    """Options -> ExportOptions; unknown names and options `fmt` does not take (set to a non-default) are errors."""
    names = [f.name for f in dataclasses.fields(ExportOptions)]
    for key, value in options.items():
        if key not in names:
            raise unknown_choice("export option", key, names)
        if key not in COMMON_OPTIONS and key not in allowed and value != getattr(_DEFAULTS, key):
            takes = ", ".join(flag(o) for o in (*COMMON_OPTIONS, *allowed))
            raise SegxError(f"format '{fmt}' does not take {flag(key)}; it takes: {takes}")
    opts = ExportOptions(**options)
    _check_values(opts)
    return opts


def flag(option: str) -> str:
    """The `segx export` flag of an ExportOptions field, for error messages: n_verify -> --n-verify."""
    return {"verify": "--no-verify", "simplify": "--no-simplify"}.get(option, "--" + option.replace("_", "-"))


def _check_values(opts: ExportOptions) -> None:
    for name in ("imgsz", "n_verify", "batch", "calib_n"):
        value = getattr(opts, name)
        if value is None and name == "n_verify":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < (MIN_IMGSZ if name == "imgsz" else 1):
            least = MIN_IMGSZ if name == "imgsz" else 1
            raise SegxError(f"{flag(name)} must be an integer ≥ {least}, got {value!r}")
    if opts.batch != 1 and not opts.dynamic:
        raise SegxError(f"--batch {opts.batch} needs a dynamic export (--dynamic): a fixed export takes batch 1")
    if opts.fp16 and opts.int8:
        raise SegxError("choose one of --fp16 / --int8 (--int8 falls back to fp16 or fp32 by itself when it fails "
                        "its gate)")
    if opts.split != _DEFAULTS.split and opts.data is None:
        raise SegxError(f"--split {opts.split} needs --data (the VOC tree the split belongs to)")
    if opts.int8 and opts.data is None:
        raise SegxError("--int8 needs real images to calibrate on: give --data VOC_ROOT")
    if opts.opset is not None and opts.opset not in ONNX_OPSETS:
        raise SegxError(f"--opset must be one of {', '.join(map(str, ONNX_OPSETS))}, got {opts.opset!r}")
    from segx.models.heads import check_head

    check_head(opts.head)
    if not opts.workspace > 0:
        raise SegxError(f"--workspace must be > 0 GiB, got {opts.workspace!r}")


@dataclass(frozen=True)
class Source:
    """The model to export: an eval-mode module, its metadata and the checkpoint it came from (None if in memory)."""

    module: nn.Module
    meta: ModelMeta
    path: Path | None = None


def load_source(model: str | Path | tuple[nn.Module, ModelMeta]) -> Source:
    if isinstance(model, tuple):
        module, meta = model
        return Source(module.eval(), meta)
    from segx.checkpoint import load_model

    module, meta = load_model(model)
    arch = meta.arch if str(model).startswith("torchvision:") else None  # a pretrained spec names no file:
    return Source(module.eval(), meta, Path(f"{arch}.pt") if arch else Path(model))  # write ./ARCH.<suffix>


def output_path(source: Source, out: str | Path | None, precision: str, suffix: str, *, dynamic: bool = False,
                head: str = "logits") -> Path:
    """runs/NAME/best.pt -> runs/NAME/best<_dynamic><_mask|_maskconf><_fp16|_int8><suffix>, or the same name inside
    `out` (a dynamic export never overwrites the fixed-shape one)."""
    if out is None and source.path is None:
        raise SegxError("exporting an in-memory model needs an output folder (out=DIR)")
    folder = Path(out) if out is not None else source.path.parent  # type: ignore[union-attr]
    stem = source.path.stem if source.path is not None else source.meta.arch
    return folder / f"{stem}{'_dynamic' if dynamic else ''}{HEAD_SUFFIX[head]}{PRECISION_SUFFIX[precision]}{suffix}"


def check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SegxError(f"{folder}: cannot create the output folder ({e.strerror})") from e
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise SegxError(f"{folder}: output folder is not writable; choose another with --out")


@dataclass(frozen=True)
class ExportJob:
    """One precision attempt of one format; `meta` already carries imgsz, dynamic and precision."""

    module: nn.Module
    meta: ModelMeta
    opts: ExportOptions
    cache_dir: Path                     # where calibration / timing caches live (the output folder)
    traced: dict[Any, Any] = dataclasses.field(default_factory=dict, compare=False)  # per-run: fall-backs trace once
    report: dict[str, Any] = dataclasses.field(default_factory=dict, compare=False)  # INT8: calibration, sensitivity

    @property
    def precision(self) -> str:
        return self.meta.precision

    def example(self) -> torch.Tensor:
        """The tracing input: batch 2 for dynamic exports (torch.export specialises size-1 dims), else 1; a model
        whose trace unrolls per-image work says its batch in `export_batch` (Mask R-CNN: 1)."""
        gen = torch.Generator().manual_seed(0)
        s = self.meta.imgsz
        n = getattr(self.module, "export_batch", None) or (2 if self.meta.dynamic else 1)
        return torch.randn(n, 3, s, s, generator=gen)


def make_job(source: Source, opts: ExportOptions, precision: str, cache_dir: Path,
             traced: dict[Any, Any] | None = None) -> ExportJob:
    from segx.models.heads import with_head

    meta = source.meta.replace(imgsz=opts.imgsz, dynamic=opts.dynamic, precision=precision, head=opts.head)
    if getattr(source.module, "export_batch", None):  # the exported file takes this batch size only
        meta = meta.replace(extra={**meta.extra, "batch": source.module.export_batch})
    if opts.head != "logits" and not getattr(source.module, "onnx_dynamo", True):
        raise SegxError(f"arch '{meta.arch}' exports the logits head only (its ONNX export is the legacy tracer)")
    return ExportJob(with_head(source.module, opts.head), meta, opts, cache_dir, {} if traced is None else traced)
