"""Nothing lost on a crash: `segx train` (a real process) is killed with SIGKILL mid-epoch and mid-checkpoint-write
(the moment its atomic temp file appears), resumed with --resume each time, and must end with exactly the weights and
history of an uninterrupted run with the same seed. After every kill each checkpoint on disk loads (weights_only),
the metrics file parses, and at most the epoch in progress is lost."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from segx.data.synth import make_synthetic_voc
from segx.io import load_checkpoint

EPOCHS = 4
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def train(data: Path, out: Path, *, resume: bool = False) -> subprocess.Popen:
    segx_bin = Path(sys.executable).with_name("segx")
    args = ["train", "--resume", "--out", out] if resume else [
        "train", "--data", data, "--arch", "lraspp_mobilenet_v3_large", "--epochs", EPOCHS, "--batch", 2, "--crop",
        48, "--workers", 0, "--device", "cpu", "--seed", 0, "--out", out]
    return subprocess.Popen([segx_bin, *map(str, args)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env=ENV, start_new_session=True)


def epochs_logged(run: Path) -> int:
    try:
        return len((run / "metrics.jsonl").read_text().splitlines())
    except OSError:
        return 0


def wait_until(proc: subprocess.Popen, ready: object, timeout: float = 120.0, poll: float = 0.0005) -> None:
    """Poll `ready()` until true; fail if the process ends first (it was meant to be killed mid-run)."""
    end = time.monotonic() + timeout
    while not ready():  # type: ignore[operator]
        if proc.poll() is not None:
            pytest.fail(f"train ended before the kill point:\n{proc.stderr.read()[-2000:]}")
        if time.monotonic() > end:
            proc.kill()
            pytest.fail("timed out waiting for the kill point")
        time.sleep(poll)


def kill(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()


def check_disk(run: Path, logged_before_kill: int) -> int:
    """Every checkpoint loads; metrics parse; no logged epoch is lost. Returns the epoch last.pt holds."""
    for pt in run.glob("*.pt"):
        if not pt.name.startswith("."):  # the final names; atomic temp files are dot-files
            load_checkpoint(pt)
    last = load_checkpoint(run / "last.pt")["epoch"] if (run / "last.pt").exists() else 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == list(range(1, len(rows) + 1))
    assert last >= logged_before_kill and last - len(rows) in (0, 1)  # metrics are written right after last.pt
    return last


def temp_of(run: Path, name: str) -> list[Path]:
    return list(run.glob(f".{name}.*.pt"))


def test_sigkill_mid_epoch_and_mid_write_then_resume(tmp_path: Path) -> None:
    data = make_synthetic_voc(tmp_path / "data", n=10, size=64, seed=0)
    reference = train(data, tmp_path / "reference")  # the uninterrupted run, side by side
    run = tmp_path / "run"

    first = train(data, run)  # 1. killed in the middle of epoch 2
    wait_until(first, lambda: epochs_logged(run) >= 1)
    time.sleep(0.15)
    logged = epochs_logged(run)
    kill(first)
    done = check_disk(run, logged)
    assert done < EPOCHS

    stale = set(temp_of(run, "last"))  # left by the first kill if it landed mid-write; the resume deletes them
    second = train(data, run, resume=True)  # 2. killed while last.pt of a later epoch is being written
    wait_until(second, lambda: bool(set(temp_of(run, "last")) - stale))
    logged = epochs_logged(run)
    kill(second)
    assert set(temp_of(run, "last")) - stale, "the kill did not land mid-write"
    before = check_disk(run, logged)
    assert before >= done

    third = train(data, run, resume=True)  # 3. runs to the end
    _, err = third.communicate(timeout=300)
    assert third.returncode == 0, err[-3000:]
    assert not list(run.glob(".*")), "temp files of the killed writes were not cleaned up"
    _, err = reference.communicate(timeout=300)
    assert reference.returncode == 0, err[-3000:]

    for name in ("last.pt", "best.pt"):
        a, b = load_checkpoint(tmp_path / "reference" / name), load_checkpoint(run / name)
        assert a["epoch"] == b["epoch"] and a["model"].keys() == b["model"].keys()
        unequal = [k for k in a["model"] if not torch.equal(a["model"][k], b["model"][k])]
        assert unequal == [], f"{name}: {len(unequal)} tensors differ from the uninterrupted run, e.g. {unequal[:3]}"
    a, b = load_checkpoint(tmp_path / "reference" / "last.pt"), load_checkpoint(run / "last.pt")
    assert a["epoch"] == EPOCHS
    assert [r["train_loss"] for r in a["history"]] == [r["train_loss"] for r in b["history"]]
    assert [r["miou"] for r in a["history"]] == [json.loads(x)["miou"] for x in
                                                (run / "metrics.jsonl").read_text().splitlines()]
