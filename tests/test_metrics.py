"""Metrics: the confusion matrix agrees with torchmetrics; the BF score behaves as defined."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

from segx.data.constants import CLASSES, IGNORE_INDEX
from segx.errors import SegxError
from segx.metrics import ConfusionMatrix, boundary_f1, boundary_f1_per_class


def _random_masks(seed: int, n_classes: int = 21, shape: tuple[int, ...] = (3, 40, 50)) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    target = torch.randint(0, n_classes, shape, generator=g)
    target[torch.rand(shape, generator=g) < 0.1] = IGNORE_INDEX
    pred = torch.where(torch.rand(shape, generator=g) < 0.6, target.clamp(max=n_classes - 1),
                       torch.randint(0, n_classes, shape, generator=g))
    return pred, target


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_miou_matches_torchmetrics(seed: int) -> None:
    pred, target = _random_masks(seed, n_classes=8)  # few classes so some are absent from the batch
    target[target == 3] = 1  # class 3 absent from target; may still appear in pred
    cm = ConfusionMatrix(num_classes=8)
    for p, t in zip(pred, target):  # accumulating image by image == one big update
        cm.update(p, t.numpy())
    res = cm.compute(class_names=[f"c{i}" for i in range(8)])
    jac = MulticlassJaccardIndex(num_classes=8, ignore_index=IGNORE_INDEX, average="macro")
    assert res["miou"] == pytest.approx(float(jac(pred, target)), abs=1e-6)
    per = MulticlassJaccardIndex(num_classes=8, ignore_index=IGNORE_INDEX, average="none")(pred, target)
    for i, v in enumerate(per.tolist()):
        got = res["per_class_iou"][f"c{i}"]
        assert (got or 0.0) == pytest.approx(v, abs=1e-6)
    acc = MulticlassAccuracy(num_classes=8, ignore_index=IGNORE_INDEX, average="micro")(pred, target)
    assert res["pixel_acc"] == pytest.approx(float(acc), abs=1e-6)
    # mean class accuracy averages over classes present in the target (torchmetrics' macro would count a class
    # seen only in the prediction as 0), so take torchmetrics' per-class recall over those
    per_acc = MulticlassAccuracy(num_classes=8, ignore_index=IGNORE_INDEX, average="none")(pred, target)
    in_target = torch.bincount(target[target != IGNORE_INDEX], minlength=8) > 0
    assert not in_target[3]
    assert res["mean_acc"] == pytest.approx(float(per_acc[in_target].mean()), abs=1e-6)
    assert res["pixels"] == int((target != IGNORE_INDEX).sum())


def test_fwiou_and_absent_classes() -> None:
    target = np.array([[0, 0, 0, 1], [0, 0, 1, 1], [255, 255, 2, 2]])
    pred = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 2, 0]])
    cm = ConfusionMatrix()
    cm.update(pred, target)
    res = cm.compute()
    iou = {0: 4 / 6, 1: 3 / 4, 2: 1 / 2}  # class 0: tp 4, fp 1, fn 1; class 1: tp 3, fp 1; class 2: tp 1, fn 1
    assert res["miou"] == pytest.approx(np.mean(list(iou.values())))
    assert res["fwiou"] == pytest.approx((5 * iou[0] + 3 * iou[1] + 2 * iou[2]) / 10)
    assert res["per_class_iou"][CLASSES[3]] is None
    assert res["pixel_acc"] == pytest.approx(8 / 10)


def test_bad_labels_raise() -> None:
    cm = ConfusionMatrix()
    with pytest.raises(SegxError, match="segx data check"):
        cm.update(np.zeros((2, 2), np.int64), np.full((2, 2), 30))
    with pytest.raises(ValueError):
        cm.update(np.zeros((2, 3), np.int64), np.zeros((2, 2), np.int64))


def _scene() -> np.ndarray:
    mask = np.zeros((64, 64), np.uint8)
    mask[16:40, 12:36] = 5
    mask[30:56, 40:52] = 12
    return mask


def test_bf_identical_is_one() -> None:
    mask = _scene()
    assert boundary_f1(mask, mask) == 1.0
    assert set(boundary_f1_per_class(mask, mask)) == {0, 5, 12}


def test_bf_falls_with_shift() -> None:
    mask = _scene()
    scores = [boundary_f1(np.roll(mask, s, axis=1), mask, tol=2) for s in (0, 1, 2, 4, 8)]
    assert scores[0] == 1.0
    assert scores[1] == scores[2] == 1.0  # within the 2 px tolerance
    assert scores[2] > scores[3] > scores[4]
    assert boundary_f1(np.roll(mask, 4, axis=1), mask, tol=4) == 1.0


def test_bf_wrong_class_and_void() -> None:
    mask = _scene()
    wrong = mask.copy()
    wrong[wrong == 5] = 7
    per = boundary_f1_per_class(wrong, mask)
    assert per[5] == 0.0 and per[7] == 0.0 and per[12] == 1.0
    void = mask.copy()
    void[:, :8] = IGNORE_INDEX
    assert np.isnan(boundary_f1(mask, np.full_like(mask, IGNORE_INDEX)))
    # a predicted edge inside void is neither right nor wrong
    pred = mask.copy()
    pred[:, :8] = 3
    assert boundary_f1(pred, void) == 1.0


def test_bf_edge_anywhere_in_void_band_is_right() -> None:
    """VOC draws a void band around objects: a predicted edge anywhere inside it counts as exact."""
    target = np.zeros((64, 64), np.uint8)
    target[16:48, 16:48] = IGNORE_INDEX
    target[20:44, 20:44] = 9  # object with a 4 px void band around it
    for grow in (0, 1, 2, 3, 4):
        pred = np.zeros_like(target)
        pred[20 - grow:44 + grow, 20 - grow:44 + grow] = 9
        assert boundary_f1(pred, target, tol=2) == 1.0
    shrunk = np.zeros_like(target)
    shrunk[25:39, 25:39] = 9  # 5 px inside the true edge
    assert boundary_f1(shrunk, target, tol=2) < 0.5
