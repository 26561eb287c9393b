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

from segx.runtimes.base import Runtime
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
    imgsz: tuple[int, int] | None  # the size every image ran at; None: each image at its own size (dynamic model)
    max_abs_diff: float | None     # None for a mask head (no logits to compare)
    mean_abs_diff: float | None
    pixel_agreement: float         # fraction of pixels whose argmax class matches the reference
    miou_ref: float | None         # fractions 0..1; None without labels
    miou: float | None
    miou_delta: float | None       # candidate minus reference
    passed: bool
    reason: str
    labels: bool
    drop_ci: tuple[float, float] | None = None  # bootstrap 95 % interval of the mIoU drop, points
    split: str | None = None       # the split scored (None: random inputs)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def sample(self) -> str:
        """'40 val images, own size' / '32 val images at 512²' / '4 random inputs at 64²'."""
        where = f"{self.split} images" if self.split else "random inputs"
        size = "each at its own size" if self.imgsz is None else "at " + (
            f"{self.imgsz[0]}²" if self.imgsz[0] == self.imgsz[1] else f"{self.imgsz[0]}×{self.imgsz[1]}")
        return f"{self.n_images} {where} {size}"


def judge(gate: Gate, agreement: float, miou_delta: float | None,
          ci: tuple[float, float] | None = None) -> tuple[bool, str]:
    """(passed, one-line reason) for the measured agreement and mIoU delta under `gate`; `ci` (the bootstrap interval
    of the drop, points) is printed beside the verdict, the verdict itself is the measured value's."""
    interval = "" if ci is None else f", drop 95% CI {ci[0]:+.2f}..{ci[1]:+.2f} pt"
    if gate.min_agreement is not None or miou_delta is None:
        need = gate.min_agreement if gate.min_agreement is not None else NO_LABEL_INT8_AGREEMENT
        ok = agreement >= need
        extra = " (no labels)" if gate.min_agreement is None else ""
        return ok, f"agreement {agreement:.3%} {'≥' if ok else '<'} {need:.1%}{extra} ({gate.precision} gate{interval})"
    drop = max(0.0, -miou_delta * 100) + 0.0  # a gain counts as no drop (+0.0: never print -0.00)
    ok = drop <= gate.max_miou_drop
    return ok, (f"mIoU drop {drop:.2f} pt {'≤' if ok else '>'} {gate.max_miou_drop:g} pt "
                f"({gate.precision} gate{interval})")


RANDOM_INPUTS = 8  # parity without --data: this many random inputs (logits and agreement only)


def parity_inputs(data: str | Path | None, split: str, n: int | None, imgsz: int | None,
                  seed: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """The accuracy protocol's images: (1×3×H×W float32 normalised image, H×W mask) of the whole split (or its first
    `n`), each at its own size (a fixed-shape candidate gets it resized in `_compare`); without data, n (default 8)
    random imgsz² inputs."""
    if n is not None and n < 1:
        raise SegxError(f"the parity check needs at least 1 image, got n={n}")
    if data is None:
        gen = torch.Generator().manual_seed(seed)
        for _ in range(n or RANDOM_INPUTS):
            yield torch.randn(1, 3, imgsz or 512, imgsz or 512, generator=gen).numpy(), None
        return
    from segx.data.transforms import eval_transforms
    from segx.data.voc import VOCSegmentation

    ds = VOCSegmentation(data, split, transforms=eval_transforms())
    if len(ds) == 0:
        raise SegxError(f"split '{split}' of {data} is empty; nothing to check parity on")
    for i in range(len(ds) if n is None else min(n, len(ds))):
        image, mask = ds[i]
        yield image[None].numpy(), mask.numpy()


def input_size(candidate: Runtime, imgsz: int | None) -> int | None:
    """The square size the candidate runs at: its fixed size, else None (a dynamic model: each image's own size)."""
    fixed = candidate.fixed_hw
    if fixed is not None:
        if fixed[0] != fixed[1]:
            raise SegxError(f"{candidate.model_path}: parity needs a square input, the model takes {fixed}")
        return fixed[0]
    return None


def class_maps(ref: np.ndarray, out: np.ndarray, hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The reference's and the candidate's first output (N×C×h×w logits or a mask head's N×h×w classes) as class
    maps at the mask's size (segx.evaluate.class_map_at decides by the output's rank)."""
    from segx.evaluate import class_map_at

    return tuple(class_map_at(torch.from_numpy(np.ascontiguousarray(o)), hw).numpy() for o in (ref, out))  # type: ignore


def _compare(reference: Runtime, candidate: Runtime,
             pairs: Iterator[tuple[np.ndarray, np.ndarray | None]]) -> dict[str, Any]:
    from segx.metrics import ConfusionMatrix

    nc = candidate.meta.num_classes
    cms_ref: list[np.ndarray] = []
    cms: list[np.ndarray] = []
    stats = {"max": 0.0, "sum": 0.0, "count": 0, "agree": 0, "pixels": 0, "labels": True, "n": 0}
    from segx.evaluate import fit_input

    for image, mask in pairs:
        image = fit_input(torch.from_numpy(image), candidate.fixed_hw).numpy()
        ref_out, cand_out = reference.outputs(image), candidate.outputs(image)
        if reference.meta.head == candidate.meta.head == "logits":  # a mask head has no logits to compare
            if cand_out[0].shape != ref_out[0].shape:
                raise SegxError(f"{candidate.model_path}: output shape {cand_out[0].shape} differs from PyTorch's "
                                f"{ref_out[0].shape}")
            diff = np.abs(cand_out[0].astype(np.float64) - ref_out[0])
            stats["max"] = max(stats["max"], float(diff.max()))
            stats["sum"] += float(diff.sum())
            stats["count"] += diff.size
        hw = tuple(image.shape[-2:]) if mask is None else tuple(mask.shape[-2:])
        pred_ref, pred = class_maps(ref_out[0], cand_out[0], hw)
        stats["agree"] += int((pred_ref == pred).sum())
        stats["pixels"] += pred.size
        stats["n"] += image.shape[0]
        if mask is None:
            stats["labels"] = False
            continue
        masks = mask[None] if mask.ndim == 2 else mask  # one H×W mask, or N×H×W for a batch
        for per, p in ((cms_ref, pred_ref), (cms, pred)):
            for k in range(len(p)):
                cm = ConfusionMatrix(nc)
                cm.update(p[k], masks[k])
                per.append(cm.mat)
    if stats["labels"] and cms:
        stats["cms_ref"], stats["cms"] = np.stack(cms_ref), np.stack(cms)
    return stats


def _result(candidate: Runtime, stats: dict[str, Any], hw: tuple[int, int] | None,
            split: str | None) -> ParityResult:
    from segx.metrics import bootstrap_miou_drop, miou_of

    precision = effective_precision(candidate.precision, candidate.meta.precision)
    agreement = stats["agree"] / max(stats["pixels"], 1)
    miou_ref = miou = delta = ci = None
    if "cms" in stats:
        miou_ref, miou = float(miou_of(stats["cms_ref"].sum(0))), float(miou_of(stats["cms"].sum(0)))
        delta, ci = miou - miou_ref, bootstrap_miou_drop(stats["cms_ref"], stats["cms"])
    passed, reason = judge(gate_for(precision), agreement, delta, ci)
    logits = stats["count"] > 0
    return ParityResult(precision=precision, n_images=stats["n"], imgsz=hw,
                        max_abs_diff=stats["max"] if logits else None,
                        mean_abs_diff=stats["sum"] / stats["count"] if logits else None, pixel_agreement=agreement,
                        miou_ref=miou_ref, miou=miou, miou_delta=delta, passed=passed,
                        reason=f"{reason}; {stats['n']} images", labels=miou is not None, drop_ci=ci,
                        split=split if miou is not None else None)


def check_parity(reference: Runtime, candidate: Runtime, *, data: str | Path | None, split: str = "val",
                 n: int | None = None, imgsz: int | None = None) -> ParityResult:
    """The accuracy protocol: both runtimes segment the whole `split` (or its first n images), each image at its own
    size for a dynamic candidate and resized for a fixed one, scored at the mask's size; without data, random
    imgsz² inputs (no mIoU). Verdict against the candidate's precision gate, with the bootstrap interval."""
    size = input_size(candidate, imgsz)
    if data is None and size is None:
        size = imgsz or candidate.meta.imgsz
    stats = _compare(reference, candidate, parity_inputs(data, split, n, size))
    return _result(candidate, stats, None if size is None else (size, size), split if data is not None else None)


def check_dynamic(reference: Runtime, candidate: Runtime, *, data: str | Path | None, split: str = "val",
                  imgsz: int, n: int | None = None) -> ParityResult:
    """For a dynamic-shape export: the split (or n random inputs) in batches of 2 at a non-square size other than
    imgsz; with data the masks are resized (nearest) to that size too, so the gate judges the mIoU drop there."""
    from segx.evaluate import fit_input

    h, w = imgsz + 32, max(32, imgsz - 16)
    per_batch = min(2, candidate.input_shape[0] or 2)  # a fixed-batch model (Mask R-CNN) takes its own batch

    def pairs() -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        items = list(parity_inputs(data, split, n if data is not None else (n or 2), imgsz))
        for b in range(0, len(items), per_batch):
            chunk = items[b:b + per_batch]
            images = torch.cat([fit_input(torch.from_numpy(img), (h, w)) for img, _ in chunk]).numpy()
            if chunk[0][1] is None:
                yield images, None
                continue
            masks = [torch.nn.functional.interpolate(torch.from_numpy(m)[None, None].float(), size=(h, w),
                                                     mode="nearest")[0, 0].to(torch.uint8) for _, m in chunk]
            yield images, torch.stack(masks).numpy()

    stats = _compare(reference, candidate, pairs())
    return _result(candidate, stats, (h, w), split if data is not None else None)


def check_file(model: str | Path, reference: str | Path, *, data: str | Path | None, split: str = "val",
               n: int | None = None, device: str = "cpu", runtime: str | None = None,
               precision: str | None = None, imgsz: int | None = None) -> ParityResult:
    """`segx parity`: the gate on any model file (exported by segx, edited, or from elsewhere) against the PyTorch
    checkpoint `reference`. The gate is `precision`'s, else the file's own (segx metadata)."""
    from segx.runtimes import load_runtime

    kwargs = {"precision": precision} if precision else {}
    with load_runtime(reference, "torch", precision="fp32", device=device) as ref, \
            load_runtime(model, runtime, device=device, **kwargs) as cand:
        return check_parity(ref, cand, data=data, split=split, n=n, imgsz=imgsz)
