"""Segment images, folders, videos, webcams and streams with any segx model: `predict(source, model)` (here, or
segx.api.predict) returns an iterator of `Result`s (mask, regions, overlay). The CLI `segx predict` drives the same
iterator through `predict_to_dir` and writes files."""
from segx.predict.pipeline import PredictOptions, PredictRun, Result
from segx.predict.regions import Region
from segx.predict.run import predict
from segx.predict.save import predict_to_dir
from segx.predict.sources import open_source

__all__ = ["PredictOptions", "PredictRun", "Region", "Result", "open_source", "predict", "predict_to_dir"]
