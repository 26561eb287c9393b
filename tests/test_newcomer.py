"""What a new user hit copying the docs' commands (issue 13's list), each pinned: did-you-mean for short arch names,
`eval --json DIR` refused before evaluating, flag names in export errors, one-line usage errors, required options in
`train --help`, plain unwrapped logs printed once off a terminal, no progress frames, the dynamic export's own name,
--split without --data, predict --imgsz on a fixed-size model, `predict --help` runtimes, `segx models` = docs."""
from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from segx.cli import cli
from segx.errors import unknown_choice
from segx.models import list_archs

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("name", "hint"), [
    ("lraspp", "(did you mean 'lraspp_mobilenet_v3_large'?)"),
    ("unet", "(did you mean one of 'unet_mobilenet_v2', 'unet_resnet18'?)"),
    ("deeplabv3plus", "(did you mean 'deeplabv3plus_resnet50'?)"),
    ("mobilenet", "(did you mean one of 'deeplabv3_mobilenet_v3_large', 'lraspp_mobilenet_v3_large', "
                  "'unet_mobilenet_v2'?)"),
    ("lrasp_mobilenet", "(did you mean 'lraspp_mobilenet_v3_large'?)"),  # no prefix: closest spelling
])
def test_did_you_mean_short_arch_names(name: str, hint: str) -> None:
    assert f"unknown arch '{name}' {hint}; choose from: " in str(unknown_choice("arch", name, list_archs()))


def test_cli_did_you_mean_for_train_arch(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["train", "--data", str(tmp_path), "--arch", "unet", "--out", str(tmp_path / "r")])
    assert res.exit_code == 1 and res.stderr.splitlines() == [
        line for line in res.stderr.splitlines() if line.startswith("segx: error: unknown arch 'unet' (did you mean")]


def test_eval_json_folder_is_refused_before_evaluating(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import segx.evaluate

    monkeypatch.setattr(segx.evaluate, "evaluate", lambda *a, **k: pytest.fail("evaluated before checking --json"))
    folder = tmp_path / "results"
    folder.mkdir()
    res = CliRunner().invoke(cli, ["eval", "--data", str(tmp_path), "--model", "x.onnx", "--json", str(folder)])
    assert res.exit_code == 1
    assert res.stderr.splitlines() == [f"segx: error: --json {folder}: is a folder; give a file name, e.g. "
                                       f"{folder / 'out.json'}"]
    assert list(folder.iterdir()) == [] and list(tmp_path.iterdir()) == [folder]


def test_atomic_write_onto_a_folder_makes_no_temp_file(tmp_path: Path) -> None:
    from segx.errors import SegxError
    from segx.io import atomic_write_json

    (tmp_path / "d").mkdir()
    with pytest.raises(SegxError, match="is a folder, not a file"):
        atomic_write_json(tmp_path / "d", {})
    assert [p.name for p in tmp_path.iterdir()] == ["d"]


@pytest.mark.parametrize("args", [["export", "--model", "m.pt", "--fmt", "onnx", "--opset", "17"],
                                  ["export", "--model", "m.pt", "--fmt", "onnx", "--imgsz", "abc"],
                                  ["train", "--arch", "lraspp_mobilenet_v3_large"],
                                  ["predict", "x.jpg", "--model", "m.onnx", "--bogus"]])
def test_usage_errors_are_one_line(args: list[str]) -> None:
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 2
    (line,) = res.stderr.splitlines()
    assert re.match(rf"segx: error: .+ \(see segx {args[0]} --help\)$", line), line


def test_train_help_marks_required_options() -> None:
    text = " ".join(CliRunner().invoke(cli, ["train", "--help"]).output.split())
    for flag in ("--data", "--arch"):
        assert re.search(rf"{flag} \S+ [^[]*\[required unless --resume\]", text), flag


def test_export_errors_name_flags(tmp_path: Path) -> None:
    from exporters.job import flag

    assert [flag(o) for o in ("n_verify", "verify", "data", "simplify", "imgsz")] == \
        ["--n-verify", "--no-verify", "--data", "--no-simplify", "--imgsz"]
    res = CliRunner().invoke(cli, ["export", "--model", "m.pt", "--fmt", "onnx", "--split", "train"])
    assert res.exit_code == 1 and res.stderr.splitlines() == [
        "segx: error: --split train needs --data (the VOC tree the split belongs to)"]


def test_logs_off_a_terminal_are_plain_unwrapped_and_printed_once(capsys: pytest.CaptureFixture[str]) -> None:
    from segx.log import setup_logging

    root_handlers = logging.getLogger().handlers[:]
    try:
        setup_logging()
        logging.basicConfig(level=logging.INFO, force=True)  # what ONNX Runtime's quantiser does to the root logger
        long = "x" * 150
        logging.getLogger("exporters.quantize").warning("calibration %s done", long)
        logging.getLogger("segx.train").info("second")
        err = capsys.readouterr().err
        assert err.splitlines() == [f"WARNING  calibration {long} done", "INFO     second"]
    finally:
        logging.getLogger().handlers = root_handlers
        for name in ("segx", "bench", "exporters"):
            logging.getLogger(name).propagate = True


def test_progress_bars_are_off_a_terminal() -> None:
    from segx.log import console, progress

    assert not console.is_terminal and progress().disable  # pytest's stderr is not a terminal


def test_dynamic_export_gets_its_own_name(tmp_path: Path) -> None:
    from exporters.job import Source, output_path
    from segx.meta import ModelMeta

    src = Source(module=None, meta=ModelMeta(arch="a"), path=tmp_path / "best.pt")  # type: ignore[arg-type]
    assert output_path(src, None, "fp32", ".onnx").name == "best.onnx"
    assert output_path(src, None, "fp32", ".onnx", dynamic=True).name == "best_dynamic.onnx"
    assert output_path(src, None, "int8", ".onnx", dynamic=True).name == "best_dynamic_int8.onnx"


def test_predict_imgsz_on_a_fixed_size_model_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import cv2
    import numpy as np
    import onnx
    from badmodels import tiny_onnx_model

    from segx.meta import ModelMeta
    from segx.predict import predict

    model, proto = tmp_path / "fixed.onnx", tiny_onnx_model(ModelMeta(arch="tiny_conv", imgsz=64, dynamic=False))
    for dim, size in zip(proto.graph.input[0].type.tensor_type.shape.dim, (1, 3, 64, 64), strict=True):
        dim.dim_value = size  # a fixed-shape export: 1×3×64×64
    onnx.save(proto, model)
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((40, 50, 3), np.uint8))
    with caplog.at_level(logging.WARNING, logger="segx"):
        with predict(tmp_path / "a.png", model, imgsz=128):
            pass
    assert "fixed.onnx takes 64x64 images only (a fixed-shape export): --imgsz 128 is ignored" in caplog.text
    caplog.clear()
    with predict(tmp_path / "a.png", model):
        pass
    assert "ignored" not in caplog.text


def test_predict_help_lists_every_runtime() -> None:
    from segx.runtimes import RUNTIMES, _import_all

    _import_all()
    text = " ".join(CliRunner().invoke(cli, ["predict", "--help"]).output.split())
    assert [name for name in RUNTIMES if name not in text] == []


def test_models_table_and_docs_show_the_same_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    import segx.models.profile
    from segx.commands.models import COLUMNS

    monkeypatch.setattr(segx.models.profile, "profile",  # the columns, not the (slow) FLOP counts, are the point
                        lambda arch, imgsz: segx.models.profile.Profile(arch, 10**6, 10**9, imgsz))
    res = CliRunner().invoke(cli, ["models", "--imgsz", "64"])
    header = next(line for line in res.output.splitlines() if "name" in line and "family" in line)
    assert [c.strip() for c in re.split(r"[┃│|]", header) if c.strip()] == \
        [*COLUMNS[:4], "GFLOPs @64²", *COLUMNS[5:]]
    doc = (ROOT / "docs" / "models.md").read_text()
    doc_header = next(line for line in doc.splitlines() if line.startswith("| name | family"))
    assert [c.strip() for c in doc_header.strip("|").split("|")] == [*COLUMNS[:4], "GFLOPs @512²", *COLUMNS[5:]]


def test_calibration_without_a_gate_does_not_claim_overlap(synth_voc: Path) -> None:
    """bench exports with --no-verify semantics: no gate runs, so the log must not talk about the gate's images."""
    from exporters.quantize import CalibrationImages

    line = CalibrationImages(synth_voc, "train", 32, n=4).describe()
    assert "no parity gate" in line and "OVERLAPPING" not in line and "disjoint" not in line, line
    gated = CalibrationImages(synth_voc, "val", 32, n=4, gate_split="val").describe()
    assert "OVERLAPPING the gate's images" in gated, gated
