"""The models a bench run measures: trained checkpoints (`--models`: .pt files or run folders) and untrained
random-init archs (`--archs`: a checkpoint is written for each), plus the calibration set INT8 needs without --data."""
from __future__ import annotations

import logging
from pathlib import Path

from bench.matrix import ModelSource
from segx.errors import SegxError

log = logging.getLogger(__name__)


def _checkpoint_path(path: Path) -> Path:
    if path.is_dir():
        for name in ("best.pt", "last.pt"):
            if (path / name).is_file():
                return path / name
        raise SegxError(f"{path}: run folder holds no best.pt or last.pt; pass a run folder made by `segx train` "
                        f"or a .pt checkpoint")
    if not path.exists():
        raise SegxError(f"{path}: no such checkpoint or run folder")
    if path.suffix != ".pt":
        raise SegxError(f"{path}: bench --models takes .pt checkpoints or run folders (bench exports each runtime's "
                        f"file itself; to time one exported file use `segx predict`)")
    return path


def _unique(label: str, hint: str, used: set[str]) -> str:
    """`label`, or `label@hint` (then `label@hint#n`) when another model already has that name."""
    for candidate in (label, f"{label}@{hint}"):
        if candidate not in used:
            used.add(candidate)
            return candidate
    n = 2
    while f"{label}@{hint}#{n}" in used:
        n += 1
    used.add(f"{label}@{hint}#{n}")
    return f"{label}@{hint}#{n}"


def from_checkpoints(paths: tuple[str, ...], used: set[str]) -> list[ModelSource]:
    from segx.io import load_checkpoint

    sources = []
    for p in paths:
        ckpt_path = _checkpoint_path(Path(p))
        arch = str(load_checkpoint(ckpt_path)["arch"])
        hint = ckpt_path.parent.name or ckpt_path.stem
        sources.append(ModelSource(arch, ckpt_path, _unique(arch, hint, used), trained=True))
    return sources


def from_archs(archs: tuple[str, ...], *, imgsz: int, folder: Path, used: set[str]) -> list[ModelSource]:
    """Random-init checkpoints (seed 0) of each arch, written to folder/<arch>.pt, for speed measurements."""
    import torch

    from segx.checkpoint import make_checkpoint
    from segx.io import save_checkpoint
    from segx.meta import ModelMeta
    from segx.models import build_model, get_arch

    for arch in archs:
        get_arch(arch)  # unknown names fail before anything is built
    sources = []
    for arch in archs:
        torch.manual_seed(0)
        model = build_model(arch).eval()
        path = save_checkpoint(make_checkpoint(model, ModelMeta(arch=arch, imgsz=imgsz), random_init=True),
                               folder / f"{arch}.pt")
        sources.append(ModelSource(arch, path, _unique(arch, "random", used), trained=False))
    return sources


def calibration_set(folder: Path, *, imgsz: int, n: int = 32) -> Path:
    """A synthetic VOC set for INT8 calibration when no --data is given (made once, reused by later runs)."""
    from segx.data.synth import make_synthetic_voc

    voc = folder / "VOCdevkit" / "VOC2012"
    if (voc / "JPEGImages").is_dir() and len(list((voc / "JPEGImages").glob("*.jpg"))) >= n:
        return voc
    log.info("no --data: making a %d-image synthetic VOC set in %s for INT8 calibration", n, folder)
    return make_synthetic_voc(folder, n=n, size=imgsz, seed=0)
