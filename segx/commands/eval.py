"""`segx eval`: evaluate a model file on a VOC split; prints a rich table and optionally writes JSON."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click


def _table(result: dict[str, Any]) -> Any:
    from rich.table import Table

    table = Table("metric", "value", title=f"{result['arch']} on {result['split']} ({result['images']} images)")
    for key, label in (("miou", "mIoU"), ("pixel_acc", "pixel accuracy"), ("mean_acc", "mean class accuracy"),
                       ("fwiou", "frequency-weighted IoU"),
                       ("boundary_f1", f"boundary F1 (tol {result['boundary_tol_px']:g} px)")):
        table.add_row(label, f"{100 * result[key]:.2f} %")
    per = Table("class", "IoU", "boundary F1", title="per class")
    for name, iou in result["per_class_iou"].items():
        bf = result["per_class_boundary_f1"].get(name)
        per.add_row(name, "-" if iou is None else f"{100 * iou:.2f} %", "-" if bf is None else f"{100 * bf:.2f} %")
    return table, per


@click.command("eval")
@click.option("--data", type=click.Path(path_type=Path), required=True,
              help="VOC folder (VOCdevkit/VOC2012, VOCdevkit or its parent).")
@click.option("--model", type=click.Path(path_type=Path), required=True,
              help="Model file: a segx .pt checkpoint, or an exported .onnx / .xml / .engine / .torchscript; or "
                   "torchvision:NAME (published VOC weights, docs/pretrained.md).")
@click.option("--split", default="val", show_default=True, help="Any list in ImageSets/Segmentation.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Also write the results to this JSON file.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--tol", type=click.FloatRange(min=0), default=2, show_default=True,
              help="Boundary F1 distance tolerance in pixels.")
@click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True, help="DataLoader workers.")
@click.option("--n", "n", type=click.IntRange(min=1), default=None,
              help="Cap at the first N images of the split [default: the whole split].")
def command(data: Path, model: Path, split: str, json_path: Path | None, device: str, tol: float,
            workers: int, n: int | None) -> None:
    """Evaluate a model on a VOC split at each image's original resolution.

    Reports mIoU (classes present in the split's masks or predictions), per-class IoU, pixel accuracy, mean
    class accuracy, frequency-weighted IoU and the boundary F1 score (BF, Csurka et al. 2013). The JSON holds
    fractions (0..1), not percent. See docs/eval.md for the exact definitions.

    \b
    Examples:
      segx eval --data data/synth --model runs/lraspp_mobilenet_v3_large/best.pt
      segx eval --data data --model runs/deeplabv3_resnet50/best.pt --split segx_test --json test.json
      segx eval --data data --model runs/lraspp_mobilenet_v3_large/best.onnx
    """
    from rich.console import Console

    from segx.evaluate import evaluate
    from segx.io import atomic_write_json, check_output_file

    if json_path is not None:
        check_output_file(json_path, "--json")
    result = evaluate(model, data, split, device=device, tol=tol, workers=workers, n=n)
    console = Console(width=None if sys.stdout.isatty() else 100)
    for table in _table(result):
        console.print(table)
    if json_path is not None:
        atomic_write_json(json_path, result)
        click.echo(f"wrote {json_path}")
