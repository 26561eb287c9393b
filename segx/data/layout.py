"""The VOC2012 folder layout: where images, masks and split lists live, and finding VOC2012 from a user's path."""
from __future__ import annotations

from pathlib import Path

from segx.errors import SegxError

IMAGE_DIR = "JPEGImages"
MASK_DIR = "SegmentationClass"
AUG_MASK_DIR = "SegmentationClassAug"  # SBD masks converted to palette PNGs (the `aug` split)
OBJECT_DIR = "SegmentationObject"
LIST_DIR = Path("ImageSets") / "Segmentation"


def _is_voc2012(path: Path) -> bool:
    return (path / IMAGE_DIR).is_dir() or (path / LIST_DIR).is_dir()


def resolve_voc_root(path: str | Path) -> Path:
    """Return the VOC2012 folder for `path` = VOCdevkit/VOC2012, VOCdevkit, or the folder holding VOCdevkit."""
    path = Path(path).expanduser()
    if not path.exists():
        raise SegxError(f"{path}: no such folder; get VOC with `segx data download --root {path}` "
                        f"or make a synthetic set with `segx data synth --out {path}`")
    if not path.is_dir():
        raise SegxError(f"{path}: not a folder; pass the folder holding VOCdevkit, VOCdevkit or VOC2012")
    for candidate in (path, path / "VOC2012", path / "VOCdevkit" / "VOC2012"):
        if _is_voc2012(candidate):
            return candidate
    raise SegxError(f"{path}: no VOC2012 tree found "
                    f"(expected VOCdevkit/VOC2012/{{{IMAGE_DIR},{MASK_DIR},{LIST_DIR}}}); "
                    f"pass the folder holding VOCdevkit, VOCdevkit or VOC2012")


def list_path(root: Path, split: str) -> Path:
    """The list file of `split` inside an already resolved VOC2012 folder."""
    return root / LIST_DIR / f"{split}.txt"


def available_lists(root: Path) -> list[str]:
    folder = root / LIST_DIR
    return sorted(p.stem for p in folder.glob("*.txt")) if folder.is_dir() else []
