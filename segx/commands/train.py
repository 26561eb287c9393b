"""`segx train`: parse options into a TrainConfig and call segx.train.train (torchrun-aware)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

# options that map 1:1 onto TrainConfig fields
_FIELDS = ("data", "arch", "split", "epochs", "batch", "crop", "lr", "optimizer", "out", "amp", "amp_dtype",
           "device", "workers", "seed", "weights", "overwrite", "deterministic")


@click.command("train")
@click.option("--data", type=click.Path(path_type=Path),
              help="VOC folder: VOCdevkit/VOC2012, VOCdevkit or its parent.  [required unless --resume]")
@click.option("--arch", help="Architecture name (see `segx models`).  [required unless --resume]")
@click.option("--split", type=click.Choice(["official", "seed", "aug"]), default="official", show_default=True,
              help="Train/val lists: official = train/val, seed = segx_train/segx_val, aug = train_aug/val.")
@click.option("--epochs", type=click.IntRange(min=1), help="Epochs [default: the arch's, see `segx models`].")
@click.option("--batch", type=click.IntRange(min=1), default=8, show_default=True, help="Batch size per process.")
@click.option("--crop", type=click.IntRange(min=16), help="Square training crop in pixels [default: the arch's].")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), help="Base learning rate [default: the arch's].")
@click.option("--optimizer", type=click.Choice(["sgd", "adamw"]), help="Optimizer [default: the arch's].")
@click.option("--out", type=click.Path(path_type=Path), help="Run folder [default: runs/ARCH].")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last.pt (its saved options "
                                                "apply; options given here override them).")
@click.option("--overwrite", is_flag=True, help="Replace an earlier run in --out.")
@click.option("--amp", is_flag=True, help="Mixed precision: bf16 autocast on CPU, fp16 + GradScaler on CUDA.")
@click.option("--amp-dtype", type=click.Choice(["fp16", "bf16"]), help="Override the AMP dtype (bf16 on CUDA too).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--workers", type=click.IntRange(min=0), help="DataLoader workers [default: cores // 2, at most 4].")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of weights, data order and augmentation.")
@click.option("--weights", metavar="SOURCE", help="Start from: torchvision (COCO-with-VOC-labels weights of the 4 "
              "torchvision archs), imagenet (backbone / encoder), an http(s) URL or a file (segx .pt or state_dict "
              "of the same arch). See `segx models` and docs/pretrained.md.")
@click.option("--deterministic", is_flag=True, help="Use deterministic algorithms only (slower on CUDA).")
@click.pass_context
def command(ctx: click.Context, resume: bool, **opts: Any) -> None:
    """Train a segmentation model on a VOC tree; writes last.pt, best.pt, metrics.jsonl and curves.png to --out.

    Recipe: SGD (momentum 0.9, weight decay 1e-4) or AdamW per arch, one epoch of linear warm-up then poly LR
    decay, cross-entropy ignoring void (255) plus 0.5 × the auxiliary head's loss, validation (mIoU at original
    resolution) after every epoch. Multi-GPU / multi-node: launch the same command with torchrun.

    \b
    Examples:
      segx data synth --out data/synth
      segx train --data data/synth --arch lraspp_mobilenet_v3_large
      segx train --data data --arch deeplabv3_resnet50 --split aug --crop 480 --batch 4 --epochs 30 --amp
      segx train --data data --arch lraspp_mobilenet_v3_large --weights torchvision --epochs 5
      segx train --data data --arch segformer_mit_b0 --weights imagenet
      segx train --resume --out runs/lraspp_mobilenet_v3_large
      torchrun --nproc_per_node=4 -m segx.cli train --data data --arch fcn_resnet50 --device cuda
    """
    from segx.train import TrainConfig, resume_config, train

    given = {k: v for k, v in opts.items() if k in _FIELDS and
             ctx.get_parameter_source(k) not in (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)}
    if resume:
        out = given.pop("out", None) or (Path("runs") / given["arch"] if "arch" in given else None)
        if out is None:
            raise click.UsageError("--resume needs --out RUN_FOLDER (or --arch for runs/ARCH)")
        config = resume_config(out, **given)
    else:
        missing = [f"--{k}" for k in ("data", "arch") if not opts.get(k)]
        if missing:
            raise click.UsageError(f"missing {' and '.join(missing)}")
        config = TrainConfig(**{k: v for k, v in opts.items() if k in _FIELDS and v is not None})
    run = train(config)
    if os.environ.get("RANK", "0") in ("", "0"):  # under torchrun only rank 0 reports
        click.echo(f"run saved to {run} (best.pt, last.pt, metrics.jsonl, curves.png)")
