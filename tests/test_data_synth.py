"""The synthetic VOC set: exact VOC layout, palette masks with void borders, instances, determinism, safety."""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segx.data.constants import IGNORE_INDEX, PALETTE_256
from segx.data.synth import MARKER, class_style, make_synthetic_voc
from segx.data.voc import read_image, read_mask
from segx.errors import SegxError


def _ids(root: Path, name: str) -> list[str]:
    return (root / "ImageSets" / "Segmentation" / f"{name}.txt").read_text().split()


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_layout_and_lists(synth_voc: Path) -> None:
    assert synth_voc.name == "VOC2012" and synth_voc.parent.name == "VOCdevkit"
    train, val, trainval = _ids(synth_voc, "train"), _ids(synth_voc, "val"), _ids(synth_voc, "trainval")
    assert len(trainval) == 24 and not set(train) & set(val) and sorted(train + val) == sorted(trainval)
    assert len(val) == 5  # 20% of 24, rounded
    for i in trainval:
        for sub, ext in (("JPEGImages", "jpg"), ("SegmentationClass", "png"), ("SegmentationObject", "png")):
            assert (synth_voc / sub / f"{i}.{ext}").is_file()


def test_masks_are_voc_palette_pngs_with_void_borders(synth_voc: Path) -> None:
    seen: set[int] = set()
    for i in _ids(synth_voc, "trainval"):
        img = Image.open(synth_voc / "SegmentationClass" / f"{i}.png")
        assert img.mode == "P"
        assert np.array(img.getpalette()[:768]).reshape(-1, 3).tolist() == [list(c) for c in PALETTE_256]
        cls, inst = np.asarray(img), read_mask(synth_voc / "SegmentationObject" / f"{i}.png")
        assert read_image(synth_voc / "JPEGImages" / f"{i}.jpg").shape == (*cls.shape, 3) == (64, 64, 3)
        assert set(np.unique(cls)) <= {*range(21), IGNORE_INDEX}
        assert (cls == IGNORE_INDEX).any() and (cls == 0).any()
        np.testing.assert_array_equal(cls == IGNORE_INDEX, inst == IGNORE_INDEX)
        np.testing.assert_array_equal(cls == 0, inst == 0)
        ids = sorted(set(np.unique(inst)) - {0, IGNORE_INDEX})
        assert ids == list(range(1, len(ids) + 1)) and 1 <= len(ids) <= 4
        for k in ids:  # each instance is one class
            assert len(np.unique(cls[inst == k])) == 1
        for a, b in ((cls[:, 1:], cls[:, :-1]), (cls[1:], cls[:-1])):  # labels never touch without void between
            change = (a != b) & (a != IGNORE_INDEX) & (b != IGNORE_INDEX)
            assert not change.any()
        seen |= set(np.unique(cls).tolist())
    assert len(seen - {0, IGNORE_INDEX}) >= 15  # 24 images cover most of the 20 classes


def test_class_styles_are_distinct() -> None:
    styles = [class_style(c) for c in range(1, 21)]
    assert len({s.hue for s in styles}) == 20
    assert len({(s.shape, s.texture) for s in styles}) == 20


def test_deterministic_per_seed(tmp_path: Path) -> None:
    a = make_synthetic_voc(tmp_path / "a", n=6, size=48, seed=3)
    b = make_synthetic_voc(tmp_path / "b", n=6, size=48, seed=3)
    c = make_synthetic_voc(tmp_path / "c", n=6, size=48, seed=4)
    assert _digest(a) == _digest(b) != _digest(c)


def test_rerun_replaces_synthetic_tree_but_not_other_data(tmp_path: Path) -> None:
    root = make_synthetic_voc(tmp_path / "s", n=8, size=32)
    assert make_synthetic_voc(tmp_path / "s", n=4, size=32) == root
    assert len(_ids(root, "trainval")) == 4 and len(list((root / "JPEGImages").iterdir())) == 4
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["VOCdevkit"]  # no staging left behind
    (root / MARKER).unlink()
    with pytest.raises(SegxError, match="not a segx synthetic set"):
        make_synthetic_voc(tmp_path / "s", n=4, size=32)
    shutil.rmtree(tmp_path / "s")


@pytest.mark.parametrize(("n", "size"), [(1, 64), (0, 64), (10, 8), (10, 2.5), (True, 64)])
def test_bad_arguments(tmp_path: Path, n: object, size: object) -> None:
    with pytest.raises(SegxError):
        make_synthetic_voc(tmp_path, n=n, size=size)  # type: ignore[arg-type]
    assert not (tmp_path / "VOCdevkit").exists()


def test_interrupted_run_leaves_nothing(tmp_path: Path) -> None:
    calls = []

    def stop(k: int) -> None:
        calls.append(k)
        if len(calls) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        make_synthetic_voc(tmp_path, n=10, size=32, progress=stop)
    assert list(tmp_path.iterdir()) == []
