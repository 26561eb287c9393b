"""The `segx` command line: a thin click layer. Each sub-command lives in segx/commands/<name>.py and only parses
options and calls the Python API; this module owns the shared error handling (one `segx: error:` line, exit 1)."""
from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

import click

import segx
from segx.errors import SegxError

# segx/commands/<name>.py each define `command` (a click.Command or Group); listed in help order.
COMMANDS = ["data", "models", "train", "eval", "export", "parity", "bench", "predict", "serve", "demo", "doctor"]


class SegxGroup(click.Group):
    """Turns SegxError (and any unexpected exception) into one stderr line and exit 1, and click's usage errors
    (unknown flag, bad value) into one line and exit 2; --debug shows the traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as e:  # a bad flag or value: one line too (exit 2, the usual status for usage)
            where = f" (see {e.ctx.command_path} --help)" if e.ctx else ""
            click.echo(f"segx: error: {' '.join(e.format_message().split())}{where}", err=True)
            sys.exit(e.exit_code)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            click.echo("segx: interrupted", err=True)
            sys.exit(130)
        except Exception as e:  # noqa: BLE001 - the CLI boundary
            if ctx.meta.get("segx.debug"):
                raise
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            if not isinstance(e, SegxError):
                msg = f"{type(e).__name__}: {msg} (rerun with --debug for the traceback)"
            click.echo(f"segx: error: {msg}", err=True)
            sys.exit(1)


@click.group("segx", cls=SegxGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(segx.__version__, "-V", "--version", prog_name="segx")
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug logs).")
@click.pass_context
def cli(ctx: click.Context, debug: bool, verbose: int) -> None:
    """segx: train PASCAL VOC segmentation models, export them (ONNX, TensorRT, OpenVINO, TorchScript),
    prove parity, benchmark every runtime, and segment images and video.

    \b
    Examples:
      segx data synth --out data/synth --n 200 --size 256
      segx train --data data/synth --arch lraspp_mobilenet_v3_large --epochs 5
      segx export --model runs/lraspp_mobilenet_v3_large/best.pt --fmt onnx --data data/synth
      segx bench --models runs/lraspp_mobilenet_v3_large --runtimes torch,onnxruntime,openvino
      segx predict camera.mp4 --model runs/lraspp_mobilenet_v3_large/best.onnx
    """
    ctx.meta["segx.debug"] = debug
    from segx.log import setup_logging

    setup_logging(logging.DEBUG if verbose > 1 else logging.INFO)


for _name in COMMANDS:
    cli.add_command(importlib.import_module(f"segx.commands.{_name}").command)


def main() -> None:
    cli(prog_name="segx")


if __name__ == "__main__":
    main()
