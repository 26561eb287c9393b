"""`segx bench --serve`: the load test of `segx serve`. Times the model in-process (the Segmenter called in a loop),
then starts `segx serve` on free loopback ports and drives it with N concurrent tritonclient gRPC clients until T
seconds or R requests: requests/s, p50/p95/p99 latency, errors, and the served / in-process throughput ratio."""
from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from segx.errors import SegxError

HOST = "127.0.0.1"  # loopback only
LIMITS = {"clients": 64, "seconds": 600.0, "requests": 100_000}


@dataclass(frozen=True)
class LoadConfig:
    clients: int = 4
    seconds: float = 30.0      # stop after this long ...
    requests: int = 2000       # ... or after this many requests, whichever comes first
    imgsz: int = 512
    threads: int | None = None
    startup_s: float = 300.0   # how long the server may take to become ready

    def __post_init__(self) -> None:
        for name, top in LIMITS.items():
            value = getattr(self, name)
            if not 0 < value <= top:
                raise SegxError(f"--{name} must be in 1..{top:g}, got {value}")


def _stats(latencies: list[float], seconds: float, errors: int) -> dict[str, Any]:
    ms = np.asarray(latencies) * 1000.0 if latencies else np.zeros(1)
    p50, p95, p99 = (float(v) for v in np.percentile(ms, [50, 95, 99]))
    return {"requests": len(latencies) + errors, "ok": len(latencies), "errors": errors, "seconds": seconds,
            "rps": len(latencies) / seconds if seconds > 0 else 0.0, "p50_ms": p50, "p95_ms": p95, "p99_ms": p99}


def in_process(model: str | Path, image: np.ndarray, config: LoadConfig) -> dict[str, Any]:
    """The same Segmenter the server runs, called back to back in this process (batch 1)."""
    from segx.runtimes import load_runtime
    from segx.serve import Segmenter

    with load_runtime(model, threads=config.threads) as rt:
        seg = Segmenter(rt)
        for _ in range(3):
            seg(image[None])
        latencies: list[float] = []
        start = time.perf_counter()
        while time.perf_counter() - start < min(config.seconds, 20.0) and len(latencies) < config.requests:
            t0 = time.perf_counter()
            seg(image[None])
            latencies.append(time.perf_counter() - t0)
        return _stats(latencies, time.perf_counter() - start, 0)


def drive(grpc_port: int, image: np.ndarray, config: LoadConfig) -> dict[str, Any]:
    """config.clients threads, each with its own gRPC client, sending `image` until the time or request bound."""
    import tritonclient.grpc as grpc

    lock, latencies, errors, sent = threading.Lock(), [], [0], [0]
    deadline = time.perf_counter() + config.seconds

    def client() -> None:
        conn = grpc.InferenceServerClient(f"{HOST}:{grpc_port}")
        inp = grpc.InferInput("image", list(image[None].shape), "UINT8")
        inp.set_data_from_numpy(image[None])
        while time.perf_counter() < deadline:
            with lock:
                if sent[0] >= config.requests:
                    return
                sent[0] += 1
            t0 = time.perf_counter()
            try:
                conn.infer("segx", [inp]).as_numpy("mask")
                ok = True
            except Exception:  # noqa: BLE001 - every failed request counts as an error
                ok = False
            elapsed = time.perf_counter() - t0
            with lock:
                if ok:
                    latencies.append(elapsed)
                else:
                    errors[0] += 1
        conn.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(config.clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(config.seconds + 60)
    return {**_stats(latencies, time.perf_counter() - start, errors[0]), "clients": config.clients}


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind((HOST, 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def wait_ready(proc: subprocess.Popen, http_port: int, timeout: float) -> None:
    import tritonclient.http as http

    client = http.InferenceServerClient(f"{HOST}:{http_port}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SegxError(f"segx serve exited with status {proc.returncode} before it was ready")
        try:
            if client.is_server_ready() and client.is_model_ready("segx"):
                return
        except Exception:  # noqa: BLE001 - not listening yet
            pass
        time.sleep(0.5)
    raise SegxError(f"segx serve was not ready after {timeout:g} s")


def run_serve_bench(model: str | Path, config: LoadConfig = LoadConfig(), out: str | Path | None = None) -> dict:
    """In-process throughput, then the served load test against `segx serve MODEL` started here (and stopped with
    SIGTERM). Writes OUT/serve_bench.json when `out` is given."""
    from bench.env import load_avg
    from segx.io import atomic_write_json
    from segx.serve.env import require_pytriton

    require_pytriton()
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (config.imgsz, config.imgsz, 3), dtype=np.uint8)
    load_start = load_avg()
    local = in_process(model, image, config)
    ports = free_ports(3)
    cmd = [sys.executable, "-m", "segx", "serve", str(model), "--host", HOST, "--http-port", str(ports[0]),
           "--grpc-port", str(ports[1]), "--metrics-port", str(ports[2])]
    cmd += ["--threads", str(config.threads)] if config.threads else []
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(proc, ports[0], config.startup_s)
        served = drive(ports[1], image, config)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            stopped = proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            stopped = proc.wait()
    result = {"model": str(model), "config": asdict(config), "in_process": local, "served": served,
              "throughput_ratio": served["rps"] / local["rps"] if local["rps"] else None,
              "p99_over_p50": served["p99_ms"] / served["p50_ms"] if served["p50_ms"] else None,
              "server_exit": stopped, "load_avg_start": load_start, "load_avg_end": load_avg()}
    if out is not None:
        atomic_write_json(Path(out) / "serve_bench.json", result)
    return result


def summary(result: dict[str, Any]) -> str:
    s, local = result["served"], result["in_process"]
    return (f"served {s['clients']} clients: {s['rps']:.1f} req/s, p50 {s['p50_ms']:.1f} / p95 {s['p95_ms']:.1f} / "
            f"p99 {s['p99_ms']:.1f} ms, {s['errors']} errors in {s['requests']} requests ({s['seconds']:.1f} s); "
            f"in-process {local['rps']:.1f} req/s (p50 {local['p50_ms']:.1f} ms); served/in-process "
            f"{result['throughput_ratio']:.0%}, p99/p50 {result['p99_over_p50']:.2f}; load "
            f"{result['load_avg_start']} -> {result['load_avg_end']}")


__all__ = ["LoadConfig", "free_ports", "run_serve_bench", "summary", "wait_ready"]
