"""The Python API in one place: everything the `segx` commands do, importable from notebooks and scripts.

    from segx.api import make_synthetic_voc, TrainConfig, train, evaluate, export, run_bench, predict
"""
from __future__ import annotations

from bench import BenchConfig, run_bench
from exporters import FORMATS, export, run_export
from segx.checkpoint import load_model
from segx.data.synth import make_synthetic_voc
from segx.data.voc import VOCSegmentation, read_mask, write_mask
from segx.demo import DemoConfig, run_demo
from segx.evaluate import evaluate
from segx.models import build_model, get_arch, list_archs
from segx.predict import predict, predict_to_dir
from segx.train import TrainConfig, train

__all__ = ["FORMATS", "BenchConfig", "DemoConfig", "TrainConfig", "VOCSegmentation", "build_model", "evaluate",
           "export", "get_arch", "list_archs", "load_model", "make_synthetic_voc", "predict", "predict_to_dir",
           "read_mask", "run_bench", "run_demo", "run_export", "train", "write_mask"]
