"""The `aug` split: SBD's cls/*.mat labels converted once to palette PNGs in SegmentationClassAug/, and
train_aug.txt = (SBD train + SBD val + VOC train) - VOC val (10,582 images on the real data)."""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np

from segx.data.constants import NUM_CLASSES
from segx.data.layout import AUG_MASK_DIR, IMAGE_DIR, MASK_DIR, list_path, resolve_voc_root
from segx.data.splits import list_ids, read_list
from segx.data.voc import write_mask
from segx.errors import SegxError
from segx.io import atomic_path, atomic_write_text

log = logging.getLogger(__name__)


def read_sbd_mask(path: Path) -> np.ndarray:
    """SBD class labels (GTcls.Segmentation, 0..20) from a .mat file as uint8 H×W."""
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    try:
        seg = np.asarray(loadmat(path)["GTcls"][0]["Segmentation"][0])
    except (MatReadError, OSError, ValueError, KeyError, IndexError, TypeError) as e:
        raise SegxError(f"{path}: not an SBD cls .mat file ({e}); delete benchmark_RELEASE and download again") from e
    if seg.ndim != 2 or seg.size == 0 or seg.min() < 0 or seg.max() >= NUM_CLASSES:
        raise SegxError(f"{path}: GTcls.Segmentation must be a 2-D map of labels 0..{NUM_CLASSES - 1}")
    return seg.astype(np.uint8)


def aug_ids(voc: Path, sbd_dir: Path) -> list[str]:
    """The standard train_aug recipe: SBD train + SBD val + VOC train, minus VOC val."""
    sbd_ids: set[str] = set()
    for name in ("train", "val"):
        path = sbd_dir / f"{name}.txt"
        if not path.is_file():
            raise SegxError(f"{path}: SBD list missing; is {sbd_dir} the SBD 'dataset' folder?")
        sbd_ids.update(read_list(path))
    return sorted((sbd_ids | set(list_ids(voc, "train"))) - set(list_ids(voc, "val")))


def _convert(voc: Path, sbd_dir: Path, image_id: str) -> bool:
    """Write SegmentationClassAug/<id>.png (and the JPEG if VOC lacks it); False when nothing was needed."""
    target = voc / AUG_MASK_DIR / f"{image_id}.png"
    if (voc / MASK_DIR / f"{image_id}.png").is_file() or target.is_file():
        return False
    mat = sbd_dir / "cls" / f"{image_id}.mat"
    if not mat.is_file():
        raise SegxError(f"{mat}: missing; {image_id} is in SBD's lists but has no label file")
    image = voc / IMAGE_DIR / f"{image_id}.jpg"
    if not image.is_file():
        source = sbd_dir / "img" / f"{image_id}.jpg"
        if not source.is_file():
            raise SegxError(f"{image_id}: no image in {voc / IMAGE_DIR} nor {sbd_dir / 'img'}")
        with atomic_path(image) as tmp:
            shutil.copyfile(source, tmp)
    write_mask(target, read_sbd_mask(mat))
    return True


def prepare_aug(voc_root: str | Path, sbd_dir: str | Path) -> list[str]:
    """Convert what train_aug needs (once; existing PNGs are kept) and write ImageSets/Segmentation/train_aug.txt."""
    from segx.log import progress

    voc, sbd_dir = resolve_voc_root(voc_root), Path(sbd_dir)
    if not (sbd_dir / "cls").is_dir():
        raise SegxError(f"{sbd_dir}: no SBD cls/ folder; run `segx data download --root DATA --sbd`")
    ids = aug_ids(voc, sbd_dir)
    with progress() as bar:
        converted = sum(_convert(voc, sbd_dir, i) for i in bar.track(ids, description="converting SBD"))
    atomic_write_text(list_path(voc, "train_aug"), "".join(f"{i}\n" for i in ids))
    log.info("train_aug: %d images (%d SBD masks converted to %s)", len(ids), converted, AUG_MASK_DIR)
    return ids
