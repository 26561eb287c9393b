"""Evaluation: metrics of a trained checkpoint agree with torchmetrics, an oracle scores 1.0, the CLI writes JSON."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torchmetrics.classification import MulticlassJaccardIndex

from segx.checkpoint import load_model
from segx.cli import cli
from segx.data.constants import IGNORE_INDEX, NUM_CLASSES
from segx.data.voc import VOCSegmentation
from segx.evaluate import evaluate, score
from segx.metrics import BoundaryF1, ConfusionMatrix

JSON_KEYS = {"miou", "pixel_acc", "mean_acc", "fwiou", "boundary_f1", "per_class_iou"}


def test_evaluate_agrees_with_torchmetrics(trained_checkpoint: Path, synth_voc: Path) -> None:
    res = evaluate(trained_checkpoint, synth_voc, "val", device="cpu", show_progress=False)
    assert JSON_KEYS <= res.keys() and res["images"] == len(VOCSegmentation(synth_voc, "val"))
    model, _ = load_model(trained_checkpoint)
    jac = MulticlassJaccardIndex(num_classes=NUM_CLASSES, ignore_index=IGNORE_INDEX, average="macro")
    for image, mask in VOCSegmentation(synth_voc, "val"):
        with torch.no_grad():
            jac.update(model(image[None]).argmax(1), mask[None])
    assert res["miou"] == pytest.approx(float(jac.compute()), abs=1e-6)
    assert 0 <= res["boundary_f1"] <= 1 and 0 <= res["fwiou"] <= res["pixel_acc"] <= 1


def test_oracle_scores_one(synth_voc: Path) -> None:
    """A predictor that answers the true mask gets mIoU 1 and BF 1 through the same scoring path."""
    ds = VOCSegmentation(synth_voc, "val")
    masks = iter([m for _, m in ds])

    def oracle(image: torch.Tensor) -> torch.Tensor:
        mask = next(masks).clone()
        mask[mask == IGNORE_INDEX] = 0
        return torch.nn.functional.one_hot(mask, NUM_CLASSES).permute(2, 0, 1)[None].float()

    cm, bf = ConfusionMatrix(), BoundaryF1()
    score(oracle, ((img[None], m[None]) for img, m in ds), cm, bf)
    res = {**cm.compute(), **bf.compute()}
    assert res["miou"] == res["pixel_acc"] == res["boundary_f1"] == 1.0


def test_eval_cli_writes_json(trained_checkpoint: Path, synth_voc: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval.json"
    res = CliRunner().invoke(cli, ["eval", "--data", str(synth_voc), "--model", str(trained_checkpoint),
                                   "--json", str(out), "--device", "cpu"])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert JSON_KEYS <= data.keys()
    assert all(0 <= data[k] <= 1 for k in JSON_KEYS - {"per_class_iou"})
    assert set(data["per_class_iou"]) >= {"background", "aeroplane", "tvmonitor"}
    assert "mIoU" in res.output


def test_eval_cli_bad_model(synth_voc: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"\x80\x02garbage")
    for path, text in ((tmp_path / "none.pt", "checkpoint not found"), (broken, "broken.pt"),
                       (tmp_path / "model.xyz", "unknown model file type")):
        res = runner.invoke(cli, ["eval", "--data", str(synth_voc), "--model", str(path)])
        assert res.exit_code == 1 and "segx: error:" in res.output and text in res.output, res.output


def test_eval_an_exported_model(trained_checkpoint: Path, synth_voc: Path, tmp_path: Path) -> None:
    """A non-.pt model file goes through the bench runtime for its suffix and scores like the checkpoint."""
    from exporters import export

    exported = export(trained_checkpoint, "torchscript", imgsz=64, dynamic=True, verify=False, out=tmp_path)
    ref = evaluate(trained_checkpoint, synth_voc, device="cpu", show_progress=False)
    res = evaluate(exported, synth_voc, device="cpu", show_progress=False)
    assert res["arch"] == ref["arch"] and res["images"] == ref["images"]
    assert res["miou"] == pytest.approx(ref["miou"], abs=0.01)


class _AtFixedSize(torch.nn.Module):
    """The checkpoint's model fed at one fixed size, as a fixed-shape export is: the reference for those."""

    def __init__(self, net: torch.nn.Module, size: int) -> None:
        super().__init__()
        self.net, self.size = net, size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return self.net(x)


@pytest.fixture(scope="module")
def many_class_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained lraspp whose classifier biases are zeroed, so its argmax varies from pixel to pixel over many
    classes (a trained 2-epoch model or a plain random init answers with one class everywhere)."""
    from segx.checkpoint import make_checkpoint
    from segx.io import save_checkpoint
    from segx.meta import ModelMeta
    from segx.models import build_model

    torch.manual_seed(0)
    model = build_model("lraspp_mobilenet_v3_large", NUM_CLASSES).eval()
    for name, param in model.named_parameters():
        if "classifier" in name and name.endswith("bias"):
            param.data.zero_()
    path = tmp_path_factory.mktemp("many") / "best.pt"
    return save_checkpoint(make_checkpoint(model, ModelMeta(arch="lraspp_mobilenet_v3_large", imgsz=64)), path)


@pytest.mark.parametrize("fmt", ["onnx", pytest.param("openvino", marks=pytest.mark.slow)])
def test_eval_a_fixed_shape_export(fmt: str, many_class_checkpoint: Path, synth_voc: Path, tmp_path: Path) -> None:
    """The default export (fixed 1×3×S×S): eval resizes each image to S, scores at the image's own size, and matches
    the checkpoint run the same way; S = 48 differs from the 64² images, so the resize path really runs."""
    from exporters import export

    exported = Path(export(many_class_checkpoint, fmt, imgsz=48, verify=False, out=tmp_path))
    assert exported.suffix in (".onnx", ".xml") and "dynamic" not in exported.name
    net, _ = load_model(many_class_checkpoint)
    image = VOCSegmentation(synth_voc, "val")[0][0]
    with torch.inference_mode():
        assert len(net(image[None].float()).argmax(1).unique()) >= 5  # predictions hold many classes
    ref = evaluate(_AtFixedSize(net, 48), synth_voc, device="cpu", show_progress=False)
    res = evaluate(exported, synth_voc, device="cpu", show_progress=False)
    assert res["images"] == ref["images"]
    assert res["per_class_iou"] == pytest.approx(ref["per_class_iou"], abs=0.01)
    assert res["miou"] == pytest.approx(ref["miou"], abs=0.005)
