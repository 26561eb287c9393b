"""`segx data check`: a clean tree passes; every kind of problem is listed (all of them), exit 1 with one summary."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from PIL import Image

from segx.cli import cli
from segx.data.check import check_voc
from segx.data.voc import write_mask


def _broken_tree(synth_voc: Path, tmp_path: Path) -> tuple[Path, list[str]]:
    root = Path(shutil.copytree(synth_voc, tmp_path / "VOCdevkit" / "VOC2012"))
    ids = (root / "ImageSets/Segmentation/trainval.txt").read_text().split()
    (root / "JPEGImages" / f"{ids[0]}.jpg").unlink()                                     # missing image
    (root / "SegmentationClass" / f"{ids[1]}.png").unlink()                              # missing mask
    write_mask(root / "SegmentationClass" / f"{ids[2]}.png", np.zeros((10, 12), np.uint8))  # size mismatch
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(root / "SegmentationClass" / f"{ids[3]}.png")  # mode L
    bad = np.zeros((64, 64), np.uint8)
    bad[0, 0], bad[1, 1] = 21, 100
    write_mask(root / "SegmentationClass" / f"{ids[4]}.png", bad)                        # values outside 0-20/255
    (root / "JPEGImages" / f"{ids[5]}.jpg").write_bytes(b"garbage")                     # unreadable image
    data = (root / "JPEGImages" / f"{ids[6]}.jpg").read_bytes()
    (root / "JPEGImages" / f"{ids[6]}.jpg").write_bytes(data[: len(data) // 2])         # truncated JPEG
    with open(root / "ImageSets/Segmentation/val.txt", "a") as f:
        f.write("ghost_000001\n")                                                         # listed, nothing there
    shutil.rmtree(root / "SegmentationObject")                                            # optional: not a problem
    return root, ids


def test_clean_tree_passes(synth_voc: Path) -> None:
    report = check_voc(synth_voc.parent)
    assert report.problems == [] and report.n_ids == 24 and report.lists == {"train": 19, "trainval": 24, "val": 5}
    res = CliRunner().invoke(cli, ["data", "check", "--root", str(synth_voc)])
    assert res.exit_code == 0 and "OK (24 listed images in 3 lists)" in res.stdout


def test_every_problem_is_listed(synth_voc: Path, tmp_path: Path) -> None:
    root, ids = _broken_tree(synth_voc, tmp_path)
    report = check_voc(root)
    messages = {p.path.name: p.message for p in report.problems}
    assert "missing" in messages[f"{ids[0]}.jpg"]
    assert "missing" in messages[f"{ids[1]}.png"]
    assert "mask is 12x10 but its image is 64x64" == messages[f"{ids[2]}.png"]
    assert "mode L" in messages[f"{ids[3]}.png"]
    assert "[21, 100]" in messages[f"{ids[4]}.png"]
    assert messages[f"{ids[5]}.jpg"].startswith("unreadable")
    assert messages[f"{ids[6]}.jpg"].startswith("unreadable")
    assert "ghost_000001.jpg" in messages and "ghost_000001.png" in messages
    assert len(report.problems) == 9 == len(messages)


def test_cli_lists_problems_and_exits_1(synth_voc: Path, tmp_path: Path) -> None:
    root, ids = _broken_tree(synth_voc, tmp_path)
    res = CliRunner().invoke(cli, ["data", "check", "--root", str(tmp_path)])
    assert res.exit_code == 1
    assert res.stderr.strip().splitlines()[-1] == f"segx: error: 9 problem(s) in {root}; see the list above"
    assert ids[4] in res.stderr and "ghost_000001" in res.stderr


def test_missing_folders_are_problems(tmp_path: Path) -> None:
    root = tmp_path / "VOC2012"
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    problems = {p.path.name: p.message for p in check_voc(root).problems}
    assert problems == {"JPEGImages": "folder is missing", "SegmentationClass": "folder is missing",
                        "Segmentation": "no split lists (*.txt)"}
