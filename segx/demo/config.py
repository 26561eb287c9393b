"""The demo's settings (DemoConfig, with a quick smoke version) and what a demo run made (DemoResult); shared by the
stages (segx.demo.run) and the report (segx.demo.report)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class DemoConfig:
    out: Path = Path("runs/demo")
    arch: str = "lraspp_mobilenet_v3_large"
    n_images: int = 200        # synthetic set size
    size: int = 256            # synthetic image side
    epochs: int = 20           # lraspp reaches ~0.7 val mIoU in 20 epochs on 2 CPU cores (docs/benchmarks.md)
    crop: int | None = None    # None: the arch's default training crop
    batch: int = 8
    imgsz: int = 256           # export / bench / predict size
    bench_min_iters: int = 20
    bench_min_time: float = 1.0
    n_verify: int | None = None  # parity / bench images: None = the whole val split
    video_frames: int = 60
    exports: tuple[str, ...] = ("onnx", "onnx:int8", "openvino", "openvino:int8",  # FORMAT[:PRECISION[:HEAD]];
                                "openvino:int8:mask")                           # +trt on CUDA
    bench_heads: tuple[str, ...] = ("logits", "mask")  # each bench row timed to a host mask, both heads side by side
    bench_runtimes: tuple[str, ...] = ("torch", "onnxruntime", "openvino")        # +tensorrt on CUDA
    bench_precisions: tuple[str, ...] = ("fp32", "bf16", "int8")
    bench_edge: bool = True    # add the edge runtimes (executorch, litert, ncnn) that are installed (segx[edge])
    device: str = "auto"
    seed: int = 0

    @classmethod
    def quick(cls, out: Path) -> DemoConfig:
        """A ~1-minute smoke version (used by the tests): tiny set, one short epoch, tiny exports."""
        return cls(out=out, n_images=24, size=64, epochs=1, crop=64, batch=4, imgsz=64, bench_min_iters=3,
                   bench_min_time=0.0, n_verify=4, video_frames=8, exports=("onnx", "openvino:int8"),
                   bench_runtimes=("torch", "onnxruntime"), bench_precisions=("fp32",), bench_edge=False)


@dataclass
class DemoResult:
    config: DemoConfig
    data: Path | None = None
    run_dir: Path | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    exports: list[dict[str, Any]] = field(default_factory=list)
    bench: dict[str, Any] = field(default_factory=dict)
    predict: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    device: str = "cpu"
    report: dict[str, Path] = field(default_factory=dict)


def config_dict(cfg: DemoConfig) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(cfg).items()}
