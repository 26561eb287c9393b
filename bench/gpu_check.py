"""Every GPU path segx has, on one CUDA machine, in one command (works with only segx's base install + a CUDA torch):
a tiny synthetic VOC, one epoch of AMP training in fp16 and in bf16, eval, speed rows of torch and torch.compile
(fp16; CUDA graphs via mode="reduce-overhead") at batch 1 and 16, ONNX Runtime CUDA and TensorRT (fp16, int8)
where installed, and predict on a short video. Writes OUT/gpu_check.json and OUT/gpu_check.md; exit 1 when a step
failed, 2 without CUDA.

    PYTHONPATH=. python3 -m bench.gpu_check --out runs/gpu_check
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ARCH = "lraspp_mobilenet_v3_large"
IMGSZ = 128
BATCHES = (1, 16)


@dataclass
class Step:
    name: str
    status: str = "ok"                # ok | failed | skipped
    seconds: float = 0.0
    detail: str = ""
    values: dict[str, Any] = field(default_factory=dict)


class Check:
    """Runs named steps; a failure or missing package is that step's status, never the end of the check."""

    def __init__(self, out: Path, device: str) -> None:
        self.out, self.device = out, device
        self.steps: list[Step] = []

    def step(self, name: str, fn: Callable[[], dict[str, Any] | None], needs: tuple[str, ...] = ()) -> Step:
        missing = [m for m in needs if importlib.util.find_spec(m) is None]
        if missing:
            st = Step(name, "skipped", detail=f"not installed: {', '.join(missing)} (pip install 'segx[gpu]')")
        else:
            t0 = time.perf_counter()
            try:
                st = Step(name, values=fn() or {})
            except Exception as e:  # noqa: BLE001 - one step's failure is its row
                traceback.print_exc()
                first = (str(e).strip().splitlines() or [""])[0]
                status = "skipped" if type(e).__name__ == "RuntimeUnavailable" else "failed"
                st = Step(name, status, detail=f"{type(e).__name__}: {first[:300]}")
            st.seconds = time.perf_counter() - t0
        print(f"gpu_check: {st.name}: {st.status} {st.detail}", flush=True)
        self.steps.append(st)
        return st


def _train(data: Path, out: Path, dtype: str, device: str) -> dict[str, Any]:
    from segx.train import TrainConfig, train

    run = train(TrainConfig(data=data, arch=ARCH, epochs=1, batch=8, crop=IMGSZ, out=out / f"train_{dtype}",
                            amp=True, amp_dtype=dtype, device=device, workers=2, overwrite=True))
    return {"checkpoint": str(run / "best.pt")}


def _speed(model: Any, runtime: str, precision: str, batch: int, device: str,
           options: dict[str, Any] | None = None) -> dict[str, Any]:
    from bench.speed import SpeedConfig, make_batch, measure
    from segx.runtimes import load_runtime

    with load_runtime(model, runtime, precision=precision, device=device, **(options or {})) as rt:
        res = measure(rt, make_batch(batch, (IMGSZ, IMGSZ)), SpeedConfig(min_iters=30, min_time=1.0))
    return {"runtime": runtime, "precision": precision, "batch": batch, "p50_ms": res.p50_ms, "fps": res.fps,
            "gpu_mem_mb": res.gpu_mem_mb}


def _export(ckpt: str, fmt: str, data: Path, out: Path, **opts: Any) -> dict[str, Any]:
    from exporters import run_export

    result = run_export(ckpt, fmt, imgsz=IMGSZ, data=data, out=out, n_verify=16, **opts)
    if not result.passed or result.fell_back:
        raise RuntimeError(result.summary())
    check = result.kept.checks[0] if result.kept and result.kept.checks else None
    return {"path": str(result.path), "precision": result.precision,
            "agreement": check.pixel_agreement if check else None, "verdict": result.summary()}


def _video(ckpt: str, data: Path, out: Path, device: str) -> dict[str, Any]:
    """A 30-frame video from the synthetic images, segmented on CUDA."""
    import cv2

    from segx.predict import predict_to_dir

    frames = sorted((data / "JPEGImages").glob("*.jpg"))[:30]
    video = out / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (IMGSZ, IMGSZ))
    for f in frames:
        writer.write(cv2.resize(cv2.imread(str(f)), (IMGSZ, IMGSZ)))
    writer.release()
    summary = predict_to_dir(video, ckpt, out / "predict", device=device, show_progress=False)
    if summary["frames"] != len(frames):
        raise RuntimeError(f"segmented {summary['frames']} of {len(frames)} frames")
    return {"frames": summary["frames"], "fps": summary["fps"]}


def run_check(out: Path, device: str = "cuda") -> Check:
    from segx.data.synth import make_synthetic_voc
    from segx.evaluate import evaluate

    check = Check(out, device)
    data = make_synthetic_voc(out / "synth", n=64, size=IMGSZ, seed=0)
    trained = {d: check.step(f"train 1 epoch AMP {d}", lambda d=d: _train(data, out, d, device)) for d in
               ("fp16", "bf16")}
    ckpt = next((s.values["checkpoint"] for s in trained.values() if s.status == "ok"), None)
    if ckpt is None:
        return check
    check.step("eval", lambda: {"miou": evaluate(ckpt, data, "val", device=device, show_progress=False)["miou"]})
    for batch in BATCHES:
        check.step(f"speed torch fp16 b{batch}", lambda b=batch: _speed(ckpt, "torch", "fp16", b, device))
        check.step(f"speed compile fp16 (CUDA graphs) b{batch}",
                   lambda b=batch: _speed(ckpt, "compile", "fp16", b, device, {"mode": "reduce-overhead", "batch": b}))
    exports = {
        "onnxruntime": (("onnxruntime",), "onnx", {}),
        "tensorrt fp16": (("tensorrt",), "trt", {"fp16": True, "dynamic": True, "batch": 16}),
        "tensorrt int8": (("tensorrt", "onnxruntime"), "trt", {"int8": True}),
    }
    for name, (needs, fmt, opts) in exports.items():
        made = check.step(f"export {name}", lambda f=fmt, o=opts, n=name: _export(
            ckpt, f, data, out / "export" / n.replace(" ", "_"), **o), needs=needs)
        if made.status != "ok":
            continue
        runtime, precision = name.split(" ")[0], made.values["precision"]
        batches = BATCHES if opts.get("dynamic") else (1,)
        for batch in batches:
            check.step(f"speed {name} b{batch}", lambda b=batch, r=runtime, p=precision, m=made: _speed(
                m.values["path"], r, p, b, device))
    check.step("predict video", lambda: _video(ckpt, data, out, device), needs=("cv2",))
    return check


def write_report(check: Check, out: Path, env: dict[str, Any]) -> tuple[Path, Path]:
    from segx.io import atomic_write_json, atomic_write_text

    rows = [asdict(s) for s in check.steps]
    json_path = atomic_write_json(out / "gpu_check.json", {"env": env, "steps": rows})
    lines = [f"# segx GPU check — {env['gpu']} (compute capability {env['compute_capability']})", "",
             f"torch {env['torch']}, CUDA {env['cuda']}, {env['date']}", "",
             "| step | status | s | p50 ms | img/s | GPU MiB | detail |", "|---|---|---:|---:|---:|---:|---|"]
    for s in check.steps:
        v = s.values
        num = [f"{v[k]:.2f}" if isinstance(v.get(k), float) else "" for k in ("p50_ms", "fps", "gpu_mem_mb")]
        detail = s.detail or ", ".join(f"{k} {v[k]:.4f}" for k in ("miou", "agreement") if
                                       isinstance(v.get(k), float))
        lines.append(f"| {s.name} | {s.status} | {s.seconds:.1f} | {' | '.join(num)} | {detail} |")
    md_path = atomic_write_text(out / "gpu_check.md", "\n".join(lines) + "\n")
    return json_path, md_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_check", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/gpu_check"))
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print(f"gpu_check: needs an NVIDIA GPU with CUDA; torch {torch.__version__} sees none here "
              f"({'CPU-only build' if not torch.version.cuda else 'no device or driver'}). Run it on a CUDA "
              f"machine: PYTHONPATH=. python3 -m bench.gpu_check --out DIR", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    index = int(args.device.split(":")[1]) if ":" in args.device else 0
    major, minor = torch.cuda.get_device_capability(index)
    env = {"gpu": torch.cuda.get_device_name(index), "compute_capability": f"{major}.{minor}",
           "torch": torch.__version__, "cuda": torch.version.cuda, "date": time.strftime("%Y-%m-%d %H:%M UTC",
                                                                                         time.gmtime())}
    check = run_check(args.out, args.device)
    paths = write_report(check, args.out, env)
    print(f"gpu_check: wrote {paths[0]} and {paths[1]}")
    return 1 if any(s.status == "failed" for s in check.steps) else 0


if __name__ == "__main__":
    sys.exit(main())
