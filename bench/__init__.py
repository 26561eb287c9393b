"""segx bench: the architecture x runtime x precision matrix, timed through segx.runtimes and judged by segx.parity.
`run_bench` is imported lazily so `import bench` stays light."""
from __future__ import annotations

from typing import Any

__all__ = ["BenchConfig", "run_bench"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from bench import run

        return getattr(run, name)
    raise AttributeError(f"module 'bench' has no attribute '{name}'")
