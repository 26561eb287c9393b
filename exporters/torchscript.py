"""TorchScript export (for C++ / LibTorch users): torch.jit.trace of the eval-mode model, saved with ModelMeta in
the archive's `segx_meta.json` extra file (read back by the torchscript runtime)."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch

from segx.runtimes.torchscript_rt import META_FILE
from exporters.job import ExportJob


def export_torchscript(job: ExportJob, path: Path) -> None:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # TracerWarnings about shape-dependent Python ints
        traced = torch.jit.trace(job.module, job.example(), check_trace=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(traced, str(path), _extra_files={META_FILE: json.dumps(job.meta.to_dict())})
