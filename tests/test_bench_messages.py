"""What bench tells the user: where its reports went, which rows have no others_cpu reading (timing under 0.5 s),
and a torch row's "size MB" counts a checkpoint's weights, not the optimizer state a run's last.pt also holds."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from test_bench_units import standin  # noqa: F401 - the stand-in runtime fixture

from bench import rows, worker
from bench.run import run_bench, size_mb
from segx.checkpoint import make_checkpoint
from segx.io import save_checkpoint
from segx.meta import ModelMeta
from segx.models import build_model


def test_bench_says_where_reports_went_and_what_it_did_not_measure(
        standin: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,  # noqa: F811
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(rows, "run_worker", lambda spec, timeout: worker.run_spec(spec))  # in-process rows
    out = tmp_path / "b"
    with caplog.at_level(logging.INFO, logger="bench"):
        run_bench(archs=("lraspp_mobilenet_v3_large",), runtimes=("standin",), precisions=("fp32",), imgsz=32,
                  batches=(1,), min_iters=2, min_time=0, out=str(out))
    messages = [r.getMessage() for r in caplog.records if r.name == "bench.run"]
    assert f"reports in {out}: bench.json, bench.csv, bench.md, bench.png" in messages
    assert ("others_cpu (CPU other processes used meanwhile) not measured for 1 of 1 rows: their timing ran under "
            "0.5 s, too short for /proc/stat; raise --min-time to 0.5 or more") in messages


def test_torch_row_size_counts_weights_not_optimizer_state(tmp_path: Path) -> None:
    model = build_model("lraspp_mobilenet_v3_large", 21)
    weights = sum(t.numel() * t.element_size() for t in model.state_dict().values()) / 2**20
    momentum = {k: torch.zeros_like(v) for k, v in model.state_dict().items()}  # like SGD's momentum buffers
    last = save_checkpoint(make_checkpoint(model, ModelMeta(arch="lraspp_mobilenet_v3_large"),
                                           optimizer={"state": momentum}), tmp_path / "last.pt")
    assert rows.model_size_mb(last) > 1.9 * weights  # the file holds the weights twice over
    assert size_mb(last) == pytest.approx(weights)
