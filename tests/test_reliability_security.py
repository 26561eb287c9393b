"""Untrusted files: a checkpoint whose pickle would run code is refused by every command that loads checkpoints and
nothing in it runs; archives with `../`, absolute, linked-out or device members are refused by `segx data download`
and nothing lands outside its root; and the source itself keeps the rules (torch.load only with weights_only=True,
tarfile only with the "data" filter, no eval/exec/pickle on anything read, every write through segx.io's atomic
paths). A few cases also run as real `segx` processes, for the real exit status and stderr."""
from __future__ import annotations

import hashlib
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from badinputs import jpeg_bytes, tar_bytes, tar_cases
from badmodels import CodeRunner, checkpoint_cases, real_checkpoint, save_onnx, tiny_onnx_model
from refusal import CHECKPOINT_CONSUMERS, Sandbox, consumers, make_sandbox, wide_console  # noqa: F401

import segx.data.download as download
from segx.data.synth import make_synthetic_voc

REPO = Path(__file__).resolve().parents[1]
PRODUCT = [p for pkg in ("segx", "exporters", "bench") for p in sorted((REPO / pkg).rglob("*.py"))]
PICKLES = ("pickle_raw", "pickle_torch_zip", "pickle_in_checkpoint")


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("shared")
    image = root / "good.jpg"
    image.write_bytes(jpeg_bytes())
    return {"root": root, "voc": make_synthetic_voc(root / "synth", n=4, size=32, seed=0), "image": image,
            "ckpt": real_checkpoint(root / "real.pt")}


@pytest.fixture
def box(tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        shared: dict[str, Path]) -> Sandbox:
    return make_sandbox(tmp_path, capfd, monkeypatch, watch=[shared["root"]])


# -- checkpoints that would run code --------------------------------------------------------------------------------
@pytest.mark.parametrize("case", PICKLES)
def test_payloads_are_live(case: str, tmp_path: Path, shared: dict[str, Path]) -> None:
    """The payloads do run code when unpickled without weights_only, so the refusals below prove something."""
    marker = tmp_path / "PWNED"
    write, _ = checkpoint_cases(shared["ckpt"], marker)[case]
    write(tmp_path / "evil.pt")
    with pytest.raises(Exception):  # noqa: B017, PT011 - whatever unpickling raises after the payload ran
        obj = pickle.loads((tmp_path / "evil.pt").read_bytes()) if case == "pickle_raw" else \
            torch.load(tmp_path / "evil.pt", weights_only=False)
        raise RuntimeError(f"loaded {type(obj).__name__}")
    assert marker.exists()


@pytest.mark.parametrize("consumer", CHECKPOINT_CONSUMERS)
@pytest.mark.parametrize("case", PICKLES)
def test_code_running_checkpoint_is_refused(case: str, consumer: str, box: Sandbox, shared: dict[str, Path]) -> None:
    marker = box.root / "PWNED"
    write, pattern = checkpoint_cases(shared["ckpt"], marker)[case]
    evil = box.inp / "run" / "last.pt"
    evil.parent.mkdir()
    write(evil)
    line = box.refused(consumers(evil, box, shared)[consumer], names=["last.pt"], pattern=pattern)
    assert not marker.exists(), "the pickle's code ran"
    assert "weights" in line or "Unsupported global" in line or "not a loadable" in line


def test_weights_only_refuses_the_global_by_name(tmp_path: Path) -> None:
    from segx.errors import SegxError
    from segx.io import load_checkpoint

    torch.save({"arch": "x", "model": CodeRunner(tmp_path / "PWNED")}, tmp_path / "evil.pt")
    with pytest.raises(SegxError, match=r"evil\.pt: not a loadable segx checkpoint .*open"):
        load_checkpoint(tmp_path / "evil.pt")
    assert not (tmp_path / "PWNED").exists()


# -- archives -------------------------------------------------------------------------------------------------------
def _serve(monkeypatch: pytest.MonkeyPatch, archive: Path) -> None:
    """`segx data download` fetches `archive` (file:// URL, its own MD5) instead of the real VOC tar."""
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    monkeypatch.setattr(download, "voc_archive", lambda: download.Archive(archive.as_uri(), "VOC.tar", md5))


def test_good_archive_extracts(box: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    from badinputs import LIST

    archive = box.inp / "good.tar"
    archive.write_bytes(tar_bytes([LIST, ("VOCdevkit/VOC2012/JPEGImages/a.jpg", jpeg_bytes())]))
    _serve(monkeypatch, archive)
    box.succeeds(["data", "download", "--root", box.out])
    assert (box.out / "VOCdevkit/VOC2012/JPEGImages/a.jpg").read_bytes() == jpeg_bytes()


@pytest.mark.parametrize("case", sorted(tar_cases()))
def test_unsafe_or_broken_archive_is_refused(case: str, box: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    make, pattern = tar_cases()[case]
    archive = box.inp / f"{case}.tar"
    archive.write_bytes(make())
    _serve(monkeypatch, archive)
    box.refused(["data", "download", "--root", box.out], names=["VOC.tar"], pattern=pattern,
                allow=[box.out, box.out / "VOC.tar"])  # the verified download is kept, nothing extracted
    assert sorted(p.name for p in box.out.iterdir()) == ["VOC.tar"]
    assert not Path("/tmp/segx_corpus_abs.txt").exists() and not (box.root / "evil.txt").exists()


def test_int8_preprocessing_writes_nothing_in_the_working_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 shared: dict[str, Path]) -> None:
    """ONNX Runtime's quant_pre_process dumps sym_shape_infer_temp.onnx (+ a .data file) into the current folder
    when its symbolic shape inference fails; segx runs it from its temp folder, so nothing lands where the user is."""
    import onnx
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    from exporters.qdq import prepare

    def incomplete(model: object, *args: object) -> None:  # ONNX Runtime's own behaviour on failure
        onnx.save_model(model, "sym_shape_infer_temp.onnx", save_as_external_data=True)
        raise RuntimeError("Incomplete symbolic shape inference")

    monkeypatch.setattr(SymbolicShapeInference, "infer_shapes", staticmethod(incomplete))
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    work = tmp_path / "work"
    work.mkdir()
    save_onnx(tiny_onnx_model())(work / "model.onnx")
    with pytest.raises(RuntimeError, match="Incomplete symbolic shape inference"):
        prepare(onnx.load(work / "model.onnx"), work, dynamic=False)
    assert list((tmp_path / "cwd").iterdir()) == []
    assert (work / "sym_shape_infer_temp.onnx").is_file()  # in the temp folder, deleted with it


# -- the rules, in the source ---------------------------------------------------------------------------------------
def _calls(pattern: str) -> list[tuple[str, int, str]]:
    rx = re.compile(pattern)
    return [(str(p.relative_to(REPO)), i, line.strip()) for p in PRODUCT
            for i, line in enumerate(p.read_text().splitlines(), 1) if rx.search(line)]


def test_torch_load_only_with_weights_only() -> None:
    loads = _calls(r"torch\.load\(")
    assert loads, "no torch.load found: the scan is broken"
    assert all("weights_only=True" in line for _, _, line in loads), loads


def test_archives_only_through_the_data_filter() -> None:
    archives = {str(p.relative_to(REPO)) for p in PRODUCT if re.search(r"^\s*import (tarfile|zipfile)", p.read_text(), re.M)}
    extracts = [c for c in _calls(r"\.extract(all)?\(") if c[0] in archives]  # not ncnn's Extractor.extract
    assert extracts and all('filter="data"' in line for _, _, line in extracts), extracts


def test_nothing_read_is_evaluated_or_unpickled() -> None:
    risky = r"(?<![.\w])(eval|exec)\(|pickle\.loads?\(|marshal\.|yaml\.load\(|allow_pickle=True|shell=True|os\.system\("
    assert _calls(risky) == []


# writes that bypass segx.io name the temp target they write (tmp, *.part, the staging tree) or are listed here
WRITE = r"open\([^)]*['\"][wax]b?\+?['\"]|imwrite\(|torch\.save\(|onnx\.save\(|save_model\(|savefig\(|np\.save|" \
        r"(?<!atomic_)write_(bytes|text)\(|VideoWriter\(|jit\.save\(|\.save\(|copyfile\(|json\.dump\("
TEMP_TARGET = re.compile(r"\btmp\b|tmp_path|\bpart\b|float_file|onnx_file|staging")
BY_DESIGN = {
    "segx/data/synth.py": "the whole tree is written into a staging folder, renamed into place at the end",
    "exporters/onnx.py": "writes the temp path exporters.pipeline.attempt gives it (renamed after parity)",
    "exporters/openvino.py": "writes the temp path exporters.pipeline.attempt gives it (renamed after parity)",
    "exporters/tensorrt.py": "writes the temp path exporters.pipeline.attempt gives it (renamed after parity)",
    "exporters/torchscript.py": "writes the temp path exporters.pipeline.attempt gives it (renamed after parity)",
    "exporters/executorch.py": "writes the temp path exporters.pipeline.attempt gives it (renamed after parity)",
    "exporters/litert.py": "writes the temp path exporters.pipeline.attempt gives it (renamed after parity)",
    "exporters/ncnn.py": "traces into a TemporaryDirectory; pnnx writes the temp path the pipeline gives it",
    "exporters/qdq.py": "writes its pre-processed model into the quantiser's TemporaryDirectory",
    "bench/gpu_check.py": "writes its own synthetic input clip into the check's output folder",
}


def test_every_write_goes_through_a_temp_path() -> None:
    writes = [w for w in _calls(WRITE) if w[0] != "segx/io.py"]
    assert writes, "no writes found: the scan is broken"
    stray = [w for w in writes if not TEMP_TARGET.search(w[2]) and w[0] not in BY_DESIGN]
    assert stray == [], "writes that bypass segx.io.atomic_path:\n" + "\n".join(map(str, stray))


# -- real processes -------------------------------------------------------------------------------------------------
def test_real_processes(tmp_path: Path, shared: dict[str, Path]) -> None:
    """Two refusals as real `segx` processes (run side by side): exit 1, one error line, no traceback and no
    FFmpeg chatter on the real stderr (FFmpeg's log level is set before OpenCV first opens a video), no payload run,
    nothing written."""
    from badinputs import write_video

    segx_bin = Path(sys.executable).with_name("segx")
    evil = tmp_path / "evil.pt"
    torch.save({"arch": "lraspp_mobilenet_v3_large", "model": CodeRunner(tmp_path / "PWNED")}, evil)
    (tmp_path / "cut.mp4").write_bytes(write_video(tmp_path / "v.mp4", n=20).read_bytes()[:1500])
    out = tmp_path / "out"
    cases = {
        "evil": (["predict", shared["image"], "--model", evil, "--out", out], "evil.pt"),
        "video": (["predict", tmp_path / "cut.mp4", "--model", shared["ckpt"], "--out", out], "cut.mp4"),
    }
    env = {k: v for k, v in os.environ.items() if k != "OPENCV_FFMPEG_LOGLEVEL"}  # as a user's shell has it
    procs = {k: subprocess.Popen([segx_bin, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, cwd=tmp_path, env=env) for k, (args, _) in cases.items()}
    for key, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=120)
        errors = [line for line in stderr.splitlines() if line.startswith("segx: error:")]
        assert proc.returncode == 1 and len(errors) == 1, (key, stderr)
        assert cases[key][1] in errors[0] and "Traceback" not in stderr + stdout, (key, stderr)
        assert not re.search(r"^\[(mov|mp4|h264|mpeg4)|moov atom", stderr, re.M), (key, stderr)
    assert not (tmp_path / "PWNED").exists() and not out.exists()
