"""`segx doctor`: what this machine has for segx — torch and its CUDA devices (compute capability, memory), ONNX
Runtime (which package, its providers), OpenVINO (devices), NNCF, TensorRT, NVML — and which runtime runs on which
device here; for anything missing, the exact install line."""
from __future__ import annotations

import importlib
import logging
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

log = logging.getLogger(__name__)

CPU_EXTRA = "pip install 'segx[cpu]'"
GPU_EXTRA = "pip install 'segx[gpu]'"
ORT_MIX_FIX = "pip uninstall -y onnxruntime onnxruntime-gpu && pip install 'segx[gpu]' (or 'segx[cpu]')"


@dataclass(frozen=True)
class Finding:
    """One line of the report: a package, device or runtime, whether it is usable here, and how to get it."""

    name: str
    status: str                   # "ok" | "missing" | "warn"
    version: str | None = None
    detail: str = ""
    install: str | None = None    # the exact command that fixes a missing / warn finding

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def dist_version(*names: str) -> tuple[str, str] | None:
    """(distribution, version) of the first installed distribution among `names`, else None."""
    for name in names:
        try:
            return name, version(name)
        except PackageNotFoundError:
            continue
    return None


def _module(name: str) -> Any | None:
    try:
        return importlib.import_module(name)
    except Exception:  # noqa: BLE001 - a broken install (missing shared library) is as good as absent here
        log.debug("cannot import %s", name, exc_info=True)
        return None


def check_torch() -> list[Finding]:
    import torch

    build = f"CUDA {torch.version.cuda} build" if torch.version.cuda else "CPU-only build"
    found = [Finding("torch", "ok", torch.__version__, build)]
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    for i in range(n):
        props = torch.cuda.get_device_properties(i)
        found.append(Finding(f"cuda:{i}", "ok", None, f"{props.name}, compute capability {props.major}."
                             f"{props.minor}, {props.total_memory / 2**30:.1f} GiB"))
    if n == 0:
        fix = None if torch.version.cuda else \
            "pip install torch torchvision --index-url https://download.pytorch.org/whl/cu128"
        why = "torch sees no NVIDIA GPU (no device or driver)" if torch.version.cuda else \
            "torch is a CPU-only build"
        found.append(Finding("cuda", "missing", None, why, fix))
    return found


def check_onnxruntime(cuda: bool) -> list[Finding]:
    dists = [d for d in ("onnxruntime", "onnxruntime-gpu") if dist_version(d)]
    ort = _module("onnxruntime")
    if ort is None:
        return [Finding("onnxruntime", "missing", None, "not installed", GPU_EXTRA if cuda else CPU_EXTRA)]
    providers = list(ort.get_available_providers())
    found = [Finding("onnxruntime", "ok", ort.__version__, f"{' + '.join(dists) or 'onnxruntime'}; providers: "
                     f"{', '.join(providers)}")]
    if len(dists) > 1:
        found.append(Finding("onnxruntime packages", "warn", None, "onnxruntime and onnxruntime-gpu are both "
                             "installed: they overwrite each other and the CUDA provider often disappears",
                             ORT_MIX_FIX))
    if cuda and "CUDAExecutionProvider" not in providers:
        found.append(Finding("onnxruntime CUDA provider", "missing", None, "this machine has a CUDA GPU",
                             "pip uninstall -y onnxruntime && " + GPU_EXTRA))
    return found


def check_openvino() -> list[Finding]:
    ov = _module("openvino")
    if ov is None:
        return [Finding("openvino", "missing", None, "not installed", CPU_EXTRA)]
    try:
        devices = ", ".join(ov.Core().available_devices)
    except Exception as e:  # noqa: BLE001 - a plugin that fails to load still leaves OpenVINO usable elsewhere
        devices = f"device query failed ({type(e).__name__}: {e})"
    found = [Finding("openvino", "ok", ov.get_version().split("-")[0], f"devices: {devices}")]
    nncf = dist_version("nncf")
    found.append(Finding("nncf", "ok", nncf[1], "OpenVINO INT8") if nncf else
                 Finding("nncf", "missing", None, "OpenVINO INT8 export needs it", CPU_EXTRA))
    return found


def check_tensorrt(cuda: bool) -> list[Finding]:
    trt = _module("tensorrt")
    if trt is None:
        why = "not installed" + ("" if cuda else " (and it needs an NVIDIA GPU)")
        return [Finding("tensorrt", "missing", None, why, GPU_EXTRA)]
    return [Finding("tensorrt", "ok" if cuda else "warn", str(trt.__version__),
                    "strongly typed engines" if cuda else "installed, but there is no CUDA GPU to build or run on")]


def check_nvml(cuda: bool) -> list[Finding]:
    found = dist_version("nvidia-ml-py", "pynvml")
    if found:
        return [Finding("pynvml", "ok", found[1], "GPU memory per process in bench rows")]
    if not cuda:
        return []
    return [Finding("pynvml", "missing", None, "bench reports whole-device GPU memory instead of this process's",
                    "pip install nvidia-ml-py")]


def check_runtimes() -> list[Finding]:
    """Each registered segx runtime on each device it supports: usable here, or why not."""
    from segx.runtimes import RUNTIMES, RuntimeUnavailable, get_runtime

    get_runtime("torch")  # imports every runtime module
    found = []
    for name, cls in RUNTIMES.items():
        for device in cls.devices:
            try:
                cls.check_available(device)
            except RuntimeUnavailable as e:
                found.append(Finding(f"runtime {name} ({device})", "missing", None, str(e), None))
                continue
            found.append(Finding(f"runtime {name} ({device})", "ok", None, ", ".join(cls.precisions)))
    return found


def diagnose() -> list[Finding]:
    """Everything `segx doctor` reports, in display order."""
    import torch

    cuda = torch.cuda.is_available()
    return [*check_torch(), *check_onnxruntime(cuda), *check_openvino(), *check_tensorrt(cuda), *check_nvml(cuda),
            *check_runtimes()]
