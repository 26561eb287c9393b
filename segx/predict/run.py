"""`predict(source, model)`: open a source and a model (file or Runtime) and return the `PredictRun` iterator of
`Result`s. A plain function; the package re-exports it (`from segx.predict import predict`, or segx.api.predict)."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from segx.errors import unknown_choice
from segx.predict.pipeline import PredictOptions, PredictRun
from segx.predict.sources import MAX_PIXELS, open_source


def predict(source: str | int | Path, model: str | Path | Any, *, device: str = "cpu", runtime: str | None = None,
            precision: str = "fp32", threads: int | None = None, max_pixels: int = MAX_PIXELS,
            **options: Any) -> PredictRun:
    """Segment `source` (image, folder, glob, video file, webcam index, rtsp/http URL) with `model` (a model file
    segx made: .pt, .onnx, .xml, .engine, .torchscript — or an already opened `segx.runtimes.Runtime`).

    Keyword options are `PredictOptions` fields (imgsz, alpha, boundaries, overlay, confidence, probabilities,
    include_background, min_area, max_frames). Iterate the result for one `Result` per frame; it is also a context
    manager, and `close()` stops reading early.

        for r in predict("street.mp4", "runs/lraspp/best.onnx", max_frames=10):
            print(r.frame_index, [(g.class_name, g.area) for g in r.regions])
    """
    from segx.runtimes import Runtime, load_runtime

    known = {f.name for f in dataclasses.fields(PredictOptions)}
    for key in options:
        if key not in known:
            raise unknown_choice("predict option", key, known)
    opts = PredictOptions(**options)
    src = open_source(source, max_pixels=max_pixels)
    try:
        if isinstance(model, Runtime):
            return PredictRun(src, model, opts, own_runtime=False)
        rt = load_runtime(model, runtime, device=device, precision=precision, threads=threads)
        try:
            return PredictRun(src, rt, opts, own_runtime=True)
        except BaseException:
            rt.close()
            raise
    except BaseException:
        src.close()
        raise
