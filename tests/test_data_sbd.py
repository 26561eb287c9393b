"""SBD -> train_aug: .mat labels converted once to palette PNGs, the standard list recipe, cross-checked with
torchvision's SBDataset, and read back through VOCSegmentation."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torchvision
from PIL import Image

from segx.data.sbd import prepare_aug
from segx.data.voc import VOCSegmentation, read_image, read_mask
from segx.errors import SegxError


def _lists(root: Path, name: str) -> list[str]:
    return (root / "ImageSets/Segmentation" / f"{name}.txt").read_text().split()


def make_sbd(voc: Path, out: Path, seed: int = 0) -> tuple[Path, dict[str, np.ndarray]]:
    """A tiny SBD 'dataset' folder: 2 VOC train ids, 1 VOC val id and 2 ids VOC does not have."""
    rng = np.random.default_rng(seed)
    train, val = _lists(voc, "train"), _lists(voc, "val")
    ids = {"train": [train[0], "sbd_000001", val[0]], "val": [train[1], "sbd_000002"]}
    (out / "cls").mkdir(parents=True)
    (out / "img").mkdir()
    labels = {}
    for image_id in sum(ids.values(), []):
        image = voc / "JPEGImages" / f"{image_id}.jpg"
        h, w = (read_image(image).shape[:2] if image.is_file() else (40, 56))
        if not image.is_file():
            Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(out / "img" / f"{image_id}.jpg")
        labels[image_id] = rng.integers(0, 21, (h, w)).astype(np.uint8)
        scipy.io.savemat(out / "cls" / f"{image_id}.mat", {"GTcls": {
            "Segmentation": labels[image_id], "CategoriesPresent": np.unique(labels[image_id])}})
    for name, names in ids.items():
        (out / f"{name}.txt").write_text("".join(f"{i}\n" for i in names))
    return out, labels


def test_prepare_aug_recipe_and_conversion(synth_voc: Path, tmp_path: Path) -> None:
    voc = Path(shutil.copytree(synth_voc, tmp_path / "VOCdevkit" / "VOC2012"))
    sbd, labels = make_sbd(voc, tmp_path / "sbd")
    ids = prepare_aug(tmp_path, sbd)
    expected = sorted((set(_lists(voc, "train")) | {"sbd_000001", "sbd_000002"}))
    assert ids == expected == _lists(voc, "train_aug")
    assert not set(ids) & set(_lists(voc, "val"))
    converted = sorted(p.stem for p in (voc / "SegmentationClassAug").glob("*.png"))
    assert converted == ["sbd_000001", "sbd_000002"]  # VOC's own masks are used where VOC has them
    theirs = torchvision.datasets.SBDataset(str(sbd), image_set="train", mode="segmentation")
    for k, image_id in enumerate((sbd / "train.txt").read_text().split()):
        if image_id == "sbd_000001":
            png = voc / "SegmentationClassAug" / f"{image_id}.png"
            assert Image.open(png).mode == "P"
            np.testing.assert_array_equal(read_mask(png), np.asarray(theirs[k][1]))
            np.testing.assert_array_equal(read_mask(png), labels[image_id])
    ds = VOCSegmentation(voc, split="train_aug")
    assert len(ds) == len(ids)
    i = ds.ids.index("sbd_000002")
    np.testing.assert_array_equal(ds[i][1].numpy(), labels["sbd_000002"])
    assert ds.mask_path(ds.ids.index(_lists(voc, "train")[0])).parent.name == "SegmentationClass"
    mtime = (voc / "SegmentationClassAug" / "sbd_000001.png").stat().st_mtime_ns
    assert prepare_aug(voc, sbd) == ids  # a rerun converts nothing again
    assert (voc / "SegmentationClassAug" / "sbd_000001.png").stat().st_mtime_ns == mtime


def test_prepare_aug_errors(synth_voc: Path, tmp_path: Path) -> None:
    voc = Path(shutil.copytree(synth_voc, tmp_path / "VOCdevkit" / "VOC2012"))
    with pytest.raises(SegxError, match="no SBD cls/ folder"):
        prepare_aug(voc, tmp_path / "nowhere")
    sbd, _ = make_sbd(voc, tmp_path / "sbd")
    (sbd / "cls" / "sbd_000002.mat").write_bytes(b"not a mat file")
    with pytest.raises(SegxError, match="not an SBD cls .mat file"):
        prepare_aug(voc, sbd)
    scipy.io.savemat(sbd / "cls" / "sbd_000002.mat", {"GTcls": {"Segmentation": np.full((4, 4), 30, np.uint8)}})
    with pytest.raises(SegxError, match="labels 0..20"):
        prepare_aug(voc, sbd)
    (sbd / "cls" / "sbd_000002.mat").unlink()
    with pytest.raises(SegxError, match="sbd_000002.mat: missing"):
        prepare_aug(voc, sbd)
    assert not (voc / "ImageSets/Segmentation/train_aug.txt").exists()
