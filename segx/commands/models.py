"""`segx models`: the registered architectures with parameters, GFLOPs, pretrained sources and export formats."""
from __future__ import annotations

import json
import sys

import click


# the table's columns (docs/models.md shows the same ones); the 5th is "GFLOPs @<imgsz>²"
COLUMNS = ("name", "family", "library", "params (M)", "GFLOPs", "pretrained", "exports (parity-tested)",
           "train defaults")


@click.command("models")
@click.option("--imgsz", type=click.IntRange(32, 4096), default=512, show_default=True,
              help="Square input size the GFLOPs are counted at.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def command(imgsz: int, as_json: bool) -> None:
    """List the segmentation architectures segx can train and export.

    Parameters count what inference uses (auxiliary training heads excluded); GFLOPs are counted by
    torch.utils.flop_counter for one 1×3×IMGSZ×IMGSZ image (a multiply-add counts as 2 FLOPs), on the meta
    device, so listing is quick (Mask R-CNN: its fixed work at the proposal and detection caps).
    Pretrained: the weight sources `segx train --weights` loads. Exports: the formats whose export passes the
    parity check in segx's test suite; "+trt (untested)" marks a format expected to work but not yet checked
    (TensorRT needs a GPU). --json adds the reason for any format an arch does not export.

    \b
    Examples:
      segx models
      segx models --imgsz 256
      segx models --json
    """
    from rich.console import Console
    from rich.table import Table

    from exporters.edge import arch_limits
    from segx.models import get_arch, list_archs
    from segx.models.profile import profile

    rows = []
    for name in list_archs():
        spec, prof = get_arch(name), profile(name, imgsz)
        rows.append({"name": name, "family": spec.family, "library": spec.library, "params_m": prof.params / 1e6,
                     "gflops": prof.flops / 1e9, "imgsz": imgsz, "pretrained": list(spec.pretrained),
                     "export_formats": [f for f in spec.export_formats if f not in arch_limits(name)],
                     "parity_tested": list(spec.parity_tested),
                     "export_notes": {**spec.export_notes, **arch_limits(name)}, "optimizer": spec.optimizer, "lr": spec.lr,
                     "crop": spec.crop, "epochs": spec.epochs, "description": spec.description})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(*COLUMNS[:4], f"GFLOPs @{imgsz}²", *COLUMNS[5:], title="segx architectures")
    for r in rows:
        table.add_row(r["name"], r["family"], r["library"], f"{r['params_m']:.2f}", f"{r['gflops']:.1f}",
                      ", ".join(r["pretrained"]) or "-", _exports(r),
                      f"{r['optimizer']} {r['lr']:g}, crop {r['crop']}, {r['epochs']} ep")
    Console(width=None if sys.stdout.isatty() else 160).print(table)


def _exports(row: dict) -> str:
    tested = [f for f in row["export_formats"] if f in row["parity_tested"]]
    untested = [f for f in row["export_formats"] if f not in row["parity_tested"]]
    return ",".join(tested) + (f" +{','.join(untested)} (untested)" if untested else "") + \
        "".join(f" no {fmt}" for fmt in row["export_notes"])
