"""Deployment heads (segx export --head): the mask head's upsample + argmax inside the graph for every CPU format,
static and dynamic, judged as pixel agreement with PyTorch's argmax; class_map, the one outputs -> classes step."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import exporters
from segx.errors import SegxError
from segx.meta import ModelMeta
from segx.models.heads import MaskHead, with_head
from segx.runtimes import load_runtime
from segx.runtimes.base import argmax_classes, class_map, max_probability
from segx.runtimes.torch_rt import TorchRuntime

ARCH = "lraspp_mobilenet_v3_large"


def multiclass_model() -> torch.nn.Module:
    """A random-init LR-ASPP whose classifiers are re-drawn so its predictions hold many classes (a model that
    predicts one class passes any agreement check)."""
    from segx.models import build_model

    torch.manual_seed(0)
    model = build_model(ARCH).eval()
    for name in ("low_classifier", "high_classifier"):
        conv = getattr(model.net.classifier, name)
        torch.nn.init.normal_(conv.weight, std=1.0)
        torch.nn.init.zeros_(conv.bias)
    return model


@pytest.fixture(scope="module")
def multi_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from segx.checkpoint import make_checkpoint
    from segx.io import save_checkpoint

    path = tmp_path_factory.mktemp("heads") / "best.pt"
    return save_checkpoint(make_checkpoint(multiclass_model(), ModelMeta(arch=ARCH, imgsz=64)), path)


def test_class_map_logits_and_mask() -> None:
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((2, 21, 8, 9)).astype(np.float32)
    mask, conf = class_map((logits,), "logits", confidence=True)
    assert mask.dtype == np.uint8 and mask.shape == (2, 8, 9)
    np.testing.assert_array_equal(mask, logits.argmax(1))
    soft = torch.softmax(torch.from_numpy(logits), 1).amax(1).numpy()
    np.testing.assert_allclose(conf, soft, rtol=1e-5)
    assert class_map((logits,), "logits")[1] is None
    passed, c = class_map((mask, conf), "mask+conf", confidence=True)
    assert passed is mask or np.array_equal(passed, mask)
    assert c is not None and np.array_equal(c, conf)
    assert class_map((mask,), "mask", confidence=True)[1] is None
    with pytest.raises(SegxError, match="N×H×W"):
        class_map((logits,), "mask")
    np.testing.assert_array_equal(argmax_classes(logits[0], axis=0), logits[0].argmax(0))
    np.testing.assert_allclose(max_probability(logits), soft, rtol=1e-5)


def test_mask_head_module_matches_argmax() -> None:
    model = multiclass_model()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        logits = model(x)
        mask, conf = with_head(model, "mask+conf")(x)
    assert isinstance(with_head(model, "mask"), MaskHead) and with_head(model, "logits") is model
    assert mask.dtype == torch.uint8 and mask.shape == (2, 64, 64)
    assert torch.equal(mask, logits.argmax(1).to(torch.uint8))
    assert len(mask.unique()) >= 5  # the test model predicts several classes
    torch.testing.assert_close(conf, torch.softmax(logits, 1).amax(1))


def test_torch_runtime_head_option_and_meta_default() -> None:
    meta = ModelMeta(arch=ARCH)
    assert meta.head == "logits" and ModelMeta.from_dict({"arch": ARCH}).head == "logits"  # old files load
    model = multiclass_model()
    x = np.random.default_rng(1).standard_normal((1, 3, 64, 64)).astype(np.float32)
    with TorchRuntime.from_module(model, meta) as logits_rt, \
            TorchRuntime.from_module(model, meta, head="mask+conf") as mask_rt:
        assert mask_rt.meta.head == "mask+conf"
        m1, c1 = logits_rt.predict_mask(x, confidence=True)
        m2, c2 = mask_rt.predict_mask(x, confidence=True)
    np.testing.assert_array_equal(m1, m2)
    np.testing.assert_allclose(c1, c2, rtol=1e-4, atol=1e-6)


def _agreement(path: Path, model: torch.nn.Module, batch: np.ndarray) -> float:
    with TorchRuntime.from_module(model, ModelMeta(arch=ARCH), channels_last=False) as ref, load_runtime(path) as rt:
        want, _ = ref.predict_mask(batch)
        got, _ = rt.predict_mask(batch)
        assert rt.meta.head == "mask"
    assert got.dtype == np.uint8 and got.shape == want.shape
    assert len(np.unique(want)) >= 5
    return float((got == want).mean())


def test_mask_head_export_torchscript(multi_ckpt: Path, synth_voc: Path, tmp_path: Path) -> None:
    result = exporters.run_export(multi_ckpt, "torchscript", imgsz=64, head="mask", data=synth_voc, n_verify=2,
                                  out=tmp_path)
    assert result.passed and result.path == tmp_path / "best_mask.torchscript", result.summary()
    check = result.kept.checks[0]
    assert check.max_abs_diff is None and check.pixel_agreement >= 0.999 and check.miou is not None
    batch = np.random.default_rng(2).standard_normal((1, 3, 64, 64)).astype(np.float32)
    assert _agreement(result.path, multiclass_model(), batch) >= 0.999


@pytest.mark.slow
@pytest.mark.parametrize("dynamic", [False, True], ids=["static", "dynamic"])
@pytest.mark.parametrize("fmt", ["onnx", "openvino", "torchscript"])
def test_mask_head_parity_every_cpu_format(fmt: str, dynamic: bool, multi_ckpt: Path, synth_voc: Path,
                                           tmp_path: Path) -> None:
    result = exporters.run_export(multi_ckpt, fmt, imgsz=64, dynamic=dynamic, head="mask", data=synth_voc,
                                  n_verify=2, out=tmp_path)
    assert result.passed, result.summary()
    assert len(result.kept.checks) == (2 if dynamic else 1)  # dynamic: a second, non-square size and batch 2
    n, hw = (2, (96, 48)) if dynamic else (1, (64, 64))
    batch = np.random.default_rng(3).standard_normal((n, 3, *hw)).astype(np.float32)
    assert _agreement(result.path, multiclass_model(), batch) >= 0.999


@pytest.mark.slow
def test_mask_conf_head_onnx(multi_ckpt: Path, tmp_path: Path) -> None:
    path = exporters.export(multi_ckpt, "onnx", imgsz=64, head="mask+conf", n_verify=1, out=tmp_path)
    batch = np.random.default_rng(4).standard_normal((1, 3, 64, 64)).astype(np.float32)
    with load_runtime(path) as rt:
        assert [o.name for o in rt.session.get_outputs()] == ["mask", "confidence"]
        mask, conf = rt.predict_mask(batch, confidence=True)
    with TorchRuntime.from_module(multiclass_model(), ModelMeta(arch=ARCH)) as ref:
        want, want_conf = ref.predict_mask(batch, confidence=True)
    assert (mask == want).mean() >= 0.999
    np.testing.assert_allclose(conf, want_conf, atol=1e-4)


def test_bad_head_is_one_line_error(multi_ckpt: Path) -> None:
    with pytest.raises(SegxError, match="unknown head 'masks'"):
        exporters.run_export(multi_ckpt, "torchscript", head="masks")
