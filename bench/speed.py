"""Latency measurement of one loaded Runtime: warm-up, then timed runs until enough iterations AND enough time;
p50/p95/p99 ms per batch, images/s, threads and peak memory (CUDA timed with events after synchronisation)."""
from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from segx.runtimes.base import Runtime
from segx.errors import SegxError

MIN_WARMUP = 3  # warm-up runs at the timed batch, whatever the settings (with warmup_iters > 0)


@dataclass(frozen=True)
class SpeedConfig:
    min_iters: int = 50       # timed runs: at least this many ...
    min_time: float = 2.0     # ... and at least this many seconds
    warmup_iters: int = 5     # warm-up: this many runs or warmup_time seconds, whichever comes first, and at
                              # least MIN_WARMUP runs (compile / CUDA graphs / TensorRT settle in the first runs)
    warmup_time: float = 1.0

    def __post_init__(self) -> None:
        if self.min_iters < 1:
            raise SegxError(f"--min-iters must be >= 1 (got {self.min_iters})")
        if self.min_time < 0 or self.warmup_time < 0 or self.warmup_iters < 0:
            raise SegxError("--min-time and the warm-up settings must be >= 0")


@dataclass(frozen=True)
class SpeedResult:
    p50_ms: float
    p95_ms: float
    p99_ms: float
    fps: float                # images/s = batch * 1000 / p50
    iters: int
    timed_s: float
    warmup_iters: int
    peak_mem_mb: float        # peak resident memory of this process (RSS)
    cpu_cores: float          # CPU time of this process / timed wall time (cores it kept busy)
    others_cpu: float | None  # cores other processes used meanwhile (Linux /proc/stat): > ~0.2 = noisy timing
    gpu_mem_mb: float | None  # GPU memory in use (segx.runtimes.torch_rt.gpu_memory_mb), max of samples; else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB.

    Linux: VmHWM of /proc/self/status, the high-water mark of this process's own memory. (ru_maxrss is not used
    there: across fork/vfork + exec it keeps the parent's peak, so every bench worker would report the parent's.)"""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def _busy_cpu_s() -> float | None:
    """CPU seconds all processes have spent busy since boot (/proc/stat; None where there is none)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        ticks = [int(v) for v in fields]
    except (OSError, ValueError):
        return None
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    guest = sum(ticks[8:10]) if len(ticks) > 9 else 0       # already counted in user / nice
    return (sum(ticks) - idle - guest) / os.sysconf("SC_CLK_TCK")


def _is_cuda(device: str) -> bool:
    if not device.startswith("cuda"):
        return False
    import torch

    return torch.cuda.is_available()


def _timer(fn: Callable[[], object], cuda: bool) -> Callable[[], float]:
    """A function that runs `fn` once and returns its latency in ms."""
    if not cuda:
        def wall() -> float:
            t0 = time.perf_counter()
            fn()
            return (time.perf_counter() - t0) * 1000.0
        return wall

    import torch

    def events() -> float:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        start.record()
        fn()
        end.record()
        end.synchronize()
        return float(start.elapsed_time(end))
    return events


def _repeat(once: Callable[[], float], iters: int, seconds: float, *, until_both: bool,
            at_least: int = 1) -> list[float]:
    """Run `once` until iters AND seconds are reached (until_both) or until either is (warm-up); at least
    `at_least` runs."""
    times: list[float] = []
    t0 = time.perf_counter()
    while True:
        enough_n = len(times) >= iters
        enough_t = time.perf_counter() - t0 >= seconds
        if len(times) >= at_least and ((enough_n and enough_t) if until_both else (enough_n or enough_t)):
            return times
        times.append(once())


def measure(runtime: Runtime, batch: np.ndarray, config: SpeedConfig = SpeedConfig(), *,
            to_mask: bool = False) -> SpeedResult:
    """Time runtime.infer(batch) (to_mask: runtime.predict_mask, a uint8 class map in host memory whatever the
    head): warm-up, then timed runs; latency is per batch."""
    from segx.runtimes.torch_rt import gpu_memory_mb

    cuda = _is_cuda(runtime.device)
    once = _timer((lambda: runtime.predict_mask(batch)) if to_mask else (lambda: runtime.infer(batch)), cuda)
    warm = _repeat(once, config.warmup_iters, config.warmup_time, until_both=False, at_least=MIN_WARMUP) \
        if config.warmup_iters > 0 else []
    mem_warm = gpu_memory_mb(runtime.device) if cuda else None
    t0, cpu0, busy0 = time.perf_counter(), time.process_time(), _busy_cpu_s()
    times = np.asarray(_repeat(once, config.min_iters, config.min_time, until_both=True))
    timed_s, cpu_s, busy1 = time.perf_counter() - t0, time.process_time() - cpu0, _busy_cpu_s()
    others = None if busy0 is None or busy1 is None or timed_s < 0.5 else \
        max(0.0, (busy1 - busy0 - cpu_s) / timed_s)  # jiffies are 10 ms: too coarse for shorter runs
    p50, p95, p99 = (float(v) for v in np.percentile(times, [50, 95, 99]))
    samples = [m for m in (mem_warm, gpu_memory_mb(runtime.device) if cuda else None) if m is not None]
    gpu_mem = max(samples) if samples else None
    return SpeedResult(p50_ms=p50, p95_ms=p95, p99_ms=p99, fps=batch.shape[0] * 1000.0 / p50 if p50 > 0 else 0.0,
                       iters=int(times.size), timed_s=timed_s, warmup_iters=len(warm), peak_mem_mb=peak_rss_mb(),
                       cpu_cores=cpu_s / timed_s if timed_s > 0 else 0.0, others_cpu=others,
                       gpu_mem_mb=gpu_mem)


def make_batch(batch: int, hw: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A normalised-looking float32 N x 3 x H x W input (standard normal), the same for every runtime."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch, 3, *hw), dtype=np.float32)
