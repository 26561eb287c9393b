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
