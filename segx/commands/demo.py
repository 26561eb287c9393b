"""`segx demo`: the whole job on the synthetic VOC set, end to end, with a report (calls segx.demo.run_demo)."""
from __future__ import annotations

from pathlib import Path

import click


@click.command("demo")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/demo"), show_default=True,
              help="Folder for everything the demo makes (data, run, exports, bench, predictions, report).")
@click.option("--quick", is_flag=True, help="A ~1-minute smoke version: tiny set, one short epoch.")
@click.option("--device", default="auto", show_default=True, help="auto (CUDA when present), cpu or cuda.")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Training epochs [default: 20; 1 with --quick].")
def command(out: Path, quick: bool, device: str, epochs: int | None) -> None:
    """Run the whole job on a synthetic VOC set: synth -> train -> eval -> export (ONNX, OpenVINO, TensorRT on
    CUDA; FP32 and INT8) with parity -> bench -> predict on a video -> report.md and report.html.

    \b
    Examples:
      segx demo                      # about 10 minutes on 2 CPU cores
      segx demo --quick --out /tmp/d # smoke test
    """
    import dataclasses

    from segx.demo import DemoConfig, run_demo

    cfg = DemoConfig.quick(out) if quick else DemoConfig(out=out)
    cfg = dataclasses.replace(cfg, device=device, **({"epochs": epochs} if epochs else {}))
    res = run_demo(cfg)
    click.echo(f"report: {res.report['html']} (and {res.report['md'].name}); total {res.timings['total']} s")
