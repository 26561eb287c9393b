"""`segx predict SOURCE --model PATH`: segment images, folders, videos, webcams and streams (parses options, drives
segx.predict's iterator into the output writer, shows progress and a summary)."""
from __future__ import annotations

from pathlib import Path

import click


@click.command("predict")
@click.argument("source")
@click.option("-m", "--model", required=True, help="Model file made by segx: .pt, .onnx, .xml (OpenVINO), .engine, "
              ".torchscript; or torchvision:NAME (published VOC weights, docs/pretrained.md).")
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
              "(torch, compile, torchscript, onnxruntime, openvino, tensorrt, executorch, litert, ncnn; "
              "`compile` = torch.compile of a .pt).")
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
    from segx.predict.save import predict_to_dir

    summary = predict_to_dir(source, model, out, save_masks=save_masks, save_json=save_json, show=show,
                             device=device, runtime=runtime, precision=precision, threads=threads, imgsz=imgsz,
                             alpha=alpha, boundaries=boundaries, max_frames=max_frames)
    click.echo(f"results in {summary['out']}")
    if summary["interrupted"]:
        ctx.exit(130)
