"""Pretrained weights through a loopback HTTP server (127.0.0.1) standing in for download.pytorch.org: torchvision
and ImageNet weights load through torch.hub's cache with the file name's sha256 prefix checked, a wrong checksum is
refused, offline says where to put the file, and "torchvision:NAME" works as a model for load/export/eval."""
from __future__ import annotations

import functools
import hashlib
import socket
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from segx.cli import cli
from segx.data.constants import CLASSES
from segx.errors import SegxError
from segx.models import build_model, get_arch, list_archs, pretrained
from segx.models.hub import WEIGHTS_URL_ENV, cache_path, file_name, hash_prefix

ARCH = "lraspp_mobilenet_v3_large"
PUBLISHED = "https://download.pytorch.org/models/"


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A loopback HTTP server over a folder (yielded); SEGX_WEIGHTS_URL points at it, TORCH_HOME is private."""
    folder = tmp_path / "served"
    folder.mkdir()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv(WEIGHTS_URL_ENV, f"http://127.0.0.1:{httpd.server_address[1]}/")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    yield folder
    httpd.shutdown()
    httpd.server_close()


def publish(folder: Path, stem: str, state: dict[str, torch.Tensor], prefix: str | None = None) -> str:
    """torch.save `state` as STEM-<sha256 prefix>.pth in the served folder; returns its "published" URL."""
    tmp = folder / "tmp.pth"
    torch.save(state, tmp)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    name = f"{stem}-{prefix or digest[:8]}.pth"
    tmp.rename(folder / name)
    return PUBLISHED + name


def _net_state(seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return build_model(ARCH).net.state_dict()  # what torchvision publishes: the bare torchvision model


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_torchvision_weights_load_and_are_cached(server: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = _net_state(1)
    url = publish(server, ARCH, state)
    monkeypatch.setitem(pretrained.TORCHVISION, ARCH, url)
    assert _same(build_model(ARCH, weights="torchvision").net.state_dict(), state)
    cached = cache_path(url)
    assert cached.is_file() and cached.parent == Path(torch.hub.get_dir()) / "checkpoints"
    (server / file_name(url)).unlink()  # the second load needs no network
    assert _same(build_model(ARCH, weights="torchvision").net.state_dict(), state)


def test_wrong_checksum_is_refused(server: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = publish(server, ARCH, _net_state(1), prefix="0badc0de")
    monkeypatch.setitem(pretrained.TORCHVISION, ARCH, url)
    with pytest.raises(SegxError, match="checksum mismatch") as err:
        build_model(ARCH, weights="torchvision")
    assert "\n" not in str(err.value) and "0badc0de" in str(err.value)
    assert not cache_path(url).exists() and not list(cache_path(url).parent.glob("*.partial"))
    cache_path(url).write_bytes((server / file_name(url)).read_bytes())  # a bad file put by hand is refused too
    with pytest.raises(SegxError, match="checksum mismatch .*delete it"):
        build_model(ARCH, weights="torchvision")


def test_offline_names_the_cache_path_and_that_path_works(server: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = _net_state(2)
    url = publish(server, ARCH, state)
    monkeypatch.setitem(pretrained.TORCHVISION, ARCH, url)
    with socket.socket() as s:  # a port nothing listens on: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(WEIGHTS_URL_ENV, f"http://127.0.0.1:{port}/")
    with pytest.raises(SegxError, match="could not download") as err:
        build_model(ARCH, weights="torchvision")
    message = str(err.value)
    dest = cache_path(url)
    assert "\n" not in message and message.endswith(f"put it at {dest}")
    assert not list(dest.parent.glob("*"))  # nothing half-downloaded left behind
    dest.write_bytes((server / file_name(url)).read_bytes())
    assert _same(build_model(ARCH, weights="torchvision").net.state_dict(), state)


def test_imagenet_backbone_weights(server: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from torchvision.models import mobilenet_v3_large

    torch.manual_seed(3)
    classifier = mobilenet_v3_large().state_dict()  # keys features.* and classifier.*, as torchvision publishes
    url = publish(server, "mobilenet_v3_large", classifier)
    monkeypatch.setitem(pretrained.IMAGENET_TORCHVISION, ARCH, (url, "net.backbone", "features."))
    torch.manual_seed(0)
    fresh = build_model(ARCH).state_dict()
    torch.manual_seed(0)
    model = build_model(ARCH, weights="imagenet")
    for k, v in model.net.backbone.state_dict().items():
        if not k.endswith("num_batches_tracked"):
            assert torch.equal(v, classifier[f"features.{k}"]), k
    head = {k: v for k, v in model.state_dict().items() if k.startswith("net.classifier")}
    assert head and all(torch.equal(v, fresh[k]) for k, v in head.items())  # the head keeps its random init


def test_url_and_source_errors(server: Path) -> None:
    torch.manual_seed(4)
    model = build_model(ARCH)
    url = publish(server, "my_run", model.state_dict())  # a segx state_dict at a URL
    assert _same(build_model(ARCH, weights=url).state_dict(), model.state_dict())
    with pytest.raises(SegxError, match="arch 'unet_resnet18' has no 'torchvision' weights .*it has: imagenet"):
        build_model("unet_resnet18", weights="torchvision")
    with pytest.raises(SegxError, match="predict VOC's 21 classes, not 5"):
        build_model(ARCH, num_classes=5, weights="torchvision")


def test_spec_sources_match_the_tables() -> None:
    """Every arch's advertised sources are the ones segx can load, and the real URLs carry a checksum."""
    for arch in list_archs():
        assert get_arch(arch).pretrained == pretrained.sources(arch), arch
    for url in [*pretrained.TORCHVISION.values(), *(u for u, _, _ in pretrained.IMAGENET_TORCHVISION.values())]:
        assert url.startswith(PUBLISHED) and hash_prefix(file_name(url))
    from torchvision.models import get_model_weights

    for arch in pretrained.TORCHVISION:  # torchvision's 21 categories are VOC's, in VOC's order
        categories = get_model_weights(arch).COCO_WITH_VOC_LABELS_V1.meta["categories"]
        assert categories[1:] == list(CLASSES[1:]) and categories[0] == "__background__"


def test_torchvision_spec_for_load_export_eval_and_train(server: Path, monkeypatch: pytest.MonkeyPatch,
                                                         synth_voc: Path, tmp_path: Path) -> None:
    from segx.checkpoint import load_model

    state = _net_state(5)
    monkeypatch.setitem(pretrained.TORCHVISION, ARCH, publish(server, ARCH, state))
    model, meta = load_model(f"torchvision:{ARCH}")
    assert not model.training and meta.arch == ARCH and meta.imgsz == 520 and _same(model.net.state_dict(), state)
    with pytest.raises(SegxError, match="unknown pretrained model 'torchvision:unet_resnet18'"):
        load_model("torchvision:unet_resnet18")
    runner = CliRunner()
    res = runner.invoke(cli, ["export", "--model", f"torchvision:{ARCH}", "--fmt", "onnx", "--imgsz", "64",
                              "--out", str(tmp_path), "--n-verify", "2"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / f"{ARCH}.onnx").is_file()
    res = runner.invoke(cli, ["eval", "--data", str(synth_voc), "--model", f"torchvision:{ARCH}",
                              "--json", str(tmp_path / "eval.json")])
    assert res.exit_code == 0, res.output
    image = next((synth_voc / "JPEGImages").glob("*.jpg"))
    res = runner.invoke(cli, ["predict", str(image), "--model", f"torchvision:{ARCH}", "--out", str(tmp_path / "pred")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "pred" / f"{image.stem}.jpg").is_file()
    res = runner.invoke(cli, ["train", "--data", str(synth_voc), "--arch", ARCH, "--weights", "torchvision",
                              "--epochs", "1", "--batch", "4", "--crop", "64", "--workers", "0", "--device", "cpu",
                              "--out", str(tmp_path / "run")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "run" / "best.pt").is_file()


_SMP_SCRIPT = """
import sys, torch
from pathlib import Path
from safetensors.torch import save_file
from segx.errors import SegxError
from segx.models import build_model
try:
    build_model("segformer_mit_b0", weights="imagenet")
    sys.exit("loaded without a file")
except SegxError as e:
    message = str(e)
assert "\\n" not in message and "put it at " in message, message
path = Path(message.rsplit("put it at ", 1)[1])
torch.manual_seed(7)
encoder = build_model("segformer_mit_b0").net.encoder.state_dict()
path.parent.mkdir(parents=True)
save_file({k: v.contiguous() for k, v in encoder.items()}, str(path))
model = build_model("segformer_mit_b0", weights="imagenet")
assert all(torch.equal(v, encoder[k]) for k, v in model.net.encoder.state_dict().items())
print("ok", path)
"""


def test_smp_encoder_weights_offline_path_is_the_one_that_works(tmp_path: Path) -> None:
    """smp archs: offline, the one-line error names the Hugging Face cache path; a file put there loads (subprocess:
    huggingface_hub reads HF_HOME / HF_HUB_OFFLINE when imported)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", _SMP_SCRIPT], env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0 and proc.stdout.startswith("ok"), proc.stdout + proc.stderr
    assert str(tmp_path / "hf") in proc.stdout


def test_imagenet_tables_fit_every_backbone() -> None:
    """Each ImageNet classifier covers every weight of the submodule it initialises (checked on the meta device)."""
    from segmentation_models_pytorch.encoders import encoders
    from torchvision.models import mobilenet_v3_large, resnet50

    for arch, (url, module, prefix) in pretrained.IMAGENET_TORCHVISION.items():
        with torch.device("meta"):
            target = build_model(arch).get_submodule(module).state_dict()
            source = (resnet50 if "resnet50" in url else mobilenet_v3_large)().state_dict()
        for key, value in target.items():
            if not key.endswith("num_batches_tracked"):
                assert source[prefix + key].shape == value.shape, (arch, key)
    for arch, encoder in pretrained.IMAGENET_SMP.items():
        assert "imagenet" in encoders[encoder]["pretrained_settings"], arch
        assert hasattr(build_model(arch, num_classes=2).net, "encoder")
