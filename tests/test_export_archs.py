"""Every registered arch exports to ONNX (static and dynamic), OpenVINO and TorchScript at 64² and passes parity
against PyTorch; the dynamic ONNX runs at two input sizes and batch 2. Archs other than LR-ASPP are marked slow."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from segx.runtimes import load_runtime
from exporters import run_export
from segx.meta import ModelMeta
from segx.models import list_archs

FAST: set[str] = set()  # all slow (lraspp: 55 s at load 10 on 2 cores); test_export_formats covers each format fast
# Mask R-CNN exports take batch 1 only (its trace unrolls per-image work): tests/test_maskrcnn.py checks its exports
ARCHS = [pytest.param(a, marks=() if a in FAST else pytest.mark.slow) for a in list_archs()
         if a != "maskrcnn_resnet50_fpn_v2"]


def _checkpoint(arch: str, folder: Path) -> Path:
    from segx.checkpoint import make_checkpoint
    from segx.io import save_checkpoint
    from segx.models import build_model

    torch.manual_seed(0)
    return save_checkpoint(make_checkpoint(build_model(arch).eval(), ModelMeta(arch=arch, imgsz=64)),
                           folder / "best.pt")


@pytest.mark.parametrize("arch", ARCHS)
def test_arch_exports_and_passes_parity(arch: str, synth_voc: Path, tmp_path: Path) -> None:
    ckpt = _checkpoint(arch, tmp_path)
    common = {"imgsz": 64, "data": synth_voc, "n_verify": 2}
    cases = {"onnx static": ("onnx", {}), "openvino": ("openvino", {}), "torchscript": ("torchscript", {}),
             "onnx dynamic": ("onnx", {"dynamic": True})}  # best_dynamic.onnx, beside the fixed-shape best.onnx
    failed = {}
    for name, (fmt, extra) in cases.items():
        result = run_export(ckpt, fmt, **common, **extra)
        checks = [c for a in result.attempts for c in a.checks]
        if not result.passed or result.precision != "fp32":
            failed[name] = result.summary()
        assert len(checks) == (2 if extra else 1), name  # the dynamic export also ran its second-size check
    assert not failed, failed
    assert {p.name for p in tmp_path.iterdir()} == {"best.pt", "best.onnx", "best_dynamic.onnx", "best.xml",
                                                    "best.bin", "best.torchscript"}
    with load_runtime(tmp_path / "best.onnx") as fixed:  # not overwritten by the dynamic export
        assert fixed.input_shape == (1, 3, 64, 64) and not fixed.meta.dynamic
    _run_two_sizes(ckpt, tmp_path / "best_dynamic.onnx")


def _run_two_sizes(ckpt: Path, onnx_file: Path) -> None:
    """The dynamic ONNX at 64² batch 1 and 80×112 batch 2 answers like the PyTorch model."""
    from segx.checkpoint import load_model

    module, _ = load_model(ckpt)
    with load_runtime(onnx_file) as rt:
        assert rt.input_shape == (None, 3, None, None) and rt.meta.dynamic and rt.meta.imgsz == 64
        for shape in ((1, 3, 64, 64), (2, 3, 80, 112)):
            x = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
            with torch.no_grad():
                ref = module(x).numpy()
            out = rt.infer(x.numpy())
            assert out.shape == (shape[0], ref.shape[1], *shape[2:])
            assert np.abs(out - ref).max() < 1e-3
            assert (out.argmax(1) == ref.argmax(1)).mean() > 0.999
