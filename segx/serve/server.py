"""Start and stop the Triton server: load the model through the Runtime layer, bind the Segmenter as model `segx`
with dynamic batching, serve on the HTTP / gRPC / metrics ports until SIGINT or SIGTERM."""
from __future__ import annotations

import contextlib
import logging
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from segx.errors import SegxError
from segx.serve.env import prepare
from segx.serve.handler import Segmenter

log = logging.getLogger(__name__)

MODEL_NAME = "segx"


@dataclass(frozen=True)
class ServeConfig:
    http_port: int = 8000
    grpc_port: int = 8001
    metrics_port: int = 8002
    host: str = "127.0.0.1"        # 0.0.0.0 to serve other machines
    runtime: str | None = None     # default: the model file's runtime
    device: str = "cpu"
    threads: int | None = None
    max_batch: int = 8             # Triton's max_batch_size: the dynamic batcher groups up to this many
    queue_delay_us: int = 2000     # how long the batcher waits to fill a batch

    def __post_init__(self) -> None:
        ports = (self.http_port, self.grpc_port, self.metrics_port)
        if len(set(ports)) != 3 or not all(0 < p < 65536 for p in ports):
            raise SegxError(f"--http-port, --grpc-port and --metrics-port must be 3 different ports, got {ports}")
        if self.max_batch < 1 or self.queue_delay_us < 0:
            raise SegxError("--max-batch must be >= 1 and --queue-delay-us >= 0")


def _infer_function(segmenter: Segmenter) -> Any:
    from pytriton.decorators import batch
    from pytriton.exceptions import PyTritonBadParameterError

    @batch
    def infer(image: np.ndarray) -> dict[str, np.ndarray]:
        try:
            return segmenter(image)
        except SegxError as e:  # a bad request: its client gets the message, the server goes on
            raise PyTritonBadParameterError(str(e)) from e

    return infer


@contextlib.contextmanager
def start(model: str | Path, config: ServeConfig = ServeConfig()) -> Iterator[Any]:
    """Load `model`, start Triton with it bound as `segx`, yield the pytriton Triton object; stop on exit."""
    prepare()
    from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
    from pytriton.triton import Triton, TritonConfig

    from segx.runtimes import load_runtime

    runtime = load_runtime(model, config.runtime, device=config.device, threads=config.threads)
    try:
        segmenter = Segmenter(runtime)
        triton_config = TritonConfig(http_address=config.host, http_port=config.http_port,
                                     grpc_address=config.host, grpc_port=config.grpc_port,
                                     metrics_port=config.metrics_port, allow_metrics=True, log_verbose=0)
        outputs = [Tensor(name=n, dtype=d.type, shape=(-1, -1)) for n, d in segmenter.outputs().items()]
        with Triton(config=triton_config) as triton:
            triton.bind(model_name=MODEL_NAME, infer_func=_infer_function(segmenter),
                        inputs=[Tensor(name="image", dtype=np.uint8, shape=(-1, -1, 3))], outputs=outputs,
                        config=ModelConfig(max_batch_size=config.max_batch,
                                           batcher=DynamicBatcher(max_queue_delay_microseconds=config.queue_delay_us)),
                        strict=True)
            yield triton
    finally:
        runtime.close()


def _sigterm_as_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def serve(model: str | Path, config: ServeConfig = ServeConfig()) -> None:
    """Serve until SIGINT / SIGTERM (both stop Triton and the proxy cleanly)."""
    previous = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:
        with start(model, config) as triton:
            log.warning("segx serve: %s as model '%s' on http://%s:%d, grpc %s:%d, metrics :%d (Ctrl+C stops)",
                        model, MODEL_NAME, config.host, config.http_port, config.host, config.grpc_port,
                        config.metrics_port)
            triton.serve()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
