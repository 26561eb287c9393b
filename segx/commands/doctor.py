"""`segx doctor`: what this machine has (runtimes, providers, devices, versions) and the install line for what is
missing; a thin layer over segx.doctor.diagnose()."""
from __future__ import annotations

import json

import click


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def command(as_json: bool) -> None:
    """Show what this machine has for segx: torch and its CUDA devices (compute capability, memory), ONNX Runtime
    and its execution providers, OpenVINO and its devices, NNCF, TensorRT, and which segx runtime runs on which
    device here. Anything missing comes with the exact command that installs it.

    \b
    Pick ONE of the extras: pip install 'segx[cpu]' (onnxruntime + openvino) or 'segx[gpu]'
    (onnxruntime-gpu + tensorrt): both onnxruntime packages in one environment break each other.

    \b
    Examples:
      segx doctor
      segx doctor --json
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from segx.doctor import diagnose

    findings = diagnose()
    if as_json:
        click.echo(json.dumps([f.to_dict() for f in findings], indent=2))
        return
    table = Table("what", "status", "version", "details", "to install / fix", title="segx doctor")
    style = {"ok": "green", "warn": "yellow", "missing": "red"}
    for f in findings:
        table.add_row(escape(f.name), f"[{style[f.status]}]{f.status}[/]", f.version or "", escape(f.detail),
                      escape(f.install or ""))  # escape: 'segx[gpu]' is not rich markup
    console = Console()
    Console(width=None if console.is_terminal else 160).print(table)
