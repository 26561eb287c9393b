"""The bad-input corpus: writers of broken, hostile or mismatched files (images, masks, checkpoints, ONNX / OpenVINO /
TorchScript models, TensorRT sidecars, videos, tar archives), the tiny healthy models they are cut from, and a
file-tree snapshot that proves a failing command touched nothing. Used by tests/test_reliability_*.py."""
from __future__ import annotations

import hashlib
import io
import json
import pickle
import struct
import tarfile
import warnings
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

import segx.predict.sources  # noqa: F401 - sets FFmpeg's log level before this module first writes a video
from segx.data.voc import mask_to_pil
from segx.meta import ModelMeta

Writer = Callable[[Path], None]


# -- images ---------------------------------------------------------------------------------------------------------
def picture(w: int = 32, h: int = 24) -> np.ndarray:
    """A deterministic RGB gradient."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y) % 256], -1).astype(np.uint8)


def jpeg_bytes(w: int = 32, h: int = 24) -> bytes:
    ok, buf = cv2.imencode(".jpg", picture(w, h)[..., ::-1])
    assert ok
    return buf.tobytes()


def png_bytes(w: int = 32, h: int = 24) -> bytes:
    ok, buf = cv2.imencode(".png", picture(w, h)[..., ::-1])
    assert ok
    return buf.tobytes()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_claiming(w: int, h: int, *, bad_crc: bool = False) -> bytes:
    """A PNG whose header claims w×h RGB pixels (a decompression bomb when large) with a few bytes of data."""
    ihdr = _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    if bad_crc:
        ihdr = ihdr[:-4] + b"\0\0\0\0"
    return b"\x89PNG\r\n\x1a\n" + ihdr + _chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _chunk(b"IEND", b"")


def jpeg_claiming(w: int, h: int) -> bytes:
    """A real JPEG with its SOF0 frame header patched to claim w×h pixels (both ≤ 65535)."""
    data = bytearray(jpeg_bytes())
    sof = data.find(b"\xff\xc0")
    assert sof > 0, "cv2 wrote no baseline SOF0 marker"
    data[sof + 5:sof + 9] = struct.pack(">HH", h, w)
    return bytes(data)


def _const(data: bytes | Callable[[], bytes]) -> Writer:
    return lambda path: path.write_bytes(data() if callable(data) else data)


RANDOM = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()

# name -> (file suffix, writer, pattern the error line must match besides the file name)
BAD_IMAGES: dict[str, tuple[str, Writer, str]] = {
    "zero_bytes_jpg": (".jpg", _const(b""), "0 bytes"),
    "zero_bytes_png": (".png", _const(b""), "0 bytes"),
    "truncated_jpg": (".jpg", _const(lambda: jpeg_bytes(64, 48)[:400]), "unreadable"),
    "truncated_png": (".png", _const(lambda: png_bytes(64, 48)[:300]), "unreadable"),
    "header_only_png": (".png", _const(b"\x89PNG\r\n\x1a\n"), "unreadable"),
    "text_as_jpg": (".jpg", _const(b"this is a text file, not a picture\n"), "unreadable"),
    "html_as_png": (".png", _const(b"<!doctype html><html><body>404</body></html>\n"), "unreadable"),
    "random_bytes_jpg": (".jpg", _const(RANDOM), "unreadable"),
    "bad_crc_png": (".png", _const(lambda: png_claiming(32, 24, bad_crc=True)), "unreadable"),
    "zero_width_png": (".png", _const(lambda: png_claiming(0, 24)), "unreadable|0×24|empty"),
    "bomb_png_100k": (".png", _const(lambda: png_claiming(100_000, 100_000)), "decompression"),
    "bomb_png_120mp": (".png", _const(lambda: png_claiming(12_000, 10_000)), "decompression-bomb guard"),
    "bomb_jpg_60k": (".jpg", _const(lambda: jpeg_claiming(60_000, 60_000)), "decompression"),
    "bomb_jpg_110mp": (".jpg", _const(lambda: jpeg_claiming(11_000, 10_000)), "decompression-bomb guard"),
}


# -- masks (written over a VOC mask whose image is w×h) --------------------------------------------------------------
def _pil(mode_image: Image.Image) -> Writer:
    def write(path: Path) -> None:
        mode_image.save(path, format="PNG")
    return write


def mask_cases(w: int, h: int) -> dict[str, tuple[Writer, str]]:
    """name -> (writer, pattern the problem must match) for a mask that belongs to a w×h image."""
    full = np.zeros((h, w), np.uint8)
    return {
        "rgb": (_pil(Image.fromarray(np.zeros((h, w, 3), np.uint8))), "mode RGB"),
        "rgba": (_pil(Image.fromarray(np.zeros((h, w, 4), np.uint8))), "mode RGBA"),
        "value_50": (_pil(mask_to_pil(full + 50)), r"50\]"),
        "value_21": (_pil(mask_to_pil(full + 21)), r"21\]"),
        "grey_value_99": (_pil(Image.fromarray(full + 99, "L")), r"mode L|99\]"),
        "uint16_300": (_pil(Image.fromarray(full.astype(np.uint16) + 300)), "mode I"),
        "size_mismatch": (_pil(mask_to_pil(np.zeros((h // 2, w // 2), np.uint8))), "but"),
        "zero_bytes": (_const(b""), "0 bytes"),
        "truncated": (_const(lambda: _png_of(mask_to_pil(full + 1))[:60]), "unreadable"),
        "text": (_const(b"not a mask\n"), "unreadable"),
        "jpeg_data": (_const(lambda: jpeg_bytes(w, h)), "mode RGB"),
        "bomb": (_const(lambda: png_claiming(100_000, 100_000)), "decompression"),
    }


def _png_of(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


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
        "zero_bytes": (_const(b""), "0 bytes|empty"),
        "truncated": (_const(lambda: real.read_bytes()[: real.stat().st_size // 2]), "not a loadable"),
        "random_bytes": (_const(RANDOM), "not a loadable"),
        "text": (_const(b"arch: lraspp\nmodel: yes\n"), "not a loadable"),
        "json": (_const(b'{"arch": "lraspp_mobilenet_v3_large", "model": {}}'), "not a loadable"),
        "zip_not_torch": (_zip({"notes.txt": b"hello"}), "not a loadable"),
        "a_list": (saved(lambda: [1, 2, 3]), "not a segx checkpoint|not a state_dict"),
        "state_dict_only": (saved(lambda: torch.load(real, weights_only=True)["model"]),
                            "not a segx checkpoint|no training config|weights do not fit"),
        "unknown_arch": (saved(ckpt(arch="resnet9000")), "resnet9000"),
        "other_arch": (saved(other_arch), "deeplabv3_mobilenet_v3_large|do not fit"),
        "class_count": (saved(ckpt(num_classes=5)), "num_classes|5 classes|do not fit"),
        "model_not_tensors": (saved(ckpt(model={"w": "text"})), "not a state_dict|do not fit"),
        "pickle_raw": (_const(lambda: pickle.dumps(CodeRunner(marker), protocol=2)), "not a loadable|Unsupported"),
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
        "zero_bytes": (_const(b""), "cannot load"),
        "random_bytes": (_const(RANDOM), "cannot load"),
        "text": (_const(b"ir_version: 9\n"), "cannot load"),
        "truncated": (_const(lambda: tiny.read_bytes()[: tiny.stat().st_size // 2]), "cannot load"),
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
        "zero_bytes": (_const(b""), "not a loadable TorchScript"),
        "random_bytes": (_const(RANDOM), "not a loadable TorchScript"),
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
        "not_json": ("{engine", "unreadable sidecar"),
        "a_list": ("[1, 2]", "unreadable sidecar|metadata"),
        "no_arch": (json.dumps({"imgsz": 64}), "arch"),
        "other_gpu": (json.dumps({**meta, "extra": env}), "built for a different setup"),
        "no_env": (json.dumps(meta), "built for a different setup"),
    }


# -- videos ----------------------------------------------------------------------------------------------------------
def write_video(path: Path, n: int, w: int = 64, h: int = 48, fps: float = 10.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened()
    for i in range(n):
        writer.write(np.roll(picture(w, h), i, axis=1))
    writer.release()
    return path


def video_cases(good: Path) -> dict[str, tuple[str, Writer, str]]:
    """name -> (suffix, writer, pattern) of videos that hold no decodable frame; `good` is a healthy mp4."""
    return {
        "zero_bytes_mp4": (".mp4", _const(b""), "0 bytes"),
        "random_bytes_mp4": (".mp4", _const(RANDOM), "cannot open video|no frame"),
        "text_as_avi": (".avi", _const(b"RIFF but not really\n"), "cannot open video|no frame"),
        "first_kb_of_mp4": (".mp4", _const(lambda: good.read_bytes()[:1024]), "cannot open video|no frame"),
        "ftyp_box_only": (".mp4", _const(lambda: good.read_bytes()[:32]), "cannot open video|no frame"),
        "zero_frames_mp4": (".mp4", lambda p: _zero_frame_video(p), "cannot open video|no frame|0 bytes"),
        "garbage_after_header": (".mp4", _const(lambda: good.read_bytes()[:48] + RANDOM * 4),
                                 "cannot open video|no frame"),
    }


def _zero_frame_video(path: Path) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 10.0, (64, 48))
    writer.release()
    if not path.exists():
        path.write_bytes(b"")


# -- tar archives ----------------------------------------------------------------------------------------------------
def tar_bytes(members: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for m in members:
            if isinstance(m, tarfile.TarInfo):
                tf.addfile(m)
            else:
                info = tarfile.TarInfo(m[0])
                info.size = len(m[1])
                tf.addfile(info, io.BytesIO(m[1]))
    return buf.getvalue()


def link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def special(name: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    return info


LIST = ("VOCdevkit/VOC2012/ImageSets/Segmentation/train.txt", b"a\n")


def tar_cases() -> dict[str, tuple[Callable[[], bytes], str]]:
    """name -> (archive bytes, pattern of the error) of archives that must not extract."""
    return {
        "dotdot_member": (lambda: tar_bytes([LIST, ("../evil.txt", b"x")]), "refusing unsafe member '../evil.txt'"),
        "deep_dotdot": (lambda: tar_bytes([LIST, ("VOCdevkit/../../../evil.txt", b"x")]), "refusing unsafe"),
        "absolute_member": (lambda: tar_bytes([LIST, ("/tmp/segx_corpus_abs.txt", b"x")]), "refusing unsafe"),
        "symlink_to_etc": (lambda: tar_bytes([LIST, link("VOCdevkit/passwd", "/etc/passwd")]), "refusing unsafe"),
        "symlink_up": (lambda: tar_bytes([LIST, link("VOCdevkit/up", "../../victim")]), "refusing unsafe"),
        "symlink_then_write": (lambda: tar_bytes([link("esc", ".."), ("esc/evil.txt", b"x"), LIST]),
                               "refusing unsafe"),
        "hardlink_out": (lambda: tar_bytes([LIST, link("VOCdevkit/h", "../../victim/keep.txt", tarfile.LNKTYPE)]),
                         "refusing unsafe"),
        "char_device": (lambda: tar_bytes([LIST, special("VOCdevkit/null", tarfile.CHRTYPE)]), "refusing unsafe"),
        "fifo": (lambda: tar_bytes([LIST, special("VOCdevkit/pipe", tarfile.FIFOTYPE)]), "refusing unsafe"),
        "random_bytes": (lambda: RANDOM * 8, "not a readable tar"),
        "truncated_gz": (lambda: tar_bytes([LIST, ("VOCdevkit/big.bin", RANDOM * 64)], "w:gz")[:2000],
                         "not a readable tar"),
        "zero_bytes": (lambda: b"", "not a readable tar|no VOCdevkit"),
        "no_voc_inside": (lambda: tar_bytes([("README", b"hello")]), "no VOCdevkit/VOC2012"),
    }


# -- snapshots -------------------------------------------------------------------------------------------------------
def snapshot(*roots: Path) -> dict[str, tuple[str, int, str]]:
    """Every path under `roots` -> (kind, size, sha1 of its content / link target): what a failing command must
    leave exactly as it found it."""
    out: dict[str, tuple[str, int, str]] = {}
    for root in roots:
        if not root.exists():
            continue
        for p in [root, *sorted(root.rglob("*"))]:
            if p.is_symlink():
                out[str(p)] = ("link", 0, str(p.readlink()))
            elif p.is_dir():
                out[str(p)] = ("dir", 0, "")
            else:
                data = p.read_bytes()
                out[str(p)] = ("file", len(data), hashlib.sha1(data).hexdigest())
    return out


def diff(before: dict[str, tuple[str, int, str]], after: dict[str, tuple[str, int, str]]) -> list[str]:
    """Human-readable differences between two snapshots (empty when nothing changed)."""
    added = [f"+ {p}" for p in after.keys() - before.keys()]
    removed = [f"- {p}" for p in before.keys() - after.keys()]
    changed = [f"~ {p}" for p in before.keys() & after.keys() if before[p] != after[p]]
    return sorted(added + removed + changed)
