"""The FORMATS table, option validation, output naming, bad input (one-line errors, exit 1) and the rule that a
model file which fails its parity check is never left behind. Uses TorchScript (the fastest exporter)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch import nn

import exporters
from segx.parity import GATES, Gate
from segx.runtimes import RUNTIMES, get_runtime
from exporters import FORMATS, export, get_format, run_export
from segx.cli import cli
from segx.errors import SegxError
from segx.meta import ModelMeta

TINY = {"imgsz": 64, "n_verify": 2}


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-init lraspp_mobilenet_v3_large checkpoint in its own run folder."""
    from segx.checkpoint import make_checkpoint
    from segx.io import save_checkpoint
    from segx.models import build_model

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("run") / "best.pt"
    meta = ModelMeta(arch="lraspp_mobilenet_v3_large", imgsz=64)
    return save_checkpoint(make_checkpoint(build_model(meta.arch).eval(), meta), path)


def test_table_rows_match_runtimes() -> None:
    assert set(FORMATS) == {"onnx", "trt", "openvino", "torchscript", "executorch", "litert", "ncnn", "triton",
                            "triton-openvino", "triton-trt"}
    for row in FORMATS.values():
        runtime = get_runtime(row.runtime)
        base = FORMATS[row.base] if row.base else row  # a Triton repository holds its base format's file
        assert Path("m" + base.suffix).suffix in runtime.suffixes and row.runtime == base.runtime, row.key
        assert callable(row.function)
    assert set(RUNTIMES) >= {"torch", "compile", "torchscript", "onnxruntime", "openvino", "tensorrt"}


@pytest.mark.parametrize(("name", "key"), [("onnx", "onnx"), ("engine", "trt"), ("TensorRT", "trt"),
                                           ("trt", "trt"), ("openvino", "openvino"), ("torchscript", "torchscript")])
def test_aliases(name: str, key: str) -> None:
    assert get_format(name).key == key


def test_unknown_format_suggests_the_closest(ckpt: Path) -> None:
    with pytest.raises(SegxError, match="did you mean 'onnx'"):
        export(ckpt, "onxx", **TINY)
    res = CliRunner().invoke(cli, ["export", "--model", str(ckpt), "--fmt", "openvno"])
    assert res.exit_code == 1 and "did you mean 'openvino'" in res.output
    assert res.output.count("segx: error:") == 1 and "Traceback" not in res.output


@pytest.mark.parametrize(("fmt", "option"), [("torchscript", "fp16"), ("torchscript", "int8"), ("openvino", "workspace"),
                                             ("onnx", "workspace"), ("torchscript", "simplify")])
def test_option_the_format_does_not_take(ckpt: Path, fmt: str, option: str) -> None:
    value = {"fp16": True, "int8": True, "workspace": 1.0, "simplify": False}[option]
    flag = {"simplify": "--no-simplify"}.get(option, f"--{option}")  # the CLI flag, not the Python name
    with pytest.raises(SegxError, match=f"format '{fmt}' does not take {flag}; it takes: --imgsz, --data, .*--n-verify"):
        export(ckpt, fmt, data="unused", **{option: value})


def test_cli_rejects_fp16_for_torchscript(ckpt: Path) -> None:
    res = CliRunner().invoke(cli, ["export", "--model", str(ckpt), "--fmt", "torchscript", "--fp16"])
    assert res.exit_code == 1 and "does not take --fp16;" in res.output


@pytest.mark.parametrize(("options", "match"), [
    ({"imgsz": 8}, "^--imgsz must be an integer ≥ 32"), ({"n_verify": 0}, "^--n-verify must be"),
    ({"fp16": True, "int8": True}, "^choose one of --fp16 / --int8"),
    ({"int8": True}, "^--int8 needs real images to calibrate on: give --data VOC_ROOT$"),
    ({"colour": 1}, "unknown export option 'colour'"), ({"workspace": 0}, "^--workspace must be > 0"),
])
def test_bad_option_values(ckpt: Path, options: dict, match: str) -> None:
    with pytest.raises(SegxError, match=match):
        export(ckpt, "trt" if "workspace" in options or "fp16" in options else "onnx", **options)


def test_trt_without_tensorrt_is_one_line(ckpt: Path) -> None:
    try:
        import tensorrt  # noqa: F401

        if torch.cuda.is_available():
            pytest.skip("TensorRT and CUDA are present here")
    except ImportError:
        pass
    res = CliRunner().invoke(cli, ["export", "--model", str(ckpt), "--fmt", "trt"])
    assert res.exit_code == 1
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert lines == [l for l in lines if l.startswith("segx: error: ")] and len(lines) == 1
    assert "TensorRT export needs an NVIDIA GPU with CUDA and the tensorrt package: pip install 'segx[gpu]'" in lines[0]


def test_missing_and_corrupt_checkpoint(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    for path, match in ((tmp_path / "nope.pt", "checkpoint not found"), (bad, "not a loadable segx checkpoint")):
        res = CliRunner().invoke(cli, ["export", "--model", str(path), "--fmt", "onnx"])
        assert res.exit_code == 1 and match in res.output and "Traceback" not in res.output


def test_unwritable_output_folder(ckpt: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(SegxError, match="cannot create the output folder"):
        export(ckpt, "torchscript", out=blocker / "sub", **TINY)


def test_trace_failure_is_one_line_with_the_cause(tmp_path: Path) -> None:
    class Untraceable(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if float(x.numpy().sum()) > 1e9:  # numpy() cannot be traced
                return x
            return x.repeat(1, 7, 1, 1)

    with pytest.raises(SegxError, match=r"^onnx export of toy \(fp32\) failed: .*--debug") as e:
        export((Untraceable(), ModelMeta(arch="toy")), "onnx", out=tmp_path, **TINY)
    assert "\n" not in str(e.value) and e.value.__cause__ is not None
    assert list(tmp_path.iterdir()) == []


def test_torchscript_cli_writes_next_to_checkpoint_and_passes(ckpt: Path, synth_voc: Path) -> None:
    res = CliRunner().invoke(cli, ["export", "--model", str(ckpt), "--fmt", "torchscript", "--imgsz", "64",
                                   "--data", str(synth_voc), "--n-verify", "2"])
    assert res.exit_code == 0, res.output
    assert (ckpt.parent / "best.torchscript").is_file()
    assert "PASS" in res.output and "best.torchscript" in res.output


def test_failed_parity_keeps_no_file(ckpt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(GATES, "fp32", Gate("fp32", min_agreement=1.01))  # impossible: every export fails
    result = run_export(ckpt, "torchscript", out=tmp_path, **TINY)
    assert not result.passed and result.path is None and "no model file was kept" in result.summary()
    assert list(tmp_path.iterdir()) == []  # neither the model nor a temp file
    res = CliRunner().invoke(cli, ["export", "--model", str(ckpt), "--fmt", "torchscript", "--imgsz", "64",
                                   "--n-verify", "2", "--out", str(tmp_path)])
    assert res.exit_code == 1 and "FAIL" in res.output and "segx: error:" in res.output
    assert list(tmp_path.iterdir()) == []
    kept = export(ckpt, "torchscript", out=tmp_path, verify=False, **TINY)  # --no-verify writes it anyway
    assert kept == tmp_path / "best.torchscript" and kept.is_file()


def test_in_memory_model_needs_out(tmp_path: Path) -> None:
    from segx.models import build_model

    pair = (build_model("lraspp_mobilenet_v3_large"), ModelMeta(arch="lraspp_mobilenet_v3_large"))
    with pytest.raises(SegxError, match="out=DIR"):
        export(pair, "torchscript", **TINY)
    path = export(pair, "torchscript", out=tmp_path, **TINY)
    assert path == tmp_path / "lraspp_mobilenet_v3_large.torchscript"


def test_output_names_carry_the_precision(ckpt: Path) -> None:
    from exporters.job import load_source, output_path

    src = load_source(ckpt)
    assert output_path(src, None, "int8", ".onnx") == ckpt.parent / "best_int8.onnx"
    assert output_path(src, "x", "fp16", ".xml") == Path("x") / "best_fp16.xml"
    assert output_path(src, None, "fp32", ".engine") == ckpt.parent / "best.engine"
    assert exporters.ExportOptions(int8=True).precision == "int8"


def test_arch_that_does_not_export_to_a_format_is_refused() -> None:
    from exporters.job import Source
    from exporters.pipeline import check_arch_exports
    from segx.models import get_arch, list_archs

    refused = [(a, f) for a in list_archs() for f in FORMATS
               if not FORMATS[f].base and f not in get_arch(a).export_formats]  # a Triton row: its base format
    if not refused:
        pytest.skip("every registered arch exports to every format")
    arch, fmt = refused[0]
    with pytest.raises(SegxError, match=f"arch '{arch}' does not export to '{fmt}'"):
        check_arch_exports(Source(nn.Identity(), ModelMeta(arch=arch)), fmt)
    check_arch_exports(Source(nn.Identity(), ModelMeta(arch="lraspp_mobilenet_v3_large")), fmt)  # lists it
