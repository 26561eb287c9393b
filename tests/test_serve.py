"""`segx serve`: a real Triton server on free loopback ports, talked to with tritonclient (HTTP and gRPC): masks equal
`segx predict`'s, bad requests get errors while the server keeps serving, SIGTERM stops it; the Segmenter itself."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from segx.predict import predict
from bench.serve_load import free_ports, wait_ready
from segx.errors import SegxError
from segx.meta import ModelMeta
from segx.serve.env import libpython_dir, put_libpython_first
from segx.serve.handler import Segmenter, check_images
from test_heads import ARCH, multiclass_model

pytest.importorskip("pytriton")
tritonclient_http = pytest.importorskip("tritonclient.http")
ROOT = Path(__file__).resolve().parents[1]
SIZES = ((64, 64), (50, 70), (97, 41))  # H×W of the requests: square, wide, tall


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A multi-class logits checkpoint and its fixed-size (64²) mask+conf TorchScript export."""
    import exporters
    from segx.checkpoint import make_checkpoint
    from segx.io import save_checkpoint

    folder = tmp_path_factory.mktemp("serve")
    ckpt = save_checkpoint(make_checkpoint(multiclass_model(), ModelMeta(arch=ARCH, imgsz=64)), folder / "best.pt")
    ts = exporters.export(ckpt, "torchscript", imgsz=64, head="mask+conf", verify=False, out=folder)
    return {"pt": ckpt, "maskconf_ts": ts}


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """PNG files (lossless: the client sends exactly the pixels predict decodes) of smooth random pictures."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    paths = []
    for i, (h, w) in enumerate(SIZES):
        small = rng.integers(0, 256, (max(2, h // 8), max(2, w // 8), 3), dtype=np.uint8)
        rgb = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        paths.append(folder / f"img{i}.png")
        cv2.imwrite(str(paths[-1]), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return paths


def _rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def _predict_masks(model: Path, images: list[Path]) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    with predict(str(images[0].parent), str(model), overlay=False) as run:
        return {r.source: (r.mask, r.confidence) for r in run}


def test_check_images_refuses_bad_batches() -> None:
    check_images(np.zeros((1, 4, 5, 3), np.uint8))
    for bad, why in ((np.zeros((1, 4, 5, 3), np.float32), "UINT8"), (np.zeros((1, 4, 5), np.uint8), "H×W×3"),
                     (np.zeros((1, 0, 5, 3), np.uint8), "empty")):
        with pytest.raises(SegxError, match=why):
            check_images(bad)


def test_segmenter_equals_predict(models: dict[str, Path], images: list[Path]) -> None:
    from segx.runtimes import load_runtime

    for name, model in models.items():
        want = _predict_masks(model, images)
        with load_runtime(model) as rt:
            seg = Segmenter(rt)
            assert set(seg.outputs()) == ({"mask", "confidence"} if name == "maskconf_ts" else {"mask"})
            for path in images:
                out = seg(_rgb(path)[None])
                assert out["mask"].shape == (1, *_rgb(path).shape[:2]) and out["mask"].dtype == np.uint8
                np.testing.assert_array_equal(out["mask"][0], want[path.stem][0])
                if name == "maskconf_ts":
                    np.testing.assert_allclose(out["confidence"][0], want[path.stem][1], atol=1e-6)
        assert len(np.unique(np.concatenate([m.ravel() for m, _ in want.values()]))) >= 5


def test_libpython_goes_first(monkeypatch: pytest.MonkeyPatch) -> None:
    libdir = libpython_dir()
    if libdir is None:
        pytest.skip("this Python has no shared libpython")
    monkeypatch.setenv("LD_LIBRARY_PATH", f"/x:{libdir}")
    put_libpython_first()
    assert os.environ["LD_LIBRARY_PATH"] == f"{libdir}:/x"


def _start(model: Path, ports: list[int]) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "segx", "serve", str(model), "--http-port", str(ports[0]), "--grpc-port",
           str(ports[1]), "--metrics-port", str(ports[2]), "--host", "127.0.0.1", "--threads", "1"]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _infer(module: object, client: object, image: np.ndarray, datatype: str = "UINT8") -> dict[str, np.ndarray]:
    inp = module.InferInput("image", list(image.shape), datatype)
    inp.set_data_from_numpy(image)
    result = client.infer("segx", [inp])
    return {name: result.as_numpy(name) for name in ("mask", "confidence") if result.as_numpy(name) is not None}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["pt", "maskconf_ts"])
def test_serve_end_to_end(name: str, models: dict[str, Path], images: list[Path]) -> None:
    import tritonclient.grpc as grpc
    from tritonclient.utils import InferenceServerException

    ports = free_ports(3)
    proc = _start(models[name], ports)
    try:
        wait_ready(proc, ports[0], timeout=180)
        http = tritonclient_http.InferenceServerClient(f"127.0.0.1:{ports[0]}")
        rpc = grpc.InferenceServerClient(f"127.0.0.1:{ports[1]}")
        assert rpc.is_server_live() and rpc.is_model_ready("segx")
        want = _predict_masks(models[name], images)
        for i, path in enumerate(images):
            module, client = (grpc, rpc) if i % 2 else (tritonclient_http, http)
            out = _infer(module, client, _rgb(path)[None])
            assert out["mask"].dtype == np.uint8 and out["mask"].shape == (1, *SIZES[i])
            np.testing.assert_array_equal(out["mask"][0], want[path.stem][0])
            assert ("confidence" in out) == (name == "maskconf_ts")
            if "confidence" in out:
                np.testing.assert_allclose(out["confidence"][0], want[path.stem][1], atol=1e-6)
        bad = [(np.zeros((1, 8, 8, 3), np.float32), "FP32"), (np.zeros((1, 8, 8), np.uint8), "UINT8"),
               (np.zeros((1, 0, 8, 3), np.uint8), "UINT8")]
        for image, datatype in bad:
            with pytest.raises(InferenceServerException):
                _infer(tritonclient_http, http, image, datatype)
            assert http.is_server_ready()
        np.testing.assert_array_equal(_infer(grpc, rpc, _rgb(images[0])[None])["mask"][0], want[images[0].stem][0])
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{ports[2]}/metrics", timeout=10).read().decode()
        assert 'nv_inference_request_success{model="segx"' in metrics
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=90) == 0, proc.stderr.read()[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_serve_load_test_is_bounded(models: dict[str, Path], tmp_path: Path) -> None:
    from bench.serve_load import LoadConfig, run_serve_bench

    result = run_serve_bench(models["pt"], LoadConfig(clients=2, seconds=60, requests=12, imgsz=64), tmp_path)
    served = result["served"]
    assert served["requests"] == 12 and served["errors"] == 0 and served["ok"] == 12
    assert served["rps"] > 0 and served["p50_ms"] <= served["p99_ms"]
    assert result["in_process"]["rps"] > 0 and result["server_exit"] == 0
    assert (tmp_path / "serve_bench.json").is_file()
