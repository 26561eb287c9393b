"""The bad-input corpus, data side: writers of broken, hostile or mismatched images, masks, videos and tar archives,
and a file-tree snapshot that proves a failing command touched nothing (models: tests/badmodels.py). Used by
tests/test_reliability_*.py."""
from __future__ import annotations

import hashlib
import io
import struct
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

import segx.predict.sources  # noqa: F401 - sets FFmpeg's log level before this module first writes a video
from segx.data.voc import mask_to_pil

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


def const(data: bytes | Callable[[], bytes]) -> Writer:
    return lambda path: path.write_bytes(data() if callable(data) else data)


RANDOM = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()

# name -> (file suffix, writer, pattern the error line must match besides the file name)
BAD_IMAGES: dict[str, tuple[str, Writer, str]] = {
    "zero_bytes_jpg": (".jpg", const(b""), "0 bytes"),
    "zero_bytes_png": (".png", const(b""), "0 bytes"),
    "truncated_jpg": (".jpg", const(lambda: jpeg_bytes(64, 48)[:400]), "unreadable"),
    "truncated_png": (".png", const(lambda: png_bytes(64, 48)[:300]), "unreadable"),
    "header_only_png": (".png", const(b"\x89PNG\r\n\x1a\n"), "unreadable"),
    "text_as_jpg": (".jpg", const(b"this is a text file, not a picture\n"), "unreadable"),
    "html_as_png": (".png", const(b"<!doctype html><html><body>404</body></html>\n"), "unreadable"),
    "random_bytes_jpg": (".jpg", const(RANDOM), "unreadable"),
    "bad_crc_png": (".png", const(lambda: png_claiming(32, 24, bad_crc=True)), "unreadable"),
    "zero_width_png": (".png", const(lambda: png_claiming(0, 24)), "unreadable|0×24|empty"),
    "bomb_png_100k": (".png", const(lambda: png_claiming(100_000, 100_000)), "decompression"),
    "bomb_png_120mp": (".png", const(lambda: png_claiming(12_000, 10_000)), "decompression-bomb guard"),
    "bomb_jpg_60k": (".jpg", const(lambda: jpeg_claiming(60_000, 60_000)), "decompression"),
    "bomb_jpg_110mp": (".jpg", const(lambda: jpeg_claiming(11_000, 10_000)), "decompression-bomb guard"),
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
        "zero_bytes": (const(b""), "0 bytes"),
        "truncated": (const(lambda: _png_of(mask_to_pil(full + 1))[:60]), "unreadable"),
        "text": (const(b"not a mask\n"), "unreadable"),
        "jpeg_data": (const(lambda: jpeg_bytes(w, h)), "mode RGB"),
        "bomb": (const(lambda: png_claiming(100_000, 100_000)), "decompression"),
    }


def _png_of(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


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
        "zero_bytes_mp4": (".mp4", const(b""), "0 bytes"),
        "random_bytes_mp4": (".mp4", const(RANDOM), "cannot open video|no frame"),
        "text_as_avi": (".avi", const(b"RIFF but not really\n"), "cannot open video|no frame"),
        "first_kb_of_mp4": (".mp4", const(lambda: good.read_bytes()[:1024]), "cannot open video|no frame"),
        "ftyp_box_only": (".mp4", const(lambda: good.read_bytes()[:32]), "cannot open video|no frame"),
        "zero_frames_mp4": (".mp4", lambda p: _zero_frame_video(p), "cannot open video|no frame|0 bytes"),
        "garbage_after_header": (".mp4", const(lambda: good.read_bytes()[:48] + RANDOM * 4),
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
