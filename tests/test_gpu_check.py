"""bench/gpu_check.py on a machine without CUDA: it imports, refuses in one clear message (exit 2), and its step
runner turns a missing package into a skipped step with the install line and an exception into a failed step."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench import gpu_check
from segx.runtimes.base import RuntimeUnavailable

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present here")
def test_without_cuda_it_exits_2_with_a_clear_message(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "bench.gpu_check", "--out", str(tmp_path / "out")], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert done.returncode == 2, done.stderr
    assert "gpu_check: needs an NVIDIA GPU with CUDA" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()  # nothing written


def test_steps_record_skips_and_failures(tmp_path: Path) -> None:
    check = gpu_check.Check(tmp_path, "cuda")

    def unavailable() -> None:
        raise RuntimeUnavailable("runtime 'onnxruntime' on CUDA needs the CUDA execution provider")

    def broken() -> None:
        raise ValueError("boom\nsecond line")

    ok = check.step("fine", lambda: {"p50_ms": 1.5, "fps": 666.7, "gpu_mem_mb": None})
    missing = check.step("needs a package", lambda: None, needs=("no_such_module_segx",))
    skipped = check.step("unavailable", unavailable)
    failed = check.step("broken", broken)
    assert (ok.status, missing.status, skipped.status, failed.status) == ("ok", "skipped", "skipped", "failed")
    assert "no_such_module_segx" in missing.detail and "pip install 'segx[gpu]'" in missing.detail
    assert failed.detail == "ValueError: boom"
    env = {"gpu": "X", "compute_capability": "9.0", "torch": "t", "cuda": "c", "date": "d"}
    json_path, md_path = gpu_check.write_report(check, tmp_path, env)
    assert [s["status"] for s in json.loads(json_path.read_text())["steps"]] == ["ok", "skipped", "skipped", "failed"]
    md = md_path.read_text()
    assert "| fine | ok |" in md and "| 1.50 | 666.70 |" in md and "| broken | failed |" in md
