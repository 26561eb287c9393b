"""The machine a benchmark ran on: CPU model and ISA features, cores, GPU, OS, date and the versions of every
inference package (or "not installed"), recorded in bench.json / bench.md so numbers can be compared honestly."""
from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
from pathlib import Path
from typing import Any

# distribution names whose version the report records (pip names; tensorrt ships under several)
PACKAGES = {
    "torch": ("torch",),
    "torchvision": ("torchvision",),
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu"),
    "openvino": ("openvino",),
    "nncf": ("nncf",),
    "tensorrt": ("tensorrt", "tensorrt-cu12", "tensorrt-cu11"),
    "numpy": ("numpy",),
}
CPU_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_int8", "avx_vnni")


def _cpuinfo(path: Path = Path("/proc/cpuinfo")) -> dict[str, str]:
    """The first processor block of /proc/cpuinfo as a dict ({} where the file does not exist)."""
    info: dict[str, str] = {}
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return info
    for line in text.split("\n\n", 1)[0].splitlines():
        key, sep, value = line.partition(":")
        if sep:
            info[key.strip()] = value.strip()
    return info


def cpu_info(path: Path = Path("/proc/cpuinfo")) -> dict[str, Any]:
    info = _cpuinfo(path)
    flags = set(info.get("flags", "").split())
    return {
        "cpu": info.get("model name") or platform.processor() or platform.machine(),
        "cpu_family": info.get("cpu family"),
        "cpu_model": info.get("model"),
        "cpu_features": [f for f in CPU_FEATURES if f in flags],
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
    }


def package_versions() -> dict[str, str]:
    versions: dict[str, str] = {}
    for name, dists in PACKAGES.items():
        versions[name] = "not installed"
        for dist in dists:
            try:
                versions[name] = importlib.metadata.version(dist)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    return versions


def gpu_info() -> dict[str, Any]:
    """GPU name and CUDA version when torch sees a CUDA device, else gpu = None."""
    try:
        import torch
    except ImportError:
        return {"gpu": None}
    if not torch.cuda.is_available():
        return {"gpu": None}
    return {"gpu": torch.cuda.get_device_name(0), "gpu_count": torch.cuda.device_count(),
            "cuda": torch.version.cuda, "capability": ".".join(map(str, torch.cuda.get_device_capability(0)))}


def load_avg() -> list[float] | None:
    """1/5/15-minute load averages: a busy machine makes every latency in the table worse."""
    return [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None


def collect_env() -> dict[str, Any]:
    """Everything the report states about the machine."""
    return {
        **cpu_info(),
        **gpu_info(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": package_versions(),
        "date": dt.datetime.now(dt.timezone.utc).astimezone().isoformat(timespec="seconds"),
        "load_avg": load_avg(),
    }
