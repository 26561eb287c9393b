"""Training engine: AMP really runs under bf16 autocast on a CPU, resuming with another --amp says what happens,
bf16 on a GPU without it is refused, torchrun ranks get their own GPU (cuda:LOCAL_RANK) and loader seed."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner

from segx.cli import cli
from segx.engine import run as engine_run
from segx.engine.data import make_loaders
from segx.engine.dist import DistInfo, resolve_device
from segx.engine.optim import amp_settings
from segx.errors import SegxError
from segx.train import TrainConfig, train

LRASPP = "lraspp_mobilenet_v3_large"


def _record_forwards(monkeypatch: pytest.MonkeyPatch, seen: list[tuple[bool, torch.dtype]]) -> None:
    """Every training-mode forward of the model train() builds appends (autocast on?, dtype of the logits)."""
    real_build = engine_run.build_model

    def build(*args: Any, **kw: Any) -> torch.nn.Module:
        model = real_build(*args, **kw)
        model.register_forward_hook(lambda m, i, out: seen.append((torch.is_autocast_enabled("cpu"),
                                                                   out["out"].dtype)) if m.training else None)
        return model

    monkeypatch.setattr(engine_run, "build_model", build)


def test_amp_on_cpu_trains_under_bf16_autocast_and_resume_says_what_changed(
        synth_voc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[bool, torch.dtype]] = []
    _record_forwards(monkeypatch, seen)
    out = tmp_path / "run"
    train(TrainConfig(data=synth_voc, arch=LRASPP, epochs=1, batch=4, crop=32, out=out, workers=0, device="cpu"))
    assert seen and set(seen) == {(False, torch.float32)}  # control: without --amp, fp32
    seen.clear()
    res = CliRunner().invoke(cli, ["train", "--resume", "--out", str(out), "--amp", "--epochs", "2"])
    assert res.exit_code == 0, res.output
    assert seen and set(seen) == {(True, torch.bfloat16)}  # the epoch ran under CPU autocast, in bf16
    warning = [line for line in res.stderr.splitlines() if "trained with" in line]
    assert warning == ["WARNING  this run was trained with no --amp (fp32) and now resumes with --amp: the remaining "
                       "epochs use the new setting (with a fresh loss scaler), so the result differs from an "
                       "uninterrupted run; resume with no --amp (fp32) to continue it as it was"], res.stderr


def test_resume_to_fp16_amp_does_not_load_an_empty_scaler_state() -> None:
    """The CUDA case of the same resume: an enabled GradScaler refuses the empty state a run without AMP saved, which
    used to surface as 'optimizer state does not fit; was --optimizer changed?'."""
    scaler = torch.amp.GradScaler("cpu", enabled=True)
    with pytest.raises(RuntimeError):
        scaler.load_state_dict({})
    msg = engine_run.amp_change_message({"amp": False, "amp_dtype": None}, True, "fp16")
    assert "trained with no --amp (fp32) and now resumes with --amp --amp-dtype fp16" in msg


def test_bf16_on_a_gpu_without_bf16_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a, **k: "Tesla T4")
    with pytest.raises(SegxError, match=r"^Tesla T4 does not support bf16; use --amp without --amp-dtype"):
        amp_settings(True, "bf16", torch.device("cuda", 0))
    assert amp_settings(False, "bf16", torch.device("cuda", 0)).enabled is False  # no --amp: nothing to refuse
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert amp_settings(True, "bf16", torch.device("cuda", 0)).dtype == torch.bfloat16


@pytest.mark.parametrize(("device", "local_rank", "world", "expected"), [
    ("cuda", 0, 1, "cuda:0"), ("cuda:1", 0, 1, "cuda:1"),          # one process: the GPU asked for
    ("cuda", 1, 2, "cuda:1"), ("cuda:0", 1, 2, "cuda:1"), ("cuda:3", 2, 4, "cuda:2"),  # torchrun: LOCAL_RANK's
    ("cpu", 1, 2, "cpu"),
])
def test_each_torchrun_rank_gets_its_local_gpu(device: str, local_rank: int, world: int, expected: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device(device, local_rank, world) == torch.device(expected)


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "cpu:1", "cuda:"])
def test_bad_device_names(device: str) -> None:
    with pytest.raises(SegxError, match="unknown device"):
        resolve_device(device)


def test_each_rank_seeds_its_own_loader(synth_voc: Path) -> None:
    kw = dict(crop=32, batch=2, workers=0, seed=7, pin_memory=False)
    loaders = [make_loaders(synth_voc, "official", info=DistInfo(rank, 2, rank), **kw) for rank in (0, 1)]
    gens = [g for _, _, g in loaders]
    assert [g.initial_seed() for g in gens] == [7, 8]  # seed + rank: augmentation differs between ranks
    samplers = [train.sampler for train, _, _ in loaders]
    assert samplers[0].seed == samplers[1].seed == 7  # one shuffle shared by all ranks ...
    shards = [set(iter(s)) for s in samplers]
    assert not shards[0] & shards[1]  # ... so their shards do not overlap
