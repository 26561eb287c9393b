"""Subprocesses segx starts (bench's worker) import segx from the running package, never from the working
directory; a bench worker that dies by a real signal or runs past its timeout becomes a one-line row error."""
from __future__ import annotations

import signal
import subprocess
import threading
import time
from pathlib import Path

import psutil
import pytest
from badmodels import tiny_onnx_model

from bench import rows
from segx.spawn import package_root, python_module


@pytest.fixture
def shadowing_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory holding folders named like the packages, whose import fails loudly."""
    for name in ("segx", "bench"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("raise ImportError('imported from the working directory')\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_child_python_ignores_a_segx_folder_in_cwd(shadowing_cwd: Path) -> None:
    argv, env = python_module("segx", "--version")
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0 and proc.stdout.startswith("segx, version"), proc.stderr
    plain = subprocess.run([argv[0], "-m", "segx", "--version"], capture_output=True, text=True, timeout=120,
                           check=False)
    assert "imported from the working directory" in plain.stderr  # what `python -m` alone would do
    assert (package_root() / "segx" / "spawn.py").is_file()


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import onnx

    path = tmp_path_factory.mktemp("worker") / "tiny.onnx"
    onnx.save(tiny_onnx_model(), path)
    return path


def worker_spec(model: Path, min_time: float) -> dict:
    return {"model": str(model), "runtime": "onnxruntime", "precision": "fp32", "device": "cpu", "threads": 1,
            "batch": 1, "imgsz": 16, "speed": {"min_iters": 1, "min_time": min_time}}


def _kill_worker_when_started(killed: list[int]) -> None:
    me = psutil.Process()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for child in me.children(recursive=True):
            try:
                if "bench.worker" in child.cmdline():
                    child.send_signal(signal.SIGKILL)
                    killed.append(child.pid)
                    return
            except psutil.NoSuchProcess:
                continue
        time.sleep(0.05)


def test_worker_killed_by_a_signal_is_a_crash(onnx_model: Path) -> None:
    killed: list[int] = []
    killer = threading.Thread(target=_kill_worker_when_started, args=(killed,))
    killer.start()
    with pytest.raises(rows.WorkerError, match=r"^crashed \(signal 9\)") as info:
        rows.run_worker(worker_spec(onnx_model, 300.0), timeout=120)
    killer.join()
    assert killed and "\n" not in str(info.value)


def test_worker_past_its_timeout_is_stopped(onnx_model: Path, shadowing_cwd: Path) -> None:
    """Also: run from a folder whose `segx` / `bench` would fail at import, the worker gets as far as timing."""
    start = time.monotonic()
    with pytest.raises(rows.WorkerError, match=r"^timed out after 3 s \(raise --timeout\)$"):
        rows.run_worker(worker_spec(onnx_model, 300.0), timeout=3)
    assert time.monotonic() - start < 30
    assert not [p for p in psutil.Process().children(recursive=True) if "bench.worker" in " ".join(p.cmdline())]
