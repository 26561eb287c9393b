"""`segx data check`: walk a VOC tree and collect every problem (missing folders/files, unreadable or mismatched
images and masks, non-palette masks, labels outside 0–20 and 255) instead of stopping at the first."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import UnidentifiedImageError
from rich.table import Table

from segx.data.constants import IGNORE_INDEX, NUM_CLASSES
from segx.data.layout import AUG_MASK_DIR, IMAGE_DIR, LIST_DIR, MASK_DIR, available_lists, list_path, resolve_voc_root
from segx.data.splits import read_list
from segx.data.voc import open_image
from segx.errors import SegxError

T = TypeVar("T")
_VALID = np.zeros(256, bool)
_VALID[:NUM_CLASSES] = _VALID[IGNORE_INDEX] = True


@dataclass(frozen=True)
class Problem:
    path: Path
    message: str


@dataclass
class CheckReport:
    root: Path
    lists: dict[str, int] = field(default_factory=dict)  # list name -> number of IDs
    n_ids: int = 0
    problems: list[Problem] = field(default_factory=list)


def _image_size(path: Path) -> tuple[int, int]:
    """Decode the whole image (JPEG at 1/8 scale: fast, still reads every byte) and return its (width, height)."""
    with open_image(path) as img:
        size = img.size
        img.draft("RGB", (max(1, size[0] // 8), max(1, size[1] // 8)))
        img.load()
    return size


def _check_mask(path: Path, image_size: tuple[int, int] | None) -> list[str]:
    with open_image(path) as img:
        img.load()
        if img.mode != "P":
            return [f"mask is mode {img.mode}, not a palette (P) PNG of class indices"]
        size, values = img.size, np.unique(np.asarray(img))
    issues = []
    if image_size is not None and size != image_size:
        issues.append(f"mask is {size[0]}x{size[1]} but its image is {image_size[0]}x{image_size[1]}")
    bad = values[~_VALID[values]]
    if bad.size:
        issues.append(f"mask values outside 0-{NUM_CLASSES - 1} and {IGNORE_INDEX}: {bad[:8].tolist()}")
    return issues


def _readable(path: Path, fn: Callable[[Path], T], report: CheckReport) -> T | None:
    """fn(path), recording an unreadable file as a problem (returns None then)."""
    try:
        return fn(path)
    except SegxError as e:  # open_image's refusals (empty file, decompression-bomb guard, unreadable header)
        report.problems.append(Problem(path, str(e).removeprefix(f"{path}: ")))
        return None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        report.problems.append(Problem(path, f"unreadable ({str(e).strip() or type(e).__name__})"))
        return None


def _check_id(root: Path, image_id: str, report: CheckReport) -> None:
    image = root / IMAGE_DIR / f"{image_id}.jpg"
    mask = root / MASK_DIR / f"{image_id}.png"
    if not mask.is_file() and (root / AUG_MASK_DIR / f"{image_id}.png").is_file():
        mask = root / AUG_MASK_DIR / f"{image_id}.png"
    size = None
    if not image.is_file():
        report.problems.append(Problem(image, f"image of listed ID {image_id} is missing"))
    else:
        size = _readable(image, _image_size, report)
    if not mask.is_file():
        report.problems.append(Problem(mask, f"mask of listed ID {image_id} is missing"))
        return
    for issue in _readable(mask, lambda p: _check_mask(p, size), report) or []:
        report.problems.append(Problem(mask, issue))


def check_voc(root: str | Path) -> CheckReport:
    """Check every list in ImageSets/Segmentation and every image/mask they name; never raises on tree problems."""
    root = resolve_voc_root(root)
    report = CheckReport(root)
    for sub in (IMAGE_DIR, MASK_DIR, str(LIST_DIR)):
        if not (root / sub).is_dir():
            report.problems.append(Problem(root / sub, "folder is missing"))
    ids: dict[str, None] = {}
    for name in available_lists(root):
        try:
            listed = read_list(list_path(root, name))
        except SegxError as e:
            report.problems.append(Problem(list_path(root, name), str(e).split(": ", 1)[-1]))
            continue
        report.lists[name] = len(listed)
        if not listed:
            report.problems.append(Problem(list_path(root, name), "list is empty"))
        ids.update(dict.fromkeys(listed))
    if (root / LIST_DIR).is_dir() and not report.lists:
        report.problems.append(Problem(root / LIST_DIR, "no split lists (*.txt)"))
    report.n_ids = len(ids)
    _check_ids(root, list(ids), report)
    return report


def _check_ids(root: Path, ids: list[str], report: CheckReport) -> None:
    from segx.log import progress

    with progress(transient=True) as bar:
        for image_id in bar.track(ids, description="checking"):
            _check_id(root, image_id, report)


def print_problems(report: CheckReport) -> None:
    """A rich table of the problems on stderr (nothing when the tree is clean)."""
    from segx.log import console

    if not report.problems:
        return
    table = Table("file", "problem", title=f"{len(report.problems)} problem(s) in {report.root}", title_justify="left")
    for p in report.problems:
        shown = p.path.relative_to(report.root) if p.path.is_relative_to(report.root) else p.path
        table.add_row(str(shown), p.message)
    console.print(table)
