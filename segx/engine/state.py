"""Resumable training state as plain tensors and data (so last.pt loads with weights_only=True): the RNG states of
torch (CPU and CUDA), numpy, python `random` and the train loader's generator; RUN_DEFINING: what a resume must keep."""
from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

# settings that shape the result: a resumed run that changes one of them no longer matches an uninterrupted run
RUN_DEFINING = ("arch", "split", "epochs", "batch", "crop", "lr", "optimizer", "weight_decay", "warmup_epochs",
                "aux_weight", "seed", "amp", "amp_dtype")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def capture_rng(loader_generator: torch.Generator) -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, py_state, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"kind": kind, "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": version, "state": list(py_state), "gauss": gauss},
        "loader": loader_generator.get_state(),
    }


def restore_rng(state: dict[str, Any], loader_generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    loader_generator.set_state(state["loader"])
