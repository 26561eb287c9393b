"""`segx serve MODEL`: a Triton Inference Server for any model segx loads (parses options, calls segx.serve.serve)."""
from __future__ import annotations

from pathlib import Path

import click


@click.command("serve", short_help="Serve a model with NVIDIA Triton (HTTP/gRPC, dynamic batching).")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--http-port", type=int, default=8000, show_default=True)
@click.option("--grpc-port", type=int, default=8001, show_default=True)
@click.option("--metrics-port", type=int, default=8002, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: all).")
@click.option("--runtime", default=None, help="Runtime to load MODEL with (default: by its suffix).")
@click.option("--device", default="cpu", show_default=True)
@click.option("--threads", type=int, default=None, help="Inference threads (default: the runtime's).")
@click.option("--max-batch", type=int, default=8, show_default=True, help="Largest batch the dynamic batcher forms.")
@click.option("--queue-delay-us", type=int, default=2000, show_default=True,
              help="How long the dynamic batcher waits to fill a batch, microseconds.")
def command(model: Path, http_port: int, grpc_port: int, metrics_port: int, host: str, runtime: str | None,
            device: str, threads: int | None, max_batch: int, queue_delay_us: int) -> None:
    """Serve MODEL (.pt, .onnx, .xml, .engine, .torchscript; logits or mask head) as Triton model `segx`.

    \b
    Input  `image`: UINT8 [H, W, 3] RGB, any size (batch dimension in front, as Triton adds it).
    Output `mask`: UINT8 [H, W] class ids at the input's size; `confidence`: FP32 [H, W] for a mask+conf model.
    Health: GET /v2/health/live, /v2/health/ready, /v2/models/segx/ready; metrics on --metrics-port.
    SIGINT / SIGTERM stop it. Client example: docs/serve.md.
    """
    from segx.serve import ServeConfig, serve

    serve(model, ServeConfig(http_port=http_port, grpc_port=grpc_port, metrics_port=metrics_port, host=host,
                             runtime=runtime, device=device, threads=threads, max_batch=max_batch,
                             queue_delay_us=queue_delay_us))
