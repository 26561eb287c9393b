"""torchrun / DistributedDataParallel plumbing: read RANK/WORLD_SIZE, init the process group (gloo on CPU, nccl on
CUDA), pick each rank's device, and sum arrays across ranks. A plain `python` run is world size 1."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from segx.errors import SegxError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value) if value else default
    except ValueError as e:
        raise SegxError(f"environment variable {name}={value!r} is not an integer") from e


def resolve_device(device: str, local_rank: int = 0, world: int = 1) -> torch.device:
    """auto -> cuda if present else cpu; 'cuda' when CUDA is absent is an error. Under torchrun (world > 1) every
    rank takes cuda:LOCAL_RANK, also for --device cuda:N (N = the GPU of a single-process run; pick a multi-GPU
    run's GPUs with CUDA_VISIBLE_DEVICES)."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    kind, colon, index = device.partition(":")
    if kind not in ("cpu", "cuda") or (colon and not index.isdigit()) or (kind == "cpu" and colon):
        raise SegxError(f"unknown device '{device}'; choose auto, cpu, cuda or cuda:N")
    if kind == "cuda" and not torch.cuda.is_available():
        raise SegxError(f"device '{device}' asked for, but this PyTorch sees no CUDA GPU; use --device cpu")
    if kind == "cpu":
        return torch.device("cpu")
    if world > 1 or not index:
        if index and int(index) != local_rank:
            log.info("--device %s under torchrun: rank with LOCAL_RANK %d uses cuda:%d", device, local_rank,
                     local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cuda", int(index))


def init_distributed(device: str) -> tuple[DistInfo, torch.device]:
    """Join the torchrun process group when WORLD_SIZE > 1; return (DistInfo, this rank's device)."""
    info = DistInfo(_env_int("RANK", 0), _env_int("WORLD_SIZE", 1), _env_int("LOCAL_RANK", 0))
    dev = resolve_device(device, info.local_rank, info.world)
    if info.enabled and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return info, dev


def cleanup_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def sum_across_ranks(values: np.ndarray, info: DistInfo, device: torch.device) -> np.ndarray:
    """Element-wise sum of a numeric array over all ranks (identity on one process)."""
    if not info.enabled:
        return values
    t = torch.as_tensor(np.asarray(values, dtype=np.float64), device=device)  # nccl reduces CUDA tensors only
    dist.all_reduce(t)
    return t.cpu().numpy()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()
