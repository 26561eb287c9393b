"""Training and validation data loaders: VOC datasets with the segx transforms, a seeded generator, per-worker
seeding, DistributedSampler under torchrun, pinned memory on CUDA."""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler, Subset

from segx.data.splits import split_pair
from segx.data.transforms import eval_transforms, train_transforms
from segx.data.voc import VOCSegmentation
from segx.engine.dist import DistInfo
from segx.errors import SegxError
from segx.models.registry import TrainData


def seed_worker(worker_id: int) -> None:
    """Seed numpy and random in a DataLoader worker from the torch seed the loader gave it (base seed + id)."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def make_loaders(root: Path, split: str, *, crop: int, batch: int, workers: int, seed: int, info: DistInfo,
                 pin_memory: bool,
                 train_data: TrainData | None = None) -> tuple[DataLoader, DataLoader, torch.Generator]:
    """(train loader, val loader, the train loader's generator: its state is part of resumable state).
    `train_data`: the arch's own training set and collate function (ArchSpec.train_data; e.g. Mask R-CNN's
    instances); validation always scores semantic masks."""
    train_list, val_list = split_pair(split)
    train_set, collate = (train_data(root, train_list, crop) if train_data is not None else
                          (VOCSegmentation(root, train_list, train_transforms(crop)), None))
    val_set = VOCSegmentation(root, val_list, eval_transforms())
    if len(train_set) < batch * info.world:
        raise SegxError(f"the '{train_list}' list has {len(train_set)} images, fewer than one batch "
                        f"({batch} × {info.world} processes); lower --batch")
    generator = torch.Generator().manual_seed(seed + info.rank)  # each rank its own augmentation streams
    # the sampler's seed is the same on every rank: together the ranks' shards cover the epoch once
    sampler = (DistributedSampler(train_set, info.world, info.rank, shuffle=True, seed=seed, drop_last=True)
               if info.enabled else None)
    train = DataLoader(train_set, batch_size=batch, shuffle=sampler is None, sampler=sampler, drop_last=True,
                       num_workers=workers, pin_memory=pin_memory, generator=generator, worker_init_fn=seed_worker,
                       collate_fn=collate)
    # validation: batch 1 at each image's own resolution; each rank takes every world-th image
    shard = Subset(val_set, range(info.rank, len(val_set), info.world))
    val = DataLoader(shard, batch_size=1, shuffle=False, num_workers=min(workers, 2), pin_memory=pin_memory,
                     worker_init_fn=seed_worker)
    return train, val, generator


def worker_error_message(e: BaseException) -> str:
    """The original message of an exception re-raised from a DataLoader worker ("Caught X in DataLoader worker...")."""
    text = str(e).strip()
    if not text.startswith("Caught "):
        return text
    last = [line for line in text.splitlines() if line.strip()][-1]
    return last.split(": ", 1)[1] if ": " in last else last
