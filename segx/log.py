"""Logging and progress bars: rich on stderr, one setup for the CLI; library code only uses `logging`."""
from __future__ import annotations

import logging

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)

console = Console(stderr=True)


def setup_logging(level: int = logging.INFO) -> None:
    root = logging.getLogger("segx")
    if not any(isinstance(h, RichHandler) for h in root.handlers):
        root.addHandler(RichHandler(console=console, show_path=False, show_time=False, markup=False))
    root.setLevel(level)
    for name in ("bench", "exporters"):
        lg = logging.getLogger(name)
        lg.handlers = root.handlers
        lg.setLevel(level)


def progress(*extra_columns: object, transient: bool = False) -> Progress:
    """A rich progress bar on stderr: description, bar, n/total, elapsed, remaining (+ extra columns)."""
    return Progress(SpinnerColumn(), TextColumn("[progress.description]{task.description}"), BarColumn(),
                    MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(), *extra_columns,
                    console=console, transient=transient)
