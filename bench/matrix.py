"""The bench matrix: the rows to run (model x runtime x precision x batch) and, per (runtime, precision), the recipe
that makes the model file a row loads. RECIPES is the one table; a combination it lacks is a skipped row."""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

from segx.errors import SegxError, unknown_choice

PRECISIONS = ("fp32", "fp16", "bf16", "int8")
DEVICES = ("cpu", "cuda")
# what `segx bench` runs when --runtimes / --precisions are not given, per device
DEFAULT_RUNTIMES = {"cpu": ("torch", "onnxruntime", "openvino"), "cuda": ("torch", "onnxruntime", "tensorrt")}
DEFAULT_PRECISIONS = {"cpu": ("fp32", "bf16", "int8"), "cuda": ("fp32", "fp16", "int8")}
EDGE_RUNTIMES = ("executorch", "litert", "ncnn")  # pip install 'segx[edge]'


@dataclass(frozen=True)
class Recipe:
    """How a (runtime, precision) row gets its model file and where it can run."""

    fmt: str | None                   # exporters format that writes the file; None = the .pt checkpoint itself
    fp16: bool = False                # export options passed to exporters.export
    int8: bool = False                # needs calibration data
    devices: tuple[str, ...] = DEVICES
    note: str = ""
    batch1: bool = False              # the format exports fixed batch 1 only (no --dynamic): other batches skip


RECIPES: dict[tuple[str, str], Recipe] = {
    ("torch", "fp32"): Recipe(None, note="eager; channels_last on CPU"),
    ("torch", "bf16"): Recipe(None, note="bf16 autocast + channels_last"),
    ("torch", "fp16"): Recipe(None, devices=("cuda",), note="fp16 autocast + channels_last"),
    ("compile", "fp32"): Recipe(None, note="torch.compile"),
    ("compile", "bf16"): Recipe(None, note="torch.compile + bf16 autocast"),
    ("compile", "fp16"): Recipe(None, devices=("cuda",), note="torch.compile + fp16 autocast"),
    ("torchscript", "fp32"): Recipe("torchscript"),
    ("onnxruntime", "fp32"): Recipe("onnx"),
    ("onnxruntime", "fp16"): Recipe("onnx", fp16=True, devices=("cuda",)),
    ("onnxruntime", "int8"): Recipe("onnx", int8=True, devices=("cpu",),
                                    note="static Q/DQ (u8 act, s8 per-channel weights), costly layers kept float"),
    ("openvino", "fp32"): Recipe("openvino", devices=("cpu",), note="f32 inference-precision hint"),
    ("openvino", "bf16"): Recipe("openvino", devices=("cpu",), note="the fp32 IR run with the bf16 hint"),
    ("openvino", "fp16"): Recipe("openvino", fp16=True, devices=("cpu",), note="fp16 IR, f16 hint"),
    ("openvino", "int8"): Recipe("openvino", int8=True, devices=("cpu",), note="NNCF PTQ with accuracy control"),
    ("tensorrt", "fp32"): Recipe("trt", devices=("cuda",)),
    ("tensorrt", "fp16"): Recipe("trt", fp16=True, devices=("cuda",)),
    ("tensorrt", "int8"): Recipe("trt", int8=True, devices=("cuda",), note="explicit Q/DQ, strongly typed"),
    # edge formats (pip install 'segx[edge]'): CPU here, fixed batch-1 files
    ("executorch", "fp32"): Recipe("executorch", devices=("cpu",), batch1=True, note="XNNPACK delegate"),
    ("executorch", "int8"): Recipe("executorch", int8=True, devices=("cpu",), batch1=True,
                                   note="PT2E XNNPACKQuantizer, per-channel"),
    ("litert", "fp32"): Recipe("litert", devices=("cpu",), batch1=True, note="XNNPACK delegate"),
    ("litert", "fp16"): Recipe("litert", fp16=True, devices=("cpu",), batch1=True, note="fp16 weights, fp32 compute"),
    ("litert", "int8"): Recipe("litert", int8=True, devices=("cpu",), batch1=True, note="PT2E static, per-channel"),
    ("ncnn", "fp32"): Recipe("ncnn", devices=("cpu",), batch1=True),
    ("ncnn", "fp16"): Recipe("ncnn", fp16=True, devices=("cpu",), batch1=True, note="fp16 storage, fp32 compute"),
}


MASKRCNN_INT8 = ("Mask R-CNN INT8 not built: its fixed-batch legacy ONNX export (RoIAlign, NMS, data-dependent "
                 "shapes) has no verified calibration path in segx yet; backbone+FPN-only Q/DQ is future work")


@dataclass(frozen=True)
class ModelSource:
    """One model under test: its arch, the .pt checkpoint every row starts from, and the name tables show."""

    arch: str
    checkpoint: Path
    label: str
    trained: bool


@dataclass(frozen=True)
class RowPlan:
    source: ModelSource
    runtime: str
    precision: str
    batch: int
    device: str
    imgsz: int
    recipe: Recipe | None
    skip: str | None = None           # the reason this row will not run (a "skipped" row)
    head: str = "logits"              # the export's deployment head (segx.models.heads)

    @property
    def dynamic(self) -> bool:
        """Exported files are fixed-shape at batch 1; other batches run a dynamic export."""
        return self.batch != 1

    @property
    def name(self) -> str:
        head = "" if self.head == "logits" else f" {self.head}"
        return f"{self.source.label} {self.runtime} {self.precision}{head} b{self.batch}"


def check_names(runtimes: tuple[str, ...], precisions: tuple[str, ...]) -> None:
    """Raise one SegxError (with the closest name) for an unknown runtime or precision."""
    from segx.runtimes import get_runtime

    for name in runtimes:
        get_runtime(name)
    for p in precisions:
        if p not in PRECISIONS:
            raise unknown_choice("precision", p, PRECISIONS)


def installed_edge_runtimes(device: str = "cpu") -> tuple[str, ...]:
    """The edge runtimes that can run on `device` here (their segx[edge] packages are installed)."""
    from segx.runtimes import RuntimeUnavailable, get_runtime

    def ok(name: str) -> bool:
        try:
            get_runtime(name).check_available(device)
        except RuntimeUnavailable:
            return False
        return True

    return tuple(name for name in EDGE_RUNTIMES if ok(name))


def check_device(device: str) -> str:
    kind = device.split(":")[0]
    if kind not in DEVICES:
        raise unknown_choice("device", device, DEVICES)
    return kind


def skip_reason(runtime: str, precision: str, device: str) -> str | None:
    """Why (runtime, precision) cannot run on `device` here, or None when it can."""
    from segx.runtimes import RuntimeUnavailable, get_runtime

    kind = check_device(device)
    recipe = RECIPES.get((runtime, precision))
    ways = [p for p in PRECISIONS if (runtime, p) in RECIPES]
    if (runtime, precision) == ("ncnn", "int8"):
        from exporters.ncnn import NCNN_INT8_REASON

        return NCNN_INT8_REASON
    if recipe is None:
        return f"segx has no {precision} path for {runtime} (it runs {runtime} in {', '.join(ways)})"
    if kind not in recipe.devices:
        return f"{runtime} {precision} runs on {'/'.join(recipe.devices)} only, not {device}"
    cls = get_runtime(runtime)
    if precision not in cls.precisions:
        return f"runtime {runtime} has no precision {precision} (has {', '.join(cls.precisions)})"
    try:
        cls.check_available(device)
    except RuntimeUnavailable as e:
        return str(e)
    if kind == "cuda":
        import torch

        if not torch.cuda.is_available():
            return "CUDA is not available here (no NVIDIA GPU or a CPU-only torch)"
    return None


def plan_rows(sources: list[ModelSource], runtimes: tuple[str, ...], precisions: tuple[str, ...],
              batches: tuple[int, ...], *, device: str, imgsz: int,
              heads: tuple[str, ...] = ("logits",)) -> list[RowPlan]:
    """Every model x runtime x precision x head x batch, in that nesting order; each with its recipe or skip
    reason."""
    check_names(runtimes, precisions)
    if not sources:
        raise SegxError("nothing to benchmark: give --models (checkpoints / run folders) or --archs")
    if any(b < 1 for b in batches) or not batches:
        raise SegxError(f"--batch values must be positive integers (got {', '.join(map(str, batches))})")
    reasons = {(r, p): skip_reason(r, p, device) for r, p in itertools.product(runtimes, precisions)}
    return [RowPlan(src, r, p, b, device, imgsz, RECIPES.get((r, p)),
                    arch_skip(src.arch, RECIPES.get((r, p))) or batch_skip(RECIPES.get((r, p)), b) or reasons[r, p],
                    h)
            for src, r, p, h, b in itertools.product(sources, runtimes, precisions, heads, batches)]


def batch_skip(recipe: Recipe | None, batch: int) -> str | None:
    if recipe is not None and recipe.batch1 and batch != 1:
        return f"{recipe.fmt} exports are fixed-shape batch 1 in segx (no dynamic batch)"
    return None


def arch_skip(arch: str, recipe: Recipe | None) -> str | None:
    """Why `arch` cannot make the row's model file (a format outside its ArchSpec.export_formats, or an arch x
    format pair measured not to convert: exporters.edge.KNOWN_LIMITS), or None."""
    from exporters.edge import limitation
    from segx.models import get_arch

    if recipe is None or recipe.fmt is None:
        return None
    spec = get_arch(arch)
    known = limitation(arch, recipe.fmt)
    if known:
        return f"{arch} does not export to {recipe.fmt}: {known}"
    if recipe.int8 and spec.family == "R-CNN":
        return MASKRCNN_INT8
    if recipe.fmt in spec.export_formats:
        return None
    return spec.export_notes.get(recipe.fmt) or f"{arch} does not export to {recipe.fmt}"
