"""The bad-input corpus, model side: writers of broken, hostile or mismatched checkpoints (code-running pickles
included), ONNX and TorchScript files and TensorRT sidecars, and the tiny healthy models they are cut from."""
from __future__ import annotations

import json
import pickle
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from badinputs import RANDOM, Writer, const

from segx.meta import ModelMeta


# -- checkpoints -----------------------------------------------------------------------------------------------------
class CodeRunner:
    """A pickle payload: unpickling it calls open(marker, "w"), i.e. runs code (a stand-in for any hostile payload)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (open, (self.marker, "w"))


def checkpoint_cases(real: Path, marker: Path) -> dict[str, tuple[Writer, str]]:
    """name -> (writer, pattern of the error) for `.pt` files, cut from the real checkpoint `real`."""
    import torch

    def saved(obj: Callable[[], Any]) -> Writer:
        return lambda path: torch.save(obj(), path)

    def ckpt(**changes: Any) -> Callable[[], dict[str, Any]]:
        return lambda: {**torch.load(real, weights_only=True), **changes}

    def other_arch() -> dict[str, Any]:  # lraspp weights labelled as another arch
        return {**torch.load(real, weights_only=True), "arch": "deeplabv3_mobilenet_v3_large"}

    return {
        "zero_bytes": (const(b""), "0 bytes|empty"),
        "truncated": (const(lambda: real.read_bytes()[: real.stat().st_size // 2]), "not a loadable"),
        "random_bytes": (const(RANDOM), "not a loadable"),
        "text": (const(b"arch: lraspp\nmodel: yes\n"), "not a loadable"),
        "json": (const(b'{"arch": "lraspp_mobilenet_v3_large", "model": {}}'), "not a loadable"),
        "zip_not_torch": (_zip({"notes.txt": b"hello"}), "not a loadable"),
        "a_list": (saved(lambda: [1, 2, 3]), "not a segx checkpoint|not a state_dict"),
        "state_dict_only": (saved(lambda: torch.load(real, weights_only=True)["model"]),
                            "not a segx checkpoint|no training config|weights do not fit"),
        "unknown_arch": (saved(ckpt(arch="resnet9000")), "resnet9000"),
        "other_arch": (saved(other_arch), "deeplabv3_mobilenet_v3_large|do not fit"),
        "class_count": (saved(ckpt(num_classes=5)), "num_classes|5 classes|do not fit"),
        "model_not_tensors": (saved(ckpt(model={"w": "text"})), "not a state_dict|do not fit"),
        "pickle_raw": (const(lambda: pickle.dumps(CodeRunner(marker), protocol=2)), "not a loadable|Unsupported"),
        "pickle_torch_zip": (saved(lambda: CodeRunner(marker)), "not a loadable|Unsupported"),
        "pickle_in_checkpoint": (saved(ckpt(model={"w": CodeRunner(marker)})), "not a loadable|Unsupported"),
    }


def _zip(members: dict[str, bytes]) -> Writer:
    def write(path: Path) -> None:
        with zipfile.ZipFile(path, "w") as z:
            for name, data in members.items():
                z.writestr(name, data)
    return write


def real_checkpoint(path: Path) -> Path:
    """An untrained lraspp_mobilenet_v3_large checkpoint (a real segx .pt, no training needed)."""
    import torch

    from segx.checkpoint import make_checkpoint
    from segx.io import save_checkpoint
    from segx.models import build_model

    torch.manual_seed(0)
    model = build_model("lraspp_mobilenet_v3_large")
    return save_checkpoint(make_checkpoint(model, ModelMeta(arch="lraspp_mobilenet_v3_large", imgsz=64)), path)


# -- ONNX, OpenVINO, TorchScript -------------------------------------------------------------------------------------
def tiny_onnx_model(meta: ModelMeta | None = ModelMeta(arch="tiny_conv", imgsz=64, dynamic=True), *, cin: int = 3,
                    cout: int = 21, rank: int = 4, elem: int = 1, props: dict[str, str] | None = None) -> Any:
    """A 1×1-conv segmentation 'model' (images N×cin×H×W -> logits N×cout×H×W) with segx metadata."""
    import onnx
    from onnx import TensorProto, helper

    weights = np.random.default_rng(0).standard_normal((cout, cin, 1, 1)).astype(np.float32)
    inits = [onnx.numpy_helper.from_array(weights, "W")]
    nodes, x = [], "images"
    if elem != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", [x], ["as_float"], to=TensorProto.FLOAT))
        x = "as_float"
    if rank == 3:  # C×H×W input: add the batch axis inside the graph
        inits.append(onnx.numpy_helper.from_array(np.array([0]), "axes"))
        nodes.append(helper.make_node("Unsqueeze", [x, "axes"], ["batched"]))
        x = "batched"
    nodes.append(helper.make_node("Conv", [x, "W"], ["logits"]))
    dims = ["N", cin, "H", "W"] if rank == 4 else [cin, "H", "W"]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("images", elem, dims)],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    strings = dict(meta.to_strings()) if meta is not None else {}
    strings.update(props or {})
    if strings:
        helper.set_model_props(model, strings)
    return model


def save_onnx(model: Any) -> Writer:
    import onnx

    return lambda path: onnx.save(model, path)


def onnx_cases(tiny: Path) -> dict[str, tuple[Writer, str]]:
    from onnx import TensorProto

    meta = ModelMeta(arch="tiny_conv", imgsz=64, dynamic=True)
    return {
        "zero_bytes": (const(b""), "cannot load"),
        "random_bytes": (const(RANDOM), "cannot load"),
        "text": (const(b"ir_version: 9\n"), "cannot load"),
        "truncated": (const(lambda: tiny.read_bytes()[: tiny.stat().st_size // 2]), "cannot load"),
        "no_segx_metadata": (save_onnx(tiny_onnx_model(None)), "no segx metadata"),
        "grey_input": (save_onnx(tiny_onnx_model(meta, cin=1)), "N×3×H×W|input"),
        "rank3_input": (save_onnx(tiny_onnx_model(meta, rank=3)), "4|dims|N×3×H×W"),
        "int64_input": (save_onnx(tiny_onnx_model(meta, elem=TensorProto.INT64)), "float|type|tensor"),
        "five_class_output": (save_onnx(tiny_onnx_model(meta, cout=5)), "logits|classes"),
        "metadata_not_json": (save_onnx(tiny_onnx_model(meta, props={"classes": "[not json"})), "JSON"),
        "names_vs_count": (save_onnx(tiny_onnx_model(meta.replace(num_classes=5))), "class|5"),
    }


def torchscript_cases() -> dict[str, tuple[Writer, str]]:
    import torch

    def traced(extra: dict[str, str]) -> Writer:
        def write(path: Path) -> None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated upstream
                module = torch.jit.trace(torch.nn.Conv2d(3, 21, 1).eval(), torch.zeros(1, 3, 8, 8))
                torch.jit.save(module, str(path), _extra_files=extra)
        return write

    return {
        "zero_bytes": (const(b""), "not a loadable TorchScript"),
        "random_bytes": (const(RANDOM), "not a loadable TorchScript"),
        "zip_not_torchscript": (_zip({"model/data.pkl": b"junk"}), "not a loadable TorchScript"),
        "no_segx_meta": (traced({}), "segx_meta.json"),
        "meta_not_json": (traced({"segx_meta.json": "{not json"}), "segx_meta.json|JSON"),
    }


# -- TensorRT sidecars -----------------------------------------------------------------------------------------------
def sidecar_cases() -> dict[str, tuple[str | None, str]]:
    """name -> (sidecar text or None for none, pattern of the error)."""
    meta = ModelMeta(arch="tiny_conv", imgsz=64).to_dict()
    env = {"tensorrt_version": "10.0.1", "gpu_name": "NVIDIA A100-SXM4-40GB", "compute_capability": "8.0"}
    return {
        "missing": (None, "sidecar .* is missing"),
        "not_json": ("{engine", "unreadable metadata sidecar"),
        "a_list": ("[1, 2]", "unreadable metadata sidecar"),
        "no_arch": (json.dumps({"imgsz": 64}), "arch"),
        "other_gpu": (json.dumps({**meta, "extra": env}), "built for a different setup"),
        "no_env": (json.dumps(meta), "built for a different setup"),
    }
