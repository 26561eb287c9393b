"""`segx parity`: the accuracy gate on any model file against its PyTorch checkpoint (parses options, calls
segx.parity.check_file, prints a table like export's; exit 1 when it fails)."""
from __future__ import annotations

from pathlib import Path

import click

from segx.errors import SegxError


@click.command("parity", short_help="Judge any model file against its PyTorch checkpoint (the export gate).")
@click.argument("model", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--ref", "reference", required=True, type=click.Path(path_type=Path),
              help="The segx .pt checkpoint the model was exported from (or torchvision:NAME).")
@click.option("--data", type=click.Path(path_type=Path), default=None,
              help="VOC root with labels (without it: random inputs, agreement only).")
@click.option("--split", default="val", show_default=True, help="Split to score.")
@click.option("--n", "n", type=click.IntRange(min=1), default=None,
              help="Cap at the first N images of the split [default: the whole split].")
@click.option("--runtime", default=None, help="Runtime to open MODEL with [default: by its suffix].")
@click.option("--precision", default=None, help="Judge with this precision's gate [default: the file's own].")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
def command(model: Path, reference: Path, data: Path | None, split: str, n: int | None, runtime: str | None,
            precision: str | None, device: str) -> None:
    """Run MODEL and the PyTorch checkpoint --ref on the same images and judge MODEL against its precision's gate.

    The accuracy protocol of `segx export` and `segx eval`: every image of --split (or the first --n), each at its
    own size for a dynamic model and resized for a fixed one, scored at the mask's size; prints the sample size and
    the bootstrap 95 % interval of the mIoU drop. Gates: fp32 agreement ≥ 99.9 %, fp16/bf16 ≥ 99.5 %, int8 mIoU
    drop ≤ 1 point. Exit 1 when the model fails.

    \b
    Examples:
      segx parity runs/lraspp/best_int8.onnx --ref runs/lraspp/best.pt --data data/synth
      segx parity edited.onnx --ref runs/lraspp/best.pt --data data/synth --split val --n 100 --precision int8
    """
    from rich.console import Console
    from rich.table import Table

    from segx.commands.export import add_check, add_columns
    from segx.parity import check_file

    result = check_file(model, reference, data=data, split=split, n=n, device=device, runtime=runtime,
                        precision=precision)
    table = Table(title=f"segx parity: {model.name} against {reference}", title_justify="left")
    add_columns(table)
    add_check(table, result, result.precision, model.name)
    console = Console()
    Console(width=None if console.is_terminal else 140).print(table)
    click.echo(f"{'PASS' if result.passed else 'FAIL'}: {result.reason} ({result.sample})")
    if not result.passed:
        raise SegxError(f"{model} failed the {result.precision} parity gate: {result.reason}")
