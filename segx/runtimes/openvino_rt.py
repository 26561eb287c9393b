"""OpenVINO runtime: an IR (`.xml` + `.bin`, or a folder holding one) on CPU or an Intel GPU. fp32 pins the f32
inference-precision hint (OpenVINO otherwise runs bf16 silently on CPUs with AMX / avx512_bf16); bf16 / fp16 ask for
them where the device has them; int8 runs an NNCF-quantised IR. ModelMeta comes from the IR's rt_info["segx"]."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from segx.runtimes.base import register_runtime
from segx.runtimes.base import Runtime, RuntimeUnavailable
from segx.runtimes.common import check_batch, dims_to_shape, file_precision
from segx.errors import SegxError
from segx.meta import ModelMeta

RT_INFO_KEY = "segx"  # model.set_rt_info(value, [RT_INFO_KEY, field]) holds each ModelMeta field (JSON)
_HINTS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}  # int8 files: no hint, OpenVINO's default for float ops
_CAPABILITY = {"bf16": "BF16", "fp16": "FP16"}


def _ov() -> Any:
    try:
        import openvino
    except ImportError as e:
        raise RuntimeUnavailable("runtime 'openvino' needs the openvino package: pip install openvino") from e
    return openvino


def find_xml(path: Path) -> Path:
    """The IR .xml of `path` (itself, or the one .xml inside a folder)."""
    if path.is_dir():
        xmls = sorted(path.glob("*.xml"))
        if len(xmls) != 1:
            raise SegxError(f"{path}: expected one OpenVINO .xml in the folder, found {len(xmls)}")
        path = xmls[0]
    if not path.is_file():
        raise SegxError(f"{path}: OpenVINO IR not found")
    if not path.with_suffix(".bin").is_file():
        raise SegxError(f"{path}: its weights file {path.with_suffix('.bin').name} is missing")
    return path


def read_meta(model: Any, path: Path) -> ModelMeta:
    info = model.get_rt_info()
    if RT_INFO_KEY not in info:
        raise SegxError(f"{path}: no segx metadata in the IR's rt_info (not exported by segx); re-export it with "
                        f"segx export --fmt openvino")
    return ModelMeta.from_strings({k: v.astype(str) if hasattr(v, "astype") else str(v)
                                   for k, v in info[RT_INFO_KEY].items()})


@register_runtime
class OpenVINORuntime(Runtime):
    name = "openvino"
    suffixes = (".xml",)
    precisions = ("fp32", "bf16", "fp16", "int8")
    devices = ("cpu", "gpu")

    @classmethod
    def check_available(cls, device: str = "cpu") -> None:
        super().check_available(device)
        ov = _ov()
        if device.startswith("gpu") and "GPU" not in ov.Core().available_devices:
            raise RuntimeUnavailable("runtime 'openvino' on 'gpu' needs an Intel GPU with its OpenVINO driver; "
                                     "none found here")

    def _config(self, core: Any, ov_device: str) -> dict[str, Any]:
        cfg: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
        if self.threads and ov_device == "CPU":
            cfg["INFERENCE_NUM_THREADS"] = self.threads
        if self.precision in _CAPABILITY:
            caps = core.get_property(ov_device, "OPTIMIZATION_CAPABILITIES")
            if _CAPABILITY[self.precision] not in caps:
                raise RuntimeUnavailable(f"OpenVINO {ov_device} here has no {self.precision} compute "
                                         f"(capabilities: {', '.join(caps)})")
        if self.precision in _HINTS:
            cfg["INFERENCE_PRECISION_HINT"] = _HINTS[self.precision]
        return cfg

    def load(self) -> None:
        ov = _ov()
        xml = find_xml(self.model_path)
        core = ov.Core()
        if not ov.frontend.FrontEndManager().load_by_framework("ir").supported(str(xml)):
            # not handed to read_model, whose other frontends (TensorFlow's) would print their own parse errors
            raise SegxError(f"{xml}: not an OpenVINO IR (no <net> model in the .xml); re-export it with "
                            f"segx export --fmt openvino")
        try:
            model = core.read_model(str(xml))
        except Exception as e:  # noqa: BLE001 - OpenVINO raises RuntimeError with long texts
            last = (str(e).strip().splitlines() or [type(e).__name__])[-1]  # the first lines are source locations
            raise SegxError(f"{xml}: OpenVINO cannot read it ({last[:200]})") from e
        self.meta = read_meta(model, xml)
        self.precision = file_precision(self.name, xml, self.precision, self.meta.precision)
        self.input_shape = dims_to_shape(d.get_length() if d.is_static else None
                                         for d in model.inputs[0].get_partial_shape())
        ov_device = self.device.split(":")[0].upper()
        self.compiled = core.compile_model(model, ov_device, self._config(core, ov_device))
        self.request = self.compiled.create_infer_request()

    def infer(self, batch: np.ndarray) -> np.ndarray:
        return self.outputs(batch)[0]

    def outputs(self, batch: np.ndarray) -> tuple[np.ndarray, ...]:
        batch = check_batch(self.name, self.input_shape, batch)
        result = self.request.infer({0: batch})
        arrays = (np.asarray(result[out]) for out in self.compiled.outputs)
        return tuple(a.astype(np.float32, copy=False) if a.dtype.kind == "f" else a for a in arrays)

    def close(self) -> None:
        self.request = self.compiled = None
