"""Logging and progress bars on stderr, one setup for the CLI; library code only uses `logging`. On a terminal:
rich (colours, live bars); otherwise (a file, a pipe, CI): plain unwrapped `LEVEL message` lines and no bars."""
from __future__ import annotations

import logging
import sys

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)

console = Console(stderr=True)
LOGGERS = ("segx", "bench", "exporters")  # the project's loggers; they never propagate to the root logger


class StderrHandler(logging.Handler):
    """rich's handler while stderr is a terminal, else one plain unwrapped line per record (to the current
    sys.stderr, so redirection after setup is followed)."""

    def __init__(self) -> None:
        super().__init__()
        self.rich = RichHandler(console=console, show_path=False, show_time=False, markup=False)
        self.setFormatter(logging.Formatter("%(levelname)-8s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if console.is_terminal:
            self.rich.handle(record)
            return
        try:
            sys.stderr.write(self.format(record).replace("\n", " ") + "\n")
            sys.stderr.flush()
        except Exception:  # noqa: BLE001 - logging's own contract: report, never raise
            self.handleError(record)


def setup_logging(level: int = logging.INFO) -> None:
    """Send the project's loggers to one StderrHandler at `level`. They do not propagate: a library that configures
    the root logger (ONNX Runtime's quantiser calls logging.basicConfig) cannot make each line print twice."""
    handler = next((h for h in logging.getLogger("segx").handlers if isinstance(h, StderrHandler)), None) \
        or StderrHandler()
    for name in LOGGERS:
        lg = logging.getLogger(name)
        lg.handlers = [handler]
        lg.setLevel(level)
        lg.propagate = False


def progress(*extra_columns: object, transient: bool = False) -> Progress:
    """A rich progress bar on stderr: description, bar, n/total, elapsed, remaining (+ extra columns); disabled
    (nothing printed, not even a last frame) when stderr is not a terminal."""
    return Progress(SpinnerColumn(), TextColumn("[progress.description]{task.description}"), BarColumn(),
                    MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(), *extra_columns,
                    console=console, transient=transient, disable=not console.is_terminal)
