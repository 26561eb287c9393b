"""Training: `TrainConfig` (frozen; None fields take the arch's defaults) and `train(config) -> run folder`.
The epoch loop, data, optimizer and resumable state live in segx/engine/; this module wires them top-down."""
from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from segx.errors import SegxError
from segx.io import remove_stale_temps

log = logging.getLogger(__name__)

RUN_FILES = ("last.pt", "best.pt", "metrics.jsonl", "curves.png")


@dataclass(frozen=True)
class TrainConfig:
    data: Path
    arch: str
    split: str = "official"            # official | seed | aug (train/val list pair)
    epochs: int | None = None          # None: the arch's default (segx models)
    batch: int = 8                     # per process
    crop: int | None = None            # square training crop; None: the arch's default
    lr: float | None = None            # None: the arch's default
    optimizer: str | None = None       # sgd | adamw; None: the arch's default
    weight_decay: float | None = None  # None: the optimizer's default (1e-4)
    warmup_epochs: int = 1
    aux_weight: float = 0.5            # weight of the auxiliary head's loss (archs that have one)
    out: Path | None = None            # run folder; None: runs/<arch>
    resume: bool = False               # continue the run in `out` from its last.pt
    overwrite: bool = False            # replace a finished or stopped run in `out`
    amp: bool = False                  # mixed precision: bf16 on CPU, fp16 (GradScaler) on CUDA
    amp_dtype: str | None = None       # fp16 | bf16; None: per device as above
    device: str = "auto"               # auto | cpu | cuda | cuda:N
    workers: int | None = None         # DataLoader workers; None: from the CPU count
    seed: int = 0
    weights: str | None = None         # initial weights: torchvision | imagenet | URL | file (segx.models.pretrained)
    deterministic: bool = False        # torch deterministic algorithms (slower on CUDA)

    def resolved(self) -> TrainConfig:
        """A copy with every None default filled in from the arch, and values checked."""
        from segx.models import get_arch

        spec = get_arch(self.arch)
        self.check()
        cfg = dataclasses.replace(
            self, data=Path(self.data), epochs=self.epochs or spec.epochs, crop=self.crop or spec.crop,
            lr=self.lr or spec.lr, optimizer=self.optimizer or spec.optimizer,
            out=Path(self.out) if self.out else Path("runs") / self.arch,
            workers=default_workers() if self.workers is None else self.workers,
            weights=str(self.weights) if self.weights else None)
        cfg.check()
        return cfg

    def check(self) -> None:
        for name in ("epochs", "batch", "crop"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise SegxError(f"--{name} must be at least 1, got {value}")
        if self.lr is not None and not self.lr > 0:
            raise SegxError(f"--lr must be positive, got {self.lr}")
        if self.workers is not None and self.workers < 0:
            raise SegxError(f"--workers must be 0 or more, got {self.workers}")
        if self.warmup_epochs < 0 or self.aux_weight < 0:
            raise SegxError("warmup_epochs and aux_weight must be 0 or more")

    def to_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        for k in ("data", "out"):
            if kw.get(k) is not None:
                kw[k] = Path(kw[k])
        return cls(**kw)


def default_workers() -> int:
    """DataLoader workers: one per two cores left to each process, at most 4 (0 on a single core)."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    return max(0, min(4, (os.cpu_count() or 1) // (2 * world)))


def resume_config(out: str | Path, **overrides: Any) -> TrainConfig:
    """The config saved in `out`/last.pt, with `overrides` applied and resume=True: continues that run."""
    from segx.io import load_checkpoint

    ckpt = load_checkpoint(_last_pt(Path(out)))
    if not isinstance(ckpt.get("config"), dict):
        raise SegxError(f"{Path(out) / 'last.pt'}: no training config inside; was it written by `segx train`?")
    return dataclasses.replace(TrainConfig.from_dict(ckpt["config"]), resume=True, out=Path(out), **overrides)


def _last_pt(out: Path) -> Path:
    path = out / "last.pt"
    if not path.is_file():
        raise SegxError(f"{path}: not found, so there is nothing to resume; start the run without --resume")
    return path


def prepare_run_dir(cfg: TrainConfig, is_main: bool) -> Path:
    """Check `out` against resume/overwrite; clear an old run when overwriting (rank 0)."""
    out = Path(cfg.out)
    if cfg.resume:
        _last_pt(out)
    else:
        old = [name for name in RUN_FILES if (out / name).exists()]
        if old and not cfg.overwrite:
            raise SegxError(f"{out} already holds a run ({', '.join(old)}); continue it with --resume, replace it "
                            f"with --overwrite, or pick another --out")
        _check_writable(out)
        if is_main:  # the folder itself is made by the first save, so a run that fails early leaves nothing behind
            for name in old:
                (out / name).unlink()
    if is_main:  # temp files of a run killed mid-write (the files they were to replace are intact)
        for name in RUN_FILES:
            for tmp in remove_stale_temps(out / name):
                log.info("removed %s, left by a run that was killed while writing %s", tmp.name, name)
    return out


def _check_writable(out: Path) -> None:
    """Refuse now, not after an epoch, an --out that is a file or lies in a folder segx cannot write."""
    existing = next(p for p in (out, *out.parents) if p.exists())
    if not existing.is_dir():
        raise SegxError(f"{existing}: not a folder; pick another --out")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise SegxError(f"{existing}: not writable; pick another --out")


def train(config: TrainConfig) -> Path:
    """Train `config.arch` on the VOC tree `config.data`; returns the run folder (last.pt, best.pt, metrics.jsonl,
    curves.png). Under torchrun (WORLD_SIZE > 1) every rank calls this; only rank 0 writes."""
    from segx.engine.dist import cleanup_distributed, init_distributed
    from segx.engine.run import run

    cfg = config.resolved()
    info, device = init_distributed(cfg.device)
    try:
        return run(cfg, prepare_run_dir(cfg, info.is_main), info, device)
    except torch.OutOfMemoryError as e:
        raise SegxError(f"out of memory on {device} with --batch {cfg.batch} --crop {cfg.crop}; "
                        f"reduce --batch or --crop") from e
    except RuntimeError as e:
        if "can't allocate memory" in str(e) or "out of memory" in str(e).lower():
            raise SegxError(f"out of memory on {device} with --batch {cfg.batch} --crop {cfg.crop}; "
                            f"reduce --batch or --crop") from e
        raise
    finally:
        cleanup_distributed()
