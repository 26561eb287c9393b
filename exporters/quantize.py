"""INT8 calibration policy and data: which images calibrate (by default up to 300 of the train split, disjoint from the
images the parity gate scores whenever the data allow), loaded like the accuracy protocol loads them and resized to
the export size. The one source every INT8 path reads (ONNX Runtime / TensorRT Q/DQ, NNCF for OpenVINO)."""
from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from segx.errors import SegxError

log = logging.getLogger(__name__)

CALIB_SPLIT = "train"  # calibrate on training images: the gate scores val
CALIB_IMAGES = 300     # at most this many (fewer when the split is smaller)


class CalibrationImages:
    """Batches (float32 B×3×S×S) of up to `n` images of `split`. When `split` is the split the gate scores
    (`gate_split`), the gate's first `gate_n` images are skipped (all of them when it scores the whole split: then
    calibration cannot be disjoint and `disjoint` says so). A `split` the data lack falls back to `gate_split`."""

    def __init__(self, data: str | Path, split: str, imgsz: int, *, n: int = CALIB_IMAGES, batch: int = 1,
                 gate_split: str | None = None, gate_n: int | None = None) -> None:
        from segx.data.transforms import eval_transforms
        from segx.data.voc import VOCSegmentation

        if batch < 1 or n < 1:
            raise SegxError(f"calibration needs n ≥ 1 and batch ≥ 1, got n={n}, batch={batch}")
        try:
            self.dataset = VOCSegmentation(data, split, transforms=eval_transforms())
        except SegxError:
            if gate_split is None or gate_split == split:
                raise
            log.warning("INT8: %s has no split '%s'; calibrating on '%s'", data, split, gate_split)
            split = gate_split
            self.dataset = VOCSegmentation(data, split, transforms=eval_transforms())
        total = len(self.dataset)
        if total == 0:
            raise SegxError(f"split '{split}' of {data} is empty; INT8 calibration needs images")
        shared = split == gate_split
        skip = (total if gate_n is None else min(gate_n, total)) if shared else 0
        first = skip if total - skip >= 1 else 0  # nothing left after the gate's images: share them (and say so)
        self.indices = list(range(first, total))[:n]
        self.disjoint = not shared or first > 0 and (gate_n is not None)
        self.gated = gate_split is not None  # False: no parity gate runs (--no-verify, bench's exports)
        self.split, self.batch, self.imgsz = split, min(batch, len(self.indices)), imgsz

    def __len__(self) -> int:
        """Number of full batches (a last partial batch is dropped: calibration runs at a fixed batch size)."""
        return len(self.indices) // self.batch

    @property
    def n_images(self) -> int:
        return len(self) * self.batch

    def describe(self) -> str:
        """One line printed with the verdict: what calibrated and whether the gate's images were among them."""
        how = "no parity gate to keep apart from" if not self.gated else "disjoint from the gate's images" \
            if self.disjoint else "OVERLAPPING the gate's images (the data have no other split: give --calib-split)"
        return f"calibrated on {self.n_images} '{self.split}' images at {self.imgsz}², {how}"

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self.batch_at(b) for b in range(len(self)))

    def batch_at(self, b: int) -> np.ndarray:
        """Batch number b: its images resized to imgsz² like the accuracy protocol resizes them."""
        from segx.evaluate import fit_input

        size = (self.imgsz, self.imgsz)
        chunk = self.indices[b * self.batch:(b + 1) * self.batch]
        return torch.cat([fit_input(self.dataset[i][0][None], size) for i in chunk]).numpy().astype(np.float32)


def calibration_for(job: object) -> CalibrationImages:
    """The calibration images of an export job (its options name data, calib split/n and the gate's split/n)."""
    opts = job.opts  # type: ignore[attr-defined]
    images = CalibrationImages(opts.data, opts.calib_split, job.meta.imgsz, n=opts.calib_n,  # type: ignore
                               gate_split=opts.split if opts.verify else None, gate_n=opts.n_verify)
    log.info("INT8: %s", images.describe())
    return images
