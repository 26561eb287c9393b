"""predict with real models on every runtime here (torch, onnxruntime, openvino): the same input gives the same masks
(>= 99.9 % pixel agreement, the parity gate). The trained test checkpoint (LR-ASPP) predicts near-constant maps after
2 epochs, so mask agreement is also checked on a tiny seeded conv net whose masks hold several classes."""
from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from test_predict_pipeline import write_video
from torch import nn

from segx.predict import predict
from segx.cli import cli
from segx.data.voc import read_mask
from segx.meta import ModelMeta

AGREEMENT = 0.999
RUNTIMES = [rt for rt in ("onnxruntime", "openvino") if importlib.util.find_spec(rt) is not None]
FORMAT = {"onnxruntime": "onnx", "openvino": "openvino"}


class TinyNet(nn.Module):
    """Two strided convs and a 1×1 head, upsampled to the input: random weights give colourful masks."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(16, 16, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(16, num_classes, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(self.body(x), size=x.shape[-2:], mode="bilinear", align_corners=False)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """The tiny net as a segx checkpoint (arch registered for this module only) and its fixed / dynamic exports."""
    from exporters import export
    from segx.checkpoint import make_checkpoint
    from segx.io import save_checkpoint
    from segx.models import registry

    out = tmp_path_factory.mktemp("tiny")
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(registry._REGISTRY, "tiny_test", registry.ArchSpec("tiny_test", "CNN", TinyNet, size_divisor=16))
        torch.manual_seed(0)
        models = {"torch": save_checkpoint(make_checkpoint(TinyNet(21).eval(), ModelMeta(arch="tiny_test", imgsz=64)),
                                           out / "tiny.pt")}
        for rt in RUNTIMES:
            models[rt] = export(models["torch"], FORMAT[rt], imgsz=64, out=out / "fixed", verify=False)
            models[f"{rt}-dynamic"] = export(models["torch"], FORMAT[rt], imgsz=64, dynamic=True,
                                             out=out / "dynamic", verify=False)
        yield models


@pytest.fixture(scope="module")
def lraspp(trained_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from exporters import export

    out = tmp_path_factory.mktemp("lraspp")
    return {"torch": trained_checkpoint,
            **{rt: export(trained_checkpoint, FORMAT[rt], imgsz=64, out=out, verify=False) for rt in RUNTIMES}}


def outputs(source: Path, model: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    results = list(predict(source, model, probabilities=True))
    return [r.mask for r in results], [r.probabilities for r in results]


def agreement(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    assert len(a) == len(b) and all(x.shape == y.shape for x, y in zip(a, b))
    return float(np.mean([np.mean(x == y) for x, y in zip(a, b)]))


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_fixed_exports_give_torch_masks(tiny: dict[str, Path], synth_voc: Path, runtime: str) -> None:
    images = synth_voc / "JPEGImages"  # 64×64 like the export, so every runtime sees the same input
    ref, _ = outputs(images, tiny["torch"])
    assert len(ref) == 24 and len(np.unique(np.concatenate(ref))) >= 3  # not a trivial one-class answer
    assert agreement(ref, outputs(images, tiny[runtime])[0]) >= AGREEMENT


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_dynamic_exports_give_torch_masks_on_video(tiny: dict[str, Path], tmp_path: Path, runtime: str) -> None:
    write_video(tmp_path / "v.mp4", n=5, h=50, w=70)  # padded to 64×80 (multiple 16) by every runtime
    ref, _ = outputs(tmp_path / "v.mp4", tiny["torch"])
    assert ref[0].shape == (50, 70)
    assert agreement(ref, outputs(tmp_path / "v.mp4", tiny[f"{runtime}-dynamic"])[0]) >= AGREEMENT


def test_letterboxed_video_same_on_every_fixed_runtime(tiny: dict[str, Path], tmp_path: Path) -> None:
    if len(RUNTIMES) < 2:
        pytest.skip("needs onnxruntime and openvino")
    write_video(tmp_path / "v.mp4", n=5, h=48, w=80)  # into 64×64: resized to 38×64, padded 13 rows each side
    ort, _ = outputs(tmp_path / "v.mp4", tiny["onnxruntime"])
    assert ort[0].shape == (48, 80) and len(np.unique(np.concatenate(ort))) >= 3
    assert agreement(ort, outputs(tmp_path / "v.mp4", tiny["openvino"])[0]) >= AGREEMENT


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_trained_lraspp_same_answers_on_every_runtime(lraspp: dict[str, Path], synth_voc: Path,
                                                      runtime: str) -> None:
    images = synth_voc / "JPEGImages"
    ref_masks, ref_probs = outputs(images, lraspp["torch"])
    masks, probs = outputs(images, lraspp[runtime])
    assert agreement(ref_masks, masks) >= AGREEMENT
    assert max(float(np.abs(p - q).max()) for p, q in zip(ref_probs, probs)) < 1e-3


def test_cli_with_onnx_model_writes_video_and_masks(lraspp: dict[str, Path], tmp_path: Path) -> None:
    if "onnxruntime" not in lraspp:
        pytest.skip("onnxruntime is not installed")
    write_video(tmp_path / "clip.mp4", n=5)
    res = CliRunner().invoke(cli, ["predict", str(tmp_path / "clip.mp4"), "--model", str(lraspp["onnxruntime"]),
                                   "--out", str(tmp_path / "out"), "--save-masks", "--save-json"])
    assert res.exit_code == 0, res.output
    expected, _ = outputs(tmp_path / "clip.mp4", lraspp["onnxruntime"])
    got = [read_mask(tmp_path / "out" / "masks" / f"clip_{i:06d}.png") for i in range(5)]
    assert agreement(expected, got) == 1.0
    assert (tmp_path / "out" / "clip.mp4").stat().st_size > 0 and (tmp_path / "out" / "regions" / "clip.json").is_file()
