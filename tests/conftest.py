"""Shared fixtures: a tiny synthetic VOC tree (session-wide) and single-threaded torch so tests fit 2 cores."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def synth_voc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 24-image, 64x64 synthetic VOC set; returns the VOC2012 folder (read-only for tests: copy to modify)."""
    from segx.data.synth import make_synthetic_voc

    return make_synthetic_voc(tmp_path_factory.mktemp("synth"), n=24, size=64, seed=0)


@pytest.fixture(scope="session")
def trained_checkpoint(synth_voc: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """best.pt of lraspp_mobilenet_v3_large trained 2 quick epochs on `synth_voc` at 64² (a few seconds)."""
    from segx.train import TrainConfig, train

    out = tmp_path_factory.mktemp("run") / "lraspp"
    run = train(TrainConfig(data=synth_voc, arch="lraspp_mobilenet_v3_large", epochs=2, batch=4, crop=64,
                            out=out, workers=0, device="cpu"))
    return run / "best.pt"


@pytest.fixture(autouse=True)
def project_loggers_propagate() -> object:
    """The CLI's setup_logging stops the project's loggers propagating (segx.log); let caplog see them again in the
    next test."""
    yield
    import logging

    for name in ("segx", "bench", "exporters"):
        logging.getLogger(name).propagate = True
MIN_CLASSES = 5


@pytest.fixture(scope="session")
def multiclass_checkpoint(synth_voc: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """best.pt of lraspp_mobilenet_v3_large trained 25 epochs (AdamW) on `synth_voc` at 64² (~35 s on one core):
    its predictions on the val images (the gate's images) hold at least MIN_CLASSES classes, asserted here, so an
    export that collapses to background cannot pass a gate test built on it."""
    from segx.data.transforms import eval_transforms
    from segx.data.voc import VOCSegmentation
    from segx.evaluate import class_map_at, open_predictor
    from segx.train import TrainConfig, train

    out = tmp_path_factory.mktemp("run") / "lraspp_multiclass"
    run = train(TrainConfig(data=synth_voc, arch="lraspp_mobilenet_v3_large", epochs=25, batch=4, crop=64, lr=0.005,
                            optimizer="adamw", out=out, workers=0, device="cpu"))
    predict, _, close = open_predictor(run / "best.pt", "cpu")
    classes: set[int] = set()
    for image, mask in VOCSegmentation(synth_voc, "val", eval_transforms()):
        classes |= set(class_map_at(predict(image[None]), tuple(mask.shape)).unique().tolist())
    close()
    assert len(classes) >= MIN_CLASSES, f"fixture model predicts only classes {sorted(classes)} on val"
    return run / "best.pt"
