"""`segx serve`: any model segx loads, served by a real NVIDIA Triton Inference Server (the one nvidia-pytriton
bundles) as model `segx`: input `image` UINT8 [-1, -1, 3] RGB -> output `mask` UINT8 [-1, -1] (+ `confidence`)."""
from __future__ import annotations

from segx.serve.handler import Segmenter
from segx.serve.server import MODEL_NAME, ServeConfig, serve, start

__all__ = ["MODEL_NAME", "Segmenter", "ServeConfig", "serve", "start"]
