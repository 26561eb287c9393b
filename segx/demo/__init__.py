"""`segx demo`: the whole job on the embedded default (synthetic VOC -> train -> eval -> export + parity -> bench ->
predict on a video -> report). `run_demo(out, quick=False)` is the Python API the CLI wraps."""
from segx.demo.config import DemoConfig, DemoResult
from segx.demo.run import run_demo

__all__ = ["DemoConfig", "DemoResult", "run_demo"]
