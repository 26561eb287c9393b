"""Load test of `segx predict` on a long video: writes a synthetic clip (default 160×120, 10,000 frames) and an
untrained lraspp_mobilenet_v3_large checkpoint, runs the real CLI on the first 1,000 frames and on all of them, and
reports each run's peak RSS (wait4), RSS sampled over time, and FPS. Flat memory = bounded queues.

    python -m bench.soak --out runs/soak                       # the figures in docs/reliability.md
    python -m bench.soak --out /tmp/soak --frames 2000 --checkpoints 500,2000
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from segx.io import atomic_path, atomic_write_json

ARCH = "lraspp_mobilenet_v3_large"


def write_clip(path: Path, frames: int, w: int, h: int, fps: float = 30.0) -> Path:
    """A moving scene: coloured blocks drifting over a gradient (cheap to make, not trivially compressible)."""
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 // w, y * 255 // h, np.full_like(x, 90)], -1).astype(np.uint8)
    with atomic_path(path) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter.fourcc(*"mp4v"), fps, (w, h))
        try:
            for i in range(frames):
                frame = base.copy()
                for k, colour in enumerate(((200, 30, 30), (30, 30, 200), (30, 200, 30))):
                    cx, cy = (i * (k + 1) * 2 + 40 * k) % w, (h // 4) * (k + 1)
                    cv2.rectangle(frame, (cx - 12, cy - 10), (cx + 12, cy + 10), colour, -1)
                writer.write(frame)
        finally:
            writer.release()
    return path


def write_model(path: Path) -> Path:
    import torch

    from segx.checkpoint import make_checkpoint
    from segx.io import save_checkpoint
    from segx.meta import ModelMeta
    from segx.models import build_model

    torch.manual_seed(0)
    return save_checkpoint(make_checkpoint(build_model(ARCH), ModelMeta(arch=ARCH, imgsz=64)), path)


def _rss_mb(pid: int) -> float | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmRSS:\s+(\d+) kB", text, re.M)
    return int(match.group(1)) / 1024 if match else None


def run_predict(video: Path, model: Path, out: Path, frames: int, extra: list[str]) -> dict[str, Any]:
    """One `segx predict` process: peak RSS from wait4, RSS every 0.5 s, FPS from its own summary line."""
    segx_bin = Path(sys.executable).with_name("segx")
    cmd = [str(segx_bin), "predict", str(video), "--model", str(model), "--out", str(out), "--max-frames",
           str(frames), *extra]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    samples: list[tuple[float, float]] = []
    err: list[str] = []
    reader = threading.Thread(target=lambda: err.extend(proc.stderr), daemon=True)  # type: ignore[arg-type]
    reader.start()
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        rss = _rss_mb(proc.pid)
        if rss is not None:
            samples.append((round(time.perf_counter() - start, 2), round(rss, 1)))
        time.sleep(0.5)
    proc.returncode = os.waitstatus_to_exitcode(status)
    reader.join()
    text = "".join(err)
    if proc.returncode != 0:
        raise SystemExit(f"segx predict failed ({proc.returncode}):\n{text[-3000:]}")
    match = re.search(r"segmented (\d+) frame\(s\) in ([\d.]+) s \(([\d.]+) FPS\)", " ".join(text.split()))
    return {"frames": int(match.group(1)) if match else None, "seconds": float(match.group(2)) if match else None,
            "fps": float(match.group(3)) if match else None, "wall_s": round(time.perf_counter() - start, 2),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "rss_samples_mb": samples, "command": " ".join(cmd)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/soak"))
    ap.add_argument("--frames", type=int, default=10_000, help="frames in the synthetic clip")
    ap.add_argument("--size", default="160x120", help="clip width x height")
    ap.add_argument("--checkpoints", default="1000,10000", help="runs: frames segmented per run")
    ap.add_argument("--model", type=Path, default=None, help="model file (default: an untrained lraspp .pt)")
    ap.add_argument("--imgsz", type=int, default=64, help="predict --imgsz (long side fed to the model)")
    ap.add_argument("--save-masks", action="store_true", help="also write one PNG mask per frame")
    args = ap.parse_args(argv)
    w, h = (int(v) for v in args.size.lower().split("x"))
    args.out.mkdir(parents=True, exist_ok=True)
    video = args.out / f"clip_{w}x{h}_{args.frames}.mp4"
    if not video.is_file():
        write_clip(video, args.frames, w, h)
    model = args.model or (args.out / "lraspp_untrained.pt")
    if not model.is_file():
        write_model(model)
    extra = ["--imgsz", str(args.imgsz), "--save-json", *(["--save-masks"] if args.save_masks else [])]
    runs = {}
    for n in (int(v) for v in args.checkpoints.split(",")):
        runs[n] = run_predict(video, model, args.out / f"predict_{n}", n, extra)
        r = runs[n]
        print(f"{n:>6} frames: peak RSS {r['peak_rss_mb']:.0f} MB, {r['fps']} FPS ({r['seconds']} s segmenting, "
              f"{r['wall_s']} s with start-up)", flush=True)
    report = {"video": f"{w}x{h}, {args.frames} frames", "model": str(model), "imgsz": args.imgsz,
              "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, load "
                         f"{os.getloadavg()[0]:.1f}", "date": time.strftime("%Y-%m-%d %H:%M"), "runs": runs}
    atomic_write_json(args.out / "soak.json", report)
    return report


if __name__ == "__main__":
    main()
