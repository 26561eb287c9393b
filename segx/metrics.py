"""Segmentation metrics (no I/O): a confusion matrix over a whole split -> mIoU, per-class IoU, pixel accuracy,
mean class accuracy, frequency-weighted IoU; a bootstrap interval of an mIoU difference over per-image confusion
matrices; and the boundary F1 score (BF, Csurka et al. 2013)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import torch

from segx.data.constants import CLASSES, IGNORE_INDEX, NUM_CLASSES
from segx.errors import SegxError


def _as_numpy(a: np.ndarray | torch.Tensor) -> np.ndarray:
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


class ConfusionMatrix:
    """Accumulates a C×C matrix (rows = target class, columns = predicted class), skipping `ignore_index` pixels."""

    def __init__(self, num_classes: int = NUM_CLASSES, ignore_index: int = IGNORE_INDEX) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.mat = np.zeros((num_classes, num_classes), dtype=np.int64)

    def update(self, pred: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor) -> None:
        """Add one batch: integer class maps of any (equal) shape."""
        pred, target = _as_numpy(pred).ravel(), _as_numpy(target).ravel()
        if pred.shape != target.shape:
            raise ValueError(f"pred and target differ in size: {pred.size} vs {target.size}")
        keep = target != self.ignore_index
        pred, target = pred[keep].astype(np.int64), target[keep].astype(np.int64)
        n = self.num_classes
        if target.size and (target.min() < 0 or target.max() >= n):
            raise SegxError(f"mask holds label {int(target.max())} outside 0..{n - 1} and {self.ignore_index}; "
                            f"check the data with `segx data check`")
        if pred.size and (pred.min() < 0 or pred.max() >= n):
            raise ValueError(f"prediction holds class {int(pred.max())} outside 0..{n - 1}")
        self.mat += np.bincount(target * n + pred, minlength=n * n).reshape(n, n)

    def merge(self, other: ConfusionMatrix | np.ndarray) -> None:
        self.mat += other.mat if isinstance(other, ConfusionMatrix) else np.asarray(other, dtype=np.int64)

    def iou(self) -> np.ndarray:
        """Per-class IoU = TP / (TP + FP + FN); NaN where the class is in neither target nor prediction."""
        tp = np.diag(self.mat).astype(np.float64)
        union = self.mat.sum(0) + self.mat.sum(1) - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(union > 0, tp / union, np.nan)

    def compute(self, class_names: Sequence[str] = CLASSES) -> dict[str, Any]:
        """miou, pixel_acc, mean_acc, fwiou (fractions 0..1) and per_class_iou {name: IoU or None}."""
        if len(class_names) != self.num_classes:
            raise ValueError(f"{len(class_names)} class names for {self.num_classes} classes")
        mat = self.mat.astype(np.float64)
        total, gt = mat.sum(), mat.sum(1)
        tp, iou = np.diag(mat), self.iou()
        with np.errstate(invalid="ignore", divide="ignore"):
            acc = np.where(gt > 0, tp / gt, np.nan)
        present = ~np.isnan(iou)
        return {
            "miou": float(np.nanmean(iou)) if present.any() else 0.0,
            "pixel_acc": float(tp.sum() / total) if total else 0.0,
            "mean_acc": float(np.nanmean(acc)) if (gt > 0).any() else 0.0,
            "fwiou": float((gt[present] / total * iou[present]).sum()) if total else 0.0,
            "per_class_iou": {name: (None if np.isnan(v) else float(v)) for name, v in zip(class_names, iou)},
            "pixels": int(total),
        }


def miou_of(mats: np.ndarray) -> np.ndarray:
    """mIoU (fraction) of one C×C matrix, or of each matrix of a ...×C×C stack: mean IoU over the classes present in
    the target or the prediction (ConfusionMatrix.compute's rule, vectorised; 0 when no class is present)."""
    mats = np.asarray(mats, dtype=np.float64)
    tp = np.diagonal(mats, axis1=-2, axis2=-1)
    union = mats.sum(-2) + mats.sum(-1) - tp
    present = union > 0
    iou = np.where(present, tp / np.maximum(union, 1), 0.0)
    return np.where(present.any(-1), iou.sum(-1) / np.maximum(present.sum(-1), 1), 0.0)


BOOTSTRAP_ROUNDS = 1000


def bootstrap_miou_drop(ref: np.ndarray, cand: np.ndarray, *, rounds: int = BOOTSTRAP_ROUNDS,
                        seed: int = 0) -> tuple[float, float]:
    """95 % bootstrap interval (points, 0-100) of the mIoU drop ref - cand: the images (N per-image C×C confusion
    matrices of each model, paired) are resampled with replacement `rounds` times with a fixed seed, so the same
    matrices always give the same interval."""
    ref, cand = np.asarray(ref, dtype=np.int64), np.asarray(cand, dtype=np.int64)
    if ref.shape != cand.shape or ref.ndim != 3 or len(ref) == 0:
        raise ValueError(f"need two equal N×C×C stacks of per-image matrices, got {ref.shape} and {cand.shape}")
    n = len(ref)
    counts = np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=rounds)  # rounds×N weights
    flat = counts @ ref.reshape(n, -1), counts @ cand.reshape(n, -1)
    shape = (rounds, *ref.shape[1:])
    drops = 100 * (miou_of(flat[0].reshape(shape)) - miou_of(flat[1].reshape(shape)))
    low, high = np.percentile(drops, [2.5, 97.5])
    return float(low) + 0.0, float(high) + 0.0


def _boundary(mask: np.ndarray) -> np.ndarray:
    """Inner boundary of a binary mask: its pixels with at least one 8-neighbour outside it (image edge excluded)."""
    m = mask.astype(np.uint8)
    eroded = cv2.erode(m, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE)
    return (m > 0) & (eroded == 0)


def _dist_to(points: np.ndarray) -> np.ndarray:
    """Euclidean distance of every pixel to the nearest True pixel of `points` (inf when there is none)."""
    if not points.any():
        return np.full(points.shape, np.inf, dtype=np.float32)
    return cv2.distanceTransform((~points).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def _fill_void(pred: np.ndarray, target: np.ndarray, ignore_index: int) -> tuple[np.ndarray, np.ndarray]:
    """Give every void pixel (of the target) the label of the nearest non-void pixel, in both maps."""
    void = target == ignore_index
    if not void.any():
        return pred, target
    from scipy.ndimage import distance_transform_edt

    idx = distance_transform_edt(void, return_distances=False, return_indices=True)
    return pred[tuple(idx)], target[tuple(idx)]


def boundary_f1_per_class(pred: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor, tol: float = 2,
                          ignore_index: int = IGNORE_INDEX) -> dict[int, float]:
    """BF score of one image for each class in the non-void part of the target or the prediction.

    Void is "don't care": each void pixel first takes the label of the nearest non-void pixel, in the target
    and in the prediction alike, so a boundary inside a void band sits in its middle in both. For class c the
    boundaries are the inner boundaries of target==c and pred==c (pixels with an 8-neighbour of another label;
    the image edge is no boundary). precision = share of predicted boundary pixels within `tol` px (Euclidean)
    of a true boundary pixel; recall = share of true boundary pixels within `tol` px of a predicted one;
    F1 = 2PR/(P+R); no boundary in either map -> 1.0."""
    pred, target = _as_numpy(pred), _as_numpy(target)
    if pred.shape != target.shape or pred.ndim != 2:
        raise ValueError(f"boundary_f1 needs two H×W maps of one shape, got {pred.shape} and {target.shape}")
    if (target == ignore_index).all():
        return {}
    pred, target = _fill_void(pred, target, ignore_index)
    scores: dict[int, float] = {}
    for c in np.union1d(np.unique(target), np.unique(pred)).tolist():
        gt_b, pr_b = _boundary(target == c), _boundary(pred == c)
        if not gt_b.any() and not pr_b.any():
            scores[c] = 1.0
            continue
        precision = float((_dist_to(gt_b)[pr_b] <= tol).mean()) if pr_b.any() else 0.0
        recall = float((_dist_to(pr_b)[gt_b] <= tol).mean()) if gt_b.any() else 0.0
        scores[c] = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return scores


def boundary_f1(pred: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor, tol: float = 2,
                ignore_index: int = IGNORE_INDEX) -> float:
    """Mean BF score over the classes of one image (see `boundary_f1_per_class`); NaN for an all-void image."""
    scores = boundary_f1_per_class(pred, target, tol, ignore_index)
    return float(np.mean(list(scores.values()))) if scores else float("nan")


class BoundaryF1:
    """Accumulates BF scores over a split: `compute()` -> mean over images of the per-image mean over classes,
    and per class the mean over the images where the class appears."""

    def __init__(self, num_classes: int = NUM_CLASSES, tol: float = 2, ignore_index: int = IGNORE_INDEX) -> None:
        self.tol, self.ignore_index = tol, ignore_index
        self.image_sum, self.image_count = 0.0, 0
        self.class_sum = np.zeros(num_classes, dtype=np.float64)
        self.class_count = np.zeros(num_classes, dtype=np.int64)

    def update(self, pred: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor) -> None:
        """Add one image (two H×W class maps)."""
        scores = boundary_f1_per_class(pred, target, self.tol, self.ignore_index)
        if not scores:
            return
        self.image_sum += float(np.mean(list(scores.values())))
        self.image_count += 1
        for c, v in scores.items():
            if 0 <= c < len(self.class_sum):
                self.class_sum[c] += v
                self.class_count[c] += 1

    def to_array(self) -> np.ndarray:
        """All counters as one float array (to sum across processes); `from_array` reverses it."""
        return np.concatenate([[self.image_sum, self.image_count], self.class_sum, self.class_count])

    def from_array(self, values: np.ndarray) -> None:
        n = len(self.class_sum)
        self.image_sum, self.image_count = float(values[0]), int(round(values[1]))
        self.class_sum = np.asarray(values[2:2 + n], dtype=np.float64)
        self.class_count = np.rint(values[2 + n:]).astype(np.int64)

    def compute(self, class_names: Sequence[str] = CLASSES) -> dict[str, Any]:
        with np.errstate(invalid="ignore", divide="ignore"):
            per = np.where(self.class_count > 0, self.class_sum / np.maximum(self.class_count, 1), np.nan)
        return {
            "boundary_f1": self.image_sum / self.image_count if self.image_count else 0.0,
            "per_class_boundary_f1": {name: (None if np.isnan(v) else float(v)) for name, v in zip(class_names, per)},
            "boundary_tol_px": self.tol,
        }
