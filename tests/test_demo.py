"""`segx demo --quick`: every stage runs end to end and the report holds each section, filled from that run."""
from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import pytest
from click.testing import CliRunner

from segx.cli import cli


@pytest.mark.slow  # every stage for real: 86 s at load 10 on 2 cores
def test_quick_demo_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", "--quick", "--out", str(out)])
    assert result.exit_code == 0, result.output

    run = out / "train" / "lraspp_mobilenet_v3_large"
    for name in ("best.pt", "last.pt", "metrics.jsonl", "curves.png"):
        assert (run / name).is_file(), name
    metrics = json.loads((out / "eval.json").read_text())
    assert 0.0 <= metrics["miou"] <= 1.0 and len(metrics["per_class_iou"]) == 21

    assert (out / "export" / "onnx" / "best.onnx").is_file()
    assert list((out / "export" / "openvino_int8").glob("*.xml")), "OpenVINO INT8 (or its fallback) was not kept"

    bench = json.loads((out / "bench" / "bench.json").read_text())
    statuses = {(r["runtime"], r["precision"]): r["status"] for r in bench["rows"]}
    assert statuses == {("torch", "fp32"): "pass", ("onnxruntime", "fp32"): "pass"}
    for name in ("bench.csv", "bench.md", "bench.png"):
        assert (out / "bench" / name).is_file()

    video = cv2.VideoCapture(str(out / "predict" / "val_video.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 8
    video.release()
    assert len(list((out / "predict" / "masks").glob("val_video_*.png"))) == 8

    md = (out / "report.md").read_text()
    for title in ("What this is", "Validation metrics", "Per-class IoU", "Training curves", "Exports and parity",
                  "Benchmark", "Prediction on a video", "Output files", "Real VOC on a GPU"):
        assert f"## {title}" in md, title
    assert "synthetic" in md
    assert f"| val | {100 * metrics['miou']:.2f} |" in md
    # every verdict shows its sample size and the bootstrap interval of the mIoU drop
    assert md.count("images / drop 95% CI pt") == 2
    assert re.search(r"\| \d+ / [+-]\d+\.\d\d\.\.[+-]\d+\.\d\d \|", md), md
    html = (out / "report.html").read_text()
    assert len(re.findall(r'<img alt="[^"]+" src="data:image/(png|jpeg);base64,', html)) >= 5  # curves, bench, 3 frames
    assert "missing:" not in html
