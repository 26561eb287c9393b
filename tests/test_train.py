"""Training: every arch learns, resume equals an uninterrupted run, the LR schedule, bad input, and torchrun DDP."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from segx.cli import cli
from segx.data.transforms import train_transforms
from segx.data.voc import VOCSegmentation
from segx.engine import run as engine_run
from segx.engine.loop import Step, _train_step
from segx.engine.optim import amp_settings, build_optimizer, build_scheduler, poly_warmup
from segx.errors import SegxError
from segx.io import load_checkpoint
from segx.models import build_model, get_arch, list_archs
from segx.train import TrainConfig, resume_config, train

LRASPP = "lraspp_mobilenet_v3_large"


@pytest.fixture(scope="module")
def batch(synth_voc: Path) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    ds = VOCSegmentation(synth_voc, "train", train_transforms(48))
    images, masks = zip(*(ds[i] for i in range(2)))
    return torch.stack(images), torch.stack(masks)


@pytest.mark.parametrize("arch", list_archs())
def test_every_arch_learns(arch: str, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    """A few steps of the real train step (default optimizer, aux loss) on one batch: the loss falls."""
    torch.manual_seed(0)
    spec = get_arch(arch)
    model = build_model(arch)
    opt = build_optimizer(model, spec.optimizer, spec.lr, None)
    step = Step(opt, build_scheduler(opt, 100, 0), torch.amp.GradScaler("cpu", enabled=False),
                amp_settings(False, None, torch.device("cpu")), torch.device("cpu"), 0.5)
    model.train()
    losses = [float(_train_step(model, *batch, step)) for _ in range(4)]
    assert losses[-1] < 0.85 * losses[0], losses


def test_poly_warmup_schedule() -> None:
    f = poly_warmup(total_iters=100, warmup_iters=10)
    assert f(0) == pytest.approx(0.01) and f(5) == pytest.approx(0.01 + 0.99 * 0.5)
    assert f(10) == 1.0 and f(55) == pytest.approx(0.5**0.9) and f(100) == 0.0
    assert all(f(i) >= f(i + 1) for i in range(10, 100))


def _config(data: Path, out: Path, **kw: object) -> TrainConfig:
    base = dict(data=data, arch=LRASPP, epochs=2, batch=4, crop=48, out=out, workers=0, device="cpu")
    return TrainConfig(**{**base, **kw})


def test_train_writes_run_folder(synth_voc: Path, tmp_path: Path) -> None:
    run = train(_config(synth_voc, tmp_path / "run", epochs=2))
    assert {p.name for p in run.iterdir()} >= {"last.pt", "best.pt", "metrics.jsonl", "curves.png"}
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert all(0 <= r["miou"] <= 1 and r["train_loss"] > 0 and r["images_per_s"] > 0 for r in rows)
    assert rows[1]["train_loss"] < rows[0]["train_loss"]
    last, best = load_checkpoint(run / "last.pt"), load_checkpoint(run / "best.pt")
    assert last["epoch"] == 2 and {"optimizer", "scheduler", "scaler", "rng", "config"} <= last.keys()
    assert "optimizer" not in best and best["metrics"]["miou"] == max(r["miou"] for r in rows)
    assert (run / "curves.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(SegxError, match="already holds a run"):
        train(_config(synth_voc, run))


def test_resume_equals_uninterrupted(synth_voc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    straight = train(_config(synth_voc, tmp_path / "straight", epochs=2))

    real_epoch = engine_run._epoch

    def stop_after_first(*args: object, **kw: object) -> None:
        real_epoch(*args, **kw)
        if args[2] == 1:  # epoch number: simulate Ctrl-C once epoch 1 is saved
            raise KeyboardInterrupt

    monkeypatch.setattr(engine_run, "_epoch", stop_after_first)
    with pytest.raises(KeyboardInterrupt):
        train(_config(synth_voc, tmp_path / "resumed", epochs=2))
    monkeypatch.setattr(engine_run, "_epoch", real_epoch)
    assert load_checkpoint(tmp_path / "resumed" / "last.pt")["epoch"] == 1
    resumed = train(resume_config(tmp_path / "resumed"))

    a, b = load_checkpoint(straight / "last.pt"), load_checkpoint(resumed / "last.pt")
    assert a["epoch"] == b["epoch"] == 2
    assert a["model"].keys() == b["model"].keys()
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert [r["train_loss"] for r in a["history"]] == [r["train_loss"] for r in b["history"]]
    assert (resumed / "metrics.jsonl").read_text().count("\n") == 2


def test_cli_bad_input(synth_voc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    base = ["train", "--data", str(synth_voc), "--epochs", "1", "--crop", "48", "--workers", "0"]

    def fails(args: list[str], text: str) -> None:
        res = runner.invoke(cli, args)
        assert res.exit_code == 1, res.output
        err = res.stderr if hasattr(res, "stderr") else res.output
        errors = [line for line in err.splitlines() if line.startswith("segx: error:")]
        assert len(errors) == 1 and text in errors[0] and "Traceback" not in err, err

    fails([*base, "--arch", "lraspp_mobilenet", "--out", str(tmp_path / "a")],
          "did you mean 'lraspp_mobilenet_v3_large'")
    fails(["train", "--data", str(tmp_path / "nowhere"), "--arch", LRASPP, "--out", str(tmp_path / "b")],
          "no such folder")
    fails(["train", "--resume", "--out", str(tmp_path / "c")], "nothing to resume")
    fails([*base, "--arch", LRASPP, "--out", str(tmp_path / "d"), "--weights", str(tmp_path / "w.pt")],
          "w.pt: weights file not found")
    if not torch.cuda.is_available():
        fails([*base, "--arch", LRASPP, "--device", "cuda", "--out", str(tmp_path / "e")], "no CUDA GPU")
    fails([*base, "--arch", LRASPP, "--batch", "64", "--out", str(tmp_path / "f")], "fewer than one batch")

    def oom(*args: object, **kw: object) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")

    monkeypatch.setattr(engine_run, "train_one_epoch", oom)
    fails([*base, "--arch", LRASPP, "--out", str(tmp_path / "g")], "reduce --batch or --crop")


@pytest.mark.slow
def test_torchrun_two_processes(synth_voc: Path, tmp_path: Path) -> None:
    """`torchrun --nproc_per_node=2 segx train` on CPU (gloo): one run folder, written once by rank 0."""
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "segx.cli",
           "train", "--data", str(synth_voc), "--arch", LRASPP, "--epochs", "1", "--batch", "2", "--crop", "48",
           "--workers", "0", "--device", "cpu", "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # torchrun and both ranks
        proc.communicate()
        raise
    assert proc.returncode == 0, stderr[-3000:]
    assert stdout.count("run saved to") == 1
    assert "× 2 processes" in stderr
    rows = (out / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 1 and 0 <= json.loads(rows[0])["miou"] <= 1
    assert load_checkpoint(out / "best.pt")["epoch"] == 1
