"""Split lists: the seed split (exact counts, disjoint, reproducible, scaled), list_ids, split_pair, and the CLI."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from segx.cli import cli
from segx.data.splits import SEED_COUNTS, list_ids, make_seed_split, seed_counts, split_pair
from segx.errors import SegxError


def _read(root: Path, name: str) -> list[str]:
    return (root / "ImageSets" / "Segmentation" / f"{name}.txt").read_text().split()


def test_synth_2913_then_split_gives_exact_seed_counts(tmp_path: Path) -> None:
    """The issue's done-when: `segx data synth --n 2913 --size 32` then `segx data split`, identical on a rerun."""
    runner = CliRunner()
    out = tmp_path / "synth"
    res = runner.invoke(cli, ["data", "synth", "--out", str(out), "--n", "2913", "--size", "32"])
    assert res.exit_code == 0, res.output
    first = {}
    for attempt in range(2):
        res = runner.invoke(cli, ["data", "split", "--root", str(out)])
        assert res.exit_code == 0, res.output
        assert "1,968" in res.output and "216" in res.output and "168" in res.output
        lists = {name: _read(out / "VOCdevkit" / "VOC2012", name) for name in SEED_COUNTS}
        assert {k: len(v) for k, v in lists.items()} == SEED_COUNTS
        assert sum(len(set(v)) for v in lists.values()) == len(set().union(*map(set, lists.values()))) == 2352
        assert set().union(*map(set, lists.values())) <= set(_read(out / "VOCdevkit" / "VOC2012", "trainval"))
        if attempt == 0:
            first = lists
    assert lists == first


def test_seed_changes_the_draw_and_small_sets_scale(synth_voc: Path, tmp_path: Path) -> None:
    root = Path(shutil.copytree(synth_voc, tmp_path / "VOC2012"))
    a = make_seed_split(root, seed=0)
    b = make_seed_split(root, seed=1)
    assert {k: len(v) for k, v in a.items()} == seed_counts(24) == {"segx_train": 20, "segx_val": 2, "segx_test": 2}
    assert a != b and sorted(sum(a.values(), [])) == sorted(_read(root, "trainval"))


@pytest.mark.parametrize("n", [3, 24, 100, 1000, 2351, 2352, 5000])
def test_seed_counts_sum_and_proportions(n: int) -> None:
    counts = seed_counts(n)
    assert sum(counts.values()) == min(n, 2352)
    for k, v in counts.items():
        assert abs(v - min(n, 2352) * SEED_COUNTS[k] / 2352) < 1


def test_list_ids_makes_seed_split_on_demand(synth_voc: Path, tmp_path: Path) -> None:
    root = Path(shutil.copytree(synth_voc, tmp_path / "VOC2012"))
    assert not (root / "ImageSets/Segmentation/segx_val.txt").exists()
    val = list_ids(tmp_path, "segx_val")
    assert val == _read(root, "segx_val") and len(val) == 2
    assert list_ids(root, "train") == _read(root, "train")


def test_list_id_errors(synth_voc: Path) -> None:
    with pytest.raises(SegxError, match="unknown split list 'trian' \\(did you mean 'train'\\?\\)"):
        list_ids(synth_voc, "trian")
    with pytest.raises(SegxError, match="segx data download --root DATA --sbd"):
        list_ids(synth_voc, "train_aug")
    with pytest.raises(SegxError, match="bad split name"):
        list_ids(synth_voc, "../train")


def test_split_pair() -> None:
    assert split_pair("official") == ("train", "val")
    assert split_pair("seed") == ("segx_train", "segx_val")
    assert split_pair("aug") == ("train_aug", "val")
    with pytest.raises(SegxError, match="did you mean 'seed'"):
        split_pair("sed")


@pytest.mark.parametrize(("args", "message"), [
    (["data", "split", "--root", "{tmp}/missing"], "no such folder"),
    (["data", "split", "--root", "{tmp}"], "no VOC2012 tree"),
    (["data", "synth", "--out", "{tmp}/s", "--n", "1"], "--n must be an integer >= 2"),
    (["data", "synth", "--out", "{tmp}/s", "--size", "4"], "--size must be an integer from 16"),
    (["data", "synth", "--out", "{tmp}/s", "--seed", "-1"], "--seed must be an integer >= 0"),
    (["data", "split", "--root", "{tmp}", "--seed", "-2"], "--seed must be an integer >= 0"),
    (["data", "check", "--root", "{tmp}/missing"], "no such folder"),
])
def test_cli_bad_input_is_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    res = CliRunner().invoke(cli, [a.format(tmp=tmp_path) for a in args])
    assert res.exit_code == 1
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("segx: error: ") and message in lines[0]
