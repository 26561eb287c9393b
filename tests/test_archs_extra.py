"""DeepLabV3+ (smp, ResNet-50) and SegFormer-B0 (smp, MiT-B0 transformer): the forward contract, a few training steps
with falling loss, evaluation, and an ONNX export that passes parity; `segx models` lists every family."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from segx.data.transforms import train_transforms
from segx.data.voc import VOCSegmentation
from segx.engine.loop import Step, _train_step
from segx.engine.optim import amp_settings, build_optimizer, build_scheduler
from segx.meta import ModelMeta
from segx.models import build_model, get_arch

ARCHS = ("deeplabv3plus_resnet50", "segformer_mit_b0")


def test_specs() -> None:
    assert get_arch("deeplabv3plus_resnet50").family == "CNN"
    assert get_arch("segformer_mit_b0").family == "transformer"
    assert all(get_arch(a).library == "smp" and get_arch(a).pretrained == ("imagenet",) for a in ARCHS)


@pytest.mark.parametrize("arch", ARCHS)
def test_train_eval_export(arch: str, synth_voc: Path, tmp_path: Path) -> None:
    from exporters import run_export
    from segx.evaluate import evaluate

    torch.manual_seed(0)
    model = build_model(arch, num_classes=5).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 45, 70)).shape == (2, 5, 45, 70)  # any size: padded to 32 and cropped back
    model = build_model(arch)
    ds = VOCSegmentation(synth_voc, "train", train_transforms(64))
    images, masks = (torch.stack(t) for t in zip(*(ds[i] for i in range(2))))
    spec = get_arch(arch)
    opt = build_optimizer(model, spec.optimizer, spec.lr, None)
    step = Step(opt, build_scheduler(opt, 100, 0), torch.amp.GradScaler("cpu", enabled=False),
                amp_settings(False, None, torch.device("cpu")), torch.device("cpu"), 0.5)
    model.train()
    losses = [float(_train_step(model, images, masks, step)) for _ in range(4)]
    assert losses[-1] < 0.85 * losses[0], losses
    model.eval()
    result = evaluate(model, synth_voc, "val", show_progress=False)
    assert 0 <= result["miou"] <= 1 and result["images"] > 0
    res = run_export((model, ModelMeta(arch=arch, imgsz=64)), "onnx", imgsz=64, data=synth_voc, n_verify=2,
                     out=tmp_path)
    assert res.passed and res.precision == "fp32" and (tmp_path / f"{arch}.onnx").is_file(), res.summary()
    assert res.attempts[0].checks[0].pixel_agreement >= 0.999


def test_models_command_shows_families_and_verified_exports() -> None:
    from segx.cli import cli

    res = CliRunner().invoke(cli, ["models", "--imgsz", "64", "--json"])
    assert res.exit_code == 0, res.output
    rows = {r["name"]: r for r in json.loads(res.output)}
    assert {rows[a]["family"] for a in rows} == {"CNN", "R-CNN", "transformer"}
    rcnn = rows["maskrcnn_resnet50_fpn_v2"]
    assert "trt" not in rcnn["export_formats"] and "TensorRT" in rcnn["export_notes"]["trt"]
    assert all(set(r["parity_tested"]) <= {"onnx", "openvino", "torchscript"} for r in rows.values())
    assert rows["segformer_mit_b0"]["gflops"] > 0 and rcnn["gflops"] > rows["deeplabv3plus_resnet50"]["gflops"]
