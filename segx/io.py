"""Atomic file writes (temp file + fsync + rename) and safe checkpoint loading.
Every file segx writes goes through `atomic_path` / `atomic_write_*`, so a crash never leaves a half-written file."""
from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from segx.errors import SegxError


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success it is fsynced and renamed onto `path`.

    The temp name keeps the final suffix (tools like cv2.imwrite pick the codec from it)."""
    path = Path(path)
    if path.is_dir():  # refuse before a temp file is made (beside a folder, that could be in /)
        raise SegxError(f"{path}: is a folder, not a file; give a file path")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=suffix or path.suffix or ".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp_path, path)
        _fsync_dir(path.parent)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def check_output_file(path: str | Path, flag: str) -> Path:
    """Refuse now, before any work, an output file path that is a folder or lies where segx cannot write."""
    path = Path(path)
    if path.is_dir():
        raise SegxError(f"{flag} {path}: is a folder; give a file name, e.g. {path / 'out.json'}")
    existing = next(p for p in (path.parent.absolute(), *path.parent.absolute().parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise SegxError(f"{flag} {path}: cannot write there ({existing} is not a writable folder)")
    return path


def remove_stale_temps(path: str | Path, suffix: str | None = None) -> list[Path]:
    """Delete the temp files `atomic_path(path)` leaves when its process is killed mid-write (.<stem>.*<suffix>).
    Call it only where no other process is writing `path`."""
    path = Path(path)
    stale = sorted(path.parent.glob(f".{glob.escape(path.stem)}.*{suffix or path.suffix or '.tmp'}"))
    for tmp in stale:
        tmp.unlink(missing_ok=True)
    return stale


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def save_checkpoint(obj: dict[str, Any], path: str | Path) -> Path:
    """torch.save a dict of tensors and plain data atomically."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def safe_torch_load(path: str | Path, what: str = "checkpoint") -> Any:
    """torch.load(weights_only=True) of a file that must exist and be non-empty: a pickle that would run code is
    refused; every failure is one SegxError naming `path` and `what` it should have been."""
    path = Path(path)
    if not path.is_file():
        raise SegxError(f"{path}: {what} not found")
    if path.stat().st_size == 0:
        raise SegxError(f"{path}: {what} is empty (0 bytes)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for bad files
        raise SegxError(f"{path}: not a loadable {what} ({load_failure(e)})") from e


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a segx checkpoint with weights_only=True: a pickle that would run code is refused."""
    ckpt = safe_torch_load(path, "segx checkpoint")
    if not isinstance(ckpt, dict) or "arch" not in ckpt or "model" not in ckpt:
        raise SegxError(f"{path}: not a segx checkpoint (expected a dict with 'arch' and 'model')")
    return ckpt


def load_failure(e: BaseException) -> str:
    """Why torch.load(weights_only=True) failed, in one line: a refused pickle global says so (torch's own text
    suggests loading the file unsafely, and carries ANSI codes); anything else gives its first line."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e))
    refused = re.search(r"WeightsUnpickler error: (.*?)(?: was not an allowed global| Please |$)", text, re.M)
    if refused:
        return f"refused: it holds Python objects, not only tensors and plain data, and loading it could run code: " \
               f"{refused.group(1).strip()}"
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return f"{type(e).__name__}: {first[:200]}" if first else type(e).__name__
