"""Property tests (hypothesis, few examples each so they stay fast): the joint transforms keep mask labels inside
{0..20, 255} and keep image and mask aligned; the confusion matrix (so mIoU) does not depend on the order or batching
of images; palette PNG masks round-trip; the decompression-bomb guard fires exactly above its pixel limit."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from badinputs import png_claiming
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torchvision import tv_tensors

from segx.data.constants import IGNORE_INDEX, MEAN, NUM_CLASSES, STD
from segx.data.transforms import eval_transforms, train_transforms
from segx.data.voc import read_image, read_mask, write_mask
from segx.errors import SegxError
from segx.metrics import ConfusionMatrix

FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
LABELS = [*range(NUM_CLASSES), IGNORE_INDEX]
# one colour per label, far apart; void is black like the image padding (mask padding is void)
COLOURS = np.zeros((256, 3), np.uint8)
COLOURS[:NUM_CLASSES] = [((c * 97) % 200 + 40, (c * 53) % 200 + 40, (c * 151) % 200 + 40) for c in range(NUM_CLASSES)]


@st.composite
def scenes(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """A blocky label map (cells of 4..12 px) and the image that paints each label in its colour."""
    rows, cols = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    cell = draw(st.integers(4, 12))
    grid = np.array(draw(st.lists(st.sampled_from(LABELS), min_size=rows * cols, max_size=rows * cols)), np.uint8)
    mask = np.kron(grid.reshape(rows, cols), np.ones((cell, cell), np.uint8))
    return COLOURS[mask], mask


def _apply(transform: object, image: np.ndarray, mask: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    torch.manual_seed(seed)
    img_t, mask_t = transform(tv_tensors.Image(torch.from_numpy(image).permute(2, 0, 1)),  # type: ignore[operator]
                              tv_tensors.Mask(torch.from_numpy(mask)))
    rgb = (img_t.permute(1, 2, 0).numpy() * np.array(STD) + np.array(MEAN)) * 255.0
    return rgb, mask_t.numpy()


def _assert_aligned(rgb: np.ndarray, mask: np.ndarray, margin: int) -> None:
    """Away from label edges (the padding seam and the crop's border included), a pixel has its label's colour."""
    assert set(np.unique(mask).tolist()) <= set(LABELS)
    interior = np.zeros(mask.shape, bool)
    kernel = np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)
    for label in np.unique(mask):
        # the crop's border counts as an edge: the pixels just outside it may hold another label
        inside = cv2.erode((mask == label).astype(np.uint8), kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
        interior |= inside.astype(bool)
    err = np.abs(rgb - COLOURS[mask].astype(np.float64)).max(-1)
    assert (err[interior] <= 3.0).all(), f"{(err[interior] > 3).sum()} interior pixels off their label's colour"


@FAST
@given(scene=scenes(), data=st.data(), seed=st.integers(0, 2**31 - 1))
def test_train_transforms_keep_labels_and_alignment(scene: tuple[np.ndarray, np.ndarray], data: st.DataObject,
                                                    seed: int) -> None:
    # crop ≤ 2 × the short side: the random resize then scales by 4× at most (VOC at crop 512: 0.7–2.7×), so the
    # bilinear blend at an edge stays within the 3 px margin of the check
    crop = data.draw(st.integers(8, max(8, 2 * min(scene[1].shape))), label="crop")
    rgb, mask = _apply(train_transforms(crop), *scene, seed)
    assert mask.shape == (crop, crop) and rgb.shape == (crop, crop, 3) and mask.dtype == np.int64
    _assert_aligned(rgb, mask, margin=3)


@FAST
@given(scene=scenes(), data=st.data())
def test_eval_transforms_keep_labels_and_alignment(scene: tuple[np.ndarray, np.ndarray], data: st.DataObject) -> None:
    size = data.draw(st.one_of(st.none(), st.integers(8, max(8, 4 * min(scene[1].shape)))), label="size")
    rgb, mask = _apply(eval_transforms(size), *scene, 0)
    assert mask.shape == (scene[1].shape if size is None else (size, size))
    if size is None:
        assert np.array_equal(mask, scene[1])
    _assert_aligned(rgb, mask, margin=3)


def test_the_alignment_check_sees_a_shift() -> None:
    """The check above is not vacuous: a mask 5 px off its image (more than the margin) fails it."""
    mask = np.kron(np.array([[0, 1], [1, 0]], np.uint8), np.ones((12, 12), np.uint8))
    rgb, out = _apply(eval_transforms(None), COLOURS[mask], mask, 0)
    _assert_aligned(rgb, out, margin=3)
    with pytest.raises(AssertionError, match="interior pixels off"):
        _assert_aligned(rgb, np.roll(out, 5, axis=1), margin=3)


@st.composite
def batches(draw: st.DrawFn) -> list[tuple[np.ndarray, np.ndarray]]:
    n = draw(st.integers(1, 6))
    out = []
    for _ in range(n):
        h, w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        target = rng.choice(np.array(LABELS), size=(h, w))
        out.append((rng.integers(0, NUM_CLASSES, (h, w)), target))
    return out


@FAST
@given(pairs=batches(), order=st.randoms(use_true_random=False))
def test_miou_does_not_depend_on_image_order_or_batching(pairs: list, order: object) -> None:
    forward, shuffled, whole = ConfusionMatrix(), ConfusionMatrix(), ConfusionMatrix()
    for pred, target in pairs:
        forward.update(pred, target)
    perm = list(pairs)
    order.shuffle(perm)  # type: ignore[attr-defined]
    for pred, target in perm:
        shuffled.update(torch.from_numpy(pred), torch.from_numpy(target))
    whole.update(np.concatenate([p.ravel() for p, _ in pairs]), np.concatenate([t.ravel() for _, t in pairs]))
    assert forward.compute() == shuffled.compute() == whole.compute()
    pred, target = (np.concatenate([x.ravel() for x in xs]) for xs in zip(*pairs))
    keep = target != IGNORE_INDEX
    for c, iou in enumerate(forward.compute()["per_class_iou"].values()):  # against the definition, per class
        union = ((pred == c) | (target == c))[keep].sum()
        assert iou == (None if union == 0 else pytest.approx(((pred == c) & (target == c))[keep].sum() / union))


@FAST
@given(h=st.integers(1, 40), w=st.integers(1, 40), seed=st.integers(0, 2**32 - 1),
       labels=st.lists(st.integers(0, 255), min_size=1, max_size=30))
def test_palette_mask_round_trip(h: int, w: int, seed: int, labels: list[int], tmp_path: Path) -> None:
    mask = np.random.default_rng(seed).choice(np.array(labels, np.uint8), size=(h, w))
    path = tmp_path / "m.png"
    write_mask(path, mask)
    back = read_mask(path)
    assert back.dtype == np.uint8 and np.array_equal(back, mask)
    assert [p.name for p in tmp_path.iterdir()] == ["m.png"]  # no temp file left


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(w=st.integers(1, 5000), h=st.integers(1, 5000), limit=st.integers(1, 10_000_000))
def test_pixel_limit_fires_exactly_above_the_limit(w: int, h: int, limit: int, tmp_path: Path) -> None:
    """PNGs with a header and a few bytes of data: above the limit the guard refuses them unread; at or below it
    they reach the decoder (which decodes them or finds the pixel data missing)."""
    path = tmp_path / "claim.png"
    path.write_bytes(png_claiming(w, h))
    try:
        image = read_image(path, max_pixels=limit)
    except SegxError as e:
        refused = "decompression-bomb guard" in str(e)
    else:  # small claims: the few bytes of data are enough to decode
        refused = False
        assert image.shape == (h, w, 3)
    assert refused == (w * h > limit)
