"""The VOC dataset, readers/writers, root resolution and joint transforms; cross-checked with torchvision."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torchvision import tv_tensors

from segx.data.constants import IGNORE_INDEX, MEAN, STD
from segx.data.transforms import eval_transforms, train_transforms
from segx.data.voc import VOCSegmentation, read_image, read_mask, resolve_voc_root, write_mask
from segx.errors import SegxError

_MEAN = torch.tensor(MEAN).view(3, 1, 1)
_STD = torch.tensor(STD).view(3, 1, 1)


def test_resolve_voc_root_accepts_three_levels(synth_voc: Path, tmp_path: Path) -> None:
    for p in (synth_voc, synth_voc.parent, synth_voc.parent.parent, str(synth_voc)):
        assert resolve_voc_root(p) == synth_voc
    with pytest.raises(SegxError, match="no such folder"):
        resolve_voc_root(tmp_path / "nope")
    with pytest.raises(SegxError, match="no VOC2012 tree"):
        resolve_voc_root(tmp_path)
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(SegxError, match="not a folder"):
        resolve_voc_root(tmp_path / "f.txt")


def test_dataset_eval_items(synth_voc: Path) -> None:
    ds = VOCSegmentation(synth_voc.parent.parent, split="val")
    assert len(ds) == len(ds.ids) == 5
    image, mask = ds[0]
    assert type(image) is torch.Tensor and type(mask) is torch.Tensor
    assert image.dtype == torch.float32 and image.shape == (3, 64, 64)
    assert mask.dtype == torch.int64 and mask.shape == (64, 64)
    raw = torch.from_numpy(read_image(ds.image_path(0))).permute(2, 0, 1).float() / 255
    torch.testing.assert_close(image, (raw - _MEAN) / _STD)
    np.testing.assert_array_equal(mask.numpy(), read_mask(ds.mask_path(0)))


def test_same_masks_as_torchvision(synth_voc: Path) -> None:
    for split in ("train", "val"):
        ours = VOCSegmentation(synth_voc, split=split)
        theirs = torchvision.datasets.VOCSegmentation(root=synth_voc.parent.parent, year="2012", image_set=split)
        assert len(ours) == len(theirs)
        for i in range(len(ours)):
            img, target = theirs[i]
            _, mask = ours[i]
            np.testing.assert_array_equal(mask.numpy(), np.asarray(target))
            np.testing.assert_array_equal(ours.load(i)[0], np.asarray(img))


def test_train_transforms_keep_image_and_mask_aligned() -> None:
    torch.manual_seed(0)
    mask = torch.zeros(48, 64, dtype=torch.uint8)
    mask[10:30, 5:25], mask[20:44, 30:60], mask[8:12] = 7, 15, IGNORE_INDEX
    image = tv_tensors.Image((mask * 10).expand(3, -1, -1).clone())
    t = train_transforms(96)
    saw_pad = saw_flip_or_crop = False
    for _ in range(12):
        img, m = t(image, tv_tensors.Mask(mask))
        assert img.shape == (3, 96, 96) and m.shape == (96, 96) and m.dtype == torch.int64
        assert set(m.unique().tolist()) <= {0, 7, 15, IGNORE_INDEX}
        raw = (img * _STD + _MEAN) * 255
        valid = m != IGNORE_INDEX
        close = (raw[0][valid] - m[valid] * 10).abs() < 12
        assert close.float().mean() > 0.9  # bilinear blurs only the edges
        pad = (raw.abs().sum(0) < 1) & (m == IGNORE_INDEX)
        saw_pad |= bool(pad.any())
        saw_flip_or_crop |= bool((m == 15).any() and (m == 7).any())
    assert saw_pad and saw_flip_or_crop


def test_eval_transforms_fixed_size_uses_nearest_for_masks(synth_voc: Path) -> None:
    ds = VOCSegmentation(synth_voc, split="val", transforms=eval_transforms(40))
    image, mask = ds[1]
    assert image.shape == (3, 40, 40) and mask.shape == (40, 40)
    assert set(mask.unique().tolist()) <= set(np.unique(read_mask(ds.mask_path(1))).tolist())


@pytest.mark.parametrize("bad", [0, -3, 2.5, None, True])
def test_bad_crop(bad: object) -> None:
    with pytest.raises(SegxError, match="crop must be a positive integer"):
        train_transforms(bad)  # type: ignore[arg-type]


def test_write_and_read_mask(tmp_path: Path) -> None:
    mask = np.random.default_rng(0).integers(0, 21, (17, 23)).astype(np.uint8)
    mask[0] = IGNORE_INDEX
    path = write_mask(tmp_path / "m.png", mask)
    assert Image.open(path).mode == "P"
    np.testing.assert_array_equal(read_mask(path), mask)
    assert [p.name for p in tmp_path.iterdir()] == ["m.png"]
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(SegxError, match="mode RGB"):
        read_mask(tmp_path / "rgb.png")
    (tmp_path / "junk.png").write_bytes(b"not a png")
    with pytest.raises(SegxError, match="unreadable"):
        read_mask(tmp_path / "junk.png")
    with pytest.raises(SegxError, match="not found"):
        read_image(tmp_path / "missing.jpg")


def test_missing_split_and_files_are_clear_errors(synth_voc: Path, tmp_path: Path) -> None:
    root = Path(shutil.copytree(synth_voc, tmp_path / "VOC2012"))
    with pytest.raises(SegxError, match="unknown split list .nope.*no file"):
        VOCSegmentation(root, split="nope")
    first = (root / "ImageSets/Segmentation/val.txt").read_text().split()[0]
    (root / "JPEGImages" / f"{first}.jpg").unlink()
    with pytest.raises(SegxError, match=r"do not exist: .*\.jpg.*segx data check --root"):
        VOCSegmentation(root, split="val")
