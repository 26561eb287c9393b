"""NCNN export: torch.jit.trace of the eval model converted by pnnx into MODEL.ncnn.param + MODEL.ncnn.bin (fp32,
or fp16-stored weights). INT8 needs ncnn's ncnn2table / ncnn2int8 tools, which the pip wheels do not ship
(NCNN_INT8_REASON). ModelMeta goes to the `.ncnn.param.json` sidecar."""
from __future__ import annotations

import subprocess
import tempfile
import warnings
from pathlib import Path

import torch

from exporters.edge import no_dynamic, refuse_known, write_sidecar
from exporters.job import ExportJob
from segx.errors import SegxError
from segx.runtimes.ncnn_rt import weights_path

NCNN_INT8_REASON = ("ncnn INT8 needs the ncnn2table / ncnn2int8 tools, which the ncnn and pnnx pip wheels do not "
                    "ship (build ncnn from source for them)")
PNNX_TIMEOUT_S = 1800


def export_ncnn(job: ExportJob, path: Path) -> None:
    import pnnx

    refuse_known(job, "ncnn")
    no_dynamic(job, "ncnn")
    if job.precision == "int8":
        raise SegxError(NCNN_INT8_REASON)
    x = job.example()
    with tempfile.TemporaryDirectory(prefix="segx-pnnx-") as tmp:
        traced = Path(tmp) / "model.pt"
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # TracerWarnings, torch.jit deprecation
            torch.jit.trace(job.module, x, check_trace=False).save(str(traced))
        shape = ",".join(map(str, x.shape))
        cmd = [pnnx.EXEC_PATH, str(traced), f"inputshape=[{shape}]f32", "device=cpu",
               f"fp16={int(job.precision == 'fp16')}", f"ncnnparam={path}", f"ncnnbin={weights_path(path)}",
               *(f"{k}={Path(tmp) / v}" for k, v in (("pnnxparam", "m.pnnx.param"), ("pnnxbin", "m.pnnx.bin"),
                                                     ("pnnxpy", "m_pnnx.py"), ("pnnxonnx", "m.pnnx.onnx"),
                                                     ("ncnnpy", "m_ncnn.py")))]
        run = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp, timeout=PNNX_TIMEOUT_S, check=False)
    if run.returncode != 0 or not path.is_file() or path.stat().st_size == 0:
        tail = [ln for ln in (run.stderr + run.stdout).splitlines() if ln.strip()][-1:] or ["no output"]
        raise SegxError(f"pnnx could not convert {job.meta.arch} (exit {run.returncode}): {tail[0][:300]}")
    _check_ops(path, job)
    write_sidecar(job, path, pnnx=getattr(pnnx, "__version__", "unknown"))


def _check_ops(path: Path, job: ExportJob) -> None:
    """pnnx keeps ops ncnn cannot run as `pnnx.*` / `F.*` / `torch.*` layers; such a model would fail at load."""
    unsupported = sorted({line.split()[0] for line in path.read_text().splitlines()[2:]
                          if line.split() and line.split()[0].startswith(("pnnx.", "F.", "torch.", "Tensor.",
                                                                          "aten::", "prim::"))})
    if unsupported:
        raise SegxError(f"ncnn has no layer for {', '.join(unsupported[:4])} in {job.meta.arch}")
