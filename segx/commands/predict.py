"""`segx predict SOURCE --model PATH`: segment images, folders, videos, webcams and streams (parses options, drives
segx.predict's iterator into the output writer, shows progress and a summary)."""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.progress import TextColumn

from segx.log import progress

if TYPE_CHECKING:
    from segx.predict.pipeline import PredictRun

log = logging.getLogger("segx.predict")


@click.command("predict")
@click.argument("source")
@click.option("-m", "--model", required=True, help="Model file made by segx: .pt, .onnx, .xml (OpenVINO), .engine, "
              ".torchscript.")
@click.option("-o", "--out", type=click.Path(path_type=Path), default=None,
              help="Output folder [default: runs/predict/N, a new N each run].")
@click.option("--show", is_flag=True, help="Show the overlay in a window (q or Esc stops); needs OpenCV's GUI build.")
@click.option("--save-masks", is_flag=True, help="Also write VOC palette PNG masks to OUT/masks/.")
@click.option("--save-json", is_flag=True, help="Also write the regions (class, area, bbox, polygon with holes, mean "
              "confidence) to OUT/regions/<stem>.json.")
@click.option("--boundaries/--no-boundaries", default=True, show_default=True,
              help="Draw each region's boundary on the overlay.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:1, ... (as the runtime supports).")
@click.option("--runtime", default=None, help="Runtime to use instead of the one the model's suffix picks "
              "(torch, torchscript, onnxruntime, openvino, tensorrt).")
@click.option("--precision", default="fp32", show_default=True, help="fp32, fp16, bf16 or int8, as the runtime has.")
@click.option("--imgsz", type=click.IntRange(32), default=None,
              help="Dynamic-shape models: scale frames so the long side is at most this (default: native size). "
              "Fixed-shape models always use their own size.")
@click.option("--alpha", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Opacity of the class colours.")
@click.option("--max-frames", type=click.IntRange(1), default=None, help="Stop after this many frames.")
@click.option("--threads", type=click.IntRange(1), default=None, help="CPU threads for the runtime.")
@click.pass_context
def command(ctx: click.Context, source: str, model: str, out: Path | None, show: bool, save_masks: bool,
            save_json: bool, boundaries: bool, device: str, runtime: str | None, precision: str, imgsz: int | None,
            alpha: float, max_frames: int | None, threads: int | None) -> None:
    """Segment SOURCE with a segx model and write overlays (and masks / region JSON).

    SOURCE is an image, a folder or glob of images, a video file, a webcam index (0) or an rtsp/rtmp/http URL.
    Writes OUT/<stem>.jpg per image or OUT/<stem>.mp4 per video (same size and FPS as the input). Ctrl-C stops
    cleanly: the video written so far is complete and playable.

    \b
    Examples:
      segx predict street.jpg --model runs/lraspp_mobilenet_v3_large/best.pt
      segx predict photos/ --model best.onnx --save-masks --save-json
      segx predict "shots/*.png" --model best.xml --out runs/shots
      segx predict camera.mp4 --model best.onnx --save-json
      segx predict 0 --model best.xml --show
      segx predict rtsp://192.168.1.20:554/stream1 --model best.onnx --max-frames 300
    """
    from segx.predict import predict
    from segx.predict.writers import OutputWriter, Window, new_run_dir

    window = Window() if show else None
    run = predict(source, model, device=device, runtime=runtime, precision=precision, threads=threads,
                  imgsz=imgsz, alpha=alpha, boundaries=boundaries, confidence=save_json, max_frames=max_frames)
    out_dir = out if out is not None else new_run_dir()
    writer = OutputWriter(out_dir, overlays=True, masks=save_masks, regions=save_json)
    interrupted, start = False, time.perf_counter()
    try:
        with progress(TextColumn("{task.fields[fps]:.1f} FPS")) as bar:
            task = bar.add_task(f"predict {source}", total=run.total, fps=0.0)
            for r in run:
                writer.submit(r)
                bar.update(task, advance=1, fps=run.frames / max(time.perf_counter() - start, 1e-9))
                if window is not None and not window.show(r.overlay):
                    break
    except KeyboardInterrupt:
        interrupted = True
    finally:
        run.close()
        if window is not None:
            window.close()
        summary = writer.close()
        if out is None and run.frames == 0 and not any(out_dir.iterdir()):
            out_dir.rmdir()
    _report(run, summary.out, time.perf_counter() - start, interrupted)
    if interrupted:
        ctx.exit(130)


def _report(run: PredictRun, out_dir: Path, seconds: float, interrupted: bool) -> None:
    skipped = run.skipped
    if skipped:
        log.warning("skipped %d unreadable input(s): %s", len(skipped),
                    "; ".join(f"{p}" for p, _ in skipped[:5]) + (" ..." if len(skipped) > 5 else ""))
    frames = run.frames
    if interrupted:
        log.warning("interrupted after %d frame(s); the files written so far are complete", frames)
    log.info("segmented %d frame(s) in %.1f s (%.1f FPS) with %s", frames, seconds, frames / max(seconds, 1e-9),
             run.runtime.describe())
    click.echo(f"results in {out_dir}")
