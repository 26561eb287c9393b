"""The demo's stages, top-down: each stage is one small function that calls segx's public Python API and records
what it made in DemoResult, which the report turns into report.md / report.html."""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from segx.demo.config import DemoConfig, DemoResult
from segx.demo.report import write_report
from segx.errors import SegxError

log = logging.getLogger(__name__)


def _device(requested: str) -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise SegxError("--device cuda requested but CUDA is not available here; use --device cpu")
    return requested


def stage_data(cfg: DemoConfig, res: DemoResult) -> None:
    from segx.data.synth import make_synthetic_voc

    res.data = make_synthetic_voc(cfg.out / "data", n=cfg.n_images, size=cfg.size, seed=cfg.seed)


def stage_train(cfg: DemoConfig, res: DemoResult) -> None:
    from segx.train import TrainConfig, train

    assert res.data is not None
    res.run_dir = train(TrainConfig(data=res.data, arch=cfg.arch, epochs=cfg.epochs, crop=cfg.crop, batch=cfg.batch,
                                    out=cfg.out / "train" / cfg.arch, overwrite=True, device=res.device,
                                    seed=cfg.seed))


def stage_eval(cfg: DemoConfig, res: DemoResult) -> None:
    from segx.evaluate import evaluate
    from segx.io import atomic_write_json

    assert res.run_dir is not None and res.data is not None
    res.metrics = evaluate(res.run_dir / "best.pt", res.data, "val", device=res.device)
    atomic_write_json(cfg.out / "eval.json", res.metrics)


def _export_plan(cfg: DemoConfig, device: str) -> list[tuple[str, dict[str, Any]]]:
    """(format, options) per FORMAT[:PRECISION] entry of cfg.exports, plus TensorRT fp16 on CUDA."""
    plan = []
    for entry in cfg.exports + (("trt:fp16",) if device.startswith("cuda") else ()):
        fmt, _, rest = entry.partition(":")
        precision, _, head = rest.partition(":")
        plan.append((fmt, {**({precision: True} if precision in ("int8", "fp16") else {}), "head": head or "logits"}))
    return plan


def stage_export(cfg: DemoConfig, res: DemoResult) -> None:
    from exporters import run_export

    assert res.run_dir is not None
    for fmt, opts in _export_plan(cfg, res.device):
        name = fmt + ("_int8" if opts.get("int8") else "_fp16" if opts.get("fp16") else "") + \
            ("" if opts["head"] == "logits" else f"_{opts['head']}")
        row: dict[str, Any] = {"format": fmt, "requested": "int8" if opts.get("int8") else
                               "fp16" if opts.get("fp16") else "fp32"}
        try:
            r = run_export(res.run_dir / "best.pt", fmt, imgsz=cfg.imgsz, data=res.data, split="val",
                           out=cfg.out / "export" / name, n_verify=cfg.n_verify, **opts)
        except SegxError as e:  # one format failing must not stop the demo; the report shows why
            row.update(passed=False, summary=str(e))
            res.exports.append(row)
            log.warning("export %s: %s", name, e)
            continue
        kept = r.kept
        check = kept.checks[0] if kept and kept.checks else None
        row.update(passed=r.passed, precision=r.precision, path=str(r.path) if r.path else None,
                   summary=r.summary(), size_mb=kept.size_mb if kept else None,
                   seconds=kept.seconds if kept else None,
                   agreement=getattr(check, "pixel_agreement", None), max_abs_diff=getattr(check, "max_abs_diff", None),
                   miou_delta=getattr(check, "miou_delta", None), images=getattr(check, "n_images", None),
                   drop_ci=getattr(check, "drop_ci", None))
        res.exports.append(row)


def stage_bench(cfg: DemoConfig, res: DemoResult) -> None:
    from bench import BenchConfig, run_bench

    assert res.run_dir is not None and res.data is not None
    cuda = res.device.startswith("cuda")
    from bench.matrix import installed_edge_runtimes

    runtimes = cfg.bench_runtimes + (("tensorrt",) if cuda else ()) + \
        (installed_edge_runtimes(res.device) if cfg.bench_edge else ())
    precisions = tuple(p for p in cfg.bench_precisions if p != "bf16" or not cuda) + (("fp16",) if cuda else ())
    bc = BenchConfig(models=(str(res.run_dir / "best.pt"),), runtimes=runtimes, precisions=precisions,
                     data=str(res.data), n_images=cfg.n_verify, imgsz=cfg.imgsz, batches=(1,),
                     device=res.device, out=str(cfg.out / "bench"), min_iters=cfg.bench_min_iters,
                     min_time=cfg.bench_min_time, max_miou_drop=1.0, heads=cfg.bench_heads)
    try:
        result = run_bench(bc)
    except SegxError as e:  # the gate: reports are written; the demo shows the failing rows instead of stopping
        log.warning("bench: %s", e)
        result = None
    bench_json = cfg.out / "bench" / "bench.json"
    res.bench = json.loads(bench_json.read_text()) if bench_json.exists() else {}
    res.bench["gate_passed"] = result is not None


def _render_video(data: Path, path: Path, frames: int, fps: float = 10.0) -> Path:
    """A short video made of the val images (each shown for two frames), written atomically."""
    import cv2

    from segx.data.splits import list_ids
    from segx.data.voc import read_image
    from segx.io import atomic_path

    ids = list_ids(data, "val")
    first = read_image(data / "JPEGImages" / f"{ids[0]}.jpg")
    h, w = first.shape[:2]
    with atomic_path(path) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
        try:
            for i in range(frames):
                img = read_image(data / "JPEGImages" / f"{ids[(i // 2) % len(ids)]}.jpg")
                writer.write(cv2.cvtColor(cv2.resize(img, (w, h)), cv2.COLOR_RGB2BGR))
        finally:
            writer.release()
    return path


def _best_model(res: DemoResult) -> tuple[Path, str | None, str]:
    """(model file, runtime, precision) of the fastest passing batch-1 bench row, else the ONNX fp32 export."""
    rows = [r for r in res.bench.get("rows", []) if r.get("status") == "pass" and r.get("model_path")
            and r.get("p50_ms") and r.get("batch") == 1]
    if rows:
        best = min(rows, key=lambda r: r["p50_ms"])
        return Path(best["model_path"]), best["runtime"], best["precision"]
    onnx = [e for e in res.exports if e.get("format") == "onnx" and e.get("passed") and e.get("path")]
    assert res.run_dir is not None
    return (Path(onnx[0]["path"]), None, "fp32") if onnx else (res.run_dir / "best.pt", None, "fp32")


def stage_predict(cfg: DemoConfig, res: DemoResult) -> None:
    from segx.predict import predict_to_dir

    assert res.data is not None
    video = _render_video(res.data, cfg.out / "video" / "val_video.mp4", cfg.video_frames)
    model, runtime, precision = _best_model(res)
    summary = predict_to_dir(video, model, cfg.out / "predict", save_masks=True, save_json=True,
                             device=res.device, runtime=runtime, precision=precision, show_progress=True)
    res.predict = {"source": str(video), "model": str(model), "precision": precision, **summary}


STAGES = (("synthetic VOC", stage_data), ("train", stage_train), ("evaluate", stage_eval),
          ("export + parity", stage_export), ("bench", stage_bench), ("predict video", stage_predict))


def run_demo(config: DemoConfig | None = None, *, quick: bool = False, out: Path | None = None) -> DemoResult:
    """Run every stage, then write report.md and report.html into config.out; returns what was made."""
    cfg = config or (DemoConfig.quick(Path(out or "runs/demo")) if quick else DemoConfig(out=Path(out or "runs/demo")))
    res = DemoResult(config=cfg, device=_device(cfg.device))
    cfg.out.mkdir(parents=True, exist_ok=True)
    total = time.perf_counter()
    for i, (name, stage) in enumerate(STAGES, 1):
        log.info("[%d/%d] %s", i, len(STAGES), name)
        start = time.perf_counter()
        stage(cfg, res)
        res.timings[name] = round(time.perf_counter() - start, 1)
    res.timings["total"] = round(time.perf_counter() - total, 1)
    res.report = write_report(res)
    return res
