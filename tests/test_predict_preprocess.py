"""Frame <-> model geometry: letterbox / size-multiple plans, normalisation, and logits mapped back to the frame
(checked against torch's bilinear interpolate and softmax)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from segx.data.constants import MEAN, STD
from segx.errors import SegxError
from segx.meta import ModelMeta
from segx.predict.preprocess import check_model, from_logits, plan_letterbox, size_multiple, to_input


def one_hot_logits(mask: np.ndarray, n: int = 4) -> np.ndarray:
    return np.stack([np.where(mask == c, 3.0, -3.0) for c in range(n)]).astype(np.float32)


def test_letterbox_same_scale_maps_back_exactly() -> None:
    pattern = np.random.default_rng(0).integers(0, 4, (32, 64)).astype(np.uint8)
    box = plan_letterbox((32, 64), (64, 64))
    assert (box.resized_hw, box.offset, box.input_hw) == ((32, 64), (16, 0), (64, 64))
    logits = np.full((4, 64, 64), -9.0, np.float32)
    logits[:, 16:48] = one_hot_logits(pattern)
    mask, _, _ = from_logits(logits, box)
    np.testing.assert_array_equal(mask, pattern)


def test_letterbox_upscaled_pattern_maps_back_exactly() -> None:
    # a 24x32 frame in a 64x64 model: x2 to 48x64 at row 8; 2x2 blocks average back to each source pixel
    pattern = np.random.default_rng(1).integers(0, 4, (24, 32)).astype(np.uint8)
    box = plan_letterbox((24, 32), (64, 64))
    assert (box.resized_hw, box.offset) == ((48, 64), (8, 0))
    logits = np.full((4, 64, 64), 50.0, np.float32)  # padding would win every pixel if it leaked back in
    logits[:, 8:56] = np.kron(one_hot_logits(pattern), np.ones((1, 2, 2), np.float32))
    mask, _, _ = from_logits(logits, box)
    np.testing.assert_array_equal(mask, pattern)


def test_letterbox_pads_the_short_side_centred() -> None:
    box = plan_letterbox((100, 50), (64, 64))
    assert box.resized_hw == (64, 32) and box.offset == (0, 16)


def test_dynamic_model_pads_to_the_multiple_without_resizing() -> None:
    box = plan_letterbox((50, 70), None, multiple=32)
    assert (box.resized_hw, box.offset, box.input_hw) == ((50, 70), (0, 0), (64, 96))
    box = plan_letterbox((1000, 500), None, multiple=8, max_side=400)
    assert box.resized_hw == (400, 200) and box.input_hw == (400, 200)


def test_to_input_normalises_and_pads_with_zero() -> None:
    frame = np.random.default_rng(2).integers(0, 256, (20, 30, 3)).astype(np.uint8)
    box = plan_letterbox((20, 30), None, multiple=32)
    x = to_input(frame, box, MEAN, STD)
    assert x.shape == (3, 32, 32) and x.dtype == np.float32
    expect = (frame.astype(np.float32) / 255 - np.array(MEAN, np.float32)) / np.array(STD, np.float32)
    np.testing.assert_allclose(x[:, :20, :30], expect.transpose(2, 0, 1), atol=1e-5)
    assert not x[:, 20:].any() and not x[:, :, 30:].any()


@pytest.mark.parametrize("frame_hw, fixed", [((360, 640), (128, 128)), ((47, 61), None), ((90, 33), (64, 96)),
                                             ((30, 40), (120, 160))])
def test_logits_back_to_frame_match_torch(frame_hw: tuple[int, int], fixed: tuple[int, int] | None) -> None:
    box = plan_letterbox(frame_hw, fixed, multiple=16)
    rng = np.random.default_rng(3)
    coarse = torch.from_numpy(rng.standard_normal((1, 21, 6, 6)).astype(np.float32) * 4)
    logits = torch.nn.functional.interpolate(coarse, size=box.input_hw, mode="bilinear")[0].numpy()
    mask, conf, probs = from_logits(logits, box, want_conf=True, want_probs=True)
    (top, left), (rh, rw) = box.offset, box.resized_hw
    crop = torch.from_numpy(logits[None, :, top:top + rh, left:left + rw].copy())
    ref = torch.nn.functional.interpolate(crop, size=frame_hw, mode="bilinear", align_corners=False)[0]
    assert mask.shape == frame_hw and mask.dtype == np.uint8
    assert (mask == ref.argmax(0).numpy()).mean() > 0.9999
    np.testing.assert_allclose(probs, ref.softmax(0).numpy(), atol=1e-5)
    np.testing.assert_allclose(conf, probs.max(0), atol=1e-6)
    fast, none_conf, none_probs = from_logits(logits, box)
    np.testing.assert_array_equal(fast, mask)
    assert none_conf is None and none_probs is None


@settings(max_examples=60, deadline=None)
@given(h=st.integers(1, 400), w=st.integers(1, 400), fh=st.integers(8, 300), fw=st.integers(8, 300))
def test_letterbox_plan_fits_and_keeps_aspect(h: int, w: int, fh: int, fw: int) -> None:
    box = plan_letterbox((h, w), (fh, fw))
    (rh, rw), (top, left) = box.resized_hw, box.offset
    assert 1 <= rh <= fh and 1 <= rw <= fw and (rh == fh or rw == fw)
    assert top >= 0 and top + rh <= fh and left >= 0 and left + rw <= fw
    s = min(fh / h, fw / w)  # one scale for both sides: the aspect is kept up to rounding (and a 1-pixel floor)
    assert abs(rh - h * s) <= 0.5 + 1e-9 or rh == 1
    assert abs(rw - w * s) <= 0.5 + 1e-9 or rw == 1


def test_size_multiple_and_model_checks() -> None:
    from segx.models import get_arch

    assert size_multiple(ModelMeta(arch="not_an_arch")) == 32
    assert size_multiple(ModelMeta(arch="unet_resnet18")) == get_arch("unet_resnet18").size_divisor
    assert size_multiple(ModelMeta(arch="unet_resnet18", extra={"size_divisor": 8})) == 8
    with pytest.raises(SegxError, match="RGB input"):
        check_model((1, 4, 64, 64), ModelMeta(arch="a"), "m.onnx")
    with pytest.raises(SegxError, match="3 class names for 21 classes"):
        check_model((1, 3, 64, 64), ModelMeta(arch="a", classes=("a", "b", "c"), num_classes=21), "m.onnx")
