"""INT8 calibration data: real images of a VOC split, normalised and resized like the parity check's, in batches.
The one source every INT8 path reads (ONNX Runtime static QDQ, NNCF for OpenVINO, the TensorRT entropy calibrator)."""
from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from segx.errors import SegxError

log = logging.getLogger(__name__)

CALIB_IMAGES = 128  # images to calibrate on (fewer when the split is smaller)


class CalibrationImages:
    """Batches (float32 B×3×S×S) of up to `n` images of `split`. The parity check uses the first images of the
    split, so calibration skips the first `skip` of them whenever the split has enough to spare."""

    def __init__(self, data: str | Path, split: str, imgsz: int, *, n: int = CALIB_IMAGES, batch: int = 1,
                 skip: int = 0) -> None:
        from segx.data.transforms import eval_transforms
        from segx.data.voc import VOCSegmentation

        self.dataset = VOCSegmentation(data, split, transforms=eval_transforms(size=imgsz))
        total = len(self.dataset)
        if total == 0:
            raise SegxError(f"split '{split}' of {data} is empty; INT8 calibration needs images")
        if batch < 1 or n < 1:
            raise SegxError(f"calibration needs n ≥ 1 and batch ≥ 1, got n={n}, batch={batch}")
        # skip the parity images when at least half the split (or n) is left after them
        first = skip if 0 < total - skip and total - skip >= min(n, total // 2) else 0
        if first == 0 and skip:
            log.info("split '%s' has only %d images: calibrating on the images the parity check also uses", split,
                     total)
        self.indices = list(range(first, total))[:n]
        self.batch = min(batch, len(self.indices))
        self.imgsz = imgsz

    def __len__(self) -> int:
        """Number of full batches (a last partial batch is dropped: TensorRT calibrates at a fixed batch size)."""
        return len(self.indices) // self.batch

    @property
    def n_images(self) -> int:
        return len(self) * self.batch

    def __iter__(self) -> Iterator[np.ndarray]:
        for b in range(len(self)):
            chunk = self.indices[b * self.batch:(b + 1) * self.batch]
            yield np.stack([self.dataset[i][0].numpy() for i in chunk]).astype(np.float32)
