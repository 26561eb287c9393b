"""One training epoch (cross-entropy, ignore 255, + 0.5 × aux loss, AMP, per-iteration LR steps, progress bar with
loss, lr and images/s) and the per-epoch validation (mIoU over the val list at original resolution, batch 1)."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from rich.progress import Progress, TextColumn
from torch import nn
from torch.utils.data import DataLoader

from segx.checkpoint import unwrap
from segx.data.constants import CLASSES, IGNORE_INDEX
from segx.data.instances import targets_to
from segx.engine.dist import DistInfo, sum_across_ranks
from segx.engine.optim import AmpSettings
from segx.errors import SegxError
from segx.evaluate import score, torch_predictor
from segx.log import progress
from segx.metrics import ConfusionMatrix


@dataclass(frozen=True)
class EpochStats:
    loss: float
    lr: float
    images: int          # over all ranks
    seconds: float

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class Step:
    """What one epoch of training needs besides the data."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    amp: AmpSettings
    device: torch.device
    aux_weight: float


def _bar(show: bool, transient: bool = False) -> Progress:
    bar = progress(TextColumn("loss {task.fields[loss]:.4f}"), TextColumn("lr {task.fields[lr]:.2e}"),
                   TextColumn("{task.fields[ips]:.1f} img/s"), transient=transient)
    bar.disable = bar.disable or not show  # never on a non-terminal stderr (segx.log.progress)
    return bar


def _loss(out: dict[str, torch.Tensor], masks: torch.Tensor, aux_weight: float) -> torch.Tensor:
    loss = nn.functional.cross_entropy(out["out"], masks, ignore_index=IGNORE_INDEX)
    if "aux" in out:
        loss = loss + aux_weight * nn.functional.cross_entropy(out["aux"], masks, ignore_index=IGNORE_INDEX)
    return loss


def _train_step(model: nn.Module, images: torch.Tensor, masks: Any, s: Step) -> torch.Tensor:
    with s.amp.autocast():
        if getattr(unwrap(model), "takes_targets", False):  # the arch computes its own loss (Mask R-CNN)
            loss = model(images, masks)["loss"]
        else:
            loss = _loss(model(images), masks, s.aux_weight)
    s.optimizer.zero_grad(set_to_none=True)
    s.scaler.scale(loss).backward()
    s.scaler.step(s.optimizer)
    s.scaler.update()
    s.scheduler.step()
    return loss.detach()


def train_one_epoch(model: nn.Module, loader: DataLoader, s: Step, *, epoch: int, epochs: int,
                    info: DistInfo) -> EpochStats:
    model.train()
    total, steps, images = 0.0, 0, 0
    start = time.perf_counter()
    with _bar(info.is_main) as bar:
        task = bar.add_task(f"epoch {epoch}/{epochs}", total=len(loader), loss=math.nan,
                            lr=s.optimizer.param_groups[0]["lr"], ips=0.0)
        for images_b, masks in loader:
            images_b = images_b.to(s.device, non_blocking=True, memory_format=torch.channels_last)
            masks = masks.to(s.device, non_blocking=True) if isinstance(masks, torch.Tensor) else \
                targets_to(masks, s.device)
            loss = _train_step(model, images_b, masks, s).item()
            if not math.isfinite(loss):
                raise SegxError(f"the loss became {loss} at epoch {epoch} step {steps + 1}; lower --lr"
                                f"{' or drop --amp' if s.amp.enabled else ''}")
            total, steps, images = total + loss, steps + 1, images + len(images_b) * info.world
            bar.update(task, advance=1, loss=total / steps, lr=s.optimizer.param_groups[0]["lr"],
                       ips=images / (time.perf_counter() - start))
    seconds = time.perf_counter() - start
    loss_sum, step_sum = sum_across_ranks(np.array([total, steps]), info, s.device)
    return EpochStats(float(loss_sum / max(step_sum, 1)), s.optimizer.param_groups[0]["lr"], images, seconds)


def validate(model: nn.Module, loader: DataLoader, *, device: torch.device, amp: AmpSettings, info: DistInfo,
             num_classes: int, class_names: tuple[str, ...] = CLASSES) -> dict[str, Any]:
    """Confusion-matrix metrics over the whole val list (each rank scores its shard; the matrices are summed)."""
    cm = ConfusionMatrix(num_classes)
    net = torch_predictor(model, device)

    def predict(x: torch.Tensor) -> torch.Tensor:
        with amp.autocast():
            return net(x)

    with _bar(info.is_main, transient=True) as bar:
        task = bar.add_task("validate", total=len(loader), loss=math.nan, lr=math.nan, ips=0.0)
        score(predict, loader, cm, on_image=lambda: bar.advance(task))
    cm.mat = np.rint(sum_across_ranks(cm.mat, info, device)).astype(np.int64)
    return cm.compute(class_names)
