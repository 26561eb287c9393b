"""segx: PASCAL VOC semantic segmentation from training to edge deployment."""
from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # `segx.predict(source, model)` without importing torch/OpenCV at `import segx` time
    if name == "predict":
        import importlib

        return importlib.import_module("segx.predict")
    raise AttributeError(f"module 'segx' has no attribute {name!r}")
