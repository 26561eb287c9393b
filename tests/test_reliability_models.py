"""The bad-input corpus, part 2 (models and names): checkpoints that are truncated, not checkpoints, of another arch or
class count; ONNX, TorchScript and OpenVINO files that are empty, corrupt or take the wrong input; TensorRT sidecars
that do not match; unknown archs, formats, runtimes, devices and precisions — through every command that takes them.
Contract as in tests/refusal.py (exit 1, one `segx: error:` line naming the file and the problem, nothing written).
Hostile files (code-running pickles, unsafe archives) are in test_reliability_security.py."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from badinputs import jpeg_bytes
from badmodels import (checkpoint_cases, onnx_cases, real_checkpoint, save_onnx, sidecar_cases, tiny_onnx_model,
                       torchscript_cases)
from refusal import CHECKPOINT_CONSUMERS, Sandbox, consumers, make_sandbox, wide_console  # noqa: F401

from segx.data.synth import make_synthetic_voc
from segx.errors import SegxError

LRASPP = "lraspp_mobilenet_v3_large"
SIZE = 32


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("shared")
    image = root / "good.jpg"
    image.write_bytes(jpeg_bytes())
    onnx_file = root / "tiny.onnx"
    save_onnx(tiny_onnx_model())(onnx_file)
    (root / "model.h5").write_bytes(b"\x89HDF\r\n\x1a\n")  # a model file type segx does not load
    return {"root": root, "voc": make_synthetic_voc(root / "synth", n=4, size=SIZE, seed=0), "image": image,
            "onnx": onnx_file, "ckpt": real_checkpoint(root / "real.pt")}


@pytest.fixture
def box(tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        shared: dict[str, Path]) -> Sandbox:
    return make_sandbox(tmp_path, capfd, monkeypatch, watch=[shared["root"]])


# --weights takes any file whose tensors fit the arch: a bare state_dict, or a checkpoint whose labels are off
VALID_WEIGHTS = {"state_dict_only", "class_count"}
CKPT_PARAMS = [(case, consumer) for case in sorted(checkpoint_cases(Path("x"), Path("y")))
               for consumer in CHECKPOINT_CONSUMERS
               if not case.startswith("pickle") and not (consumer == "train_weights" and case in VALID_WEIGHTS)]


def test_controls_pass(box: Sandbox, shared: dict[str, Path]) -> None:
    """The healthy checkpoint (also through --weights, as a bare state_dict) and ONNX file are accepted."""
    import torch

    from segx.io import load_checkpoint

    box.succeeds(consumers(shared["ckpt"], box, shared)["eval"])
    box.succeeds(consumers(shared["ckpt"], box, shared)["predict"])
    box.succeeds(consumers(shared["onnx"], box, shared)["eval"])
    state = box.inp / "state.pt"
    torch.save(load_checkpoint(shared["ckpt"])["model"], state)
    box.succeeds(consumers(state, box, shared)["train_weights"])


@pytest.mark.parametrize(("case", "consumer"), CKPT_PARAMS)
def test_bad_checkpoint(case: str, consumer: str, box: Sandbox, shared: dict[str, Path]) -> None:
    write, pattern = checkpoint_cases(shared["ckpt"], box.root / "PWNED")[case]
    bad = box.inp / "run" / "last.pt"  # --resume reads RUN/last.pt; the others take the path as given
    bad.parent.mkdir()
    write(bad)
    if consumer == "train_resume":
        pattern += "|no training config|no training state"
    box.refused(consumers(bad, box, shared)[consumer], names=["last.pt"], pattern=pattern)


# -- ONNX, TorchScript, OpenVINO ------------------------------------------------------------------------------------
@pytest.mark.parametrize("consumer", ["predict", "eval"])
@pytest.mark.parametrize("case", sorted(onnx_cases(Path("x"))))
def test_bad_onnx(case: str, consumer: str, box: Sandbox, shared: dict[str, Path]) -> None:
    write, pattern = onnx_cases(shared["onnx"])[case]
    bad = box.inp / f"{case}.onnx"
    write(bad)
    box.refused(consumers(bad, box, shared)[consumer], names=[bad.name], pattern=pattern)


@pytest.mark.parametrize("consumer", ["predict", "eval"])
@pytest.mark.parametrize("case", sorted(torchscript_cases()))
def test_bad_torchscript(case: str, consumer: str, box: Sandbox, shared: dict[str, Path]) -> None:
    write, pattern = torchscript_cases()[case]
    bad = box.inp / f"{case}.torchscript"
    write(bad)
    box.refused(consumers(bad, box, shared)[consumer], names=[bad.name], pattern=pattern)


def _openvino_pair(box: Sandbox, shared: dict[str, Path]) -> tuple[Path, Path]:
    import openvino as ov

    xml = box.inp / "model.xml"
    ov.save_model(ov.convert_model(shared["onnx"]), xml)
    return xml, xml.with_suffix(".bin")


OPENVINO = {
    "empty_xml": (lambda xml, bin_: xml.write_bytes(b""), "model.xml"),
    "garbage_xml": (lambda xml, bin_: xml.write_text("<net><layers><oops"), "model.xml"),
    "bin_missing": (lambda xml, bin_: bin_.unlink(), "model.xml|model.bin"),
    "bin_truncated": (lambda xml, bin_: bin_.write_bytes(bin_.read_bytes()[:10]), "model.xml|model.bin"),
}


@pytest.mark.parametrize("case", sorted(OPENVINO))
def test_bad_openvino(case: str, box: Sandbox, shared: dict[str, Path]) -> None:
    xml, bin_ = _openvino_pair(box, shared)
    break_it, names = OPENVINO[case]
    break_it(xml, bin_)
    box.refused(consumers(xml, box, shared)["predict"], names=["model."], pattern=names)


# -- TensorRT sidecars (checked without TensorRT) -------------------------------------------------------------------
@pytest.mark.parametrize("case", sorted(sidecar_cases()))
def test_tensorrt_sidecar_mismatch(case: str, tmp_path: Path) -> None:
    from segx.runtimes.tensorrt_rt import check_engine_env, read_sidecar, sidecar_path

    text, pattern = sidecar_cases()[case]
    engine = tmp_path / "best.engine"
    engine.write_bytes(b"serialized engine")
    if text is not None:
        sidecar_path(engine).write_text(text)
    here = {"tensorrt_version": "10.3.0", "gpu_name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0"}
    with pytest.raises(SegxError, match=pattern) as info:
        check_engine_env(engine, read_sidecar(engine).extra, here)
    assert "best.engine" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_engine_without_tensorrt_is_one_line(device: str, box: Sandbox, shared: dict[str, Path]) -> None:
    engine = box.inp / "best.engine"
    engine.write_bytes(b"serialized engine")
    args = [*consumers(engine, box, shared)["predict"], "--device", device]
    box.refused(args, names=[], pattern="tensorrt")


# -- unknown names and impossible options ---------------------------------------------------------------------------
def _names(s: dict[str, Path], out: Path) -> dict[str, tuple[list[object], str]]:
    img, onnx_file, ckpt, voc = s["image"], s["onnx"], s["ckpt"], s["voc"]
    train = ["train", "--data", voc, "--epochs", "1", "--crop", SIZE, "--workers", "0", "--out", out / "run"]
    pred = ["predict", img, "--model", onnx_file, "--out", out]
    ev = ["eval", "--data", voc, "--model", onnx_file, "--json", out / "e.json"]
    exp = ["export", "--model", ckpt, "--imgsz", SIZE, "--out", out]
    bench = ["bench", "--out", out, "--imgsz", SIZE]
    return {
        "train_arch": ([*train, "--arch", "lraspp_mobilenet"], "did you mean 'lraspp_mobilenet_v3_large'"),
        "train_device": ([*train, "--arch", LRASPP, "--device", "tpu"], r"unknown device 'tpu'; choose auto, cpu, cuda"),
        "train_cuda_absent": ([*train, "--arch", LRASPP, "--device", "cuda:3"], r"device 'cuda:3' asked for, but this PyTorch sees no CUDA GPU"),
        "train_weights_name": ([*train, "--arch", LRASPP, "--weights", "imagenet21k"], r"^segx: error: imagenet21k: weights file not found$"),
        "export_fmt": ([*exp, "--fmt", "onyx"], "did you mean 'onnx'"),
        "export_trt_absent": ([*exp, "--fmt", "trt"], r"TensorRT export needs an NVIDIA GPU .*pip install"),
        "export_fp16_torchscript": ([*exp, "--fmt", "torchscript", "--fp16"],
                                    r"format 'torchscript' does not take --fp16; it takes: "),
        "export_int8_torchscript": ([*exp, "--fmt", "torchscript", "--int8"],
                                    r"format 'torchscript' does not take --int8; it takes: "),
        "export_not_a_checkpoint": (["export", "--model", onnx_file, "--fmt", "onnx", "--out", out],
                                    r"tiny\.onnx: not a loadable segx checkpoint"),
        "predict_runtime": ([*pred, "--runtime", "onnxrt"], "did you mean 'onnxruntime'"),
        "predict_device": ([*pred, "--device", "tpu"], r"runtime 'onnxruntime' does not run on 'tpu'"),
        "predict_cuda_absent": ([*pred, "--device", "cuda"], r"runtime 'onnxruntime' on CUDA needs the CUDA execution provider"),
        "predict_precision": ([*pred, "--precision", "fp8"], r"runtime 'onnxruntime' has no precision 'fp8'; choose from"),
        "predict_runtime_tensorrt": ([*pred, "--runtime", "tensorrt"], "tensorrt"),
        "predict_wrong_runtime_for_file": ([*pred, "--runtime", "torchscript"],
                                           r"tiny\.onnx: not a loadable TorchScript file"),
        "predict_model_suffix": (["predict", img, "--model", s["root"] / "model.h5", "--out", out],
                                 r"model\.h5: unknown model file type '\.h5'"),
        "predict_model_missing": (["predict", img, "--model", s["root"] / "nope.onnx", "--out", out],
                                  r"nope\.onnx: ONNX file not found"),
        "predict_source_missing": (["predict", s["root"] / "nope.jpg", "--model", onnx_file, "--out", out],
                                   "nope.jpg: no such file"),
        "predict_source_type": (["predict", s["root"] / "model.h5", "--model", onnx_file, "--out", out],
                                "unknown input type"),
        "predict_glob_empty": (["predict", f"{s['root']}/*.bmp", "--model", onnx_file, "--out", out],
                               "no images found"),
        "predict_out_is_a_file": (["predict", img, "--model", onnx_file, "--out", s["root"] / "model.h5"],
                                  r"model\.h5.*(exists|not a folder)"),
        "eval_split": ([*ev, "--split", "nosuch"], r"unknown split list 'nosuch'; choose from: .*\(no file \S*/nosuch\.txt\)"),
        "eval_split_path": ([*ev, "--split", "../../etc/passwd"], "bad split name"),
        "eval_device": ([*ev, "--device", "tpu"], r"runtime 'onnxruntime' does not run on 'tpu'"),
        "eval_model_suffix": (["eval", "--data", voc, "--model", s["root"] / "model.h5"],
                              r"model\.h5: unknown model file type '\.h5'"),
        "eval_json_is_a_folder": (["eval", "--data", voc, "--model", onnx_file, "--json", s["root"]],
                                  r"--json .*shared\w*: is a folder; give a file name"),
        "bench_runtime": ([*bench, "--archs", LRASPP, "--runtimes", "onnxrt"], "did you mean 'onnxruntime'"),
        "bench_precision": ([*bench, "--archs", LRASPP, "--precisions", "fp8"], r"unknown precision 'fp8' \(did you mean 'fp32'\?\)"),
        "bench_arch": ([*bench, "--archs", "lraspp_mobilenet"], "did you mean 'lraspp_mobilenet_v3_large'"),
        "bench_device": ([*bench, "--archs", LRASPP, "--device", "tpu"], r"unknown device 'tpu' \(did you mean 'cpu'\?\)"),
        "bench_batch": ([*bench, "--archs", LRASPP, "--batch", "0"], r"--batch takes positive integers, e\.g\. --batch 1,8 \(got '0'\)"),
        "bench_models_missing": ([*bench, "--models", s["root"] / "nope.pt"],
                                 r"nope\.pt: no such checkpoint or run folder"),
        "synth_size": (["data", "synth", "--out", out, "--size", "3"], r"--size must be an integer from 16 to 4096 pixels, got 3"),
        "synth_n": (["data", "synth", "--out", out, "--n", "1"], r"--n must be an integer >= 2 \(one train and one val image at least\), got 1"),
    }


@pytest.mark.parametrize("case", sorted(_names({k: Path(k) for k in ("image", "onnx", "ckpt", "voc", "root")},
                                               Path("out"))))
def test_unknown_names_and_options(case: str, box: Sandbox, shared: dict[str, Path]) -> None:
    args, pattern = _names(shared, box.out)[case]
    box.refused(args, names=[], pattern=pattern)


def test_resume_of_another_arch_is_refused(box: Sandbox, shared: dict[str, Path]) -> None:
    """A run folder whose last.pt is a real checkpoint without training state: resume says why."""
    run = box.inp / "run"
    run.mkdir()
    shutil.copy(shared["ckpt"], run / "last.pt")
    box.refused(["train", "--resume", "--out", run], names=["last.pt"], pattern="no training config")
