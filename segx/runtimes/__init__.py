"""Runtime registry: one `Runtime` subclass per backend, looked up by name or by model-file suffix."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from segx.runtimes.base import RUNTIMES, Runtime, RuntimeUnavailable, register_runtime
from segx.errors import SegxError, unknown_choice

def get_runtime(name: str) -> type[Runtime]:
    _import_all()
    if name not in RUNTIMES:
        raise unknown_choice("runtime", name, RUNTIMES)
    return RUNTIMES[name]


def runtime_for_path(path: str | Path) -> type[Runtime]:
    """The default runtime for a model file, chosen by its suffix (.pt -> torch, .onnx -> onnxruntime, ...)."""
    _import_all()
    p = Path(path)
    suffix = ".xml" if p.is_dir() and any(p.glob("*.xml")) else p.suffix.lower()
    if str(path).startswith("torchvision:"):  # segx.models.pretrained.SPEC_PREFIX: published weights, run by torch
        suffix = ".pt"
    for cls in RUNTIMES.values():  # registration order = preference order
        if suffix in cls.suffixes:
            return cls
    known = sorted({s for c in RUNTIMES.values() for s in c.suffixes})
    raise SegxError(f"{path}: unknown model file type '{suffix or '(none)'}'; segx loads {', '.join(known)}")


def load_runtime(path: str | Path, runtime: str | None = None, **kwargs: Any) -> Runtime:
    """Open a model file with the named runtime (or the default for its suffix)."""
    cls = get_runtime(runtime) if runtime else runtime_for_path(path)
    cls.check_available(kwargs.get("device", "cpu"))
    return cls(path, **kwargs)


def _import_all() -> None:
    # Each module registers its class at import; heavy packages are imported inside the classes.
    from segx.runtimes import (compile_rt, onnxruntime_rt, openvino_rt, tensorrt_rt,  # noqa: F401
                                torch_rt, torchscript_rt)
    from segx.runtimes import executorch_rt, litert_rt, ncnn_rt  # noqa: F401 - edge runtimes (segx[edge])


__all__ = ["RUNTIMES", "Runtime", "RuntimeUnavailable", "get_runtime", "load_runtime", "register_runtime",
           "runtime_for_path"]
