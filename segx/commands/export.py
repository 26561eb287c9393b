"""`segx export`: a checkpoint to ONNX / TensorRT / OpenVINO / TorchScript, then the parity verdict against PyTorch
(parses options, calls exporters.run_export, prints the verdict table)."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.table import Table

from segx.errors import SegxError

if TYPE_CHECKING:
    from exporters import ExportResult
    from segx.parity import ParityResult


def _pct(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x * 100:.{digits}f}"


def _sci(x: float | None) -> str:
    return "-" if x is None else f"{x:.1e}"


def _miou(ref: float | None, new: float | None) -> str:
    return "-" if ref is None or new is None else f"{ref * 100:.1f}→{new * 100:.1f}"


def verdict_table(result: ExportResult) -> Table:
    """One row per precision attempt and check: |Δlogit|, argmax agreement, mIoU of both, verdict against the gate."""
    table = Table(title=f"segx export --fmt {result.fmt}: parity against PyTorch", title_justify="left")
    add_columns(table)
    for a in result.attempts:
        if a.error:
            table.add_row(a.precision, a.path.name, *["-"] * 7, "[red]NOT BUILT[/] (exporter error)")
        for i, c in enumerate(a.checks):
            add_check(table, c, a.precision if i == 0 else "", a.path.name if i == 0 else "")
    if any(not c.labels for a in result.attempts for c in a.checks):
        table.caption = "* no labels (random inputs without --data): logits and agreement only"
    return table


def add_columns(table: Table) -> None:
    for name in ("precision", "file", "images", "max|Δ|", "mean|Δ|", "agree %", "mIoU", "Δ pt", "drop 95% CI",
                 "verdict"):
        table.add_column(name, justify="left" if name in ("precision", "file", "images", "verdict") else "right")


def add_check(table: Table, c: ParityResult, precision: str, file: str) -> None:
    """One parity verdict as a table row: sample size, |Δlogit|, agreement, mIoU, the drop and its interval."""
    from segx.parity import gate_for

    size = "own size" if c.imgsz is None else f"{c.imgsz[0]}²" if c.imgsz[0] == c.imgsz[1] else \
        f"{c.imgsz[0]}×{c.imgsz[1]}"
    verdict = ("[green]PASS[/] " if c.passed else "[red]FAIL[/] ") + gate_for(c.precision).short()
    ci = "-" if c.drop_ci is None else f"{c.drop_ci[0]:+.2f}..{c.drop_ci[1]:+.2f}"
    table.add_row(precision, file, f"{c.n_images}×{size}" + ("" if c.labels else "*"), _sci(c.max_abs_diff),
                  _sci(c.mean_abs_diff), _pct(c.pixel_agreement, 3), _miou(c.miou_ref, c.miou),
                  "-" if c.miou_delta is None else f"{c.miou_delta * 100:+.2f}", ci, verdict)


def sensitivity_table(rows: list[dict[str, Any]]) -> Table:
    """--explain: layer groups by the mIoU their quantisation costs (measured: all but that group quantised)."""
    table = Table(title="INT8 sensitivity (mIoU drop recovered when only this group stays float)",
                  title_justify="left")
    for name in ("layer group", "nodes", "drop without it pt", "cost pt"):
        table.add_column(name, justify="left" if name == "layer group" else "right")
    for r in rows:
        table.add_row(r["group"], str(r["nodes"]), f"{r['drop_without']:.2f}", f"{r['cost']:+.2f}")
    return table


def print_int8_notes(result: ExportResult, console: Console) -> None:
    """Calibration, tuning and (with --explain) the sensitivity table of the INT8 attempt."""
    for a in result.attempts:
        for key in ("calibration", "tuning"):
            if a.notes.get(key):
                console.print(f"{a.precision} {key}: {a.notes[key]}", highlight=False)
        if a.notes.get("sensitivity"):
            console.print(sensitivity_table(a.notes["sensitivity"]))  # type: ignore[arg-type]


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
@click.option("--split", default="val", show_default=True, help="Split of --data the parity gate scores.")
@click.option("--calib-split", default="train", show_default=True, help="INT8: split to calibrate on (disjoint "
              "from the gate's images whenever the data allow; a split the data lack falls back to --split).")
@click.option("--calib-n", type=click.IntRange(min=1), default=300, show_default=True,
              help="INT8: at most this many calibration images.")
@click.option("--explain", is_flag=True, help="INT8: measure and print which layers' quantisation costs most mIoU.")
@click.option("--strict", is_flag=True, help="Exit 1 whenever the precision kept is not the one asked for.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Output folder (default: next to the checkpoint).")
@click.option("--no-simplify", is_flag=True, help="Skip onnxslim simplification (onnx, trt, openvino).")
@click.option("--no-verify", is_flag=True, help="Skip the parity check (keeps the file whatever it answers).")
@click.option("--n-verify", type=click.IntRange(min=1), default=None,
              help="Cap the parity check at the first N images of --split [default: the whole split].")
@click.option("--opset", type=click.IntRange(18, 20), default=None, help="ONNX opset 18-20 (default 18).")
@click.option("--workspace", type=float, default=4.0, show_default=True, help="TensorRT builder workspace, GiB.")
@click.option("--batch", type=int, default=1, show_default=True,
              help="trt --dynamic: the batch the engine is tuned for (profile opt; max is max(16, batch)).")
@click.option("--head", type=click.Choice(["logits", "mask", "mask+conf"]), default="logits", show_default=True,
              help="Outputs: float logits N×C×H×W, or the upsample + argmax inside the graph: a uint8 mask N×H×W "
                   "(mask+conf adds the float32 max softmax probability). Files get _mask / _maskconf.")
def command(model: Path, fmt: str, imgsz: int, dynamic: bool, fp16: bool, int8: bool, data: Path | None, split: str,
            calib_split: str, calib_n: int, explain: bool, strict: bool, out: Path | None, no_simplify: bool,
            no_verify: bool, n_verify: int | None, opset: int | None, workspace: float, batch: int,
            head: str) -> None:
    """Export a segx checkpoint and prove the export answers like PyTorch.

    After every export, PyTorch and the exported model segment every image of --split (or the first --n-verify),
    each at its own size for a dynamic export and resized for a fixed one, scored at the mask's size (the protocol
    of `segx eval` and `segx parity`); the table shows the sample, max/mean |Δlogit|, argmax pixel agreement, the
    mIoU of both, the drop and its bootstrap 95 % interval. Gates: fp32 agreement ≥ 99.9 %, fp16 ≥ 99.5 %, int8
    mIoU drop ≤ 1 point. A failing export exits 1 and leaves no file (unless --no-verify); a failing --int8 (or
    --fp16) falls back to the best precision that passes and says so (--strict: and exits 1). INT8 calibrates on
    --calib-split and keeps the layers that cost most mIoU in float until the drop is within 0.5 point.

    \b
    Output next to the checkpoint: best.onnx (best_dynamic.onnx with --dynamic), best_int8.onnx, best.xml+best.bin,
    best_fp16.xml, best.torchscript, best.engine + best.engine.json (TensorRT version, GPU, compute capability:
    other GPUs are refused) + best.engine.onnx (its source: a foreign engine is rebuilt from it).

    \b
    Examples:
      segx export --model runs/lraspp/best.pt --fmt onnx --data data/synth
      segx export --model runs/lraspp/best.pt --fmt onnx --dynamic --imgsz 512
      segx export --model runs/lraspp/best.pt --fmt openvino --int8 --data data/synth --split val
      segx export --model runs/lraspp/best.pt --fmt onnx --int8 --explain --strict --data data/synth
      segx export --model runs/lraspp/best.pt --fmt trt --fp16 --data data/voc
      segx export --model runs/lraspp/best.pt --fmt torchscript --out deploy/
    """
    from exporters import run_export

    result = run_export(model, fmt, imgsz=imgsz, dynamic=dynamic, fp16=fp16, int8=int8, data=data, split=split,
                        out=out, simplify=not no_simplify, verify=not no_verify, n_verify=n_verify, opset=opset,
                        workspace=workspace, calib_split=calib_split, calib_n=calib_n, explain=explain, batch=batch,
                        head=head)
    console = Console(width=None if Console().is_terminal else 140)
    print_int8_notes(result, console)
    if result.verified:
        console.print(verdict_table(result))
    if not result.passed:
        raise SegxError(result.summary())
    click.echo(result.summary())  # after a fall-back: "int8 failed its gate (...); kept the best precision ..."
    if strict and result.fell_back:
        why = "could not be built" if result.build_error else "failed its gate"
        raise SegxError(f"--strict: {result.requested} {why}; kept {result.precision} instead")
