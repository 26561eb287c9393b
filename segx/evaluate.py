"""Evaluation of a model over a VOC split at each image's original resolution: confusion-matrix metrics and the
boundary F1 score. Takes any predictor: a segx checkpoint, a torch module, or a bench `Runtime` (ONNX, OpenVINO...)."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from segx.data.constants import NUM_CLASSES
from segx.meta import ModelMeta
from segx.metrics import BoundaryF1, ConfusionMatrix

# normalised float32 1×3×H×W -> logits 1×C×h×w, or a mask head's uint8 class map 1×h×w (resized to the mask size
# by the caller when h×w differs: logits bilinearly, a class map nearest)
Predictor = Callable[[torch.Tensor], torch.Tensor]


def torch_predictor(model: nn.Module, device: torch.device | str = "cpu") -> Predictor:
    model.eval()

    def predict(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return model(x.to(device)).float().cpu()

    return predict


def fit_input(x: torch.Tensor, fixed: tuple[int, int] | None) -> torch.Tensor:
    """The accuracy protocol's input: the image at its own size for a dynamic model, resized (bilinear) to the size
    of a fixed-shape one."""
    if fixed is not None and tuple(x.shape[-2:]) != tuple(fixed):
        return F.interpolate(x, size=fixed, mode="bilinear", align_corners=False)
    return x


def class_map_at(out: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """N×C×h×w logits (upsampled bilinearly first), or a mask head's N×h×w classes (resized nearest) -> N×H×W class
    indices at the mask's size."""
    if out.ndim == 3:
        if tuple(out.shape[-2:]) != tuple(hw):
            out = F.interpolate(out[:, None].float(), size=hw, mode="nearest")[:, 0]
        return out.long().cpu()
    if tuple(out.shape[-2:]) != tuple(hw):
        out = F.interpolate(out.float(), size=hw, mode="bilinear", align_corners=False)
    return out.argmax(1).cpu()


def runtime_predictor(runtime: Any) -> Predictor:
    """Wrap a bench `Runtime`; a model with one fixed input size gets the image resized to it."""
    from segx.errors import SegxError
    from segx.predict.preprocess import check_model

    check_model(runtime.input_shape, runtime.meta, str(runtime.model_path))
    fixed, n = runtime.fixed_hw, runtime.meta.num_classes

    def predict(x: torch.Tensor) -> torch.Tensor:
        x = fit_input(x, fixed)
        if runtime.meta.head != "logits":
            return torch.from_numpy(runtime.predict_mask(x.numpy().astype(np.float32))[0])
        logits = np.ascontiguousarray(runtime.infer(x.numpy().astype(np.float32)))
        if logits.ndim != 4 or logits.shape[1] != n:
            raise SegxError(f"{runtime.model_path}: model returned logits {logits.shape}, expected N×{n}×H×W "
                            f"(its metadata says {n} classes; was it exported by segx?)")
        return torch.from_numpy(logits)

    return predict


def open_predictor(model: str | Path | nn.Module | Any, device: str = "auto") -> tuple[Predictor, ModelMeta, Callable]:
    """(predictor, meta, close) for a checkpoint / model file path, a SegModel, or an opened Runtime."""
    from segx.engine.dist import resolve_device

    if isinstance(model, nn.Module):
        return torch_predictor(model, resolve_device(device)), ModelMeta(arch=type(model).__name__), lambda: None
    if isinstance(model, (str, Path)):
        path = Path(model)
        if path.suffix.lower() == ".pt" or str(model).startswith("torchvision:"):  # a checkpoint or pretrained spec
            from segx.checkpoint import load_model

            dev = resolve_device(device)
            net, meta = load_model(path, device=dev)
            return torch_predictor(net, dev), meta, lambda: None
        from segx.runtimes import load_runtime

        model = load_runtime(path, device="cpu" if device == "auto" else device)
    return runtime_predictor(model), model.meta, model.close


def score(predict: Predictor, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], cm: ConfusionMatrix,
          bf: BoundaryF1 | None = None, on_image: Callable[[], None] | None = None) -> None:
    """Predict every (image, mask) batch at the mask's resolution and add it to the accumulators."""
    for image, mask in batches:
        pred = class_map_at(predict(image), tuple(mask.shape[-2:]))
        cm.update(pred, mask)
        if bf is not None:
            for p, m in zip(pred, mask):
                bf.update(p, m)
        if on_image is not None:
            on_image()


def evaluate(model: str | Path | nn.Module | Any, data: str | Path, split: str = "val", *, device: str = "auto",
             tol: float = 2, workers: int = 0, show_progress: bool = True, n: int | None = None) -> dict[str, Any]:
    """Metrics of `model` on list `split` of the VOC tree `data` (fractions 0..1; see docs/eval.md): the whole split,
    or its first `n` images."""
    from torch.utils.data import DataLoader, Subset

    from segx.data.transforms import eval_transforms
    from segx.data.voc import VOCSegmentation
    from segx.errors import SegxError
    from segx.log import progress

    full = VOCSegmentation(data, split, eval_transforms())
    if n is not None and n < 1:
        raise SegxError(f"n must be ≥ 1 (the number of images to score), got {n}")
    dataset = full if n is None or n >= len(full) else Subset(full, range(n))
    predict, meta, close = open_predictor(model, device)
    if meta.num_classes != NUM_CLASSES:
        close()
        raise SegxError(f"{model}: the model predicts {meta.num_classes} classes, VOC has {NUM_CLASSES}")
    cm, bf = ConfusionMatrix(meta.num_classes), BoundaryF1(meta.num_classes, tol)
    loader = DataLoader(dataset, batch_size=1, num_workers=workers)
    start = time.perf_counter()
    try:
        bar = progress(transient=True)
        bar.disable = bar.disable or not show_progress
        with bar:
            task = bar.add_task(f"eval {split}", total=len(dataset))
            score(predict, loader, cm, bf, on_image=lambda: bar.advance(task))
    finally:
        close()
    seconds = time.perf_counter() - start
    return {**cm.compute(meta.classes), **bf.compute(meta.classes), "arch": meta.arch, "model": str(model),
            "data": str(full.root), "split": split, "images": len(dataset), "seconds": round(seconds, 3),
            "images_per_s": round(len(dataset) / seconds, 3) if seconds > 0 else None}
