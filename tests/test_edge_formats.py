"""Edge formats (ExecuTorch, LiteRT, NCNN): a trained multi-class model exported to each, run by the format's own
runtime, passes the parity gate; INT8 paths and their fall-back; refusals with one-line reasons. Exports skip with
the install line where `segx[edge]` is not installed."""
from __future__ import annotations

import builtins
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from exporters import FORMATS, run_export
from segx.cli import cli
from segx.errors import SegxError
from segx.meta import ModelMeta
from segx.runtimes import RuntimeUnavailable, get_runtime, load_runtime

TINY = {"imgsz": 64, "n_verify": 4}
EDGE = ("executorch", "litert", "ncnn")
SUFFIX = {"executorch": (".pte", ".pte.json"), "litert": (".tflite", ".tflite.json"),
          "ncnn": (".ncnn.param", ".ncnn.bin", ".ncnn.param.json")}


def need(fmt: str) -> None:
    """Skip (with the install line) when the format's packages are missing."""
    try:
        FORMATS[fmt].check()  # type: ignore[misc]
        get_runtime(FORMATS[fmt].runtime).check_available()
    except RuntimeUnavailable as e:
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def multiclass(request: pytest.FixtureRequest, synth_voc: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model whose predictions hold several classes: conftest's `multiclass_checkpoint` where it exists, else the
    same recipe trained here (lraspp, 25 epochs AdamW at 64²). conftest's 2-epoch `trained_checkpoint` predicts
    background only on the val images, and an all-background model passes any parity check."""
    try:
        return Path(request.getfixturevalue("multiclass_checkpoint"))
    except pytest.FixtureLookupError:
        from segx.train import TrainConfig, train

        out = tmp_path_factory.mktemp("run") / "lraspp_multiclass"
        return train(TrainConfig(data=synth_voc, arch="lraspp_mobilenet_v3_large", epochs=25, batch=4, crop=64,
                                 lr=0.005, optimizer="adamw", out=out, workers=0, device="cpu")) / "best.pt"


@pytest.fixture()
def run_dir(multiclass: Path, tmp_path: Path) -> Path:
    shutil.copy(multiclass, tmp_path / "best.pt")
    return tmp_path


@pytest.fixture(scope="session")
def reference(multiclass: Path, synth_voc: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images, PyTorch logits) of the val images; the model predicts several classes on them (a real gate)."""
    from segx.data.transforms import eval_transforms
    from segx.data.voc import VOCSegmentation

    ds = VOCSegmentation(synth_voc, "val", transforms=eval_transforms(size=64))
    images = np.stack([ds[i][0].numpy() for i in range(len(ds))])
    with load_runtime(multiclass) as rt:
        logits = np.concatenate([rt.infer(images[i:i + 1]) for i in range(len(images))])
    assert len(np.unique(logits.argmax(1))) >= 3, "the fixture model predicts fewer than 3 classes on val"
    return images, logits


@pytest.mark.slow
@pytest.mark.parametrize("fmt", EDGE)
def test_fp32_export_runs_in_its_runtime_and_passes_parity(fmt: str, run_dir: Path, synth_voc: Path,
                                                           reference: tuple[np.ndarray, np.ndarray]) -> None:
    need(fmt)
    result = run_export(run_dir / "best.pt", fmt, data=synth_voc, **TINY)
    assert result.passed and result.precision == "fp32", result.summary()
    check = result.attempts[0].checks[0]
    assert check.passed and check.miou_ref is not None and check.miou_ref > 0
    assert {p.name for p in run_dir.iterdir()} == {"best.pt", *(f"best{s}" for s in SUFFIX[fmt])}
    with load_runtime(result.path) as rt:  # chosen by suffix: the format's own runtime
        assert rt.name == FORMATS[fmt].runtime and rt.meta.arch == "lraspp_mobilenet_v3_large"
        assert rt.meta.num_classes == 21 and rt.input_shape == (1, 3, 64, 64)
        images, logits = reference
        out = np.concatenate([rt.infer(images[i:i + 1]) for i in range(len(images))])
    assert out.shape == logits.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, logits, atol=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["executorch", "litert"])
def test_int8_export_is_quantised_and_passes_its_gate(fmt: str, run_dir: Path, synth_voc: Path) -> None:
    need(fmt)
    result = run_export(run_dir / "best.pt", fmt, int8=True, data=synth_voc, **TINY)
    assert result.passed and result.precision == "int8" and not result.fell_back, result.summary()
    check = result.attempts[0].checks[0]
    assert check.labels and check.miou_ref is not None and check.miou_ref > 0
    assert -check.miou_delta * 100 <= 1.0
    fp32_bytes = 4 * sum(v.numel() for v in torch.load(run_dir / "best.pt", weights_only=True)["model"].values())
    assert result.path.stat().st_size < 0.5 * fp32_bytes  # weights stored as int8
    with load_runtime(result.path) as rt:
        assert rt.precision == "int8" and rt.meta.precision == "int8"


@pytest.mark.slow
def test_litert_fp16_stores_half_weights(run_dir: Path, synth_voc: Path) -> None:
    need("litert")
    result = run_export(run_dir / "best.pt", "litert", fp16=True, data=synth_voc, **TINY)
    assert result.passed and result.precision == "fp16", result.summary()
    fp32_bytes = 4 * sum(v.numel() for v in torch.load(run_dir / "best.pt", weights_only=True)["model"].values())
    assert result.path.stat().st_size < 0.65 * fp32_bytes


@pytest.mark.slow
def test_ncnn_int8_falls_back_to_fp16_with_the_reason(run_dir: Path, synth_voc: Path) -> None:
    need("ncnn")
    result = run_export(run_dir / "best.pt", "ncnn", int8=True, data=synth_voc, **TINY)
    assert result.passed and result.fell_back and result.precision == "fp16", result.summary()
    assert "ncnn2table" in (result.attempts[0].error or "")
    assert "ncnn2table" in result.summary() and result.path == run_dir / "best_fp16.ncnn.param"
    with load_runtime(result.path) as rt:
        assert rt.precision == "fp16"


class _Tiny(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :1].repeat(1, 21, 1, 1)


def test_known_limitation_is_a_one_line_export_error(tmp_path: Path) -> None:
    meta = ModelMeta(arch="segformer_mit_b0")
    with pytest.raises(SegxError, match="segformer_mit_b0 does not export to ncnn: pnnx keeps .*torch.unbind"):
        run_export((_Tiny(), meta), "ncnn", out=tmp_path, verify=False, imgsz=64)
    assert not list(tmp_path.iterdir())


def test_models_table_lists_the_reason() -> None:
    res = CliRunner().invoke(cli, ["models", "--json", "--imgsz", "64"])
    assert res.exit_code == 0, res.output
    rows = {r["name"]: r for r in json.loads(res.output)}
    assert "ncnn" not in rows["segformer_mit_b0"]["export_formats"]
    assert "torch.unbind" in rows["segformer_mit_b0"]["export_notes"]["ncnn"]
    assert {"executorch", "litert", "ncnn"} <= set(rows["lraspp_mobilenet_v3_large"]["export_formats"])


@pytest.mark.parametrize(("runtime", "module"), [("executorch", "executorch"), ("litert", "ai_edge_litert"),
                                                  ("ncnn", "ncnn")])
def test_missing_package_names_the_install_line(runtime: str, module: str, monkeypatch: pytest.MonkeyPatch) -> None:
    real = builtins.__import__

    def fake(name: str, *a: object, **kw: object) -> object:
        if name == module or name.startswith(module + "."):
            raise ImportError(f"No module named '{name}'")
        return real(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", fake)
    for key in [k for k in __import__("sys").modules if k == module or k.startswith(module + ".")]:
        monkeypatch.delitem(__import__("sys").modules, key)
    with pytest.raises(RuntimeUnavailable, match=r"pip install 'segx\[edge\]'"):
        get_runtime(runtime).check_available()
    from bench.matrix import installed_edge_runtimes, skip_reason

    assert "pip install 'segx[edge]'" in (skip_reason(runtime, "fp32", "cpu") or "")
    assert runtime not in installed_edge_runtimes()  # `make demo` leaves it out of its bench matrix


@pytest.mark.parametrize("fmt", EDGE)
def test_missing_sidecar_is_a_clear_error(fmt: str, tmp_path: Path) -> None:
    need(fmt)
    model = tmp_path / f"m{SUFFIX[fmt][0]}"
    model.write_bytes(b"\0" * 16)
    if fmt == "ncnn":
        (tmp_path / "m.ncnn.bin").write_bytes(b"\0" * 16)
    with pytest.raises(SegxError, match=rf"sidecar .*json is missing.*segx export --fmt {fmt}"):
        load_runtime(model)


def test_bench_skips_edge_rows_it_cannot_make() -> None:
    from bench.matrix import ModelSource, plan_rows

    src = ModelSource("segformer_mit_b0", Path("x.pt"), "segformer", trained=False)
    rows = plan_rows([src], ("ncnn", "executorch"), ("fp32",), (1, 8), device="cpu", imgsz=64)
    why = {(r.runtime, r.batch): r.skip or "" for r in rows}
    assert "torch.unbind" in why["ncnn", 1] and "batch 1" in why["executorch", 8]
    assert why["executorch", 1] == "" or "segx[edge]" in why["executorch", 1]
    lraspp = ModelSource("lraspp_mobilenet_v3_large", Path("x.pt"), "lraspp", trained=False)
    (row,) = plan_rows([lraspp], ("ncnn",), ("int8",), (1,), device="cpu", imgsz=64)
    assert "ncnn2table" in (row.skip or "")


def test_litert_passes_an_unquantised_mask_through() -> None:
    """A mask head's uint8 class map has no quantisation (scale 0): it must come out as the classes, not as zeros;
    a quantised int8 output is dequantised."""
    from segx.runtimes.litert_rt import dequantize

    mask = np.array([[0, 3, 20]], np.uint8)
    assert dequantize(mask, {"dtype": np.uint8, "quantization": (0.0, 0)}).tolist() == [[0, 3, 20]]
    q = np.array([[-128, 0, 127]], np.int8)
    np.testing.assert_allclose(dequantize(q, {"dtype": np.int8, "quantization": (0.5, -128)}), [[0.0, 64.0, 127.5]])
