"""predict with real models: the trained test checkpoint on torch and its fixed-64² ONNX / OpenVINO exports give the
same masks on the same inputs (>= 99.9 % pixel agreement, the parity gate), also through the letterbox."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from test_predict_pipeline import write_video

import segx
from segx.cli import cli
from segx.data.voc import read_mask

AGREEMENT = 0.999


@pytest.fixture(scope="module")
def exports(trained_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from exporters import export

    out = tmp_path_factory.mktemp("exports")
    models = {"torch": trained_checkpoint}
    for fmt, runtime in (("onnx", "onnxruntime"), ("openvino", "openvino")):
        if importlib.util.find_spec(runtime) is None:
            continue
        models[runtime] = export(trained_checkpoint, fmt, imgsz=64, out=out, verify=False)
    return models


def masks(source: Path, model: Path) -> list[np.ndarray]:
    return [r.mask for r in segx.predict(source, model, confidence=False, overlay=False)]


def agreement(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    assert len(a) == len(b) and all(x.shape == y.shape for x, y in zip(a, b))
    return float(np.mean([np.mean(x == y) for x, y in zip(a, b)]))


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_fixed_shape_exports_match_torch(exports: dict[str, Path], synth_voc: Path, runtime: str) -> None:
    if runtime not in exports:
        pytest.skip(f"{runtime} is not installed")
    images = synth_voc / "JPEGImages"  # 64×64 like the export: the same input for every runtime
    ref = masks(images, exports["torch"])
    assert len(ref) == 24 and ref[0].shape == (64, 64)
    assert agreement(ref, masks(images, exports[runtime])) >= AGREEMENT


def test_letterboxed_video_same_on_onnxruntime_and_openvino(exports: dict[str, Path], tmp_path: Path) -> None:
    if not {"onnxruntime", "openvino"} <= exports.keys():
        pytest.skip("needs onnxruntime and openvino")
    video = tmp_path / "clip.mp4"
    write_video(video, n=6, h=48, w=80)  # letterboxed into 64×64: resized to 38×64, padded 13 rows each side
    ort = masks(video, exports["onnxruntime"])
    assert len(ort) == 6 and ort[0].shape == (48, 80)
    assert agreement(ort, masks(video, exports["openvino"])) >= AGREEMENT


def test_cli_with_onnx_model_writes_video_and_masks(exports: dict[str, Path], tmp_path: Path) -> None:
    if "onnxruntime" not in exports:
        pytest.skip("onnxruntime is not installed")
    video = tmp_path / "clip.mp4"
    write_video(video, n=5, h=48, w=64)
    res = CliRunner().invoke(cli, ["predict", str(video), "--model", str(exports["onnxruntime"]), "--out",
                                   str(tmp_path / "out"), "--save-masks"])
    assert res.exit_code == 0, res.output
    expected = masks(video, exports["onnxruntime"])
    got = [read_mask(tmp_path / "out" / "masks" / f"clip_{i:06d}.png") for i in range(5)]
    assert agreement(expected, got) == 1.0
    assert (tmp_path / "out" / "clip.mp4").stat().st_size > 0
