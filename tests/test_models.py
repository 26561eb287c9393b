"""Model registry, wrappers (one logits tensor at input size), FLOP counting and checkpoints."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch.utils.flop_counter import FlopCounterMode

from segx.checkpoint import load_model, load_weights, make_checkpoint
from segx.errors import SegxError
from segx.io import save_checkpoint
from segx.meta import ModelMeta
from segx.models import build_model, get_arch, list_archs, register
from segx.models.profile import profile

TORCHVISION = {"fcn_resnet50", "deeplabv3_resnet50", "deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large"}


def test_registry_lists_required_archs() -> None:
    archs = set(list_archs())
    assert TORCHVISION <= archs
    assert any(get_arch(a).library == "smp" and a.startswith("unet") for a in archs)
    for a in archs:
        spec = get_arch(a)
        assert spec.name == a and spec.size_divisor >= 1 and spec.optimizer in ("sgd", "adamw")


def test_unknown_and_duplicate_names() -> None:
    with pytest.raises(SegxError, match="did you mean 'lraspp_mobilenet_v3_large'"):
        get_arch("lraspp_mobilenet_v3")
    with pytest.raises(SegxError, match="unknown arch"):
        build_model("no_such_net")
    with pytest.raises(ValueError, match="registered twice"):
        register("unet_resnet18", family="CNN")(lambda n: torch.nn.Identity())
    with pytest.raises(SegxError, match="num_classes"):
        build_model("lraspp_mobilenet_v3_large", num_classes=0)


@pytest.mark.parametrize("arch", sorted(TORCHVISION | {"unet_resnet18", "unet_mobilenet_v2"}))
def test_forward_contract(arch: str) -> None:
    """Eval: one tensor N×C×H×W at the input size, even when no stride divides it; train: dict, aux iff has_aux."""
    torch.manual_seed(0)
    model = build_model(arch, num_classes=5).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 45, 70))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 5, 45, 70)
    model.train()
    train_out = model(torch.randn(2, 3, 32, 32))
    assert isinstance(train_out, dict) and train_out["out"].shape == (2, 5, 32, 32)
    assert ("aux" in train_out) == get_arch(arch).has_aux


def test_profile_matches_a_real_forward() -> None:
    """FLOPs counted on the meta device equal those of a real CPU forward."""
    prof = profile("lraspp_mobilenet_v3_large", imgsz=64)
    model = build_model("lraspp_mobilenet_v3_large").eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.randn(1, 3, 64, 64))
    assert prof.flops == counter.get_total_flops() > 0
    assert prof.params == sum(p.numel() for p in model.parameters())
    heavy = profile("deeplabv3_resnet50", imgsz=64)
    full = sum(p.numel() for p in build_model("deeplabv3_resnet50").parameters())
    assert heavy.flops > 10 * prof.flops and heavy.params < full  # aux head not counted


def test_models_command_lists_every_arch() -> None:
    from segx.cli import cli

    res = CliRunner().invoke(cli, ["models", "--imgsz", "64", "--json"])
    assert res.exit_code == 0, res.output
    import json

    rows = json.loads(res.output)
    assert [r["name"] for r in rows] == list_archs()
    assert all(r["gflops"] > 0 and r["params_m"] > 0 for r in rows)


def _save(model: torch.nn.Module, path: Path, arch: str = "lraspp_mobilenet_v3_large", **over: object) -> Path:
    ckpt = make_checkpoint(model, ModelMeta(arch=arch, imgsz=64), epoch=1, metrics={"miou": 0.5})
    ckpt.update(over)
    return save_checkpoint(ckpt, path)


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model("lraspp_mobilenet_v3_large").eval()
    path = _save(model, tmp_path / "best.pt")
    raw = torch.load(path, weights_only=True)  # plain tensors and data only
    assert raw["arch"] == "lraspp_mobilenet_v3_large" and raw["epoch"] == 1 and raw["imgsz"] == 64
    loaded, meta = load_model(path)
    assert not loaded.training and meta.arch == "lraspp_mobilenet_v3_large" and meta.num_classes == 21
    x = torch.randn(1, 3, 48, 48)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_bad_checkpoints_name_the_file(tmp_path: Path) -> None:
    model = build_model("lraspp_mobilenet_v3_large")
    wrong_arch = _save(model, tmp_path / "wrong_arch.pt", arch="unet_resnet18")
    with pytest.raises(SegxError, match="wrong_arch.pt: weights do not fit arch 'unet_resnet18'"):
        load_model(wrong_arch)
    small = build_model("lraspp_mobilenet_v3_large", num_classes=5)
    wrong_n = _save(small, tmp_path / "wrong_n.pt")
    with pytest.raises(SegxError, match=r"wrong_n.pt: weights do not fit .* 21 classes \(shape of"):
        load_model(wrong_n)
    good = _save(model, tmp_path / "good.pt")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:5000])
    with pytest.raises(SegxError, match="truncated.pt"):
        load_model(truncated)
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(SegxError, match="notes.pt"):
        load_model(text)
    with pytest.raises(SegxError, match="missing.pt: segx checkpoint not found"):
        load_model(tmp_path / "missing.pt")
    unknown = _save(model, tmp_path / "unknown.pt", arch="resnet9000")
    with pytest.raises(SegxError, match="unknown.pt: bad checkpoint metadata"):
        load_model(unknown)


def test_load_weights_from_checkpoint_or_state_dict(tmp_path: Path) -> None:
    torch.manual_seed(1)
    src = build_model("lraspp_mobilenet_v3_large")
    ckpt = _save(src, tmp_path / "src.pt")
    torch.save(src.state_dict(), tmp_path / "sd.pth")
    for path in (ckpt, tmp_path / "sd.pth"):
        dst = build_model("lraspp_mobilenet_v3_large", weights=path)
        assert all(torch.equal(a, b) for a, b in zip(dst.state_dict().values(), src.state_dict().values()))
    with pytest.raises(SegxError, match="is for arch 'lraspp_mobilenet_v3_large', not 'unet_resnet18'"):
        load_weights(build_model("unet_resnet18"), ckpt, arch="unet_resnet18", num_classes=21)
