"""Split lists in ImageSets/Segmentation: reading any list, the reproducible seed split (segx_train/val/test,
1,968/216/168 drawn from trainval), and the train/val pair behind `train --split official|seed|aug`."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from segx.data.layout import available_lists, list_path, resolve_voc_root
from segx.errors import SegxError, unknown_choice
from segx.io import atomic_write_text

log = logging.getLogger(__name__)

SEED_COUNTS: dict[str, int] = {"segx_train": 1968, "segx_val": 216, "segx_test": 168}
SEED_TOTAL = sum(SEED_COUNTS.values())  # 2,352
SPLIT_PAIRS: dict[str, tuple[str, str]] = {
    "official": ("train", "val"), "seed": ("segx_train", "segx_val"), "aug": ("train_aug", "val")}


def split_pair(name: str) -> tuple[str, str]:
    """The (train list, val list) names for `train --split official|seed|aug`."""
    if name not in SPLIT_PAIRS:
        raise unknown_choice("split", name, SPLIT_PAIRS)
    return SPLIT_PAIRS[name]


def read_list(path: Path) -> list[str]:
    """IDs of one list file, in file order (blank lines skipped; VOC's `id  1` list format keeps the id)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise SegxError(f"{path}: unreadable split list ({e})") from e
    ids = [line.split()[0] for line in lines if line.strip()]
    bad = next((i for i in ids if "/" in i or "\\" in i or i in (".", "..")), None)
    if bad is not None:  # an ID is a file stem: a path in a list would read files outside the VOC tree
        raise SegxError(f"{path}: bad ID {bad!r} (IDs are file stems such as 2007_000032, without / or ..)")
    return ids


def list_ids(root: str | Path, split: str) -> list[str]:
    """IDs of list `split` (train, val, trainval, segx_train, train_aug, ...); the seed split is made on demand."""
    root = resolve_voc_root(root)
    if not split or "/" in split or "\\" in split or split.startswith("."):
        raise SegxError(f"bad split name {split!r}: give a list name such as train, val or segx_train")
    path = list_path(root, split)
    if not path.exists() and split in SEED_COUNTS:
        log.info("%s is missing: making the seed split (seed 0)", path.name)
        make_seed_split(root)
    if not path.exists():  # a folder named <split>.txt is read below and refused as unreadable
        if split == "train_aug":
            raise SegxError(f"{path}: no train_aug list; get SBD with `segx data download --root DATA --sbd`")
        choices = sorted({*available_lists(root), *SEED_COUNTS})
        raise SegxError(f"{unknown_choice('split list', split, choices)} (no file {path})")
    ids = read_list(path)
    if not ids:
        raise SegxError(f"{path}: the list is empty; run `segx data check --root {root}`")
    return ids


def seed_counts(n: int) -> dict[str, int]:
    """1,968/216/168 when n >= 2,352; otherwise the same proportions scaled to n (largest remainder, sum = n)."""
    if n >= SEED_TOTAL:
        return dict(SEED_COUNTS)
    exact = {k: n * v / SEED_TOTAL for k, v in SEED_COUNTS.items()}
    counts = {k: int(v) for k, v in exact.items()}
    for k in sorted(exact, key=lambda k: exact[k] - counts[k], reverse=True)[: n - sum(counts.values())]:
        counts[k] += 1
    return counts


def make_seed_split(root: str | Path, seed: int = 0) -> dict[str, list[str]]:
    """Draw segx_train/val/test from a default_rng(seed) permutation of the sorted trainval IDs (atomic writes)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise SegxError(f"--seed must be an integer >= 0, got {seed!r}")
    root = resolve_voc_root(root)
    trainval = sorted(set(list_ids(root, "trainval")))
    counts = seed_counts(len(trainval))
    if len(trainval) < SEED_TOTAL:
        log.info("trainval has %d images (< %d): seed split scaled to %s", len(trainval), SEED_TOTAL,
                 "/".join(str(c) for c in counts.values()))
    order = np.random.default_rng(seed).permutation(len(trainval))
    splits, start = {}, 0
    for name, count in counts.items():
        splits[name] = sorted(trainval[j] for j in order[start:start + count])
        start += count
    for name, ids in splits.items():
        atomic_write_text(list_path(root, name), "".join(f"{i}\n" for i in ids))
    return splits
