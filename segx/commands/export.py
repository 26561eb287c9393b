"""`segx export`: a checkpoint to ONNX / TensorRT / OpenVINO / TorchScript, then the parity verdict against PyTorch
(parses options, calls exporters.run_export, prints the verdict table)."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table

from segx.errors import SegxError

if TYPE_CHECKING:
    from exporters import ExportResult


def _pct(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x * 100:.{digits}f}"


def _sci(x: float | None) -> str:
    return "-" if x is None else f"{x:.1e}"


def _miou(ref: float | None, new: float | None) -> str:
    return "-" if ref is None or new is None else f"{ref * 100:.1f}→{new * 100:.1f}"


def verdict_table(result: ExportResult) -> Table:
    """One row per precision attempt and check: |Δlogit|, argmax agreement, mIoU of both, verdict against the gate."""
    from segx.parity import gate_for

    table = Table(title=f"segx export --fmt {result.fmt}: parity against PyTorch", title_justify="left")
    for name in ("precision", "file", "images", "max|Δ|", "mean|Δ|", "agree %", "mIoU", "Δ pt", "verdict"):
        table.add_column(name, justify="left" if name in ("precision", "file", "images", "verdict") else "right")
    for a in result.attempts:
        if a.error:
            table.add_row(a.precision, a.path.name, *["-"] * 6, "[red]ERROR[/]")
        for i, c in enumerate(a.checks):
            size = f"{c.imgsz[0]}²" if c.imgsz[0] == c.imgsz[1] else f"{c.imgsz[0]}×{c.imgsz[1]}"
            verdict = ("[green]PASS[/] " if c.passed else "[red]FAIL[/] ") + gate_for(c.precision).short()
            table.add_row(a.precision if i == 0 else "", a.path.name if i == 0 else "",
                          f"{c.n_images}×{size}" + ("" if c.labels else "*"), _sci(c.max_abs_diff),
                          _sci(c.mean_abs_diff), _pct(c.pixel_agreement, 3), _miou(c.miou_ref, c.miou),
                          "-" if c.miou_delta is None else f"{c.miou_delta * 100:+.2f}", verdict)
    if any(not c.labels for a in result.attempts for c in a.checks):
        table.caption = "* no labels (random inputs without --data, or --dynamic's second-size check): logits only"
    return table


@click.command("export", short_help="Export a checkpoint (ONNX, TensorRT, OpenVINO, TorchScript) + parity check.")
@click.option("--model", "model", required=True, type=click.Path(path_type=Path),
              help="segx checkpoint to export (runs/NAME/best.pt), or torchvision:NAME (published VOC weights).")
@click.option("--fmt", required=True, help="onnx | trt (alias engine, tensorrt) | openvino | torchscript | executorch | litert | ncnn "
              "(edge formats: pip install 'segx[edge]').")
@click.option("--imgsz", type=int, default=512, show_default=True, help="Square input size (fixed shape; "
              "with --dynamic the optimisation / parity size).")
@click.option("--dynamic", is_flag=True, help="Dynamic batch and H/W (onnx, trt, openvino, torchscript).")
@click.option("--fp16", is_flag=True, help="FP16 (onnx, trt: an fp16 graph, float32 I/O and sensitive ops; openvino, "
              "litert, ncnn: fp16-stored weights).")
@click.option("--int8", is_flag=True, help="INT8 calibrated on --data (onnx, trt, openvino, executorch, litert); falls back "
              "to the best "
              "precision that passes its parity gate.")
@click.option("--data", type=click.Path(path_type=Path), default=None,
              help="VOC root: images for INT8 calibration and the parity check (without it: random inputs, "
                   "logits only).")
@click.option("--split", default="val", show_default=True, help="Split of --data to calibrate and check on.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Output folder (default: next to the checkpoint).")
@click.option("--no-simplify", is_flag=True, help="Skip onnxslim simplification (onnx, trt, openvino).")
@click.option("--no-verify", is_flag=True, help="Skip the parity check (keeps the file whatever it answers).")
@click.option("--n-verify", type=int, default=32, show_default=True, help="Images in the parity check.")
@click.option("--opset", type=click.IntRange(18, 20), default=None, help="ONNX opset 18-20 (default 18).")
@click.option("--workspace", type=float, default=4.0, show_default=True, help="TensorRT builder workspace, GiB.")
@click.option("--batch", type=int, default=1, show_default=True,
              help="trt --dynamic: the batch the engine is tuned for (profile opt; max is max(16, batch)).")
@click.option("--head", type=click.Choice(["logits", "mask", "mask+conf"]), default="logits", show_default=True,
              help="Outputs: float logits N×C×H×W, or the upsample + argmax inside the graph: a uint8 mask N×H×W "
                   "(mask+conf adds the float32 max softmax probability). Files get _mask / _maskconf.")
def command(model: Path, fmt: str, imgsz: int, dynamic: bool, fp16: bool, int8: bool, data: Path | None, split: str,
            out: Path | None, no_simplify: bool, no_verify: bool, n_verify: int, opset: int | None,
            workspace: float, batch: int, head: str) -> None:
    """Export a segx checkpoint and prove the export answers like PyTorch.

    After every export, PyTorch and the exported model segment the same --n-verify images of --split; the table
    shows max/mean |Δlogit|, argmax pixel agreement and (with labels) the mIoU of both. Gates: fp32 agreement ≥
    99.9 %, fp16 ≥ 99.5 %, int8 mIoU drop ≤ 1 point. A failing export exits 1 and leaves no file (unless
    --no-verify); a failing --int8 (or --fp16) falls back to the best precision that passes and says so.

    \b
    Output next to the checkpoint: best.onnx (best_dynamic.onnx with --dynamic), best_int8.onnx, best.xml+best.bin,
    best_fp16.xml, best.torchscript, best.engine + best.engine.json (TensorRT version, GPU, compute capability:
    other GPUs are refused) + best.engine.onnx (its source: a foreign engine is rebuilt from it).

    \b
    Examples:
      segx export --model runs/lraspp/best.pt --fmt onnx --data data/synth
      segx export --model runs/lraspp/best.pt --fmt onnx --dynamic --imgsz 512
      segx export --model runs/lraspp/best.pt --fmt openvino --int8 --data data/synth --split val
      segx export --model runs/lraspp/best.pt --fmt trt --fp16 --data data/voc
      segx export --model runs/lraspp/best.pt --fmt torchscript --out deploy/
    """
    from exporters import run_export

    result = run_export(model, fmt, imgsz=imgsz, dynamic=dynamic, fp16=fp16, int8=int8, data=data, split=split,
                        out=out, simplify=not no_simplify, verify=not no_verify, n_verify=n_verify, opset=opset,
                        workspace=workspace, batch=batch, head=head)
    if result.verified:
        console = Console()
        Console(width=None if console.is_terminal else 120).print(verdict_table(result))
    if not result.passed:
        raise SegxError(result.summary())
    click.echo(result.summary())  # after a fall-back: "int8 failed (...); kept the best precision that passed: ..."
