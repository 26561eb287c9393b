"""segx.parity: gates, verdicts and the numbers behind them, on in-memory runtimes (no export needed)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from segx.parity import GATES, NO_LABEL_INT8_AGREEMENT, check_dynamic, check_parity, gate_for, judge, parity_inputs
from segx.runtimes.base import Runtime
from segx.errors import SegxError
from segx.meta import ModelMeta

_W = np.random.default_rng(0).normal(size=(21, 3)).astype(np.float32)


def linear_logits(batch: np.ndarray) -> np.ndarray:
    """A deterministic stand-in 'model': per-pixel linear map 3 -> 21 classes."""
    return np.einsum("kc,nchw->nkhw", _W, batch).astype(np.float32)


class FnRuntime(Runtime):
    """A runtime whose 'model' is a Python function (options fn, meta, shape)."""

    name = "fn"
    suffixes = ()
    precisions = ("fp32", "fp16", "bf16", "int8")

    def load(self) -> None:
        self.fn = self.options["fn"]
        self.meta = self.options.get("meta", ModelMeta(arch="linear"))
        self.input_shape = self.options.get("shape", (None, 3, None, None))

    def infer(self, batch: np.ndarray) -> np.ndarray:
        return self.fn(batch)


def rt(fn, precision: str = "fp32", **kw) -> FnRuntime:  # noqa: ANN001
    return FnRuntime("mem", precision=precision, fn=fn, **kw)


def test_gates_are_the_documented_thresholds() -> None:
    assert gate_for("fp32").min_agreement == 0.999
    assert gate_for("fp16").min_agreement == gate_for("bf16").min_agreement == 0.995
    assert gate_for("int8").max_miou_drop == 1.0 and gate_for("int8").min_agreement is None
    with pytest.raises(SegxError, match="choose from"):
        gate_for("fp8")


@pytest.mark.parametrize(("precision", "agreement", "delta", "passed"), [
    ("fp32", 0.9990, None, True), ("fp32", 0.9989, None, False), ("fp16", 0.996, 0.0, True),
    ("bf16", 0.994, None, False), ("int8", 0.5, -0.0099, True), ("int8", 1.0, -0.0101, False),
    ("int8", 0.2, +0.05, True), ("int8", NO_LABEL_INT8_AGREEMENT, None, True), ("int8", 0.94, None, False),
])
def test_judge(precision: str, agreement: float, delta: float | None, passed: bool) -> None:
    ok, reason = judge(GATES[precision], agreement, delta)
    assert ok is passed
    assert precision in reason and "-0.00" not in reason


def test_identical_runtime_passes_with_zero_diff(synth_voc: Path) -> None:
    res = check_parity(rt(linear_logits), rt(linear_logits), data=synth_voc, n=3, imgsz=48)
    assert res.passed and res.n_images == 3 and res.imgsz is None  # a dynamic model: each image at its own size
    assert res.max_abs_diff == 0 and res.pixel_agreement == 1.0
    assert res.labels and res.miou == res.miou_ref and res.miou_delta == 0


def test_swapped_classes_fail_and_miou_matches_torchmetrics(synth_voc: Path) -> None:
    from torchmetrics.classification import MulticlassJaccardIndex

    def swapped(batch: np.ndarray) -> np.ndarray:
        out = linear_logits(batch)
        return out[:, ::-1].copy()  # class k -> 20-k: a broken export

    res = check_parity(rt(linear_logits), rt(swapped), data=synth_voc, n=4, imgsz=32)
    assert not res.passed and res.pixel_agreement < 0.9 and "<" in res.reason
    # cross-check the candidate's mIoU with torchmetrics over the same images (classes present in pred or target)
    preds, masks = [], []
    for image, mask in parity_inputs(synth_voc, "val", 4, None):
        preds.append(torch.from_numpy(swapped(image).argmax(1)[0]))
        masks.append(torch.from_numpy(mask))
    p, t = torch.stack(preds), torch.stack(masks)
    iou = MulticlassJaccardIndex(21, average="none", ignore_index=255)(p, t)
    keep = t[t != 255]
    present = torch.zeros(21, dtype=torch.bool)
    present[torch.unique(keep)] = True
    present[torch.unique(p[t != 255])] = True
    assert res.miou == pytest.approx(float(iou[present].mean()), abs=1e-6)


def test_small_noise_passes_fp32_and_reports_diffs(synth_voc: Path) -> None:
    noise = np.float32(1e-6)
    res = check_parity(rt(linear_logits), rt(lambda b: linear_logits(b) + noise), data=synth_voc, n=2, imgsz=32)
    assert res.passed and res.max_abs_diff == pytest.approx(1e-6, rel=0.05)
    assert res.mean_abs_diff == pytest.approx(1e-6, rel=0.05)


def test_gate_follows_the_file_precision(synth_voc: Path) -> None:
    """A fp16 file run in fp32 is judged by the fp16 gate."""
    cand = rt(linear_logits, meta=ModelMeta(arch="linear", precision="fp16"))
    assert check_parity(rt(linear_logits), cand, data=synth_voc, n=1, imgsz=32).precision == "fp16"


def test_no_data_uses_random_inputs_and_no_miou() -> None:
    res = check_parity(rt(linear_logits), rt(linear_logits, precision="int8"), data=None, n=3, imgsz=16)
    assert res.passed and not res.labels and res.miou is None and res.n_images == 3
    assert "no labels" in res.reason


def test_fixed_shape_candidate_sets_the_size(synth_voc: Path) -> None:
    cand = rt(linear_logits, shape=(1, 3, 40, 40))
    assert check_parity(rt(linear_logits), cand, data=synth_voc, n=1, imgsz=64).imgsz == (40, 40)


def test_shape_mismatch_is_an_error(synth_voc: Path) -> None:
    with pytest.raises(SegxError, match="output shape"):
        check_parity(rt(linear_logits), rt(lambda b: linear_logits(b)[:, :, :-1]), data=synth_voc, n=1, imgsz=32)


def test_dynamic_check_runs_batch_two_at_another_size(synth_voc: Path) -> None:
    seen: list[tuple[int, ...]] = []

    def record(batch: np.ndarray) -> np.ndarray:
        seen.append(batch.shape)
        return linear_logits(batch)

    res = check_dynamic(rt(linear_logits), rt(record), data=synth_voc, imgsz=64, n=2)
    assert res.passed and seen == [(2, 3, 96, 48)] and res.n_images == 2 and res.labels  # masks resized too
    seen.clear()
    whole = check_dynamic(rt(linear_logits), rt(record), data=synth_voc, imgsz=64)
    assert [s[0] for s in seen] == [2, 2, 1] and whole.n_images == 5 and whole.drop_ci is not None
    assert not check_dynamic(rt(linear_logits), rt(record), data=None, imgsz=64).labels


def test_bad_n_and_empty_split(synth_voc: Path) -> None:
    with pytest.raises(SegxError, match="at least 1"):
        check_parity(rt(linear_logits), rt(linear_logits), data=synth_voc, n=0)
    with pytest.raises(SegxError):
        check_parity(rt(linear_logits), rt(linear_logits), data=synth_voc, split="nope", n=1)


def test_whole_split_by_default_and_the_interval_is_printed(synth_voc: Path) -> None:
    from segx.data.voc import VOCSegmentation

    def noisy(batch: np.ndarray) -> np.ndarray:
        return linear_logits(batch) + np.random.default_rng(int(batch.sum() * 1e3) % 2**32).normal(
            scale=0.5, size=(1, 21, *batch.shape[2:])).astype(np.float32)

    res = check_parity(rt(linear_logits), rt(noisy, precision="int8"), data=synth_voc)
    assert res.n_images == len(VOCSegmentation(synth_voc, "val")) and res.split == "val"
    assert res.drop_ci is not None and res.drop_ci[0] <= -res.miou_delta * 100 <= res.drop_ci[1]
    assert "95% CI" in res.reason and f"{res.n_images} images" in res.reason
    again = check_parity(rt(linear_logits), rt(noisy, precision="int8"), data=synth_voc)
    assert again == res  # identical reruns, identical verdicts (fixed bootstrap seed)


def test_fixed_candidate_gets_the_image_resized_and_is_scored_at_the_mask_size(synth_voc: Path) -> None:
    seen: list[tuple[int, ...]] = []

    def record(batch: np.ndarray) -> np.ndarray:
        seen.append(batch.shape)
        return linear_logits(batch)

    res = check_parity(rt(linear_logits), rt(record, shape=(1, 3, 40, 40)), data=synth_voc, n=2)
    assert seen == [(1, 3, 40, 40)] * 2 and res.imgsz == (40, 40) and res.labels


def test_bootstrap_interval_is_deterministic_and_brackets_the_drop() -> None:
    from segx.metrics import ConfusionMatrix, bootstrap_miou_drop, miou_of

    rng = np.random.default_rng(1)
    ref = rng.integers(0, 50, size=(30, 4, 4))
    cand = ref.copy()
    cand[:, 0, 1] += 20  # the candidate confuses class 0 with class 1 on every image
    low, high = bootstrap_miou_drop(ref, cand)
    drop = 100 * (miou_of(ref.sum(0)) - miou_of(cand.sum(0)))
    assert 0 < low <= drop <= high and (low, high) == bootstrap_miou_drop(ref, cand)
    cm = ConfusionMatrix(4)
    cm.merge(ref.sum(0))
    assert miou_of(ref.sum(0)) == pytest.approx(cm.compute(["a", "b", "c", "d"])["miou"])
    assert bootstrap_miou_drop(ref, ref) == (0.0, 0.0)
