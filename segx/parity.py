"""Accuracy parity: run a reference runtime (PyTorch) and a candidate (an exported model) on the same inputs and
judge the candidate against its precision's gate. Used after every `segx export` and by `segx bench`."""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from segx.runtimes.base import Runtime, class_map
from segx.runtimes.common import effective_precision
from segx.errors import SegxError

NO_LABEL_INT8_AGREEMENT = 0.95  # int8 gate when there are no labels to measure mIoU with


@dataclass(frozen=True)
class Gate:
    """Pass rule for one precision: argmax pixel agreement (fraction) and/or mIoU drop (points, 0-100 scale)."""

    precision: str
    min_agreement: float | None = None
    max_miou_drop: float | None = None

    def describe(self) -> str:
        if self.min_agreement is not None:
            return f"agreement ≥ {self.min_agreement:.1%}"
        return f"mIoU drop ≤ {self.max_miou_drop:g} pt (no labels: agreement ≥ {NO_LABEL_INT8_AGREEMENT:.0%})"

    def short(self) -> str:
        if self.min_agreement is not None:
            return f"≥{self.min_agreement:.1%}"
        return f"drop≤{self.max_miou_drop:g}pt"


GATES = {"fp32": Gate("fp32", min_agreement=0.999), "bf16": Gate("bf16", min_agreement=0.995),
         "fp16": Gate("fp16", min_agreement=0.995), "int8": Gate("int8", max_miou_drop=1.0)}


def gate_for(precision: str) -> Gate:
    if precision not in GATES:
        raise SegxError(f"no parity gate for precision '{precision}'; choose from: {', '.join(GATES)}")
    return GATES[precision]


@dataclass(frozen=True)
class ParityResult:
    precision: str                 # the precision judged (lowest of the runtime's and the file's)
    n_images: int
    imgsz: tuple[int, int]
    max_abs_diff: float | None     # None for a mask head (no logits to compare)
    mean_abs_diff: float | None
    pixel_agreement: float         # fraction of pixels whose argmax class matches the reference
    miou_ref: float | None         # fractions 0..1; None without labels
    miou: float | None
    miou_delta: float | None       # candidate minus reference
    passed: bool
    reason: str
    labels: bool

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def judge(gate: Gate, agreement: float, miou_delta: float | None) -> tuple[bool, str]:
    """(passed, one-line reason) for the measured agreement and mIoU delta under `gate`."""
    if gate.min_agreement is not None or miou_delta is None:
        need = gate.min_agreement if gate.min_agreement is not None else NO_LABEL_INT8_AGREEMENT
        ok = agreement >= need
        extra = " (no labels)" if gate.min_agreement is None else ""
        return ok, f"agreement {agreement:.3%} {'≥' if ok else '<'} {need:.1%}{extra} ({gate.precision} gate)"
    drop = max(0.0, -miou_delta * 100) + 0.0  # a gain counts as no drop (+0.0: never print -0.00)
    ok = drop <= gate.max_miou_drop
    return ok, f"mIoU drop {drop:.2f} pt {'≤' if ok else '>'} {gate.max_miou_drop:g} pt ({gate.precision} gate)"


def parity_inputs(data: str | Path | None, split: str, n: int, imgsz: int,
                  seed: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """n (1×3×H×W float32 normalised image, H×W mask) pairs of the split, or n random normal inputs (mask None)."""
    if n < 1:
        raise SegxError(f"the parity check needs at least 1 image, got n={n}")
    if data is None:
        gen = torch.Generator().manual_seed(seed)
        for _ in range(n):
            yield torch.randn(1, 3, imgsz, imgsz, generator=gen).numpy(), None
        return
    from segx.data.transforms import eval_transforms
    from segx.data.voc import VOCSegmentation

    ds = VOCSegmentation(data, split, transforms=eval_transforms(size=imgsz))
    if len(ds) == 0:
        raise SegxError(f"split '{split}' of {data} is empty; nothing to check parity on")
    for i in range(min(n, len(ds))):
        image, mask = ds[i]
        yield image[None].numpy(), mask.numpy()


def input_size(candidate: Runtime, imgsz: int | None) -> int:
    """The square size to check at: the candidate's fixed size, else `imgsz`, else the model's own size."""
    fixed = candidate.fixed_hw
    if fixed is not None:
        if fixed[0] != fixed[1]:
            raise SegxError(f"{candidate.model_path}: parity needs a square input, the model takes {fixed}")
        return fixed[0]
    return imgsz or candidate.meta.imgsz


def _compare(reference: Runtime, candidate: Runtime,
             pairs: Iterator[tuple[np.ndarray, np.ndarray | None]]) -> dict[str, Any]:
    from segx.metrics import ConfusionMatrix

    nc = candidate.meta.num_classes
    cm_ref, cm = ConfusionMatrix(nc), ConfusionMatrix(nc)
    n = 0
    stats = {"max": 0.0, "sum": 0.0, "count": 0, "agree": 0, "pixels": 0, "labels": True}
    for image, mask in pairs:
        ref_out, cand_out = reference.outputs(image), candidate.outputs(image)
        pred_ref, pred = class_map(ref_out, reference.meta.head)[0], class_map(cand_out, candidate.meta.head)[0]
        if pred.shape != pred_ref.shape:
            raise SegxError(f"{candidate.model_path}: output shape {pred.shape} differs from PyTorch's "
                            f"{pred_ref.shape}")
        if reference.meta.head == candidate.meta.head == "logits":  # a mask head has no logits to compare
            if cand_out[0].shape != ref_out[0].shape:
                raise SegxError(f"{candidate.model_path}: output shape {cand_out[0].shape} differs from PyTorch's "
                                f"{ref_out[0].shape}")
            diff = np.abs(cand_out[0].astype(np.float64) - ref_out[0])
            stats["max"] = max(stats["max"], float(diff.max()))
            stats["sum"] += float(diff.sum())
            stats["count"] += diff.size
        stats["agree"] += int((pred_ref == pred).sum())
        stats["pixels"] += pred.size
        if mask is None:
            stats["labels"] = False
        else:
            cm_ref.update(pred_ref[0], mask)
            cm.update(pred[0], mask)
        n += image.shape[0]
    stats["n"] = n
    if stats["labels"] and n:
        names = candidate.meta.classes
        stats["miou_ref"], stats["miou"] = cm_ref.compute(names)["miou"], cm.compute(names)["miou"]
    return stats


def _result(candidate: Runtime, stats: dict[str, Any], hw: tuple[int, int]) -> ParityResult:
    precision = effective_precision(candidate.precision, candidate.meta.precision)
    agreement = stats["agree"] / max(stats["pixels"], 1)
    miou_ref, miou = stats.get("miou_ref"), stats.get("miou")
    delta = None if miou is None else miou - miou_ref
    passed, reason = judge(gate_for(precision), agreement, delta)
    logits = stats["count"] > 0
    return ParityResult(precision=precision, n_images=stats["n"], imgsz=hw,
                        max_abs_diff=stats["max"] if logits else None,
                        mean_abs_diff=stats["sum"] / stats["count"] if logits else None, pixel_agreement=agreement,
                        miou_ref=miou_ref, miou=miou, miou_delta=delta, passed=passed, reason=reason,
                        labels=miou is not None)


def check_parity(reference: Runtime, candidate: Runtime, *, data: str | Path | None, split: str = "val",
                 n: int = 32, imgsz: int | None = None) -> ParityResult:
    """Run both runtimes on n images of `split` (random inputs when data is None; then no mIoU) and judge."""
    size = input_size(candidate, imgsz)
    stats = _compare(reference, candidate, parity_inputs(data, split, n, size))
    return _result(candidate, stats, (size, size))


def check_dynamic(reference: Runtime, candidate: Runtime, *, data: str | Path | None, split: str = "val",
                  imgsz: int) -> ParityResult:
    """For a dynamic-shape export: one batch of 2 at a non-square size other than imgsz (labels not used)."""
    h, w = imgsz + 32, max(32, imgsz - 16)
    images = [img for img, _ in parity_inputs(data, split, 2, imgsz)]
    batch = torch.from_numpy(np.concatenate(images * 2 if len(images) == 1 else images))
    batch = batch[:candidate.input_shape[0]] if candidate.input_shape[0] else batch  # a fixed-batch model (Mask R-CNN)
    batch = torch.nn.functional.interpolate(batch, size=(h, w), mode="bilinear", align_corners=False).numpy()
    stats = _compare(reference, candidate, iter([(batch, None)]))
    return _result(candidate, stats, (h, w))
