"""`segx data download|split|synth|check`: get, split, synthesise and validate VOC trees (parses, calls segx.data)."""
from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from segx.errors import SegxError

SYNTH_ROOT = "data/synth"  # where `segx data synth` writes by default; split/check look there by default too


@click.group("data")
def command() -> None:
    """Get, split, synthesise and check PASCAL VOC 2012 data.

    \b
    Examples:
      segx data synth --out data/synth --n 200 --size 256
      segx data download --root data --sbd
      segx data split --root data --seed 0
      segx data check --root data
    """


@command.command("download", short_help="Download VOC2012 (+SBD), MD5-verified, safe extraction.")
@click.option("--root", type=click.Path(path_type=Path), default="data", show_default=True,
              help="Folder to download into; VOC lands in ROOT/VOCdevkit/VOC2012.")
@click.option("--sbd", is_flag=True, help="Also get SBD and build the train_aug split (10,582 images).")
@click.option("--url", default=None, help="Mirror URL of VOCtrainval_11-May-2012.tar (same MD5 is required).")
@click.option("--sbd-url", default=None, help="Mirror URL of SBD's benchmark.tgz (same MD5 is required).")
def download(root: Path, sbd: bool, url: str | None, sbd_url: str | None) -> None:
    """Download VOC2012 trainval (and SBD with --sbd), verify MD5, extract safely.

    The sources and MD5 sums are torchvision's. Interrupted downloads resume (HTTP Range) from FILE.part; a
    verified archive is never fetched twice; extraction refuses members that would land outside ROOT.

    \b
    Examples:
      segx data download --root data
      segx data download --root data --sbd
      segx data download --root data --url http://mirror.example/VOCtrainval_11-May-2012.tar
    """
    from segx.data.download import download_voc

    voc = download_voc(root, sbd=sbd, url=url, sbd_url=sbd_url)
    click.echo(f"VOC2012 ready at {voc}")


@command.command("split", short_help="Write the seed split 1,968/216/168 (segx_*.txt).")
@click.option("--root", type=click.Path(path_type=Path), default=SYNTH_ROOT, show_default=True,
              help="VOC folder: VOCdevkit/VOC2012, VOCdevkit, or the folder holding VOCdevkit.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the permutation of trainval IDs.")
def split(root: Path, seed: int) -> None:
    """Write the seed split segx_train/segx_val/segx_test (1,968/216/168) into ImageSets/Segmentation.

    The IDs are drawn from a fixed-seed permutation of the sorted trainval IDs, so every machine gets the same
    files. A trainval smaller than 2,352 images gets the counts scaled proportionally.

    \b
    Examples:
      segx data split --root data
      segx data split --root data/synth --seed 1
    """
    from segx.data.splits import make_seed_split

    splits = make_seed_split(root, seed=seed)
    table = Table("list", "images", title=f"seed split (seed {seed})")
    for name, ids in splits.items():
        table.add_row(f"{name}.txt", f"{len(ids):,}")
    Console().print(table)


@command.command("synth", short_help="Write a synthetic VOC2012 set.")
@click.option("--out", type=click.Path(path_type=Path), default=SYNTH_ROOT, show_default=True,
              help="Output folder; the set is written to OUT/VOCdevkit/VOC2012.")
@click.option("--n", type=int, default=200, show_default=True, help="Number of images (>= 2), 80% train / 20% val.")
@click.option("--size", type=int, default=256, show_default=True, help="Image side in pixels (16..4096).")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed; the same seed gives the same files.")
def synth(out: Path, n: int, size: int, seed: int) -> None:
    """Write a synthetic VOC2012 set: 1–4 textured objects of the 20 classes per image, exact VOC layout.

    Palette PNG masks with void (255) borders, instance masks, train/val/trainval lists. A synthetic set already at
    OUT is replaced; any other VOCdevkit there is left alone (error).

    \b
    Examples:
      segx data synth
      segx data synth --out data/synth --n 2913 --size 32 --seed 0
    """
    from segx.data.synth import make_synthetic_voc
    from segx.log import progress

    bar = progress(transient=True)
    task = bar.add_task("synthesising", total=n)

    def advance(k: int) -> None:  # the bar starts with the first image, so argument errors stay one clean line
        if not bar.live.is_started:
            bar.start()
        bar.advance(task, k)

    try:
        root = make_synthetic_voc(out, n=n, size=size, seed=seed, progress=advance)
    finally:
        if bar.live.is_started:
            bar.stop()
    click.echo(f"wrote {n} images ({size}x{size}) to {root}")


@command.command("check", short_help="Validate a VOC tree; list every problem.")
@click.option("--root", type=click.Path(path_type=Path), default=SYNTH_ROOT, show_default=True,
              help="VOC folder: VOCdevkit/VOC2012, VOCdevkit, or the folder holding VOCdevkit.")
def check(root: Path) -> None:
    """Validate a VOC tree and list every problem; exit 1 if there is any.

    Checks: missing folders, a listed ID without image or mask, unreadable files, image/mask size mismatch,
    masks that are not palette PNGs, mask values outside 0–20 and 255.

    \b
    Examples:
      segx data check --root data
      segx data check --root data/synth/VOCdevkit/VOC2012
    """
    from segx.data.check import check_voc, print_problems

    report = check_voc(root)
    print_problems(report)
    if report.problems:
        raise SegxError(f"{len(report.problems)} problem(s) in {report.root}; see the list above")
    click.echo(f"{report.root}: OK ({report.n_ids:,} listed images in {len(report.lists)} lists)")
